"""Map overlays as HoloViews elements, in plain lon/lat degrees (equirectangular, no cartopy projection).

Every builder takes the map frame's ``central_longitude``: 0 for longitudes in [-180, 180), 180 for a
Pacific-centred map with longitudes in [0, 360). Lines that cross the frame's edge are cut there (or, for the
circles around a volcano, drawn again on the other side), so nothing smears across the map.

The geometry lives in small numpy functions (`circle_lines`, `time_label_positions`, `track_lines`) shared with
the matplotlib export (`app.render.export`); the element builders only wrap them and style the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import holoviews as hv
import numpy as np
import pandas as pd

from app.core.lonlat import lon_difference
from app.data.basemap import border_paths, coastline_paths, split_at_antimeridian, wrap_longitude
from app.science.geodesy import destination

__all__ = [
    "CREDITS",
    "auto_scale",
    "coastlines",
    "borders",
    "volcano_points",
    "recent_volcanoes",
    "selected_volcano",
    "circle_lines",
    "volcano_circles",
    "time_label_positions",
    "orbit_time_labels",
    "empty_time_labels",
    "track_lines",
    "track_path",
    "track_paths",
    "credits_text",
]

#: Width of the view (degrees of longitude) above which the 1:110m coastlines are used instead of 1:50m.
COARSE_SCALE_ABOVE_DEG = 60.0

#: Vertices per geodesic circle.
CIRCLE_VERTICES = 181

#: Credit of each data source, in the order they are written.
CREDITS = {
    "tropomi": "ESA–Copernicus (TROPOMI)",
    "caliop": "NASA/CNES (CALIOP)",
    "volcanoes": "GVP (volcanoes)",
    "basemap": "Natural Earth",
}

_HOVER_VOLCANO = [
    ("Volcano", "@name"),
    ("Country", "@country"),
    ("Elevation", "@elevation_m{0,0} m"),
    ("Last eruption", "@last_eruption"),
]


def _frame(central_longitude: float) -> tuple[float, float]:
    west = float(central_longitude) - 180.0
    return west, west + 360.0


def auto_scale(x_range: Sequence[float] | None) -> str:
    """Natural Earth scale for a view: ``"110m"`` when wider than 60° of longitude (or unknown), else ``"50m"``."""
    if x_range is None:
        return "110m"
    return "110m" if abs(float(x_range[1]) - float(x_range[0])) > COARSE_SCALE_ABOVE_DEG else "50m"


def _path(data: list[np.ndarray], **style) -> hv.Path:
    path = hv.Path(data if data else [], kdims=["longitude", "latitude"])
    return path.opts(**style)


def coastlines(
    scale: str | None = None,
    x_range: Sequence[float] | None = None,
    y_range: Sequence[float] | None = None,
    central_longitude: float = 0.0,
) -> hv.Path:
    """Coastlines cropped to the view as one merged ``hv.Path`` (one Bokeh glyph); scale by `auto_scale` if None."""
    scale = scale or auto_scale(x_range)
    data = coastline_paths(scale, x_range, y_range, central_longitude)
    return _path(data, color="black", line_width=0.8)


def borders(
    scale: str | None = None,
    x_range: Sequence[float] | None = None,
    y_range: Sequence[float] | None = None,
    central_longitude: float = 0.0,
) -> hv.Path:
    """Land borders between countries, cropped to the view, as one merged ``hv.Path``, dotted grey."""
    scale = scale or auto_scale(x_range)
    data = border_paths(scale, x_range, y_range, central_longitude)
    return _path(data, color="#555555", line_width=0.7, line_dash="dotted")


def volcano_points(table: pd.DataFrame, central_longitude: float = 0.0, size: int = 9) -> hv.Points:
    """GVP volcanoes (canonical table of `app.data.volcanoes`) as red triangles with a hover listing them.

    Vdims ``name, country, elevation_m, last_eruption, number``; longitudes wrapped into the frame.
    """
    from bokeh.models import HoverTool

    df = pd.DataFrame(
        {
            "longitude": wrap_longitude(table["longitude"].to_numpy(dtype=float), central_longitude),
            "latitude": table["latitude"].to_numpy(dtype=float),
            "name": table["name"].astype(str).to_numpy(),
            "country": table["country"].astype(str).to_numpy(),
            "elevation_m": table["elevation_m"].to_numpy(dtype=float),
            "last_eruption": table["last_eruption"].astype(str).to_numpy(),
            "number": table["number"].to_numpy(),
        }
    )
    points = hv.Points(
        df,
        kdims=["longitude", "latitude"],
        vdims=[
            hv.Dimension("name", label="Volcano"),
            hv.Dimension("country", label="Country"),
            hv.Dimension("elevation_m", label="Elevation", unit="m"),
            hv.Dimension("last_eruption", label="Last eruption"),
            hv.Dimension("number", label="GVP number"),
        ],
        label="Volcano",
    )
    return points.opts(
        marker="triangle",
        size=size,
        color="#d7301f",
        line_color="black",
        line_width=0.6,
        tools=[HoverTool(tooltips=_HOVER_VOLCANO)],
    )


def recent_volcanoes(table: pd.DataFrame, since_year: int = 1900) -> pd.DataFrame:
    """The volcanoes whose last eruption (GVP "2021 CE", "50 BCE", "Unknown") is in or after ``since_year`` CE."""
    text = table["last_eruption"].astype(str)
    year = pd.to_numeric(text.str.extract(r"^(\d+)\s*CE$")[0], errors="coerce")
    return table[year.to_numpy() >= since_year]


def selected_volcano(lat: float | None, lon: float | None, central_longitude: float = 0.0) -> hv.Points:
    """The selected volcano as a large yellow triangle outlined in black (empty Points when there is none)."""
    data = [] if lat is None or lon is None else [
        (float(wrap_longitude(np.array([lon]), central_longitude)[0]), float(lat))]
    points = hv.Points(data, kdims=["longitude", "latitude"], label="Selected volcano")
    return points.opts(marker="triangle", size=16, color="#ffd700", line_color="black", line_width=1.5)


def circle_lines(
    lat: float, lon: float, radii_km: Iterable[float], central_longitude: float = 0.0, n: int = CIRCLE_VERTICES
) -> np.ndarray:
    """Geodesic circles around a point, as one NaN-separated ``(N, 2)`` array of (lon, lat) in the frame.

    Each circle's longitudes are continuous (no jump between vertices) and placed around the centre's position
    in the frame; a circle reaching past the frame's edge is drawn a second time shifted by 360° so that it
    enters on the other side. A circle that encloses a pole runs once around in longitude.
    """
    west, east = _frame(central_longitude)
    centre = float(wrap_longitude(np.array([lon]), central_longitude)[0])
    bearings = np.linspace(0.0, 360.0, n)
    pieces = []
    for radius in radii_km:
        clat, clon = destination(lat, lon, bearings, float(radius))
        # continuous around the centre: each vertex's offset from the centre taken the short way
        offset = np.rad2deg(np.unwrap(np.deg2rad(lon_difference(clon, lon))))
        x = centre + offset
        for shift in (0.0, -360.0, 360.0):
            xs = x + shift
            if shift == 0.0 or (xs.max() > west and xs.min() < east):
                pieces.append(np.column_stack([xs, clat]))
                pieces.append(np.full((1, 2), np.nan))
    if not pieces:
        return np.empty((0, 2))
    return np.concatenate(pieces[:-1])


def volcano_circles(lat: float, lon: float, radii_km: Iterable[float], central_longitude: float = 0.0) -> hv.Path:
    """Dashed black geodesic circles of the given radii (km) around a volcano, as one ``hv.Path``."""
    xy = circle_lines(lat, lon, radii_km, central_longitude)
    return _path([xy] if len(xy) else [], color="black", line_width=1.5, line_dash="dashed")


# ------------------------------------------------------------------------------------------ orbit time labels

_NICE_MINUTES = (1, 2, 5, 10, 15, 20, 30, 60)


def _nadir(item) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nadir (lon, lat, time) of a SwathLayer-like object or a ``(lon, lat, time)`` tuple."""
    if hasattr(item, "lon") and hasattr(item, "time"):
        lon, lat, time = np.asarray(item.lon, float), np.asarray(item.lat, float), np.asarray(item.time)
    else:
        lon, lat, time = (np.asarray(a) for a in item)
        lon, lat = lon.astype(float), lat.astype(float)
    if lon.ndim == 2:  # a swath: the middle ground pixel is the sub-satellite track
        mid = lon.shape[1] // 2
        lon, lat = lon[:, mid], lat[:, mid]
    time = np.asarray(time, dtype="datetime64[ns]")
    if time.shape != lat.shape:
        raise ValueError(f"an orbit's times {time.shape} do not match its track {lat.shape}")
    return lon, lat, time


