"""The outreach kiosk's playlist and frames: a YAML list of events, each drawn as full-screen PNG pictures.

**Playlist** (:func:`load_playlist`): ``catalogs/kiosk.playlist.yaml`` by default, or the file named by
``FUMAROLE_KIOSK_PLAYLIST`` (only a file inside ``catalogs/`` or the state folder: the operator's, never a
visitor's). Each event is checked key by key (:func:`check_event`); a bad event is left out with one sentence naming
it and the key at fault, and the others play.

**Frames** (:func:`frame_times`, :func:`render_frame`): an event is one picture, or one per GEO slot / SO2 day of a
time range (an animation). A frame is composed by :func:`app.render.frame.compose` at the screen's size class
(:data:`SIZES`: 1920 × 1080 or 1080 × 1920): the title and caption in large type, the picture (SO2 map, CALIOP
curtain, GEO composite, global mosaic or SO2 mass series), its colour bar with units (a composite's legend), the
UTC time, the credits and a QR code (segno) to the same view in the full dashboard. The words are also written in
the PNG's text chunks (``Title``, ``Caption``, ``Time``, ``URL``, ``Colour bar``, ``Credits``, ``QR box``, ``Map
box``) so a program can check what a picture claims to show. Frames are kept in a byte-bounded cache
(``kiosk-frames``) and rendered ahead on one background thread (:class:`FrameSource`), so a transition is a swap.

**Loop** (:class:`KioskLoop`): which frame is on screen at a time of a clock (injected, for tests): the events in
order, each for its ``seconds`` (an animation's frames share them), then again from the first.

The data come through the services the API uses (:mod:`app.services.so2map`, :mod:`app.services.curtain`,
:mod:`app.services.geo`, :mod:`app.services.timeseries`); a frame whose data cannot be read raises
:class:`KioskDataError` with the reason, and the view keeps its last good frame.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from app.core.cache import bounded_cache
from app.core.state import state_dir
from app.data.errors import FumaroleError, UserInputError
from app.paths import CATALOGS
from app.render import frame as render_frame_mod
from app.render import geo as render_geo
from app.render import overlays
from app.render.colormaps import SO2, ContinuousScale, scale_for
from app.render.frame import Picture
from app.services import curtain as curtain_service
from app.services import geo as geo_service
from app.services import so2map, timeseries

__all__ = ["PRODUCTS", "SIZES", "KioskEvent", "Playlist", "KioskDataError", "load_playlist", "parse_playlist",
           "check_event", "playlist_path", "frame_times", "render_frame", "Frame", "FrameSource", "KioskLoop",
           "permalink", "FRAMES"]

log = logging.getLogger(__name__)

PRODUCTS = ("geo", "mosaic", "so2_map", "caliop_curtain", "so2_mass")
#: The screen size classes, (width, height) in pixels; a frame is drawn at one of them and scaled by the browser.
SIZES = {"landscape": (1920, 1080), "portrait": (1080, 1920)}
DEFAULT_PLAYLIST = CATALOGS / "kiosk.playlist.yaml"
KEYS = ("id", "title", "caption", "product", "seconds", "date", "time", "start", "end", "step", "zone", "bbox",
        "volcano", "satellite", "geo_product", "level", "variable", "granule", "radii_km", "max_frames")
MAX_SPAN = pd.Timedelta(days=31)
#: Rendered frames (PNG bytes), a small share of the memory budget (app.core.cache).
FRAMES = bounded_cache("kiosk-frames", 0.02)


class KioskDataError(FumaroleError):
    """An event's data could not be read or are missing (the reason, in words)."""


# ----------------------------------------------------------------------------------------------- playlist


@dataclass(frozen=True)
class KioskEvent:
    """One checked event of the playlist (see ``docs/kiosk.md`` for the keys)."""

    index: int
    id: str
    title: str
    caption: str
    product: str
    seconds: float
    start: pd.Timestamp
    end: pd.Timestamp | None = None  # None: one time (``start``)
    step: pd.Timedelta | None = None
    zone: so2map.Zone = so2map.ZONES["World"]
    volcano: str | None = None
    satellite: str | None = None
    geo_product: str = "ash"
    level: str = "7km"
    variable: str = "total_attenuated_backscatter_532"
    granule: str | None = None
    radii_km: tuple[float, ...] = (100.0, 300.0, 1000.0)
    max_frames: int = 8
    whole_days: bool = False

    def label(self) -> str:
        """``event 2 ("The plume drifts east")``."""
        return f'event {self.index + 1} ("{self.title}")'


