"""Animations of the archive: a loop of one satellite's GEO slots, or of TROPOMI SO2 days, as MP4 or animated GIF.

Each frame is drawn by :func:`app.render.frame.compose_export` (title, subtitle, the UTC time stamp, the map pixel
for pixel, the colour bar with units or the composite's legend, the credits) from the data the PNG services give:

- **GEO** (:class:`GeoLoop`): :func:`app.services.geo.load_product` then :func:`app.render.geo.lonlat_frame`
  (a lat/lon box, the same pixels as ``/api/v1/geo/image.png`` with that ``bbox``, ``width`` and ``height``) or
  :func:`app.render.geo.frame` (the full disk, or a view of it in projection metres, as the GEO-ring page shows);
- **SO2** (:class:`So2Loop`): :func:`app.services.so2map.plan` and :func:`~app.services.so2map.so2_layers` (the
  day's granules over the zone, filtered, a damaged one skipped and named) aggregated on the map's pixels with
  :func:`app.render.swath.aggregate`, coloured in the dashboard's SO2 scale (DU).

The frames stream into the encoder (:func:`app.render.animate.encode`), so only one frame is held at a time.

**Bounds** (:class:`AnimationLimitError`, naming the parameter): at most :data:`MAX_FRAMES` frames, frames at
most :data:`MAX_WIDTH` pixels wide, frames × pixels at most :data:`PIXEL_BUDGET`, and the SO2 days' granules at
most :data:`MAX_GRANULES`. A slot or day whose data fail is **skipped and named** (:attr:`Animation.skipped`); when
none can be drawn, :class:`NothingToDraw` says why for each.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from app.core.zones import Zone
from app.data import geo
from app.data.errors import FumaroleError, UserInputError
from app.render import animate, overlays
from app.render import geo as render_geo
from app.render.colormaps import SO2
from app.render.frame import Composed, ExportLayout, Picture, compose_export, export_layout, geo_credits
from app.science.filters import DEFAULT_FILTERS, Filters
from app.services import geo as geo_service
from app.services import so2map

__all__ = ["MAX_FRAMES", "MAX_WIDTH", "PIXEL_BUDGET", "MAX_GRANULES", "AnimationLimitError", "NothingToDraw",
           "GeoLoop", "So2Loop", "Animation", "geo_times", "so2_days", "geo_animation", "so2_animation",
           "geo_stamp", "so2_stamp"]

log = logging.getLogger(__name__)

MAX_FRAMES = 144
MAX_WIDTH = 1920
#: Frames × pixels of one animation (about 28 frames of 1920 × 1080; 24 frames of 1024 × 910 use 22 million).
PIXEL_BUDGET = 60_000_000
#: TROPOMI granules one SO2 animation may read (all days together).
MAX_GRANULES = 400


class AnimationLimitError(UserInputError):
    """An animation asked for is over a bound; ``parameter`` names the request's parameter to change."""

    def __init__(self, message: str, parameter: str):
        super().__init__(message)
        self.parameter = parameter


class NothingToDraw(UserInputError):
    """No frame of the animation could be drawn (each slot or day's reason, in words)."""


@dataclass(frozen=True)
class GeoLoop:
    """One satellite's ``product`` over ``times`` (its slots), over a lat/lon ``bbox``, a projection view, or its disk.

    ``bbox`` is (lon_min, lat_min, lon_max, lat_max) in degrees (lon_min > lon_max crosses the antimeridian);
    ``view`` ((x0, x1), (y0, y1)) in the satellite's projection metres (the GEO-ring page's zoom); neither: the disk.
    """

    satellite: str
    product: str
    times: tuple[pd.Timestamp, ...]
    bbox: tuple[float, float, float, float] | None = None
    view: tuple[tuple[float, float], tuple[float, float]] | None = None
    width: int = 1024
    fps: float = 4.0


@dataclass(frozen=True)
class So2Loop:
    """The SO2 map of each day of ``days`` over ``zone`` (level, filters and colour range as on the dashboard)."""

    days: tuple[pd.Timestamp, ...]
    zone: Zone
    level: str = "7km"
    filters: Filters = DEFAULT_FILTERS
    clim: tuple[float, float] | None = None
    width: int = 1024
    fps: float = 2.0
    volcano: tuple[float, float, str] | None = None


@dataclass
class Animation:
    """An encoded animation and what it shows: frame times, what was skipped (sentences), the frame size."""

    data: bytes
    fmt: str
    file_name: str
    size: tuple[int, int]
    map_box: tuple[int, int, int, int]
    times: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    fps: float = 4.0

    @property
    def media(self) -> str:
        """video/mp4 or image/gif."""
        return animate.MEDIA[self.fmt]