def _inside_segments(x, y, x_range, y_range) -> np.ndarray:
    return (x >= x_range[0]) & (x <= x_range[1]) & (y >= y_range[0]) & (y <= y_range[1])


def time_label_positions(
    orbits: Iterable,
    x_range: Sequence[float],
    y_range: Sequence[float],
    every_minutes: float | None = None,
    per_orbit: int = 3,
    central_longitude: float | None = None,
) -> pd.DataFrame:
    """Where to write "HH:MM" along each orbit's ground track inside the view.

    ``orbits`` holds `app.render.swath.SwathLayer` objects or ``(lon, lat, time)`` tuples (1-D tracks, or 2-D
    swaths whose middle ground pixel is taken). Labels go at whole multiples of ``every_minutes`` (UTC) where the
    track is inside the view; by default the step is chosen per orbit among 1, 2, 5, 10, 15, 20, 30, 60 min so
    that about ``per_orbit`` labels show. An orbit that crosses the view in less than one step gets one label at
    the middle of its crossing. Longitudes are made continuous and tried at 0 and ±360° against ``x_range``.

    Returns a DataFrame with columns ``x, y, text, orbit`` (orbit = position in ``orbits``).
    """
    rows = []
    for k, item in enumerate(orbits):
        lon, lat, time = _nadir(item)
        ok = np.isfinite(lon) & np.isfinite(lat) & ~np.isnat(time)
        lon, lat, time = lon[ok], lat[ok], time[ok]
        if lon.size < 2:
            continue
        lon = np.rad2deg(np.unwrap(np.deg2rad(lon)))
        if central_longitude is not None:
            lon = lon - np.round((np.median(lon) - central_longitude) / 360.0) * 360.0
        t_s = (time - time[0]).astype("timedelta64[ns]").astype(np.int64) / 1e9
        for shift in (0.0, -360.0, 360.0, -720.0, 720.0):
            x = lon + shift
            inside = _inside_segments(x, lat, x_range, y_range)
            if not inside.any():
                continue
            rows.extend(_labels_for_segment(x, lat, time, t_s, inside, every_minutes, per_orbit, k))
    return pd.DataFrame(rows, columns=["x", "y", "text", "orbit"])