@dataclass
class Playlist:
    """The events that passed the checks, the sentences of those that did not, and the operator's settings."""

    path: Path
    events: list[KioskEvent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    link_base: str | None = None


def playlist_path(path: str | os.PathLike | None = None) -> Path:
    """The playlist file: ``path``, else ``FUMAROLE_KIOSK_PLAYLIST``, else ``catalogs/kiosk.playlist.yaml``.

    Only a file inside ``catalogs/`` or the state folder is accepted (UserInputError otherwise, naming it).
    """
    raw = path if path is not None else os.environ.get("FUMAROLE_KIOSK_PLAYLIST") or DEFAULT_PLAYLIST
    p = Path(raw).expanduser()
    if not p.is_absolute():
        p = CATALOGS / p
    resolved = p.resolve()
    allowed = [CATALOGS.resolve(), state_dir().resolve()]
    if not any(resolved.is_relative_to(root) for root in allowed):
        raise UserInputError(f"the kiosk playlist {str(raw)!r} is outside {allowed[0]} and the state folder "
                             f"{allowed[1]}; put it in one of them")
    if resolved.suffix.lower() not in (".yaml", ".yml"):
        raise UserInputError(f"the kiosk playlist {str(raw)!r} is not a .yaml file")
    return resolved


def load_playlist(path: str | os.PathLike | None = None) -> Playlist:
    """Read and check the playlist (:func:`playlist_path`); the problems are logged, one line per bad event."""
    p = playlist_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"the kiosk playlist {p} cannot be read: {exc.strerror or exc}") from None
    playlist = parse_playlist(text, p)
    for problem in playlist.problems:
        log.warning("kiosk playlist %s: %s", p.name, problem)
    return playlist


def parse_playlist(text: str, path: str | os.PathLike = "<playlist>") -> Playlist:
    """A :class:`Playlist` from YAML text: ``events:`` (a list of mappings) and an optional ``link_base:``."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserInputError(f"the kiosk playlist {path} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise UserInputError(f"the kiosk playlist {path} needs a list under 'events:'")
    out = Playlist(Path(path))
    base = doc.get("link_base")
    if base is not None:
        if not isinstance(base, str) or not re.fullmatch(r"https?://[^\s?#]+", base):
            out.problems.append(f"link_base {base!r} is not an http(s) address; the links use the page's own")
        else:
            out.link_base = base.rstrip("/")
    for i, raw in enumerate(doc["events"]):
        event, problems = check_event(raw, i)
        out.problems.extend(problems)
        if event is not None:
            out.events.append(event)
    if not out.events:
        out.problems.append(f"no event of {path} can be shown")
    return out


def _name_of(raw, i: int) -> str:
    title = raw.get("title") if isinstance(raw, dict) else None
    return f'event {i + 1} ("{title}")' if isinstance(title, str) and title.strip() else f"event {i + 1}"


def _text(raw: dict, key: str, limit: int, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise ValueError("is missing")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be words, got {value!r}")
    value = " ".join(value.split())
    if len(value) > limit:
        raise ValueError(f"has {len(value)} characters; at most {limit} fit on the screen")
    if re.search(r"[<>{}$\\`]", value):
        raise ValueError("must be plain words (no <, >, {, }, $, \\ or `)")
    return value


def _time(value, key: str) -> tuple[pd.Timestamp, bool]:
    """(UTC time, whether the value was a date only)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float) and not hasattr(value, "year"):
        raise ValueError(f"must be a date or a UTC time, got {value!r}")
    date_only = hasattr(value, "year") and not hasattr(value, "hour") or (
        isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()) is not None)
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ValueError(f"is not a date or a UTC time: {value!r}") from None
    if t is pd.NaT or not 1990 <= t.year <= 2100:
        raise ValueError(f"is not a date or a UTC time: {value!r}")
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t, date_only


def _range_end(raw: dict, t0: pd.Timestamp) -> pd.Timestamp:
    if "end" not in raw:
        raise KeyError("end", "is missing (a time range needs start and end)")
    try:
        t1, end_date = _time(raw["end"], "end")
    except ValueError as exc:
        raise KeyError("end", str(exc)) from None
    if end_date:
        t1 = t1 + pd.Timedelta(days=1)  # a date as the end includes that day
    if not t1 > t0:
        raise KeyError("end", f"{raw['end']} is not after the start {raw['start']}")
    if t1 - t0 > MAX_SPAN:
        raise KeyError("end", f"the range is {(t1 - t0).days} days; at most {MAX_SPAN.days}")
    return t1


