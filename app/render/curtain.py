"""The CALIOP curtain (altitude × along-track) as a HoloViews image, at screen resolution.

A real L1B granule holds ~56,000 profiles × 583 altitude bins whose spacing changes with height (300 m above
30 km, 180 m, 60 m, 30 m below 8.2 km, 300 m under the surface). The picture needs neither: `aggregate_curtain`
averages consecutive profiles into the screen's columns (one sparse indicator-matrix product) and regrids the
altitude bins onto a uniform grid of screen rows by **overlap-weighted averaging**: each row takes the mean of the
bins it overlaps, weighted by the overlap length, so thin layers keep their height and no bin is skipped or
counted twice.

The image's x axis is the **profile index** (a float, uniform along the track): it is what the curtain's range
streams and the map link speak (`profile_at`). Its tick labels show the time and place of the profiles below
them ("12:01:30" over "13.2N 58.1W"), written with HoloViews ``xticks`` = (position, label) pairs, which Bokeh
draws as a ``FixedTicker`` with ``major_label_overrides``.

Colours come from `app.render.colormaps`: the piecewise CALIOP backscatter scale is shown through bin indices
(the image's first value dimension) coloured by a linear mapper over the indices, with a colour bar whose ticks
are labelled by the physical bounds; the physical value is the image's second value dimension, for the hover.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import holoviews as hv
import numpy as np
import pandas as pd
import xarray as xr

from app.core.lonlat import wrap_lon
from app.render.colormaps import ContinuousScale, SteppedScale, bin_index, colorbar_ticks, hex_to_rgb, scale_for

__all__ = [
    "curtain_rgba",
    "scale_rgba",
    "BACKSCATTER_VARIABLES",
    "depolarization_ratio",
    "altitude_edges",
    "regrid_altitude",
    "aggregate_curtain",
    "curtain_image",
    "profile_at",
    "tick_label",
]

#: Curtain variables that hold attenuated backscatter (averaged as they are).
BACKSCATTER_VARIABLES = (
    "total_attenuated_backscatter_532",
    "perpendicular_attenuated_backscatter_532",
    "attenuated_backscatter_1064",
)

_DEPOL = "depolarization_ratio_532"

_LABELS = {
    "total_attenuated_backscatter_532": "β′ 532 total",
    "perpendicular_attenuated_backscatter_532": "β′ 532 perpendicular",
    "attenuated_backscatter_1064": "β′ 1064",
    _DEPOL: "depolarisation ratio 532",
}


def depolarization_ratio(curtain: xr.Dataset) -> xr.DataArray:
    """Volume depolarisation ratio at 532 nm: perpendicular / parallel, parallel = total − perpendicular.

    The same definition as the reader's derived ``depolarization_ratio_532`` (returned as it is when the curtain
    holds it); NaN where the parallel signal is not positive.
    """
    if _DEPOL in curtain:
        return curtain[_DEPOL]
    total = curtain["total_attenuated_backscatter_532"]
    perp = curtain["perpendicular_attenuated_backscatter_532"]
    parallel = total - perp
    ratio = xr.where(parallel > 0, perp / parallel.where(parallel > 0), np.nan).astype(np.float32)
    ratio.name = _DEPOL
    ratio.attrs = {"units": "1", "long_name": "volume depolarisation ratio, 532 nm (perpendicular / parallel)"}
    return ratio


def altitude_edges(altitude: np.ndarray) -> np.ndarray:
    """Edges (ascending, km) of altitude bins given their centres in any monotonic order.

    Inner edges are midway between neighbours; the outer ones half a spacing beyond the end centres.
    """
    z = np.sort(np.asarray(altitude, dtype=np.float64))
    if z.size < 2:
        raise ValueError("altitude bins: need at least two altitudes to find bin edges")
    mid = 0.5 * (z[1:] + z[:-1])
    return np.concatenate([[z[0] - (mid[0] - z[0])], mid, [z[-1] + (z[-1] - mid[-1])]])


def regrid_altitude(
    values: np.ndarray, altitude: np.ndarray, alt_range_km: Sequence[float], height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Average ``(n, n_alt)`` values onto ``height`` uniform rows over ``alt_range_km``, weighted by overlap.

    Returns ``(out, centres)``: ``out`` ``(n, height)`` float32 with rows going up (NaN where no finite value
    overlaps), ``centres`` the rows' altitudes (km, ascending).
    """
    altitude = np.asarray(altitude, dtype=np.float64)
    order = np.argsort(altitude)
    src = altitude_edges(altitude)
    lo, hi = float(alt_range_km[0]), float(alt_range_km[1])
    height = max(int(height), 1)
    dst = np.linspace(lo, hi, height + 1)
    overlap = np.minimum(dst[1:, None], src[None, 1:]) - np.maximum(dst[:-1, None], src[None, :-1])
    weights = np.clip(overlap, 0.0, None)  # (height, n_alt), source in ascending order
    v = np.asarray(values)[:, order]
    finite = np.isfinite(v)
    num = np.where(finite, v, 0.0).astype(np.float64) @ weights.T
    den = finite.astype(np.float64) @ weights.T
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / den, np.nan).astype(np.float32)
    return out, 0.5 * (dst[1:] + dst[:-1])