def check_bounds(width: int, n_frames: int, lay: ExportLayout, time_parameter: str) -> None:
    """Refuse (naming the parameter) more than :data:`MAX_FRAMES` frames, or frames × pixels over the budget."""
    if not 16 <= width <= MAX_WIDTH:
        raise AnimationLimitError(f"an animation's width is 16 … {MAX_WIDTH} pixels; got {width}", "width")
    if n_frames > MAX_FRAMES:
        raise AnimationLimitError(f"this animation would have {n_frames} frames; at most {MAX_FRAMES}: narrow the "
                                  f"period", time_parameter)
    total = n_frames * lay.w * lay.h
    if total > PIXEL_BUDGET:
        most = max(1, PIXEL_BUDGET // (lay.w * lay.h))
        raise AnimationLimitError(f"{n_frames} frames of {lay.w} × {lay.h} pixels are {total / 1e6:.0f} million "
                                  f"pixels; at most {PIXEL_BUDGET / 1e6:.0f} million per animation ({most} frames "
                                  f"at this width): lower the width or narrow the period", "width")


# ----------------------------------------------------------------------------------------------- GEO

def geo_times(archive, satellite: str, start=None, end=None, latest: int | None = None) -> list[pd.Timestamp]:
    """A satellite's (or position's) slot times in [start, end), or its ``latest`` N slots (at or before ``end``)."""
    table = geo.slots(archive, satellite, start, end)
    times = [pd.Timestamp(t) for t in table["time"]]
    if latest is not None:
        times = times[-int(latest):]
    return times


def _lon_span(bbox) -> tuple[tuple[float, float], tuple[float, float], float]:
    lon0, lat0, lon1, lat1 = bbox
    if lon1 < lon0:  # across the antimeridian: the frame's longitudes run on past 180
        lon1 += 360.0
    return (lon0, lon1), (lat0, lat1), ((lon0 + lon1) / 2.0 if lon1 > 180 else 0.0)


def _geo_aspect(archive, loop: GeoLoop) -> float:
    if loop.bbox is not None:
        (lon0, lon1), (lat0, lat1), _ = _lon_span(loop.bbox)
        return (lat1 - lat0) / (lon1 - lon0)
    if loop.view is not None:
        (x0, x1), (y0, y1) = loop.view
        return abs(y1 - y0) / max(abs(x1 - x0), 1e-9)
    for t in loop.times:  # the disk's shape, from the first slot that can be read
        try:
            (x0, x1), (y0, y1) = render_geo.disk_ranges(geo_service.load_product(archive, loop.satellite, t,
                                                                                 loop.product))
            return abs(y1 - y0) / max(abs(x1 - x0), 1e-9)
        except FumaroleError:
            continue
    return 1.0


def _fit(rgba: np.ndarray, width: int, height: int) -> np.ndarray:
    """``rgba`` on ``width`` × ``height`` pixels, each taking its nearest source pixel.

    A disk's frame is at most its own resolution: a small one is enlarged, never smoothed.
    """
    if rgba.shape[:2] == (height, width):
        return rgba
    rows = (np.arange(height) * rgba.shape[0]) // height
    cols = (np.arange(width) * rgba.shape[1]) // width
    return rgba[rows][:, cols]


def _geo_legend(scene, product: str) -> list[str]:
    legend = render_geo.frame(scene, product, width=32).attrs.get("legend") or ""
    return [str(x) for x in (legend if isinstance(legend, list | tuple) else [legend]) if x]


def geo_picture(archive, loop: GeoLoop, t: pd.Timestamp, lay: ExportLayout) -> tuple[Picture, str, str]:
    """The picture of one slot at the layout's map size, its title and subtitle (FumaroleError when it fails)."""
    _, _, mw, mh = lay.map_box
    pos = geo.ring_position(loop.satellite, t, archive)
    scene = geo_service.load_product(archive, loop.satellite, t, loop.product)
    if loop.bbox is not None:
        lon_range, lat_range, central = _lon_span(loop.bbox)
        frame_da = render_geo.lonlat_frame(scene, loop.product, (loop.bbox[0], loop.bbox[2]), lat_range, mw, mh)
        extent, kind = (*lon_range, *lat_range), "map"
        where = "{:g}° … {:g}°E, {:g}° … {:g}°N".format(*lon_range, *lat_range)
    else:
        x_range, y_range = loop.view if loop.view is not None else (None, None)
        frame_da = render_geo.frame(scene, loop.product, x_range, y_range, mw, mh)
        x, y = frame_da["x"].values, frame_da["y"].values
        extent, kind, central = (float(x.min()), float(x.max()), float(y.min()), float(y.max())), "disk", 0.0
        where = "a view of the disk" if loop.view is not None else "full disk"
    pic = Picture(kind=kind, time_text=f"{t:%d %B %Y, %H:%M} UTC", credits=geo_credits([pos.sensor], loop.product),
                  image=_fit(render_geo.frame_rgba(frame_da), mw, mh), extent=extent, central_longitude=central,
                  background="black")
    if render_geo.is_cloud_top(loop.product):
        from matplotlib.colors import ListedColormap, Normalize

        style = render_geo.CLOUD_TOP[loop.product]
        pic.cmap, pic.norm = ListedColormap(list(style.cmap)), Normalize(*style.clim)
        pic.colorbar_label = f"{style.title} ({style.units})"
    else:
        pic.legend = _geo_legend(scene, loop.product)
    title = f"{pos.satellite} — {render_geo.product_title(loop.product)}"
    subtitle = f"{pos.name or 'GEO'} ({pos.sub_lon:g}°), {where}"
    return pic, title, subtitle


def geo_layout(archive, loop: GeoLoop) -> ExportLayout:
    """The frames' layout: the width asked for, the map's shape from the box, view or disk."""
    return export_layout(loop.width, _geo_aspect(archive, loop), axes=loop.bbox is not None)


def geo_stamp(archive, loop: GeoLoop) -> str:
    """A short hash of the loop and its slots' data stamps (files, versions, sizes): the answer's ETag."""
    stamps = tuple(geo.slot_stamp(archive, geo.ring_position(loop.satellite, t, archive).platform, t)
                   for t in loop.times)  # a position's holder at each slot
    return hashlib.sha256(repr(("geo-anim", loop, stamps)).encode("utf-8")).hexdigest()[:32]


def geo_animation(archive, loop: GeoLoop, fmt: str) -> Animation:
    """The loop encoded as ``fmt`` (mp4 or gif); bounds checked before anything is read."""
    if not loop.times:
        raise NothingToDraw(f"{loop.satellite} has no slot in the period asked for")
    lay = geo_layout(archive, loop)
    check_bounds(loop.width, len(loop.times), lay, "end")
    product = re.sub(r"[^A-Za-z0-9_]+", "", loop.product)
    who = re.sub(r"[^A-Za-z0-9_-]+", "", loop.satellite.replace(" ", "-"))
    name = (f"fumarole_{who}_{product}_{loop.times[0]:%Y%m%dT%H%M}_{loop.times[-1]:%Y%m%dT%H%M}.{fmt}")

    def draw(t):
        return geo_picture(archive, loop, t, lay)

    return _encode(loop.times, draw, lay, fmt, loop.fps, name, lambda t: f"{t:%Y-%m-%d %H:%M} UTC")


# ----------------------------------------------------------------------------------------------- SO2

def _so2_request(loop: So2Loop, day: pd.Timestamp) -> so2map.So2Request:
    return so2map.So2Request(day, day + pd.Timedelta(days=1), loop.zone, loop.level, "column", loop.filters,
                             loop.clim, loop.width)


def so2_days(start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    """The UTC days of [start, end) (a day partly inside counts)."""
    first = pd.Timestamp(start).normalize()
    return list(pd.date_range(first, pd.Timestamp(end) - pd.Timedelta(microseconds=1), freq="D").normalize())


def so2_plans(archive, loop: So2Loop) -> dict[pd.Timestamp, so2map.Plan]:
    """Each day's granules (the index's; no file opened), refused past :data:`MAX_GRANULES` in all."""
    plans = {d: so2map.plan(archive, _so2_request(loop, d)) for d in loop.days}
    n = sum(len(p.rows) for p in plans.values())
    if n > MAX_GRANULES:
        raise AnimationLimitError(f"this animation would read {n} TROPOMI granules; at most {MAX_GRANULES}: narrow "
                                  f"the period or the zone", "end")
    return plans


def so2_stamp(loop: So2Loop, plans: dict) -> str:
    """A short hash of the loop and its granules' stamps: the answer's ETag."""
    stamps = tuple(p.stamp for p in plans.values())
    return hashlib.sha256(repr(("so2-anim", loop, stamps)).encode("utf-8")).hexdigest()[:32]


def so2_layout(loop: So2Loop) -> ExportLayout:
    """The frames' layout: the width asked for, the zone's shape (degrees square)."""
    z = loop.zone
    return export_layout(loop.width, (z.lat_max - z.lat_min) / (z.lon_max - z.lon_min), axes=True)


def so2_picture(archive, loop: So2Loop, day: pd.Timestamp, plan: so2map.Plan, lay: ExportLayout,
                notes: list[str]) -> tuple[Picture, str, str]:
    """The SO2 map of one day at the layout's map size (FumaroleError when nothing of the day can be drawn)."""
    from matplotlib.colors import ListedColormap, Normalize

    from app.render.swath import aggregate

    req = _so2_request(loop, day)
    if plan.rows.empty:
        raise NothingToDraw(f"no TROPOMI granule over {loop.zone.name} on {day:%Y-%m-%d}")
    layers = so2map.so2_layers(archive, req, plan.rows)
    notes.extend(f"{day:%Y-%m-%d}: skipped {msg}" for msg in layers.skipped)
    if not layers.layers:
        why = "; ".join(layers.skipped or layers.unavailable) or "no valid pixel in the zone"
        raise NothingToDraw(f"no TROPOMI orbit could be drawn: {why}")
    _, _, mw, mh = lay.map_box
    agg = aggregate(layers.layers, loop.zone.x_range, loop.zone.y_range, mw, mh)
    values = agg.transpose("y", "x").to_numpy()
    if agg["y"].to_numpy()[-1] > agg["y"].to_numpy()[0]:
        values = values[::-1]
    clim = loop.clim or so2map.DEFAULT_CLIM["column"]
    z = loop.zone
    pic = Picture(kind="map", time_text=f"{day:%d %B %Y} (UTC)", credits=overlays.credits_text(caliop=False),
                  image=values, extent=(z.lon_min, z.lon_max, z.lat_min, z.lat_max), cmap=ListedColormap(SO2),
                  norm=Normalize(*clim), colorbar_label=f"{req.label()} column (DU)",
                  central_longitude=z.central_longitude, volcano=loop.volcano, background="white")
    return pic, f"TROPOMI {req.label()} — {z.name}", f"{req.filters.describe()}; {len(layers.layers)} orbits"


def so2_animation(archive, loop: So2Loop, fmt: str, plans: dict | None = None) -> Animation:
    """The loop encoded as ``fmt`` (mp4 or gif); bounds checked before any granule is read."""
    if not loop.days:
        raise NothingToDraw("the period holds no day")
    lay = so2_layout(loop)
    check_bounds(loop.width, len(loop.days), lay, "end")
    plans = plans if plans is not None else so2_plans(archive, loop)
    zone = re.sub(r"[^A-Za-z0-9]+", "-", loop.zone.name).strip("-").lower() or "zone"
    name = f"fumarole_so2_{loop.level}_{zone}_{loop.days[0]:%Y%m%d}_{loop.days[-1]:%Y%m%d}.{fmt}"
    notes: list[str] = []

    def draw(day):
        return so2_picture(archive, loop, day, plans[day], lay, notes)

    out = _encode(loop.days, draw, lay, fmt, loop.fps, name, lambda d: f"{d:%Y-%m-%d}")
    out.skipped.extend(notes)
    return out


# ----------------------------------------------------------------------------------------------- encoding

def _frames(times: Sequence, draw, lay: ExportLayout, label, shown: list[str], skipped: list[str]
            ) -> Iterator[np.ndarray]:
    for t in times:
        try:
            pic, title, subtitle = draw(t)
            composed: Composed = compose_export(pic, lay, title, subtitle)
        except FumaroleError as exc:
            skipped.append(f"{label(t)}: {exc}")
            continue
        except (OSError, ValueError, KeyError) as exc:
            log.exception("animation frame %s failed", label(t))
            skipped.append(f"{label(t)}: {type(exc).__name__}: {exc}")
            continue
        shown.append(label(t))
        yield composed.rgb


def _encode(times: Sequence, draw, lay: ExportLayout, fmt: str, fps: float, name: str, label) -> Animation:
    shown: list[str] = []
    skipped: list[str] = []
    try:
        data = animate.encode(_frames(times, draw, lay, label, shown, skipped), fmt, fps)
    except animate.EncodeError:
        if not shown:
            raise NothingToDraw("no frame could be drawn: " + "; ".join(skipped)[:1500]) from None
        raise
    return Animation(data, fmt, name, (lay.w, lay.h), lay.map_box, shown, skipped, fps)