def _step(raw: dict) -> pd.Timedelta:
    try:
        step = pd.Timedelta(str(raw["step"]))
    except ValueError:
        raise KeyError("step", f"{raw['step']!r} is not a duration (e.g. 1D, 3h, 30min)") from None
    if not pd.Timedelta(minutes=5) <= step <= pd.Timedelta(days=7):
        raise KeyError("step", f"{raw['step']} is not between 5 minutes and 7 days")
    return step


def _period(raw: dict) -> dict:
    has = [k for k in ("date", "time", "start") if k in raw]
    if len(has) != 1:
        raise KeyError("date", "give one of date, time, or start and end" if not has
                       else f"give only one of {', '.join(has)}")
    key = has[0]
    try:
        t0, date_only = _time(raw[key], key)
    except ValueError as exc:
        raise KeyError(key, str(exc)) from None
    out = {"start": t0, "whole_days": date_only}
    if key == "start":
        out["end"] = _range_end(raw, t0)
    elif "end" in raw:
        raise KeyError("end", "goes with start (not with date or time)")
    if "step" in raw:
        out["step"] = _step(raw)
    return out


def _zone(raw: dict) -> so2map.Zone:
    if "zone" in raw and "bbox" in raw:
        raise KeyError("bbox", "give a zone or a bbox, not both")
    if "bbox" in raw:
        box = raw["bbox"]
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)):
            raise KeyError("bbox", f"must be [lon_min, lat_min, lon_max, lat_max] in degrees, got {box!r}")
        lon0, lat0, lon1, lat1 = (float(v) for v in box)
        if not (-180 <= lon0 <= 180 and -180 <= lon1 <= 180 and -90 <= lat0 < lat1 <= 90 and lon0 != lon1):
            raise KeyError("bbox", f"{box} is not a box of longitudes (-180…180) and latitudes (south < north)")
        return so2map.Zone.from_bbox(lon0, lat0, lon1, lat1)
    name = raw.get("zone", "World")
    if name not in so2map.ZONES:
        raise KeyError("zone", f"{name!r} is not a zone; zones are {', '.join(so2map.ZONES)}")
    return so2map.ZONES[name]


def _choice(raw: dict, key: str, options: Sequence[str], default: str | None) -> str | None:
    value = raw.get(key, default)
    if value is not None and value not in options:
        raise KeyError(key, f"{value!r} is not one of {', '.join(options)}")
    return value


def _seconds(raw: dict) -> float:
    value = raw.get("seconds", 15)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 600:
        raise KeyError("seconds", f"must be a number of seconds from 1 to 600, got {value!r}")
    return float(value)


def _granule(raw: dict) -> str:
    name = raw["granule"]
    if not isinstance(name, str) or "/" in name or "\\" in name:
        raise KeyError("granule", f"must be a CALIOP file name (no folder), got {name!r}")
    return name


def _volcano(raw: dict, product: str) -> dict:
    if "volcano" not in raw:
        if product == "so2_mass":
            raise KeyError("volcano", "is missing (the SO2 mass is summed around a volcano)")
        return {}
    try:
        return {"volcano": timeseries.resolve_volcano(raw["volcano"]).name}
    except UserInputError as exc:
        raise KeyError("volcano", str(exc)) from None