def _column_groups(n_profiles: int, x_range: Sequence[float] | None, width: int):
    """Profiles in range, the screen column of each, the columns' centres and width (None: a column per profile)."""
    x0, x1 = (-0.5, n_profiles - 0.5) if x_range is None else (float(x_range[0]), float(x_range[1]))
    if x1 <= x0:
        raise ValueError(f"curtain x range must increase, got {x_range}")
    first = max(int(np.ceil(x0)), 0)
    last = min(int(np.floor(x1)), n_profiles - 1)
    if last < first:  # nothing in view: the nearest profile
        first = last = int(np.clip(round(0.5 * (x0 + x1)), 0, n_profiles - 1))
    index = np.arange(first, last + 1)
    width = max(int(width), 1)
    if index.size <= width:  # zoomed in: one column per profile
        return index, np.arange(index.size), index.astype(np.float64), None
    col = np.clip(((index - x0) / (x1 - x0) * width).astype(np.int64), 0, width - 1)
    step = (x1 - x0) / width
    return index, col, x0 + (np.arange(width) + 0.5) * step, step


def _mean_by_column(values: np.ndarray, col: np.ndarray, n_cols: int) -> np.ndarray:
    """Mean of the finite values of the rows sharing a column; NaN where a column has none.

    One sparse (columns × rows) indicator matrix times the values: several times faster than ``np.add.reduceat``
    along the profile axis of a (56,000 × 583) granule. (scipy comes with datashader.)
    """
    from scipy import sparse

    indicator = sparse.csr_matrix(
        (np.ones(col.size, dtype=np.float32), (col, np.arange(col.size))), shape=(n_cols, col.size)
    )
    finite = np.isfinite(values)
    # float32 sums: a column adds up at most a few hundred profiles, far within float32's precision for a picture
    sums = indicator @ np.where(finite, values, 0.0).astype(np.float32, copy=False)
    counts = indicator @ finite.astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan).astype(np.float32)


def _circular_mean_deg(lon: np.ndarray, col: np.ndarray, n_cols: int) -> np.ndarray:
    rad = np.deg2rad(lon.astype(np.float64))
    s = _mean_by_column(np.sin(rad), col, n_cols)
    c = _mean_by_column(np.cos(rad), col, n_cols)
    return np.rad2deg(np.arctan2(s, c)).astype(np.float32)