def _labels_for_segment(x, lat, time, t_s, inside, every_minutes, per_orbit, k) -> list[tuple]:
    t_in = t_s[inside]
    span_min = (t_in.max() - t_in.min()) / 60.0
    step = every_minutes
    if step is None:
        wanted = span_min / max(per_orbit, 1)
        step = next((m for m in _NICE_MINUTES if m >= wanted), _NICE_MINUTES[-1])
    step_s = float(step) * 60.0
    epoch_s = (time[0] - time[0].astype("datetime64[D]")).astype("timedelta64[ns]").astype(np.int64) / 1e9
    abs_in = t_in + epoch_s  # seconds since midnight of the first time, inside the view
    first = np.ceil(abs_in.min() / step_s) * step_s
    marks = np.arange(first, abs_in.max() + 1e-6, step_s) - epoch_s
    if marks.size == 0:
        marks = np.array([0.5 * (t_in.min() + t_in.max())])
    out = []
    for m in marks:
        i = int(np.clip(np.searchsorted(t_s, m), 1, t_s.size - 1))
        frac = (m - t_s[i - 1]) / max(t_s[i] - t_s[i - 1], 1e-9)
        xm = x[i - 1] + frac * (x[i] - x[i - 1])
        ym = lat[i - 1] + frac * (lat[i] - lat[i - 1])
        j = i - 1 if frac < 0.5 else i
        if not inside[j]:
            continue
        when = time[0] + np.timedelta64(int(round(m * 1e9)), "ns")
        out.append((float(xm), float(ym), str(when)[11:16], k))
    return out