def _numbers(raw: dict) -> dict:
    out: dict = {}
    if "radii_km" in raw:
        try:
            out["radii_km"] = timeseries.check_radii(raw["radii_km"])
        except (UserInputError, TypeError, ValueError) as exc:
            raise KeyError("radii_km", str(exc)) from None
    if "max_frames" in raw:
        n = raw["max_frames"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 24:
            raise KeyError("max_frames", f"must be a whole number from 1 to 24, got {n!r}")
        out["max_frames"] = n
    return out


def _satellite(name) -> str:
    try:
        geo_service.geo.ring_position(str(name))  # the name only; its holder is found at each frame's time
    except UserInputError as exc:
        raise KeyError("satellite", str(exc)) from None
    return str(name)


def _product_keys(raw: dict, product: str) -> dict:
    out: dict = {}
    if product in ("geo", "mosaic"):
        out["geo_product"] = _choice(raw, "geo_product", render_geo.products(), "ash")
    if product == "geo":
        if "satellite" not in raw:
            raise KeyError("satellite", "is missing (a platform such as G16, or a ring position such as GOES-East)")
        out["satellite"] = _satellite(raw["satellite"])
    if product in ("so2_map", "so2_mass"):
        out["level"] = _choice(raw, "level", list(so2map.LEVELS), "7km")
    if product == "caliop_curtain":
        out["variable"] = _choice(raw, "variable", curtain_service.VARIABLES, "total_attenuated_backscatter_532")
        if "granule" in raw:
            out["granule"] = _granule(raw)
    return {**out, **_volcano(raw, product), **_numbers(raw)}


def check_event(raw, i: int) -> tuple[KioskEvent | None, list[str]]:
    """One playlist entry checked: the event, or None and the sentences naming the event and each key at fault."""
    name = _name_of(raw, i)
    if not isinstance(raw, dict):
        return None, [f"{name}: must be a mapping of keys (title, caption, product, …), got {raw!r}"]
    problems = [f"{name}: unknown key {k!r}; keys are {', '.join(KEYS)}" for k in raw if k not in KEYS]
    if "id" in raw and not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", str(raw["id"])):
        problems.append(f"{name}: key 'id' {raw['id']!r} must be 1 to 40 letters, digits, - or _")
    values: dict = {}
    for key, limit in (("title", 60), ("caption", 240)):
        try:
            values[key] = _text(raw, key, limit)
        except ValueError as exc:
            problems.append(f"{name}: key {key!r} {exc}")
    product = raw.get("product")
    if product not in PRODUCTS:
        problems.append(f"{name}: key 'product' {product!r} is not one of {', '.join(PRODUCTS)}")
    steps: list[Callable[[], dict]] = [lambda: {"seconds": _seconds(raw)}, lambda: _period(raw),
                                       lambda: {"zone": _zone(raw)}]
    if product in PRODUCTS:
        steps.append(lambda: _product_keys(raw, product))
    for step in steps:
        try:
            values.update(step())
        except KeyError as exc:
            key, why = exc.args if len(exc.args) == 2 else (exc.args[0], "is not valid")
            problems.append(f"{name}: key {key!r} {why}")
    if problems:
        return None, problems
    ident = str(raw.get("id") or re.sub(r"[^a-z0-9]+", "-", values["title"].lower()).strip("-"))[:40]
    return KioskEvent(index=i, id=ident, product=product, **values), []


# ----------------------------------------------------------------------------------------------- frames


def _event_span(event: KioskEvent) -> tuple[pd.Timestamp, pd.Timestamp]:
    if event.end is not None:
        return event.start, event.end
    if event.whole_days:
        return event.start, event.start + pd.Timedelta(days=1)
    return event.start, event.start + pd.Timedelta(minutes=1)


def _thin(times: list[pd.Timestamp], step: pd.Timedelta | None, n: int) -> list[pd.Timestamp]:
    if step is not None:
        kept, last = [], None
        for t in times:
            if last is None or t - last >= step:
                kept.append(t)
                last = t
        times = kept
    if len(times) > n:  # evenly spread over the range, first and last kept
        idx = np.unique(np.round(np.linspace(0, len(times) - 1, n)).astype(int))
        times = [times[k] for k in idx]
    return times


def frame_times(archive, event: KioskEvent) -> list[pd.Timestamp]:
    """The times of an event's frames that have data (index only, no file opened); [] when none has.

    GEO: the satellite's slots in the range (the slot at ``time``); mosaic: the range by ``step`` (default 1 h);
    SO2 map: each day of the range with a granule over the zone (the day of ``date``); curtain and mass: one.
    """
    t0, t1 = _event_span(event)
    if event.product == "geo":
        table = geo_service.geo.slots(archive, event.satellite, t0, t1)
        times = [pd.Timestamp(t) for t in table["time"]]
        return _thin(times, event.step, event.max_frames)
    if event.product == "mosaic":
        if event.end is None:
            return [t0]
        step = event.step or pd.Timedelta(hours=1)
        return _thin(list(pd.date_range(t0, t1 - pd.Timedelta(seconds=1), freq=step)), None, event.max_frames)
    if event.product == "so2_map":
        if event.end is None:
            day = t0.normalize()
            days = [day]
        else:
            step = event.step or pd.Timedelta(days=1)
            days = list(pd.date_range(t0.normalize(), t1 - pd.Timedelta(seconds=1), freq=step))
        kept = [d for d in days if not so2map.plan(archive, _so2_request(event, d)).rows.empty]
        return _thin(kept, None, event.max_frames)
    return [t0]


def _so2_request(event: KioskEvent, day: pd.Timestamp) -> so2map.So2Request:
    step = event.step or pd.Timedelta(days=1)
    return so2map.So2Request(t0=day, t1=day + step, zone=event.zone, level=event.level)


def _volcano_mark(name: str | None) -> tuple[float, float, str] | None:
    if not name:
        return None
    ref = timeseries.resolve_volcano(name)
    return ref.latitude, ref.longitude, ref.name


def _day_text(t: pd.Timestamp, step: pd.Timedelta | None = None) -> str:
    if step is not None and step < pd.Timedelta(days=1):
        return f"{t:%d %B %Y, %H:%M} – {t + step:%H:%M} UTC"
    return f"{t:%d %B %Y} (UTC)"


def _so2_picture(archive, event: KioskEvent, t: pd.Timestamp, grid: tuple[int, int]) -> Picture:
    req = _so2_request(event, t)
    rows = so2map.plan(archive, req).rows
    if rows.empty:
        raise KioskDataError(f"no TROPOMI granule over {event.zone.name} on {req.period_label()}")
    layers = so2map.so2_layers(archive, req, rows)
    for msg in layers.skipped:
        log.warning("kiosk %s: skipped %s", event.label(), msg)
    if not layers.layers:
        why = "; ".join(layers.skipped or layers.unavailable) or "no valid pixel in the zone"
        raise KioskDataError(f"no TROPOMI orbit could be drawn for {req.period_label()}: {why}")
    from matplotlib.colors import ListedColormap, Normalize

    from app.render.swath import aggregate

    agg = aggregate(layers.layers, event.zone.x_range, event.zone.y_range, grid[0], grid[1])
    values = agg.transpose("y", "x").to_numpy()
    if agg["y"].to_numpy()[-1] > agg["y"].to_numpy()[0]:
        values = values[::-1]
    clim = so2map.DEFAULT_CLIM["column"]
    return Picture(kind="map", time_text=_day_text(t, event.step), page="volcplume",
                   credits=overlays.credits_text(caliop=False),
                   state={"zone": event.zone.name, "date": f"{t:%Y-%m-%d}", "level": event.level},
                   image=values, extent=(event.zone.lon_min, event.zone.lon_max, event.zone.lat_min,
                                         event.zone.lat_max),
                   cmap=ListedColormap(SO2), norm=Normalize(*clim),
                   colorbar_label=f"{req.label()} column (DU)", central_longitude=event.zone.central_longitude,
                   volcano=_volcano_mark(event.volcano))


def _rgba_of(frame_da) -> np.ndarray:
    return render_geo.frame_rgba(frame_da)


def _geo_state(t: pd.Timestamp, product: str, **extra) -> dict:
    return {**extra, "date": f"{t:%Y-%m-%d}", "time": f"{t:%H:%M}", "product": product}


_geo_credits = render_frame_mod.geo_credits


def _field_colours(product: str) -> tuple:
    from matplotlib.colors import ListedColormap, Normalize

    style = render_geo.CLOUD_TOP[product]
    return ListedColormap(list(style.cmap)), Normalize(*style.clim), f"{style.title} ({style.units})"


def _geo_picture(archive, event: KioskEvent, t: pd.Timestamp, grid: tuple[int, int]) -> Picture:
    pos = geo_service.geo.ring_position(event.satellite, t, archive)
    scene = geo_service.load_product(archive, event.satellite, t, event.geo_product)
    zone = event.zone
    frame_da = render_geo.lonlat_frame(scene, event.geo_product, zone.x_range, zone.y_range, grid[0], grid[1])
    pic = Picture(kind="map", time_text=f"{t:%d %B %Y, %H:%M} UTC", page="georing",
                  credits=_geo_credits([pos.sensor], event.geo_product),
                  state=_geo_state(t, event.geo_product, mode="satellite", satellite=pos.platform),
                  extent=(zone.lon_min, zone.lon_max, zone.lat_min, zone.lat_max),
                  central_longitude=zone.central_longitude, volcano=_volcano_mark(event.volcano), background="black")
    if render_geo.is_cloud_top(event.geo_product):
        pic.image = np.asarray(frame_da.values)
        pic.cmap, pic.norm, pic.colorbar_label = _field_colours(event.geo_product)
    else:
        pic.image = _rgba_of(frame_da)
        pic.legend = _legend(scene, event.geo_product)
    pic.legend.insert(0, f"{pos.satellite} ({pos.name or 'GEO'}), {render_geo.product_title(event.geo_product)}")
    return pic


def _legend(scene, product: str) -> list[str]:
    small = render_geo.frame(scene, product, width=32)
    legend = small.attrs.get("legend") or ""
    return [str(x) for x in (legend if isinstance(legend, list | tuple) else [legend]) if x]


def _mosaic_picture(archive, event: KioskEvent, t: pd.Timestamp, grid: tuple[int, int]) -> Picture:
    ring = geo_service.ring_scenes(archive, t, event.geo_product)
    for problem in ring.problems:
        log.warning("kiosk %s: %s", event.label(), problem)
    zone = event.zone
    lon_range = zone.x_range
    lat_range = (max(zone.lat_min, -80.0), min(zone.lat_max, 80.0))
    m = render_geo.mosaic(ring.scenes, lon_range, lat_range, grid[0], grid[1], event.geo_product)
    sensors = [s.attrs.get("sensor", "") for s in ring.scenes.values() if s is not None]
    pic = Picture(kind="map", time_text=f"{t:%d %B %Y, %H:%M} UTC", page="georing",
                  credits=_geo_credits(sensors, event.geo_product),
                  state=_geo_state(t, event.geo_product, mode="mosaic"),
                  extent=(*lon_range, *lat_range), central_longitude=zone.central_longitude,
                  volcano=_volcano_mark(event.volcano), background="black")
    lat = m["y"].to_numpy()
    flip = lat.size > 1 and lat[1] > lat[0]
    if "value" in m:
        values = m["value"].to_numpy()
        pic.image = values[::-1] if flip else values
        pic.cmap, pic.norm, pic.colorbar_label = _field_colours(event.geo_product)
    else:
        rgba = m["rgba"].to_numpy()
        pic.image = rgba[::-1] if flip else rgba
        pic.legend = [f"{len([s for s in ring.scenes.values() if s is not None])} geostationary satellites, "
                      f"{render_geo.product_title(event.geo_product)}"]
    return pic


def _closest_granule(archive, rows: pd.DataFrame, volcano: str | None, variable: str) -> str:
    if volcano is None or len(rows) == 1:
        return str(rows["path"].iloc[0])
    from app.data.archive import CALIOP, read_curtain_cached

    ref = timeseries.resolve_volcano(volcano)
    best, best_d = None, math.inf
    for path in rows["path"]:
        c = read_curtain_cached(str(path), [_curtain_parts(variable)[0]], reader=archive.reader_key(CALIOP))
        la, lo = c["latitude"].values, c["longitude"].values
        d = np.nanmin((la - ref.latitude) ** 2 + ((lo - ref.longitude) * math.cos(math.radians(ref.latitude))) ** 2)
        if d < best_d:
            best, best_d = str(path), float(d)
    return best


def _curtain_parts(variable: str) -> list[str]:
    if variable == "depolarization_ratio_532":
        return ["total_attenuated_backscatter_532", "perpendicular_attenuated_backscatter_532"]
    return [variable]


def _scale_colours(variable: str) -> tuple:
    from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize

    scale = scale_for(variable)
    if isinstance(scale, ContinuousScale):
        return ListedColormap(list(scale.palette)), Normalize(scale.low, scale.high), None, scale
    cmap = ListedColormap(list(scale.colours))
    cmap.set_under(scale.under)
    cmap.set_over(scale.over)
    ticks = [b for b in scale.bounds if b in (1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1)] or [scale.bounds[0],
                                                                                          scale.bounds[-1]]
    return cmap, BoundaryNorm(list(scale.bounds), cmap.N), ticks, scale


def _curtain_picture(archive, event: KioskEvent, t: pd.Timestamp, grid: tuple[int, int]) -> Picture:
    t0, t1 = _event_span(event)
    if event.granule:
        path = str(curtain_service.find_granule(archive, event.granule)["path"])
    else:
        rows = curtain_service.granules(archive, t0, t1, event.zone.bbox())
        if rows.empty:
            raise KioskDataError(f"no CALIOP granule crosses {event.zone.name} in {t0:%Y-%m-%d %H:%M} … "
                                 f"{t1:%Y-%m-%d %H:%M} UTC")
        path = _closest_granule(archive, rows, event.volcano, event.variable)
    from app.data.archive import CALIOP, read_curtain_cached
    from app.render.curtain import curtain_rgba

    curtain = read_curtain_cached(path, _curtain_parts(event.variable), reader=archive.reader_key(CALIOP))
    rgba = curtain_rgba(curtain, event.variable, (0.0, 20.0), grid[0], grid[1])  # no PNG to decode
    cmap, norm, ticks, scale = _scale_colours(event.variable)
    name = archive.name_of(path).rsplit("/", 1)[-1]
    times = pd.to_datetime(curtain["time"].values)
    start, end = times.min(), times.max()
    lat = curtain["latitude"].values
    return Picture(kind="curtain", time_text=f"{start:%d %B %Y, %H:%M} – {end:%H:%M} UTC",
                   credits=overlays.credits_text(tropomi=False, volcanoes=False, basemap=False), page="volcplume",
                   state={"zone": event.zone.name, "date": f"{start:%Y-%m-%d}", "level": event.level,
                          "secondary": _secondary_label(event.variable), "caliop_granule": name},
                   image=rgba, extent=(float(lat[0]), float(lat[-1]), 0.0, 20.0), cmap=cmap, norm=norm,
                   colorbar_label=scale.label if "(" in scale.label else f"{scale.label} ({scale.units})",
                   colorbar_ticks=ticks)


def _secondary_label(variable: str) -> str:
    return {"depolarization_ratio_532": "CALIOP 532 nm depolarisation ratio"}.get(
        variable, "CALIOP 532 nm total backscatter")


def _mass_picture(archive, event: KioskEvent, t: pd.Timestamp, grid: tuple[int, int]) -> Picture:
    t0, t1 = _event_span(event)
    try:
        table, report = timeseries.compute_mass_timeseries(archive.index, event.volcano, t0, t1, event.radii_km,
                                                           so2map.LEVELS[event.level])
    except UserInputError as exc:
        raise KioskDataError(str(exc)) from None
    for name, reason in getattr(report, "corrupt", []) or []:
        log.warning("kiosk %s: skipped %s: %s", event.label(), name, reason)
    if table.empty:
        raise KioskDataError(f"no SO2 mass could be computed around {event.volcano} in the period")
    last = t1 - pd.Timedelta(days=1) if event.end is not None or event.whole_days else t0
    period = f"{t0:%d %B %Y}" if last.normalize() <= t0.normalize() else f"{t0:%d %B} – {last:%d %B %Y}"
    return Picture(kind="chart", time_text=f"{period} (UTC)", page="volcplume",
                   credits=overlays.credits_text(caliop=False, basemap=False),
                   state={"zone": event.zone.name, "date": f"{pd.Timestamp(table['time'].max()):%Y-%m-%d}",
                          "level": event.level, "volcano": event.volcano},
                   series=table, colorbar_label="SO2 mass (tonnes)",
                   legend=[f"TROPOMI SO2 {so2map.LEVEL_LABELS[event.level]} column summed around {event.volcano}"])


_PICTURES = {"so2_map": _so2_picture, "geo": _geo_picture, "mosaic": _mosaic_picture,
             "caliop_curtain": _curtain_picture, "so2_mass": _mass_picture}


def permalink(picture: Picture, base: str) -> str:
    """The URL of the same view in the full dashboard (its permalink query)."""
    query = urllib.parse.urlencode({k: v for k, v in picture.state.items() if v is not None})
    return f"{base.rstrip('/')}/{picture.page}?{query}"


@dataclass
class Frame:
    """A rendered frame: the PNG and what it says."""

    png: bytes
    title: str
    caption: str
    time_text: str
    url: str
    size: tuple[int, int]


def _grid_for(event: KioskEvent, size: tuple[int, int]) -> tuple[int, int]:
    w, h = size
    aw, ah = (int(w * 0.72), int(h * 0.62)) if w > h else (int(w * 0.92), int(h * 0.45))
    if event.product in ("caliop_curtain", "so2_mass"):
        return max(64, aw), max(64, ah)
    z = event.zone
    span_x, span_y = z.lon_max - z.lon_min, z.lat_max - z.lat_min
    scale = min(aw / span_x, ah / span_y)
    return max(16, int(span_x * scale)), max(16, int(span_y * scale))


def _frame_key(archive, event: KioskEvent, t, size: str, link_base: str) -> tuple:
    return ("kiosk", getattr(archive, "catalog_source", id(archive)), event, pd.Timestamp(t), size, link_base)


def render_frame(archive, event: KioskEvent, t: pd.Timestamp, size: str = "landscape",
                 link_base: str = "http://localhost:5006") -> Frame:
    """One frame of an event at the screen size class ``size`` (cached); KioskDataError when its data fail."""
    if size not in SIZES:
        raise UserInputError(f"unknown screen size class {size!r}; one of {', '.join(SIZES)}")
    key = _frame_key(archive, event, t, size, link_base)
    hit = FRAMES.get(key)
    if hit is not None:
        return hit
    pixels = SIZES[size]
    try:
        picture = _PICTURES[event.product](archive, event, pd.Timestamp(t), _grid_for(event, pixels))
    except KioskDataError:
        raise
    except FumaroleError as exc:
        raise KioskDataError(str(exc)) from None
    except (OSError, ValueError, KeyError) as exc:
        log.exception("kiosk %s: the frame of %s failed", event.label(), t)
        raise KioskDataError(f"{type(exc).__name__}: {exc}") from None
    url = permalink(picture, link_base)
    png = compose(picture, event, pixels, url)
    out = Frame(png, event.title, event.caption, picture.time_text, url, pixels)
    FRAMES.put(key, out, len(png) + 2048)
    return out



def compose(pic: Picture, event: KioskEvent, size: tuple[int, int], url: str) -> bytes:
    """The frame's PNG (:func:`app.render.frame.compose`), its text chunks naming the event."""
    return render_frame_mod.compose(pic, size, event.title, event.caption, url, {"Event": event.id})


# ----------------------------------------------------------------------------------------------- loop, source


class KioskLoop:
    """Which (event, frame) is on screen at a time: each event for its seconds (split among its frames), looping.

    ``durations[e][f]`` is the seconds of frame ``f`` of event ``e``; ``clock`` returns seconds (monotonic).
    """

    def __init__(self, durations: Sequence[Sequence[float]], clock: Callable[[], float] = time.monotonic):
        self.durations = [list(d) for d in durations if len(d)]
        if not self.durations:
            raise ValueError("a kiosk loop needs at least one frame")
        self.clock = clock
        self.t0 = clock()
        self.cycle = sum(sum(d) for d in self.durations)

    def at(self, now: float | None = None) -> tuple[int, int]:
        """The (event, frame) on screen at ``now`` (default: the clock's time)."""
        elapsed = ((self.clock() if now is None else now) - self.t0) % self.cycle
        for e, frames in enumerate(self.durations):
            for f, seconds in enumerate(frames):
                if elapsed < seconds:
                    return e, f
                elapsed -= seconds
        return len(self.durations) - 1, len(self.durations[-1]) - 1  # rounding at the very end of the cycle

    def after(self, pos: tuple[int, int]) -> tuple[int, int]:
        """The (event, frame) that follows ``pos``."""
        e, f = pos
        if f + 1 < len(self.durations[e]):
            return e, f + 1
        return (e + 1) % len(self.durations), 0


_RENDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kiosk-render")
_INFLIGHT: dict = {}
_INFLIGHT_LOCK = threading.Lock()


class FrameSource:
    """The frames of a playlist over an archive, rendered on one background thread (shared by every session).

    :meth:`future` returns a Future of a :class:`Frame` (done at once when cached); a failure is a
    :class:`KioskDataError` (logged once per minute per frame) and is tried again after :attr:`retry_s`.
    """

    retry_s = 60.0

    def __init__(self, archive, playlist: Playlist, link_base: str, clock: Callable[[], float] = time.monotonic):
        self.archive = archive
        self.playlist = playlist
        self.link_base = playlist.link_base or link_base
        self.clock = clock
        self.times: list[list[pd.Timestamp | None]] = []
        self.reasons: dict[int, str] = {}
        self._failed: dict = {}
        for event in playlist.events:
            try:
                times = frame_times(archive, event)
            except FumaroleError as exc:
                times, self.reasons[event.index] = [], str(exc)
            if not times:
                self.reasons.setdefault(event.index, "no data in the archive for its time and zone")
                log.warning("kiosk %s: %s", event.label(), self.reasons[event.index])
            self.times.append(times or [None])

    def durations(self) -> list[list[float]]:
        """Seconds per frame of each event (the event's seconds shared among its frames)."""
        return [[ev.seconds / len(t)] * len(t) for ev, t in zip(self.playlist.events, self.times, strict=True)]

    def future(self, pos: tuple[int, int], size: str) -> Future:
        """The frame at ``pos`` (event, frame) for the size class ``size``."""
        e, f = pos
        event, t = self.playlist.events[e], self.times[e][f]
        done: Future = Future()
        if t is None:
            done.set_exception(KioskDataError(self.reasons.get(event.index, "no data")))
            return done
        key = _frame_key(self.archive, event, t, size, self.link_base)
        hit = FRAMES.get(key)
        if hit is not None:
            done.set_result(hit)
            return done
        failed = self._failed.get(key)
        if failed is not None and self.clock() - failed[0] < self.retry_s:
            done.set_exception(failed[1])
            return done
        with _INFLIGHT_LOCK:
            running = _INFLIGHT.get(key)
            if running is None:
                running = _RENDER.submit(render_frame, self.archive, event, t, size, self.link_base)
                _INFLIGHT[key] = running
                running.add_done_callback(lambda fut, k=key: self._settle(k, fut))
        return running

    def _settle(self, key, fut: Future) -> None:
        with _INFLIGHT_LOCK:
            _INFLIGHT.pop(key, None)
        exc = fut.exception()
        if exc is not None:
            if not isinstance(exc, KioskDataError):
                log.error("kiosk frame %s failed", key[2].label(), exc_info=exc)
            else:
                log.warning("kiosk %s at %s: %s", key[2].label(), key[3], exc)
            self._failed[key] = (self.clock(), exc)
        else:
            self._failed.pop(key, None)

    def event(self, pos: tuple[int, int]) -> KioskEvent:
        """The event at ``pos``."""
        return self.playlist.events[pos[0]]