def aggregate_curtain(
    curtain: xr.Dataset,
    x_range: Sequence[float] | None = None,
    width: int = 800,
    height: int | None = None,
    alt_range_km: Sequence[float] = (0.0, 30.0),
    variables: Sequence[str] | None = None,
) -> xr.Dataset:
    """Average a Curtain's profiles to the screen's columns and, if ``height`` is given, its bins to rows.

    Parameters
    ----------
    curtain
        A canonical Curtain (dims ``profile, altitude``).
    x_range
        ``(x0, x1)`` in profile-index units (the image's x axis); all profiles when None.
    width
        Screen columns over ``x_range``. When fewer profiles than columns are in range, each profile is a column.
    height, alt_range_km
        When ``height`` is given, the altitude bins are averaged onto ``height`` uniform rows over
        ``alt_range_km`` (weighted by overlap; `regrid_altitude`), ascending; otherwise they are kept.
    variables
        Data variables (with dims ``profile, altitude``) to aggregate; all of them by default.

    Returns
    -------
    xarray.Dataset
        Dims ``(profile, altitude)``: ``profile`` is the column centre (float profile index); coords
        ``latitude``, ``longitude`` (circular mean), ``time`` (mean) per column; each variable the mean of the
        finite values in the cell; ``profile_count`` the number of profiles in each column.
    """
    if variables is None:
        variables = [v for v in curtain.data_vars if curtain[v].dims == ("profile", "altitude")]
    n = curtain.sizes["profile"]
    index, col, centres, step = _column_groups(n, x_range, width)
    n_cols = centres.size
    sub = curtain.isel(profile=slice(int(index[0]), int(index[-1]) + 1))  # a view, not a copy
    altitude = sub["altitude"].to_numpy()
    out_alt = altitude
    data = {}
    for name in variables:
        values = sub[name].transpose("profile", "altitude").to_numpy()
        values = _mean_by_column(values, col, n_cols) if step is not None else values.astype(np.float32)
        if height is not None:
            values, out_alt = regrid_altitude(values, altitude, alt_range_km, height)
        data[name] = (("profile", "altitude"), values, dict(curtain[name].attrs))
    count = np.bincount(col, minlength=n_cols)
    if step is not None:
        lat = _mean_by_column(sub["latitude"].to_numpy().astype(np.float64), col, n_cols)
        lon = _circular_mean_deg(sub["longitude"].to_numpy(), col, n_cols)
        t_ns = sub["time"].to_numpy().astype("datetime64[ns]").astype(np.int64)
        t0 = t_ns[0]
        t_mean = _mean_by_column((t_ns - t0).astype(np.float64), col, n_cols)
        time = np.where(
            np.isfinite(t_mean), t0 + np.nan_to_num(t_mean).round().astype(np.int64), np.iinfo(np.int64).min
        ).astype("datetime64[ns]")
    else:
        lat = sub["latitude"].to_numpy().astype(np.float32)
        lon = sub["longitude"].to_numpy().astype(np.float32)
        time = sub["time"].to_numpy().astype("datetime64[ns]")
    data["profile_count"] = (("profile",), count.astype(np.int32))
    coords = {
        "profile": centres,
        "altitude": np.asarray(out_alt, dtype=np.float32),
        "latitude": ("profile", lat.astype(np.float32)),
        "longitude": ("profile", lon.astype(np.float32)),
        "time": ("profile", time),
    }
    attrs = dict(curtain.attrs, column_width_profiles=1.0 if step is None else float(step))
    return xr.Dataset(data, coords=coords, attrs=attrs)


def tick_label(time: np.datetime64, lat: float, lon: float) -> str:
    """The curtain's x tick label: "HH:MM:SS" over "13.2N 58.1W" (longitude written in −180 … 180)."""
    if np.isnat(np.datetime64(time)) or not (np.isfinite(lat) and np.isfinite(lon)):
        return ""
    lon = wrap_lon(float(lon))
    hms = str(np.datetime64(time, "s"))[11:19]
    return f"{hms}\n{abs(lat):.1f}{'N' if lat >= 0 else 'S'} {abs(lon):.1f}{'E' if lon >= 0 else 'W'}"


