"""Aggregate satellite swaths onto the screen's grid: work in proportion to the screen, not the archive.

Two ways, chosen by zoom:

- **points** — each valid pixel's centre is binned into the screen grid (mean of the pixels in each screen cell).
  Right when swath pixels are smaller than screen pixels (the World view): fast, no gaps.
- **quadmesh** — each pixel is drawn as its real quadrilateral (datashader's curvilinear quadmesh), so zoomed in
  there are no blocky artefacts or gaps. Only the scanlines inside the view are passed.

Longitudes are made continuous along each orbit (no cell spans ±180°), and shifted into the view's longitude
frame, e.g. [-180, 180) for the World view or [0, 360) for the Pacific-centred one; a swath that runs off one
side of the frame is drawn again shifted by 360° so it enters on the other side. Nothing smears across the map.

The result is an ``xarray.DataArray`` of values (DU) on the screen grid; colouring is left to the plot (Bokeh's
colour mapper), so changing the colour range or map never re-aggregates.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import datashader as ds
import numpy as np
import pandas as pd
import xarray as xr

from app.core.cache import bounded_cache


@dataclass
class SwathLayer:
    """One granule's pixels ready to aggregate: continuous longitudes, filtered values (NaN = not shown)."""

    orbit: int
    lon: np.ndarray  # (scanline, ground_pixel), continuous along the swath, in the frame's range on average
    lat: np.ndarray
    values: np.ndarray  # float32, NaN where filtered out
    time: np.ndarray  # datetime64 per scanline
    pixel_deg: float  # typical pixel size (degrees of latitude), for choosing points vs quadmesh
    row_lat_min: np.ndarray = field(repr=False, default=None)
    row_lat_max: np.ndarray = field(repr=False, default=None)
    row_lon_min: np.ndarray = field(repr=False, default=None)
    row_lon_max: np.ndarray = field(repr=False, default=None)

    _coarse: dict = field(repr=False, default_factory=dict)

    def __post_init__(self):
        if self.row_lat_min is None:
            with warnings.catch_warnings():  # a scanline without geolocation (fill) has NaN bounds: never in view
                warnings.simplefilter("ignore", RuntimeWarning)
                self.row_lat_min = np.nanmin(self.lat, axis=1)
                self.row_lat_max = np.nanmax(self.lat, axis=1)
                self.row_lon_min = np.nanmin(self.lon, axis=1)
                self.row_lon_max = np.nanmax(self.lon, axis=1)

    def coarse(self, factor: int) -> SwathLayer:
        """The layer averaged over blocks of ``factor`` × ``factor`` pixels (cached).

        Values are the mean of the valid pixels of each block (NaN where none), positions the block's mean: for
        views whose screen pixels hold many swath pixels, this gives the same picture from ``factor²`` fewer points.
        """
        if factor <= 1:
            return self
        if factor not in self._coarse:
            n, m = (self.values.shape[0] // factor) * factor, (self.values.shape[1] // factor) * factor
            if n == 0 or m == 0:
                return self

            def blocks(a):
                return a[:n, :m].reshape(n // factor, factor, m // factor, factor)

            v = blocks(self.values)
            ok = np.isfinite(v)
            count = ok.sum(axis=(1, 3))
            total = np.where(ok, v, 0.0).sum(axis=(1, 3), dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(count > 0, total / count, np.nan).astype(np.float32)
            self._coarse[factor] = SwathLayer(
                orbit=self.orbit,
                lon=blocks(self.lon).mean(axis=(1, 3), dtype=np.float64).astype(np.float32),
                lat=blocks(self.lat).mean(axis=(1, 3), dtype=np.float64).astype(np.float32),
                values=mean,
                time=self.time[:n:factor],
                pixel_deg=self.pixel_deg * factor,
            )
        return self._coarse[factor]


def _filled(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """``a`` with each NaN replaced by the nearest earlier finite value along ``axis`` (else the nearest later one).

    Lets :func:`np.unwrap` step over fill values (real granules may hold scanlines without geolocation); a line
    with no finite value stays NaN.
    """
    a = np.moveaxis(np.asarray(a, dtype=np.float64), axis, -1)
    n = a.shape[-1]
    for flip in (False, True):
        b = a[..., ::-1] if flip else a
        idx = np.where(np.isfinite(b), np.arange(n), 0)
        np.maximum.accumulate(idx, axis=-1, out=idx)
        b = np.where(np.isfinite(b), b, np.take_along_axis(b, idx, axis=-1))
        a = b[..., ::-1] if flip else b
    return np.moveaxis(a, -1, axis)


def _unwrap_deg(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """Degrees unwrapped along ``axis`` over the finite values (NaN stays NaN)."""
    a = np.asarray(a, dtype=np.float64)
    finite = np.isfinite(a)
    if finite.all():
        return np.rad2deg(np.unwrap(np.deg2rad(a), axis=axis))
    out = np.rad2deg(np.unwrap(np.deg2rad(_filled(a, axis)), axis=axis))
    return np.where(finite, out, np.nan)


def _turns(delta: np.ndarray) -> np.ndarray:
    """``delta`` (degrees) rounded to whole turns of 360°."""
    return np.round(np.asarray(delta) / 360.0) * 360.0


def continuous_longitude(lon: np.ndarray, central_longitude: float = 0.0) -> np.ndarray:
    """Longitudes of a swath made continuous (no jump of more than 180° between neighbours).

    Unwrapped along the ground pixels of the middle scanline, then along the scanlines from there, and the whole
    swath shifted by a multiple of 360° so that its median lies in [central - 180, central + 180). Fill values
    (NaN) are stepped over and stay NaN.
    """
    lon = np.asarray(lon, dtype=np.float64)
    if not np.isfinite(lon).any():
        return lon.copy()
    if lon.ndim == 1:
        out = _unwrap_deg(lon)
    else:
        mid = lon.shape[1] // 2
        # first along-track at the middle ground pixel, then across-track from that column
        centre = _filled(lon[:, mid], axis=0)  # a row whose middle pixel is fill takes a neighbour's
        col = np.rad2deg(np.unwrap(np.deg2rad(centre)))
        out = lon + _turns(col - centre)[:, None]
        out = _unwrap_deg(out, axis=1)
        # keep the middle column as unwrapped along-track (whole turns only: a filled middle is a neighbour's)
        out += _turns(col - _filled(out, axis=1)[:, mid])[:, None]
    med = np.nanmedian(out)
    shift = np.round((med - central_longitude) / 360.0) * 360.0
    return out - shift


def make_layer(lat, lon, values, time, orbit: int, central_longitude: float = 0.0) -> SwathLayer:
    """A :class:`SwathLayer` from a swath's centre coordinates and (already filtered) values."""
    clon = continuous_longitude(lon, central_longitude)
    lat = np.asarray(lat)
    pixel_deg = 0.05
    rows = np.flatnonzero(np.isfinite(lat).any(axis=1)) if lat.ndim == 2 else np.array([], int)
    if rows.size > 1:  # measured on the scanlines with geolocation (real granules may hold fill ones)
        mid_row, mid_pix = rows[rows.size // 2], lat.shape[1] // 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            along = float(np.nanmedian(np.abs(np.diff(lat[rows, mid_pix]))))
            across = float(np.nanmedian(np.abs(np.diff(clon[mid_row])) * np.cos(np.deg2rad(lat[mid_row, 1:]))))
        finite = [v for v in (along, across) if np.isfinite(v)]
        pixel_deg = max(finite) if finite else pixel_deg
    values = np.asarray(values, dtype=np.float32)
    nowhere = ~(np.isfinite(lat) & np.isfinite(clon))
    if nowhere.any():  # a value without a place (fill geolocation) cannot be drawn
        values = np.where(nowhere, np.float32(np.nan), values)
    return SwathLayer(
        orbit=int(orbit),
        lon=clon.astype(np.float32),
        lat=np.asarray(lat, dtype=np.float32),  # no copy when the reader gave float32
        values=values,
        time=np.asarray(time),
        pixel_deg=pixel_deg,
    )


def _copies(layer_lon_min: float, layer_lon_max: float, x_range) -> list[float]:
    """The 360° shifts under which a layer's longitude span meets the view's."""
    return [s for s in (-360.0, 0.0, 360.0) if layer_lon_max + s >= x_range[0] and layer_lon_min + s <= x_range[1]]


def choose_method(layers: Sequence[SwathLayer], x_range, width: int) -> str:
    """'points' when swath pixels are smaller than screen pixels (no gaps), else 'quadmesh' (real footprints)."""
    if not layers:
        return "points"
    screen_deg = (x_range[1] - x_range[0]) / max(width, 1)
    pixel_deg = float(np.median([lay.pixel_deg for lay in layers]))
    return "points" if pixel_deg < 0.8 * screen_deg else "quadmesh"


def coarsening_factor(layers: Sequence[SwathLayer], x_range, width: int) -> int:
    """The largest power of two whose blocks of swath pixels still fit in half a screen pixel (1 if none)."""
    if not layers:
        return 1
    screen_deg = (x_range[1] - x_range[0]) / max(width, 1)
    pixel_deg = float(np.median([lay.pixel_deg for lay in layers]))
    factor = 1
    while pixel_deg * factor * 2 <= 0.5 * screen_deg and factor < 16:
        factor *= 2
    return factor


#: Points tables of the World views, in the byte-bounded cache "misc" (app.core.cache: 5 % of the memory budget,
#: shared with other small derived tables; keys here start with "swath points").
_POINTS_CACHE = bounded_cache("misc", 0.05)


def _layer_bytes(layer: SwathLayer) -> int:
    return sum(int(getattr(a, "nbytes", 0)) for a in (layer.lon, layer.lat, layer.values, layer.time))


def _frame_points(layers: Sequence[SwathLayer], frame: tuple[float, float]) -> pd.DataFrame:
    """Every valid pixel of the layers, with the 360° copies the frame needs; cached per set of layers.

    The World view aggregates all pixels of the day on every pan: building this table once per set of layers
    (a change of filters or orbits makes a new set) keeps a pan to one datashader pass. The entry holds the layers
    (so their ids are not reused while it lives) and counts their bytes with the table's.
    """
    key = ("swath points", tuple(id(lay) for lay in layers), frame)
    hit = _POINTS_CACHE.get(key)
    if hit is not None:
        return hit[1]
    df = _points_frame(layers, frame, (-90.0, 90.0))
    nbytes = int(df.memory_usage(deep=False).sum()) + sum(_layer_bytes(lay) for lay in layers)
    _POINTS_CACHE.put(key, (tuple(layers), df), nbytes=nbytes)
    return df


def _points_frame(layers: Sequence[SwathLayer], x_range, y_range) -> pd.DataFrame:
    frames = []
    for lay in layers:
        rows = (lay.row_lat_max >= y_range[0]) & (lay.row_lat_min <= y_range[1])
        if not rows.any():
            continue
        v = lay.values[rows]
        ok = np.isfinite(v)
        if not ok.any():
            continue
        lon = lay.lon[rows][ok]
        lat = lay.lat[rows][ok]
        val = v[ok]
        for s in _copies(float(lon.min()), float(lon.max()), x_range):
            frames.append(pd.DataFrame({"x": lon + s, "y": lat, "v": val}))
    if not frames:
        return pd.DataFrame({"x": np.zeros(0), "y": np.zeros(0), "v": np.zeros(0, np.float32)})
    return pd.concat(frames, ignore_index=True)


def _quadmesh_aggs(cvs: ds.Canvas, layers: Sequence[SwathLayer], x_range, y_range) -> list[xr.DataArray]:
    aggs = []
    for lay in layers:
        rows = np.flatnonzero((lay.row_lat_max >= y_range[0]) & (lay.row_lat_min <= y_range[1]))
        if rows.size == 0:
            continue
        r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, lay.lat.shape[0])
        lon, lat, v = lay.lon[r0:r1], lay.lat[r0:r1], lay.values[r0:r1]
        if lon.shape[0] < 2 or not np.isfinite(v).any():
            continue
        for s in _copies(float(np.nanmin(lon)), float(np.nanmax(lon)), x_range):
            da = xr.DataArray(
                v,
                dims=("scanline", "ground_pixel"),
                coords={"x": (("scanline", "ground_pixel"), lon + s), "y": (("scanline", "ground_pixel"), lat)},
                name="v",
            )
            aggs.append(cvs.quadmesh(da, x="x", y="y", agg=ds.mean("v")))
    return aggs


def aggregate(
    layers: Sequence[SwathLayer],
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    width: int = 800,
    height: int = 500,
    method: str = "auto",
) -> xr.DataArray:
    """Mean value of the shown pixels on a ``width`` × ``height`` grid over the ranges (NaN where none).

    Where orbits overlap (high latitudes), the cell shows the mean of the orbits that cover it.
    """
    width, height = max(int(width), 2), max(int(height), 2)
    cvs = ds.Canvas(plot_width=width, plot_height=height, x_range=tuple(x_range), y_range=tuple(y_range))
    if method == "auto":
        method = choose_method(layers, x_range, width)
    if method == "points":
        # screen pixels much larger than swath pixels: bin block means instead of every pixel
        factor = coarsening_factor(layers, x_range, width)
        layers = [lay.coarse(factor) for lay in layers]
        if x_range[1] - x_range[0] > 90.0:  # wide views: all pixels, cached
            c = 0.0 if x_range[0] < 0 else 180.0
            df = _frame_points(layers, (c - 180.0, c + 180.0))
        else:
            df = _points_frame(layers, x_range, y_range)
        agg = cvs.points(df, "x", "y", agg=ds.mean("v"))
    elif method == "quadmesh":
        aggs = _quadmesh_aggs(cvs, layers, x_range, y_range)
        if not aggs:
            agg = cvs.points(_points_frame([], x_range, y_range), "x", "y", agg=ds.mean("v"))
        elif len(aggs) == 1:
            agg = aggs[0]
        else:
            stack = np.stack([a.values for a in aggs])
            count = np.isfinite(stack).sum(axis=0)
            total = np.nansum(stack, axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(count > 0, total / count, np.nan)
            agg = aggs[0].copy(data=mean.astype(np.float32))
    else:
        raise ValueError(f"unknown aggregation method {method!r}; use 'auto', 'points' or 'quadmesh'")
    agg = agg.astype(np.float32).rename({agg.dims[1]: "x", agg.dims[0]: "y"})
    agg.attrs["method"] = method
    return agg
