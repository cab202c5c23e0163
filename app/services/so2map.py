"""The TROPOMI SO2 map of a day or a time range as a PNG, and the SO2 values under a point, from the archive.

The data path is the VolcPlume view's own (:mod:`app.views.volcplume`, which this module does not import): the
granules of the period that touch the zone (:meth:`Archive.granules`, the index's footprints), read with the
catalogue's reader through the per-process swath cache (:meth:`Archive.read_many`, a damaged granule skipped and
named), filtered with :func:`app.science.filters.valid_mask`, laid out with :func:`app.render.swath.make_layer`,
aggregated with :func:`~app.render.swath.aggregate` (the grid kept for the next colour range) and drawn with
:func:`app.render.export.map_png` (title, colour bar with units, orbits, credits). A time range keeps only the
scanlines observed in it.

:func:`plan` lists the granules a request would read (for the API's work budget and its ETag) without opening any.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from app.core.cache import bounded_cache
from app.core.lonlat import wrap_lon
from app.core.zones import ZONES, Zone
from app.data.archive import TROPOMI, Archive, read_swath_cached
from app.data.errors import UserInputError
from app.render import overlays
from app.render.colormaps import LAYER_HEIGHT, LAYER_HEIGHT_RANGE_KM, SO2
from app.render.export import map_png
from app.render.swath import aggregate, make_layer
from app.science.filters import DEFAULT_FILTERS, Filters, valid_mask

__all__ = ["Zone", "ZONES", "LEVELS", "LEVEL_LABELS", "QUANTITIES", "DEFAULT_CLIM", "So2Request", "Plan", "plan",
           "so2_layers", "map_picture", "so2_values", "orbits"]


#: Box level -> canonical column (as the VolcPlume view's ``LEVELS``).
LEVELS = {"PBL": "so2_pbl", "1km": "so2_1km", "3km": "so2_3km", "7km": "so2_7km", "15km": "so2_15km"}
LEVEL_LABELS = {"PBL": "PBL", "1km": "1 km", "3km": "3 km", "7km": "7 km", "15km": "15 km"}
QUANTITIES = ("column", "layer_height")
#: The colour range by quantity when none is asked for (the view's defaults).
DEFAULT_CLIM = {"column": (0.2, 20.0), "layer_height": LAYER_HEIGHT_RANGE_KM}
_LAYER_HEIGHT_FIELDS = ("so2_layer_height", "qa_value_layer_height", "solar_zenith_angle")
#: The screen grids of recent requests, by everything but the colour range and the picture's own size (a new colour
#: range only re-colours, as on the dashboard); in the process's "misc" share (app.core.cache).
_AGGREGATES = bounded_cache("misc", 0.05)


@dataclass(frozen=True)
class So2Request:
    """What an SO2 map (or values) request asks for, checked by the caller."""

    t0: pd.Timestamp
    t1: pd.Timestamp
    zone: Zone
    level: str = "7km"
    quantity: str = "column"
    filters: Filters = DEFAULT_FILTERS
    clim: tuple[float, float] | None = None
    width: int = 1200

    @property
    def variable(self) -> str:
        """The canonical variable shown."""
        return "so2_layer_height" if self.quantity == "layer_height" else LEVELS[self.level]

    @property
    def field(self) -> str:
        """The optional field's key in ``Archive.unavailable_fields`` (``"7km"``, ``"layer_height"``)."""
        return "layer_height" if self.quantity == "layer_height" else self.level

    def label(self) -> str:
        """"SO2 7 km" or "SO2 layer height"."""
        return "SO2 layer height" if self.quantity == "layer_height" else f"SO2 {LEVEL_LABELS[self.level]}"

    def period_label(self) -> str:
        """"2021-04-12", or "2021-04-10 … 2021-04-12", or the times of a range that is not whole days."""
        last = self.t1 - pd.Timedelta(days=1)
        if self.t0 == self.t0.normalize() and self.t1 == self.t1.normalize():
            return f"{self.t0:%Y-%m-%d}" if last == self.t0 else f"{self.t0:%Y-%m-%d} … {last:%Y-%m-%d}"
        return f"{self.t0:%Y-%m-%d %H:%M} … {self.t1:%Y-%m-%d %H:%M} UTC"


@dataclass
class Plan:
    """The granules a request reads (index rows, none opened) and the stamp of their data (name, mtime, size)."""

    rows: pd.DataFrame
    stamp: tuple = ()


def plan(archive: Archive, req: So2Request) -> Plan:
    """The TROPOMI granules of the period that touch the zone (the index's footprints; no file opened)."""
    rows = archive.granules(TROPOMI, req.t0, req.t1, req.zone.bbox())
    stamp = tuple((archive.name_of(r.path), float(r.mtime), int(r.size)) for r in rows.itertuples())
    return Plan(rows, stamp)


@dataclass
class Layers:
    """The filtered swaths of a request, and what was skipped or lacks the field (sentences)."""

    layers: list = field(default_factory=list)
    orbit_labels: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)