def _xticks(agg: xr.Dataset, n_ticks: int) -> list[tuple[float, str]]:
    x = agg["profile"].to_numpy()
    half = 0.5 * (x[1] - x[0]) if x.size > 1 else 0.5
    left, right = x[0] - half, x[-1] + half
    ticks = []
    for k in range(n_ticks):
        pos = left + (k + 0.5) / n_ticks * (right - left)
        j = int(np.argmin(np.abs(x - pos)))
        label = tick_label(agg["time"].values[j], float(agg["latitude"][j]), float(agg["longitude"][j]))
        if label:
            ticks.append((float(pos), label))
    return ticks


def curtain_image(
    curtain: xr.Dataset,
    variable: str = "total_attenuated_backscatter_532",
    alt_range_km: Sequence[float] = (0.0, 30.0),
    width: int = 800,
    height: int = 300,
    x_range: Sequence[float] | None = None,
    n_ticks: int = 5,
) -> hv.Image:
    """The curtain of one variable as an ``hv.Image`` (x profile index, y altitude km) with its colour scale.

    The curtain is first averaged to ``width`` × ``height`` cells over ``x_range`` (profile-index units, all
    profiles when None) and ``alt_range_km`` (`aggregate_curtain`). ``variable`` is a canonical backscatter
    variable or ``depolarization_ratio_532`` (computed from the averaged total and perpendicular signals when the
    curtain does not hold it, which is less noisy than averaging ratios). For the stepped backscatter scales the
    image's value dimensions are ``colour_bin`` (coloured) and ``value`` (physical, for the hover); for the
    depolarisation ratio only ``value``. Ticks on the x axis give time and place; the colour bar the units.
    """
    from bokeh.models import AllLabels, FixedTicker, HoverTool

    scale = scale_for(variable)
    if variable == _DEPOL and _DEPOL not in curtain:
        parts = ["total_attenuated_backscatter_532", "perpendicular_attenuated_backscatter_532"]
        agg = aggregate_curtain(curtain, x_range, width, height, alt_range_km, parts)
        values = depolarization_ratio(agg).to_numpy()
    else:
        if variable not in curtain:
            raise ValueError(f"the curtain has no variable {variable!r}; it holds {', '.join(curtain.data_vars)}")
        agg = aggregate_curtain(curtain, x_range, width, height, alt_range_km, [variable])
        values = agg[variable].to_numpy()
    z = np.asarray(values, dtype=np.float32).T  # (altitude rows going up, columns)
    x = agg["profile"].to_numpy()
    y = agg["altitude"].to_numpy().astype(np.float64)
    dx = x[1] - x[0] if x.size > 1 else 1.0
    bounds = (x[0] - dx / 2, float(alt_range_km[0]), x[-1] + dx / 2, float(alt_range_km[1]))
    kdims = [hv.Dimension("profile", label="Profile"), hv.Dimension("altitude", label="Altitude", unit="km")]
    value_dim = hv.Dimension("value", label=_LABELS.get(variable, variable), unit=scale.units)
    tooltips = [("profile", "$x{0}"), ("altitude", "$y{0.00} km"), ("value", "@{value}{%.3e}")]
    style = dict(
        colorbar=True,
        clabel=scale.label,
        clipping_colors={"NaN": scale.bad},
        xticks=_xticks(agg, n_ticks),
        ylabel="Altitude (km)",
        xlabel="",
        ylim=(float(alt_range_km[0]), float(alt_range_km[1])),
    )
    if isinstance(scale, SteppedScale):
        ticks, labels = colorbar_ticks(scale)
        image = hv.Image(
            (x, y, bin_index(z, scale), z),
            kdims=kdims,
            vdims=[hv.Dimension("colour_bin", label="colour bin"), value_dim],
            bounds=bounds,
        )
        return image.opts(
            cmap=scale.palette,
            clim=(0, scale.n_colours),
            # every labelled bound is shown (Bokeh's default policy drops labels it thinks overlap)
            colorbar_opts={"ticker": FixedTicker(ticks=ticks), "major_label_overrides": labels,
                           "major_label_policy": AllLabels(), "major_label_text_font_size": "8pt"},
            tools=[HoverTool(tooltips=tooltips, formatters={"@{value}": "printf"})],
            **style,
        )
    image = hv.Image((x, y, z), kdims=kdims, vdims=[value_dim], bounds=bounds)
    tooltips[-1] = ("value", "@image{0.000}")
    return image.opts(
        cmap=list(scale.palette), clim=(scale.low, scale.high), tools=[HoverTool(tooltips=tooltips)], **style
    )