def orbit_time_labels(
    orbits: Iterable,
    x_range: Sequence[float],
    y_range: Sequence[float],
    every_minutes: float | None = None,
    per_orbit: int = 3,
    central_longitude: float | None = None,
) -> hv.Labels:
    """``hv.Labels`` with "HH:MM" (UTC) along each orbit's ground track inside the view (see `time_label_positions`).

    A label starts at its point, except in the right-hand part of the view (the last :data:`RIGHT_ALIGN_SHARE` of
    its width), where it ends at its point: a label there would otherwise run past the map's edge and be cut.
    """
    df = time_label_positions(orbits, x_range, y_range, every_minutes, per_orbit, central_longitude)
    x0, x1 = (float(v) for v in x_range)
    right = df["x"] > x0 + (1.0 - RIGHT_ALIGN_SHARE) * (x1 - x0)
    df = df.assign(align=np.where(right, "right", "left"))
    return _styled_time_labels(hv.Labels(df, kdims=["x", "y"], vdims=["text", "align"]))


#: The share of the view's width, at its right, where orbit time labels end at their point instead of starting there.
RIGHT_ALIGN_SHARE = 0.12


def empty_time_labels() -> hv.Labels:
    """No orbit time labels, as the same element type and columns as :func:`orbit_time_labels`."""
    return _styled_time_labels(hv.Labels([], kdims=["x", "y"], vdims=["text", "align"]))


def _styled_time_labels(labels: hv.Labels) -> hv.Labels:
    return labels.opts(text_font_size="9pt", text_color="black", text_font_style="bold",
                       text_align=hv.dim("align"), text_baseline="middle")


# ------------------------------------------------------------------------------------------ CALIOP ground track


def track_lines(lon: np.ndarray, lat: np.ndarray, central_longitude: float = 0.0, max_points: int = 4000) -> np.ndarray:
    """A ground track as an ``(N, 2)`` array of (lon, lat) in the frame, cut (NaN row) where it crosses the edge.

    Long tracks (a CALIOP granule has ~56,000 profiles) are thinned to about ``max_points`` vertices, the
    first and last kept.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if lon.size > max_points:
        keep = np.unique(np.r_[np.arange(0, lon.size, int(np.ceil(lon.size / max_points))), lon.size - 1])
        lon, lat = lon[keep], lat[keep]
    x, y = split_at_antimeridian(wrap_longitude(lon, central_longitude), lat, central_longitude)
    return np.column_stack([x, y])


def track_path(lon: np.ndarray, lat: np.ndarray, central_longitude: float = 0.0, color: str = "#1f4e9c") -> hv.Path:
    """A CALIOP ground track as an ``hv.Path``, split where it crosses the frame's edge."""
    xy = track_lines(lon, lat, central_longitude)
    return _path([xy] if len(xy) else [], color=color, line_width=2.0)


def track_paths(tracks: Iterable[tuple[np.ndarray, np.ndarray]], central_longitude: float = 0.0,
                color: str = "#1f4e9c") -> hv.Path:
    """CALIOP ground tracks ``(lon, lat)`` as one ``hv.Path`` (empty when there is none), each split at the edge.

    Always one element type, so a DynamicMap that draws the tracks of a day without any stays valid.
    """
    data = [xy for xy in (track_lines(lon, lat, central_longitude) for lon, lat in tracks) if len(xy)]
    return _path(data, color=color, line_width=2.0)


def credits_text(tropomi: bool = True, caliop: bool = True, volcanoes: bool = True, basemap: bool = True) -> str:
    """The credits line for the sources shown, e.g. "ESA–Copernicus (TROPOMI), …, Natural Earth"."""
    shown = {"tropomi": tropomi, "caliop": caliop, "volcanoes": volcanoes, "basemap": basemap}
    return ", ".join(text for key, text in CREDITS.items() if shown[key])