def _fields(req: So2Request) -> tuple[str, ...]:
    if req.quantity == "layer_height":
        return _LAYER_HEIGHT_FIELDS
    return (req.variable, "qa_value", "solar_zenith_angle")


def _values(ds: xr.Dataset, req: So2Request, in_period: np.ndarray) -> np.ndarray:
    if req.quantity == "layer_height":
        ds = ds.rename({"qa_value_layer_height": "qa_value"})
    mask = valid_mask(ds, req.variable, **req.filters.as_dict()).values & in_period[:, None]
    return np.where(mask, ds[req.variable].values, np.nan).astype(np.float32)


def _in_zone(ds: xr.Dataset, zone: Zone) -> np.ndarray:
    lon = wrap_lon(ds["longitude"].values, zone.central_longitude)
    lat = ds["latitude"].values
    return (lat >= zone.lat_min) & (lat <= zone.lat_max) & (lon >= zone.lon_min) & (lon <= zone.lon_max)


def _orbit_label(orbit: int, times: np.ndarray) -> str:
    return f"#{orbit}: {pd.Timestamp(times.min()):%H:%M} → {pd.Timestamp(times.max()):%H:%M}"


def read_swaths(archive: Archive, paths: list[str], variables: tuple[str, ...], with_bounds: bool = False):
    """The granules read through the swath cache (:meth:`Archive.read_many`: a damaged one skipped and named)."""
    reader = archive.reader_key(TROPOMI)
    return archive.read_many(paths, lambda p: read_swath_cached(p, variables, with_bounds=with_bounds,
                                                                reader=reader), lambda *_: None)


def so2_layers(archive: Archive, req: So2Request, rows: pd.DataFrame) -> Layers:
    """The layers (filtered swaths, scanlines in the period) of the granules ``rows`` for the map."""
    out = Layers()
    read = read_swaths(archive, [str(p) for p in rows["path"]], _fields(req))
    out.skipped = [msg for _, msg in read.skipped]
    out.unavailable = [f"{name}: {reason}" for name, _level, reason in read.unavailable]
    for ds in sorted(read.datasets, key=lambda d: int(d.attrs.get("orbit", 0))):
        times = ds["time"].values
        in_period = (times >= req.t0.to_datetime64()) & (times < req.t1.to_datetime64())
        inside = _in_zone(ds, req.zone) & in_period[:, None]
        if not inside.any():
            continue
        orbit = int(ds.attrs.get("orbit", 0))
        layer = make_layer(ds["latitude"].values, ds["longitude"].values, _values(ds, req, in_period), times,
                           orbit, central_longitude=req.zone.central_longitude)
        out.layers.append(layer)
        out.orbit_labels.append(_orbit_label(orbit, times[inside.any(axis=1)]))
    return out


def picture_size(zone: Zone, width: int) -> tuple[tuple[float, float], tuple[int, int]]:
    """The figure's size (inches at 100 dpi) for ``width`` pixels, and the grid the swaths are aggregated on.

    The map's axes take 66 % of the width and 76 % of the height (:func:`app.render.export.map_figure`) and
    keep one degree as long across as up; the height follows the zone's shape, within 0.58 … 1.2 × the width (below
    0.58 the credits line meets the axis label).
    """
    span_x = zone.lon_max - zone.lon_min
    span_y = zone.lat_max - zone.lat_min
    axes_w = 0.66 * width
    height = int(min(1.2 * width, max(0.58 * width, axes_w * span_y / span_x / 0.76)))
    grid_w = max(16, int(axes_w))
    grid_h = max(16, int(round(grid_w * span_y / span_x)))
    if grid_h > 0.76 * height:
        grid_h = max(16, int(0.76 * height))
        grid_w = max(16, int(round(grid_h * span_x / span_y)))
    return (width / 100.0, height / 100.0), (grid_w, grid_h)