def profile_at(curtain: xr.Dataset, x) -> dict | None:
    """The profile under the cursor: ``{"profile", "latitude", "longitude", "time"}`` or None for an empty curtain.

    ``x`` is the image's x coordinate (a profile index, float; rounded and clipped to the curtain) or a time
    (``datetime64``-like: the nearest profile in time). Links the curtain to the map.
    """
    n = curtain.sizes.get("profile", 0)
    if n == 0 or x is None:
        return None
    if isinstance(x, numbers.Real):
        if not np.isfinite(float(x)):
            return None
        k = int(np.clip(round(float(x)), 0, n - 1))
    else:  # a time: datetime64, pandas Timestamp, datetime or ISO string
        t = np.asarray(curtain["time"].to_numpy(), dtype="datetime64[ns]")
        target = np.datetime64(pd.Timestamp(x).to_datetime64(), "ns")
        k = int(np.argmin(np.abs((t - target).astype(np.int64))))
    return {
        "profile": k,
        "latitude": float(curtain["latitude"].values[k]),
        "longitude": float(curtain["longitude"].values[k]),
        "time": np.datetime64(curtain["time"].values[k], "ns"),
    }


_DEPOL_PARTS = ["total_attenuated_backscatter_532", "perpendicular_attenuated_backscatter_532"]


def scale_rgba(values: np.ndarray, variable: str) -> np.ndarray:
    """Curtain values coloured in the variable's scale (:func:`app.render.colormaps.scale_for`) as RGBA ``uint8``.

    A stepped scale colours by its bins, a continuous one by its palette; no data takes the scale's ``bad`` colour.
    """
    from app.render.geo import colorize

    scale = scale_for(variable)
    bad = np.array([round(255 * c) for c in hex_to_rgb(scale.bad)] + [255], dtype=np.uint8)
    if isinstance(scale, ContinuousScale):
        rgba = colorize(values, list(scale.palette), (scale.low, scale.high))
    else:
        lut = np.array([[round(255 * c) for c in hex_to_rgb(col)] for col in scale.palette], dtype=np.uint8)
        idx = bin_index(values, scale)
        ok = np.isfinite(idx)
        rgba = np.zeros((*values.shape, 4), dtype=np.uint8)
        rgba[..., :3] = lut[np.where(ok, idx, 0).astype(np.intp)]
        rgba[..., 3] = np.where(ok, 255, 0)
    rgba[rgba[..., 3] == 0] = bad
    return rgba


def curtain_rgba(curtain: xr.Dataset, variable: str, alt_range_km: tuple[float, float], width: int,
                 height: int) -> np.ndarray:
    """A curtain as RGBA ``uint8``: ``width`` columns of profiles × ``height`` rows of altitude, the top row first.

    Averaged onto the picture's columns and rows (:func:`aggregate_curtain`; the depolarisation ratio from its two
    backscatters), each profile widened to whole columns when there are fewer profiles than columns, and coloured
    with the dashboard's scale (:func:`scale_rgba`). The PNG of ``/api/v1/caliop/curtain.png`` is these pixels.
    """
    depol = variable == "depolarization_ratio_532"
    wanted = _DEPOL_PARTS if depol else [variable]
    agg = aggregate_curtain(curtain, None, width, height, alt_range_km, wanted)
    values = depolarization_ratio(agg).to_numpy() if depol else agg[variable].to_numpy()
    picture = np.asarray(values, dtype=np.float32).T[::-1]  # rows: altitude, top first
    if picture.shape[1] != width:
        picture = picture[:, (np.arange(width) * picture.shape[1]) // width]
    return scale_rgba(picture, variable)
