"""Map layers for GIS clients: what the WMS, the WMTS and the XYZ tiles of :mod:`app.api.ogc` show, and their pixels.

A **layer** is one of:

- ``so2``: the TROPOMI SO2 column at 7 km of a UTC day (the VolcPlume dashboard's default filters), coloured with
  the dashboard's SO2 colour map over 0.2 … 20 DU, transparent where no pixel passes (:mod:`app.services.so2map`'s
  data path: the index's granules, the swath cache, :func:`app.render.swath.aggregate`);
- ``geo.<position>.<product>`` (``geo.goes-east.ash``): a ring position's product of one slot, regridded from the
  satellite's fixed grid (:func:`app.render.geo.lonlat_frame`, the picture of ``/api/v1/geo/image.png?bbox=…``);
- ``mosaic.<product>``: the ring's global mosaic of a time (:func:`app.render.geo.mosaic`).

Every picture is first drawn on a latitude–longitude grid (equirectangular, north row first). A picture in Web
Mercator (EPSG:3857, the tiles) is a **row remap** of it: Mercator is separable (x is linear in longitude, y a
function of latitude alone), so each output row takes the lat/lon row under its centre latitude, from a lat/lon
picture drawn with rows at most as tall as the shortest Mercator row (error below half an output row). Tile
bounds come from ``mercantile`` (:func:`tile_box`).

:func:`layers` lists what an archive holds (the capabilities follow the archive: a position without slots, or a
product its sensor cannot make from the channels it has, is not listed). :func:`prepare` resolves a layer and a
time into a :class:`Job`: the data's stamp (for ETags), the granules it would read (for the work budget) and a
``draw`` function. Refusals are :class:`MapError` with the WMS exception code that fits.
"""

from __future__ import annotations

import math
import threading
import time as time_module
from collections.abc import Callable
from dataclasses import dataclass, field

import mercantile
import numpy as np
import pandas as pd

from app.core.cache import bounded_cache
from app.core.lonlat import wrap_lon
from app.core.zones import ZONES
from app.data import geo
from app.data.archive import TROPOMI, Archive
from app.data.errors import FumaroleError, UserInputError
from app.render import geo as render
from app.render.colormaps import SO2
from app.render.swath import aggregate
from app.science.filters import DEFAULT_FILTERS
from app.services import geo as geo_services
from app.services import so2map

__all__ = ["MapError", "Layer", "Job", "layers", "parse_layer", "prepare", "tile_box", "mercator_row_lats",
           "lonlat_rows", "remap_index", "time_values", "SO2_LEVEL", "SO2_CLIM", "MAX_ZOOM", "TILE_SIZE",
           "transparent_png", "geo_products", "so2_pixels"]

#: The SO2 layer's box level and colour range (DU), the dashboard's defaults.
SO2_LEVEL = "7km"
SO2_CLIM = so2map.DEFAULT_CLIM["column"]
#: The deepest tile zoom served (z 12 is ~38 m per pixel at the equator, far finer than any product).
MAX_ZOOM = 12
TILE_SIZE = 256
#: Web Mercator's latitude limit (the square world of the tiles).
MERCATOR_LAT = 85.0511287798066
#: Tallest lat/lon picture drawn for a row remap.
MAX_REMAP_ROWS = 4096
#: Seconds a GEO or mosaic layer's resolved slot (and its data stamp) is reused by the tiles (:func:`prepare`).
RESOLVE_S = 10.0
_clock = time_module.monotonic
_GEO_DISK_DEG = 81.3  # a geostationary disk's reach from its sub-satellite point (great-circle degrees)

#: Each granule's filtered swath layer, by granule stamp, level, filters and day (the SO2 tiles of a day share them).
_SWATHS = bounded_cache("misc", 0.05)


class MapError(UserInputError):
    """A map request that cannot be answered, with the WMS exception ``code`` and the parameter at fault."""

    def __init__(self, message: str, code: str | None = None, parameter: str | None = None):
        super().__init__(message)
        self.code = code
        self.parameter = parameter