def map_picture(archive: Archive, req: So2Request, rows: pd.DataFrame) -> tuple[bytes, dict]:
    """The PNG of the map and what it shows (``orbits``, ``skipped``, ``clim``, ``units``, ``pixels``).

    Raises UserInputError when every granule of the period lacks the field asked for (the reason, from the files).
    """
    size, (grid_w, grid_h) = picture_size(req.zone, req.width)
    stamp = tuple((str(r.path), float(r.mtime), int(r.size)) for r in rows.itertuples())
    key = ("so2-map-agg", dataclasses.replace(req, clim=None, width=0), stamp, grid_w, grid_h)
    hit = _AGGREGATES.get(key)
    if hit is None:
        layers = so2_layers(archive, req, rows)
        if layers.unavailable and not layers.layers and not layers.skipped:
            raise UserInputError(f"{req.label()} is unavailable in the granules of {req.period_label()}: "
                                 + "; ".join(dict.fromkeys(u.split(": ", 1)[-1] for u in layers.unavailable)))
        hit = (aggregate(layers.layers, req.zone.x_range, req.zone.y_range, grid_w, grid_h), layers)
        _AGGREGATES.put(key, hit, hit[0].nbytes + 4096)
    agg, layers = hit
    unit = "km" if req.quantity == "layer_height" else "DU"
    clim = req.clim or DEFAULT_CLIM[req.quantity]
    title = f"TROPOMI {req.label()} — {req.period_label()}"
    png = map_png(agg, clim=clim, cmap=LAYER_HEIGHT if req.quantity == "layer_height" else SO2, title=title,
                  subtitle=req.filters.describe(), credits=overlays.credits_text(caliop=False),
                  colorbar_label=f"{req.label()}, {req.period_label()} ({unit})",
                  central_longitude=req.zone.central_longitude, orbit_labels=layers.orbit_labels[:24],
                  size=size, dpi=100)
    pixels = int(np.isfinite(agg.values).sum())
    return png, {"orbits": layers.orbit_labels, "skipped": layers.skipped, "clim": clim, "units": unit,
                 "title": title, "pixels": pixels}


def _pixel_at(ds: xr.Dataset, lat: float, lon: float) -> tuple[int, int] | None:
    """(scanline, ground_pixel) of the pixel under the point, or None.

    The nearest pixel centre (in degrees, longitudes scaled by cos(lat)), kept when the point lies within half the
    distance to its farthest neighbouring centre (the footprint's half-size: no bounds need be read).
    """
    la = ds["latitude"].values
    lo = ds["longitude"].values
    scale = math.cos(math.radians(lat))
    d2 = (la - lat) ** 2 + (wrap_lon(lo - lon) * scale) ** 2
    if not np.isfinite(d2).any():
        return None
    i, j = (int(k) for k in np.unravel_index(int(np.nanargmin(d2)), d2.shape))
    spans = []
    for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        a, b = i + di, j + dj
        if 0 <= a < la.shape[0] and 0 <= b < la.shape[1]:
            spans.append((la[a, b] - la[i, j]) ** 2 + (wrap_lon(lo[a, b] - lo[i, j]) * scale) ** 2)
    spans = [v for v in spans if np.isfinite(v)]
    if not spans:
        return None
    return (i, j) if d2[i, j] <= max(spans) / 4.0 else None


def _number(v) -> float | None:
    v = float(v)
    return round(v, 6) if math.isfinite(v) else None


def so2_values(archive: Archive, req: So2Request, rows: pd.DataFrame, lat: float, lon: float,
               report: Callable[[str], None] | None = None) -> list[dict]:
    """Every orbit of the period with a pixel over the point, as dicts.

    Each with its time, the column (or height) as read (``raw``) and filtered (``value``, null when the pixel does
    not pass the filters), QA, SZA, and ``valid``.
    """
    fields = _fields(req)
    read = read_swaths(archive, [str(p) for p in rows["path"]], fields)
    for _, msg in read.skipped:
        if report is not None:
            report(msg)
    out = []
    for ds in sorted(read.datasets, key=lambda d: int(d.attrs.get("orbit", 0))):
        hit = _pixel_at(ds, lat, lon)
        if hit is None:
            continue
        i, j = hit
        t = pd.Timestamp(ds["time"].values[i])
        if not req.t0 <= t < req.t1:
            continue
        filtered = _values(ds.isel(scanline=[i]), req, np.array([True]))[0, j]
        qa_name = "qa_value_layer_height" if req.quantity == "layer_height" else "qa_value"
        out.append({"orbit": int(ds.attrs.get("orbit", 0)), "time": f"{t:%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z",
                    "granule": archive.name_of(ds.attrs.get("source", "")), "scanline": i, "ground_pixel": j,
                    "latitude": _number(ds["latitude"].values[i, j]),
                    "longitude": _number(ds["longitude"].values[i, j]),
                    "raw": _number(ds[req.variable].values[i, j]), "value": _number(filtered),
                    "valid": bool(np.isfinite(filtered)), "qa_value": _number(ds[qa_name].values[i, j]),
                    "solar_zenith_angle": _number(ds["solar_zenith_angle"].values[i, j])})
    return out


def orbits(archive: Archive, day: pd.Timestamp, bbox=None) -> list[dict]:
    """The TROPOMI orbits of a UTC day that touch ``bbox`` (the index's, no file opened)."""
    archive.days(TROPOMI)  # the index is built on first use
    table = archive.index.orbits_for_day(day, bbox)
    return [{"orbit": None if pd.isna(r.orbit) else int(r.orbit),
             "start": f"{pd.Timestamp(r.start):%Y-%m-%dT%H:%M:%SZ}", "end": f"{pd.Timestamp(r.end):%Y-%m-%dT%H:%M:%SZ}",
             "label": str(r.label), "mode": str(r.mode or ""), "granules": [archive.name_of(p) for p in r.paths]}
            for r in table.itertuples()]