@dataclass(frozen=True)
class Layer:
    """A map layer: its name, kind (``so2``, ``geo``, ``mosaic``), ring position and product, title, box."""

    name: str
    kind: str
    title: str
    product: str = ""
    position: str = ""
    bbox: tuple[float, float, float, float] = (-180.0, -90.0, 180.0, 90.0)
    times: tuple[pd.Timestamp, ...] = field(default=(), compare=False)
    step_minutes: int = 0
    abstract: str = ""


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-")


def _positions(archive: Archive) -> dict[str, geo.RingPosition]:
    """Ring position names by slug (``goes-east`` -> the constellation's position)."""
    out = {}
    for pos in geo.ring_at(None, archive):
        out[_slug(pos.name)] = pos
    return out


def geo_products(channels, sensor: str, cloud_top: bool) -> list[str]:
    """The products a slot with these channels (and a cloud-top file or not) can make."""
    present = set(channels)
    out = []
    for product in render.products():
        if render.is_cloud_top(product):
            if cloud_top:
                out.append(product)
            continue
        try:
            needed, _optional = render.product_channels(product, sensor)
        except UserInputError:  # no recipe for this sensor (True Colour on SEVIRI)
            continue
        if all(c in present for c in needed):
            out.append(product)
    return out


def _disk_bbox(sub_lon: float) -> tuple[float, float, float, float]:
    lon0, lon1 = sub_lon - _GEO_DISK_DEG, sub_lon + _GEO_DISK_DEG
    if lon0 < -180 or lon1 > 180:  # across the antimeridian: WMS boxes cannot say it, give the whole width
        lon0, lon1 = -180.0, 180.0
    return (round(lon0, 3), -_GEO_DISK_DEG, round(lon1, 3), _GEO_DISK_DEG)


def _step(times: list[pd.Timestamp]) -> int:
    if len(times) < 2:
        return 10
    d = pd.Series(times).diff().dropna().min()
    return max(1, int(d / pd.Timedelta(minutes=1)))


def layers(archive: Archive) -> list[Layer]:
    """The layers the archive holds: SO2 (when it has TROPOMI days), each position's products, each mosaic.

    Listed once per :data:`RESOLVE_S` seconds (a GIS client asks for the capabilities of both services at once).
    """
    key = ("tiles-layers", id(archive), int(_clock() // RESOLVE_S))
    found = _SWATHS.get(key)
    if found is None:
        found = _layers(archive)
        _SWATHS.put(key, found, 4096 + 64 * sum(len(lay.times) for lay in found))
    return found


def _layers(archive: Archive) -> list[Layer]:
    out: list[Layer] = []
    days = [pd.Timestamp(d) for d in archive.days(TROPOMI)]
    if days:
        out.append(Layer("so2", "so2", f"TROPOMI SO2 column ({so2map.LEVEL_LABELS[SO2_LEVEL]}, DU)",
                         times=tuple(days), step_minutes=1440,
                         abstract=f"The TROPOMI SO2 column of a UTC day, {so2map.LEVEL_LABELS[SO2_LEVEL]} box "
                                  f"profile, pixels with {DEFAULT_FILTERS.describe()}; colours "
                                  f"{SO2_CLIM[0]:g} … {SO2_CLIM[1]:g} DU, transparent where no pixel passes."))
    every: set[pd.Timestamp] = set()
    mosaic_products: set[str] = set()
    for slug, pos in _positions(archive).items():
        table = geo.slots(archive, pos.name)
        if table.empty:
            continue
        times = sorted(pd.Timestamp(t) for t in table["time"])
        every.update(times)
        last = table.iloc[-1]
        products = geo_products(last["channels"], geo.ring_position(last["platform"], last["time"], archive).sensor,
                                last["cloud_top"] is not None)
        mosaic_products.update(products)
        for product in products:
            out.append(Layer(f"geo.{slug}.{product}", "geo", f"{pos.name} {render.product_title(product)}",
                             product, pos.name, _disk_bbox(pos.sub_lon), tuple(times), _step(times),
                             f"{render.product_title(product)} of the satellite holding {pos.name} at the time "
                             "asked for, regridded from its fixed grid; transparent beyond the disk."))
    times = sorted(every)
    for product in render.products():
        if product in mosaic_products:
            out.append(Layer(f"mosaic.{product}", "mosaic", f"Ring mosaic {render.product_title(product)}", product,
                             bbox=(-180.0, -80.0, 180.0, 80.0), times=tuple(times), step_minutes=_step(times),
                             abstract="Every ring satellite's product on one grid, each cell from the satellite "
                                      "that sees it best."))
    return out


def parse_layer(archive: Archive, name: str) -> Layer:
    """The layer named ``name`` (without its time list); :class:`MapError` ``LayerNotDefined`` otherwise."""
    parts = str(name).split(".")
    products = render.products()
    if parts == ["so2"]:
        return Layer("so2", "so2", "TROPOMI SO2 column")
    if len(parts) == 2 and parts[0] == "mosaic" and parts[1] in products:
        return Layer(name, "mosaic", f"Ring mosaic {render.product_title(parts[1])}", parts[1])
    if len(parts) == 3 and parts[0] == "geo" and parts[2] in products:
        pos = _positions(archive).get(parts[1])
        if pos is not None:
            return Layer(name, "geo", f"{pos.name} {render.product_title(parts[2])}", parts[2], pos.name,
                         _disk_bbox(pos.sub_lon))
    shown = name if len(name) <= 60 else name[:60] + "…"
    raise MapError(f"layer {shown!r} is not defined: layers are so2, geo.<position>.<product> (positions "
                   f"{', '.join(_positions(archive))}) and mosaic.<product> (products {', '.join(products)}); "
                   "GetCapabilities lists those the archive holds", "LayerNotDefined", "LAYERS")


# ------------------------------------------------------------------------------------------------ times

def _time(text: str, parameter: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(str(text).strip())
    except (ValueError, OverflowError):
        t = None
    if t is None or pd.isna(t):
        raise MapError(f"{parameter} {text[:40]!r} is not an ISO 8601 time (2021-04-12 or 2021-04-12T15:00:00Z)",
                       "InvalidDimensionValue", parameter)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    if not 1970 <= t.year <= 2100:
        raise MapError(f"{parameter} {text[:40]!r} is out of range (years 1970 … 2100)", "InvalidDimensionValue",
                       parameter)
    return pd.Timestamp(t).as_unit("ns")


def time_values(times, step_minutes: int) -> str:
    """A TIME dimension's values: a list, runs of regular slots as ``start/end/PTnM`` (ISO 8601, UTC)."""
    if step_minutes >= 1440:
        return ",".join(f"{t:%Y-%m-%d}" for t in times)
    step = pd.Timedelta(minutes=step_minutes)
    runs: list[list[pd.Timestamp]] = []
    for t in times:
        if runs and t - runs[-1][-1] == step:
            runs[-1].append(t)
        else:
            runs.append([t])
    out = []
    for run in runs:
        if len(run) <= 2:
            out.extend(f"{t:%Y-%m-%dT%H:%M:%SZ}" for t in run)
        else:
            out.append(f"{run[0]:%Y-%m-%dT%H:%M:%SZ}/{run[-1]:%Y-%m-%dT%H:%M:%SZ}/PT{step_minutes}M")
    return ",".join(out)


def _so2_day(archive: Archive, text: str | None) -> pd.Timestamp:
    days = [pd.Timestamp(d) for d in archive.days(TROPOMI)]
    if text is None:
        if not days:
            raise MapError("the archive has no TROPOMI day", "LayerNotDefined", "LAYERS")
        return days[-1]
    day = _time(text, "TIME").normalize()
    if day not in days:
        shown = ", ".join(f"{d:%Y-%m-%d}" for d in days[-10:]) or "none"
        raise MapError(f"TIME {text[:40]} is not a TROPOMI day of the archive (days: {shown})",
                       "InvalidDimensionValue", "TIME")
    return day


def _geo_slot(archive: Archive, layer: Layer, text: str | None) -> tuple[str, pd.Timestamp]:
    """(platform, slot time) of a position at the time asked for (default its latest slot)."""
    if text is None:
        table = geo.slots(archive, layer.position)
        if table.empty:
            raise MapError(f"the archive has no {layer.position} slot: layer {layer.name!r} is not defined",
                           "LayerNotDefined", "LAYERS")
        last = table.iloc[-1]
        return str(last["platform"]), pd.Timestamp(last["time"])
    t = _time(text, "TIME").floor("min")
    table = geo.slots(archive, layer.position, t, t + pd.Timedelta(minutes=1))
    if table.empty:
        near = geo.slots(archive, layer.position, t - pd.Timedelta(days=1), t + pd.Timedelta(days=1))
        hint = ""
        if not near.empty:
            nearest = min(near["time"], key=lambda s: abs(pd.Timestamp(s) - t))
            hint = f"; the nearest is {pd.Timestamp(nearest):%Y-%m-%dT%H:%M:%SZ}"
        raise MapError(f"TIME {text[:40]} is not a {layer.position} slot of the archive{hint}",
                       "InvalidDimensionValue", "TIME")
    return str(table["platform"].iloc[0]), t


def _mosaic_time(archive: Archive, text: str | None) -> pd.Timestamp:
    if text is None:
        times = geo.ring_latest(archive)["time"].dropna()
        if times.empty:
            raise MapError("the archive has no geostationary slot at all", "LayerNotDefined", "LAYERS")
        return pd.Timestamp(times.max())
    return _time(text, "TIME").floor("min")


# ------------------------------------------------------------------------------------------------ geometry

def tile_box(z: int, x: int, y: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """A Web Mercator tile's longitude range and latitude range (south, north), from ``mercantile``."""
    b = mercantile.bounds(x, y, z)
    return (b.west, b.east), (b.south, b.north)


def mercator_row_lats(lat_bottom: float, lat_top: float, height: int) -> np.ndarray:
    """Latitudes of the centres of ``height`` rows of equal Web Mercator height, north first."""
    y_top = mercantile.xy(0.0, lat_top)[1]
    y_bottom = mercantile.xy(0.0, lat_bottom)[1]
    ys = y_top - (np.arange(height) + 0.5) * (y_top - y_bottom) / height
    return np.array([mercantile.lnglat(0.0, float(v)).lat for v in ys])


def lonlat_rows(lat_bottom: float, lat_top: float, height: int) -> np.ndarray:
    """Latitudes of the centres of ``height`` equal rows from ``lat_top`` down to ``lat_bottom``."""
    return lat_top - (np.arange(height) + 0.5) * (lat_top - lat_bottom) / height


def remap_index(lat_bottom: float, lat_top: float, row_lats: np.ndarray) -> tuple[int, np.ndarray]:
    """Rows of a lat/lon picture no taller than the shortest wanted row, and each wanted row's index in it."""
    n = len(row_lats)
    shortest = float(np.min(-np.diff(row_lats))) if n > 1 else (lat_top - lat_bottom)
    rows = int(min(MAX_REMAP_ROWS, max(n, math.ceil((lat_top - lat_bottom) / shortest))))
    index = np.clip(((lat_top - row_lats) / (lat_top - lat_bottom) * rows).astype(np.intp), 0, rows - 1)
    return rows, index


# ------------------------------------------------------------------------------------------------ drawing

@dataclass
class Job:
    """A layer at a time, ready to draw: the data's stamp, the granules it reads, what it says, how to draw."""

    layer: Layer
    time: pd.Timestamp
    stamp: tuple
    granules: int
    headers: dict
    draw_lonlat: Callable[[tuple[float, float], float, float, int, int], np.ndarray]
    #: Granules that could not be read while drawing (sentences naming them; the rest is drawn).
    skipped: list[str] = field(default_factory=list)

    def draw(self, lon_range: tuple[float, float], lat_range: tuple[float, float], width: int, height: int,
             mercator: bool = False) -> np.ndarray:
        """RGBA uint8 (rows north first) of a box: ``lat_range`` (south, north), equal rows in degrees.

        With ``mercator`` the rows are equal in Web Mercator metres: a lat/lon picture remapped by rows.
        """
        bottom, top = float(lat_range[0]), float(lat_range[1])
        if not mercator:
            return self.draw_lonlat(lon_range, bottom, top, int(width), int(height))
        rows, index = remap_index(bottom, top, mercator_row_lats(bottom, top, int(height)))
        return self.draw_lonlat(lon_range, bottom, top, int(width), rows)[index]


def _so2_granule(archive: Archive, req: so2map.So2Request, row) -> list:
    key = ("tiles-so2-layer", str(row.path), float(row.mtime), int(row.size), req.level,
           req.filters, req.t0, req.t1)
    hit = _SWATHS.get(key)
    if hit is None:
        frame = pd.DataFrame([row._asdict()])
        found = so2map.so2_layers(archive, req, frame)
        hit = (found.layers, found.skipped)
        size = sum(lay.lon.nbytes + lay.lat.nbytes + lay.values.nbytes for lay in found.layers) + 4096
        _SWATHS.put(key, hit, size)
    return hit


def _so2_job(archive: Archive, layer: Layer, text: str | None, box) -> Job:
    day = _so2_day(archive, text)
    lon0, lat0, lon1, lat1 = box
    req = so2map.So2Request(day, day + pd.Timedelta(days=1), so2map.Zone.from_bbox(lon0, lat0, lon1, lat1),
                            SO2_LEVEL, "column", DEFAULT_FILTERS, SO2_CLIM, 0)
    found = so2map.plan(archive, req)
    world = so2map.So2Request(req.t0, req.t1, ZONES["World"], SO2_LEVEL, "column", DEFAULT_FILTERS, SO2_CLIM, 0)
    skipped: list[str] = []

    def draw(lon_range, bottom, top, width, rows):
        swaths = []
        for row in found.rows.itertuples():
            got, bad = _so2_granule(archive, world, row)
            swaths.extend(got)
            skipped.extend(b for b in bad if b not in skipped)
        if not swaths:
            return np.zeros((rows, width, 4), dtype=np.uint8)
        agg = aggregate(swaths, lon_range, (bottom, top), width, rows)
        values = agg.values[::-1] if agg["y"].values[0] < agg["y"].values[-1] else agg.values
        return render.colorize(values, SO2, SO2_CLIM)

    headers = {"X-Fumarole-Time": f"{day:%Y-%m-%d}", "X-Fumarole-Granules": str(len(found.rows)),
               "X-Fumarole-Colour-Range": f"{SO2_CLIM[0]:g} {SO2_CLIM[1]:g} DU"}
    return Job(layer, day, found.stamp, len(found.rows), headers, draw, skipped)


def _once(make: Callable[[], object]) -> Callable[[], object]:
    """``make()`` computed on the first call and kept (a job's data: every tile of the job draws from it).

    What it keeps is the GEO channels the channel cache already holds (the same arrays), not a copy.
    """
    lock = threading.Lock()
    box: list = []

    def get():
        with lock:
            if not box:
                box.append(make())
            return box[0]

    return get


def so2_pixels(archive: Archive, job: Job, lat: float, lon: float) -> list[dict]:
    """The SO2 pixels of an ``so2`` job's day over the point (:func:`app.services.so2map.so2_values`)."""
    zone = so2map.Zone.from_bbox(lon - 0.01, max(-90.0, lat - 0.01), lon + 0.01, min(90.0, lat + 0.01))
    req = so2map.So2Request(job.time, job.time + pd.Timedelta(days=1), zone, SO2_LEVEL, "column", DEFAULT_FILTERS,
                            SO2_CLIM, 0)
    return so2map.so2_values(archive, req, so2map.plan(archive, req).rows, lat, lon, job.skipped.append)


def _geo_job(archive: Archive, layer: Layer, text: str | None) -> Job:
    platform, t = _geo_slot(archive, layer, text)
    pos = geo.ring_position(platform, t, archive)

    data = _once(lambda: geo_services.load_product(archive, platform, t, layer.product))

    def draw(lon_range, bottom, top, width, rows):
        frame = render.lonlat_frame(data(), layer.product, lon_range, (bottom, top), width, rows)
        return render.frame_rgba(frame)

    headers = {"X-Fumarole-Time": f"{t:%Y-%m-%dT%H:%M:%SZ}", "X-Fumarole-Satellite": pos.satellite,
               "X-Fumarole-Product": render.product_title(layer.product)}
    return Job(layer, t, geo.slot_stamp(archive, platform, t), 1, headers, draw)


def _mosaic_job(archive: Archive, layer: Layer, text: str | None) -> Job:
    t = _mosaic_time(archive, text)
    ring = [p for p in geo.ring_at(t, archive) if p.platform]
    stamp = tuple(geo.slot_stamp(archive, p.platform, t.floor(f"{p.repeat_minutes}min")) for p in ring)
    if not any(stamp):
        raise MapError(f"TIME {t:%Y-%m-%dT%H:%M:%SZ}: no ring satellite has a slot then", "InvalidDimensionValue",
                       "TIME")
    product = layer.product

    scenes = _once(lambda: geo_services.ring_scenes(archive, t, product))

    def draw(lon_range, bottom, top, width, rows):
        seen = _seeing(scenes().scenes, lon_range, archive)
        if not seen:
            return np.zeros((rows, width, 4), dtype=np.uint8)
        data = render.mosaic(seen, lon_range, (bottom, top), width, rows, product)
        if render.is_cloud_top(product):
            style = render.CLOUD_TOP[product]
            rgba = render.colorize(data["value"].values, style.cmap, style.clim)
            rgba[(data["source"].values >= 0) & (rgba[..., 3] == 0)] = render.CLEAR_SKY
            return rgba
        return np.asarray(data["rgba"].values)

    headers = {"X-Fumarole-Time": f"{t:%Y-%m-%dT%H:%M:%SZ}", "X-Fumarole-Product": render.product_title(product)}
    return Job(layer, t, stamp, sum(1 for s in stamp if s), headers, draw)


def _seeing(scenes: dict, lon_range: tuple[float, float], archive: Archive) -> dict:
    """The scenes whose disk reaches the longitudes ``lon_range`` (a tile of the mosaic draws only those)."""
    lon0, lon1 = lon_range
    out = {}
    for platform, scene in scenes.items():
        if scene is None:
            continue
        sub = float(scene.attrs.get("sub_lon", geo.ring_position(platform, None, archive).sub_lon))
        inside = (sub - lon0) % 360.0 <= (lon1 - lon0)
        gap = min(abs(wrap_lon(lon0 - sub)), abs(wrap_lon(lon1 - sub)))
        if inside or gap < _GEO_DISK_DEG + 1.0:
            out[platform] = scene
    return out


def prepare(archive: Archive, layer: Layer, time: str | None, box: tuple[float, float, float, float]) -> Job:
    """The :class:`Job` of ``layer`` at ``time`` (text; None: the latest) over ``box`` (lon0, lat0, lon1, lat1).

    Raises :class:`MapError` (``InvalidDimensionValue`` for a time the layer lacks, ``LayerNotDefined`` for a layer
    without data). Opens no file: drawing reads. A GEO or mosaic layer's job (its slot and the slot's stamp, the
    same for every tile) is resolved once per :data:`RESOLVE_S` seconds: the tiles of one view of a map client
    come together and list the archive's slots once; a new slot shows within that time.
    """
    try:
        if layer.kind == "so2":
            return _so2_job(archive, layer, time, box)
        key = ("tiles-job", id(archive), layer.name, time, int(_clock() // RESOLVE_S))
        job = _SWATHS.get(key)
        if job is None:
            job = _geo_job(archive, layer, time) if layer.kind == "geo" else _mosaic_job(archive, layer, time)
            _SWATHS.put(key, job, 4096)
        return job
    except MapError:
        raise
    except geo.MissingSlotError as exc:
        raise MapError(str(exc), "InvalidDimensionValue", "TIME") from None
    except FumaroleError:
        raise


def transparent_png(width: int, height: int) -> bytes:
    """A fully transparent PNG (a tile outside the data)."""
    return render.png_bytes(np.zeros((int(height), int(width), 4), dtype=np.uint8))
