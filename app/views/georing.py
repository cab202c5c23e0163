"""The GEO-ring dashboard's state and views: the ring of latest images, one satellite in depth, the global mosaic.

:class:`GeoRing` holds everything a forecaster can set as ``param`` parameters — mode, satellite, date, slot time,
product, coastlines, play/pause and speed, the view's ranges — so a test drives it without a browser and the URL
holds the whole state (a permalink). The work is split so cheap changes stay cheap:

1. the slot's channels are read once per process (``app.data.geo``'s cache; only the channels the product uses);
2. a frame is the product regridded to the screen, then composed (:func:`app.render.geo.frame`), kept in a
   per-process cache: an animation that loops, or a step back, only looks frames up;
3. coastlines are projected once per satellite and drawn as one path; turning them off redraws nothing else.

**The ring of the date viewed.** Who holds each ring position is data (``assets/platforms.yaml``, overridden by
the catalogue): the ring, the satellite list and the mosaic are those of the date and slot time being viewed
(2021-04-12: GOES-17, GOES-16, Meteosat-11, Meteosat-8, Himawari-8; 2025-07-08: GOES-18, GOES-19, Meteosat-12,
Meteosat-9, Himawari-9). A permalink names a satellite by its platform id (``satellite=G16``) or by a position
(``satellite=GOES-East``, resolved by the date); moving the date across a handover follows the position.

**The timeline of a day.** The times offered for a satellite are its own slots and the slots other ring satellites
have at times on its own repeat cycle: a slot that should be there but is not (Meteosat-8's 15:00 in the tiny
archive, its 13:00 in the demo) is offered, says "no slot" when chosen, and the animation skips it, saying so.

**Bad input** (a missing slot, a truncated file, a channel a recipe needs and the slot lacks) never raises into the
page: the sentence goes to :attr:`GeoRing.alert` (shown at the top of the page) and to the log console.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import itertools
import json
import os
import re
import time as clock
from collections import OrderedDict, deque

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr
from panel.custom import JSComponent

from app.data import geo
from app.data import platforms as constellation
from app.data.archive import Archive, get_archive
from app.data.basemap import coastline_lines
from app.data.errors import FumaroleError, UserInputError
from app.data.index import without_root
from app.paths import ASSETS
from app.render import geo as render
from app.render import overlays
from app.science import rgb as rgbmod
from app.services import animation as animation_service
from app.services import geo as services
from app.views.log_console import LogConsole
from app.views.shell import animation_export, labelled_checkbox
from app.views.volcplume import data_age_text

hv.extension("bokeh", logo=False)

MODES = {"Ring": "ring", "One satellite": "satellite", "Mosaic": "mosaic"}
def _lon_text(lon: float) -> str:
    """``75.2° W``, ``0°``, ``140.7° E``."""
    return "0°" if lon == 0 else f"{abs(lon):g}° {'E' if lon > 0 else 'W'}"


def _satellite_label(pos: geo.RingPosition) -> str:
    """``GOES-East — GOES-19 (75.2° W)``; a satellite outside the ring then: ``GOES-16 (75.2° W)``."""
    head = f"{pos.name} — {pos.satellite}" if pos.name else pos.satellite
    return f"{head} ({_lon_text(pos.sub_lon)})"


#: Every platform of assets/platforms.yaml (labels of its latest position); each instance offers its date's ring.
SATELLITES = {_satellite_label(geo.ring_position(key)): key for key in constellation.platforms()}
PRODUCTS = {render.product_title(name): name for name in render.products()}
MAP_SIZE = 640
MAP_MAX = 780
RING_SIZE = 180
RING_FRAME = 360  # ring thumbnails are made at this size and scale to their card (180 px … 360 px)
MOSAIC_WIDTH, MOSAIC_HEIGHT = 900, 400
MOSAIC_MAX = 1500
#: The ring's thumbnails as PNG bytes, by (platform, slot time, product, coastlines), for the whole process.
RING_PNGS: dict[tuple, tuple[bytes | None, str, str]] = {}
#: Frames made ahead of the animation (in a background thread, into the frame cache).
PREFETCH_AHEAD = 6
#: Frames a page's player holds (sent ahead; the oldest received is dropped first, here and in the page alike).
PLAYER_FRAMES = 32
#: The page's player is used unless ``FUMAROLE_GEO_PLAYER=0`` (the benchmark's baseline: each step drawn by the server).
USE_PLAYER = os.environ.get("FUMAROLE_GEO_PLAYER", "1") != "0"
#: The player's frames as sent (deflated image and stamp columns), by platform, product, slot and view.
PAYLOADS: OrderedDict = OrderedDict()
PAYLOADS_MAX = 64
#: The parameters a permalink holds (the URL is the state: reopening it shows the same picture).
URL_STATE = ["mode", "satellite", "date", "time", "product", "coastlines", "playing", "speed", "x_range", "y_range",
             "lon_range", "lat_range", "show_source"]
MOSAIC_LON, MOSAIC_LAT = (-180.0, 180.0), (-80.0, 80.0)
CREDITS = {
    "abi": "NOAA (GOES ABI L1b)",
    "ahi": "JMA (Himawari AHI)",
    "seviri": "EUMETSAT (Meteosat SEVIRI)",
    "fci": "EUMETSAT (Meteosat FCI)",
    "ctth": "NWC SAF (GEO CTTH)",
}
PRODUCT_NOTES = {
    "cloud_top_height": "NWC SAF GEO cloud-top height above sea level, km; grey: clear sky (no cloud top).",
    "cloud_top_temperature": "NWC SAF GEO cloud-top temperature, K; grey: clear sky (no cloud top).",
    "cloud_top_pressure": "NWC SAF GEO cloud-top pressure, hPa; grey: clear sky (no cloud top).",
}


def _hhmm(t: pd.Timestamp) -> str:
    return f"{pd.Timestamp(t):%H:%M}"


def _name_frame(plot, element) -> None:
    """Bokeh hook: the frame's renderer is named ``georing-frame`` (the page's player swaps its source's columns)."""
    plot.handles["glyph_renderer"].name = "georing-frame"


def _slot_key(t) -> str:
    return f"{pd.Timestamp(t):%Y-%m-%dT%H:%M}" if t is not None else ""


class FramePlayer(JSComponent):
    """The page's frame player (``assets/georing_player.js``): frames sent ahead, swapped in the browser.

    The server sends each frame once, as the exact columns of the Bokeh image and stamp sources
    (:func:`app.render.geo.wire_columns`); the page swaps them into the plot's sources locally, at the asked rate
    while playing and at once on ``<`` / ``>``. The rate is measured in the page; the slot shown goes back to the
    server (the state, the slot list, the title and the URL follow it), and on Pause the slot the page stopped on.
    """

    slot = param.String(default="", doc="the slot shown (YYYY-MM-DDTHH:MM): set by the state, and by the page")
    order = param.List(default=[], doc="the day's slots, in order (the animation loops over them)")
    skip = param.List(default=[], doc="slots the animation skips (their frame cannot be made)")
    view = param.String(default="", doc="the view the frames are made for (platform, product, ranges, size)")
    playing = param.Boolean(default=False, doc="the page's timer runs")
    fps = param.Number(default=2.0, doc="asked rate")
    rate = param.Number(default=None, allow_None=True, doc="rate measured in the page")
    stopped = param.String(default="", doc="set by the page when its timer stops: the slot shown, and a nonce")
    max_frames = param.Integer(default=PLAYER_FRAMES, doc="frames the page keeps")

    _esm = ASSETS / "georing_player.js"


def _name_stamp(plot, element) -> None:
    """Bokeh hook: the stamp's renderer is named ``georing-stamp`` (tests find its image data in the page)."""
    plot.handles["glyph_renderer"].name = "georing-stamp"


def _wheel_after_click(plot, element) -> None:
    """Bokeh hook: the wheel scrolls the page until the image is clicked; then it zooms the image."""
    from bokeh.models import CustomJS, WheelZoomTool

    fig = plot.state
    if "fumarole-wheel" in fig.tags:
        return
    wheel = next((t for t in fig.toolbar.tools if isinstance(t, WheelZoomTool)), None)
    if wheel is None:
        return
    fig.tags = [*fig.tags, "fumarole-wheel"]
    fig.toolbar.active_scroll = None
    fig.js_on_event("tap", CustomJS(args={"toolbar": fig.toolbar, "wheel": wheel},
                                    code="toolbar.active_scroll = wheel"))


def _sub_lon(pos: geo.RingPosition) -> str:
    return _lon_text(pos.sub_lon)


def _age_text(age: pd.Timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h" + (f" {minutes % 60:02d} min" if minutes % 60 else "")


class GeoRing(pn.viewable.Viewer):
    """Geostationary imagery: the latest image of each ring satellite, one satellite in depth, the mosaic."""

    mode = param.Selector(default="ring", objects=MODES, doc="ring of latest images, one satellite, or the mosaic")
    satellite = param.Selector(default="G16", objects=SATELLITES, check_on_set=False,
                               doc="satellite (platform id) shown in depth; a position name is resolved by the date")
    date = param.CalendarDate(default=None, allow_None=True, doc="UTC day of the slot shown")
    time = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False,
                          doc="slot time HH:MM (UTC) in the day's timeline")
    product = param.Selector(default="ash", objects=PRODUCTS, doc="RGB composite or NWC SAF cloud-top field")
    coastlines = param.Boolean(default=True, doc="draw coastlines")
    playing = param.Boolean(default=False, doc="animation running")
    speed = param.Number(default=2.0, bounds=(0.25, 10.0), step=0.25, doc="animation speed (frames per second)")
    x_range = param.Range(default=None, allow_None=True, doc="view of one satellite: x (projection metres)")
    y_range = param.Range(default=None, allow_None=True, doc="view of one satellite: y (projection metres)")
    lon_range = param.Range(default=None, allow_None=True, doc="view of the mosaic: longitudes (degrees)")
    lat_range = param.Range(default=None, allow_None=True, doc="view of the mosaic: latitudes (degrees)")
    show_source = param.Boolean(default=False, doc="mosaic: show which satellite each pixel came from")

    alert = param.String(default="", precedence=-1, doc="derived: what could not be shown, and why")
    alert_level = param.Selector(default="danger", objects=["danger", "warning", "info"], precedence=-1,
                                 doc="derived: how serious the alert is")
    skipped = param.List(default=[], precedence=-1, doc="derived: slot times the animation skipped, and why")
    rate = param.Number(default=None, allow_None=True, precedence=-1,
                        doc="derived: the animation's measured rate (frames per second) over its last steps")
    redraw = param.Integer(default=0, precedence=-1,
                           doc="derived: bumped when the server redraws the image (a slot the page's player lacks)")
    pausing = param.Boolean(default=False, precedence=-1,
                            doc="derived: Pause asked, the page's player not yet said which frame it stopped on")

    def __init__(self, archive: Archive | None = None, log: LogConsole | None = None, **params):
        self.archive = archive or get_archive()
        self.log = log or LogConsole()
        self._callback = None
        self._steps: deque[float] = deque(maxlen=12)
        self._count = itertools.count()
        self._syncing = False
        self._alert: pn.pane.Alert | None = None
        self._last_view = (None, None, MAP_SIZE, MAP_SIZE)
        self._last_mosaic_view = (MOSAIC_LON, MOSAIC_LAT, MOSAIC_WIDTH, MOSAIC_HEIGHT)
        self._mosaics: dict = {}
        self._frames: dict = {}
        self._timelines: dict[tuple[str, dt.date], list[pd.Timestamp]] = {}
        self._player: FramePlayer | None = None
        self._live = False  # a page's player has said it is ready
        self._doc = None
        self._view_key = ""
        self._delivered: OrderedDict = OrderedDict()
        params["satellite"] = self._platform_of(params.get("satellite", "GOES-East"), params.get("date"),
                                                params.get("time"))
        if params.get("date") is None or params.get("time") is None:
            try:
                latest = geo.latest_slot(self.archive, params["satellite"])
            except FumaroleError:  # an unknown satellite: said by _on_day
                latest = None
            if latest is not None and params.get("date") is None:
                params["date"] = latest.time.date()
            if latest is not None and params.get("time") is None:
                params["time"] = _hhmm(latest.time)
        super().__init__(**params)
        self._on_day()
        self.param.watch(self._follow_position, ["date"])
        self.param.watch(self._on_slot, ["time", "date"])
        self.param.watch(self._player_follows, ["satellite", "product", "mode"])
        self._pointer = hv.streams.PointerXY(x=None, y=None)
        self._tap = hv.streams.Tap(x=None, y=None)
        self._mosaic_pointer = hv.streams.PointerXY(x=None, y=None)
        self._mosaic_tap = hv.streams.Tap(x=None, y=None)

    def _platform_of(self, name: str, date=None, time=None) -> str:
        """The platform id of a satellite given by id, name or position (a position: its holder at date/time)."""
        when = None
        if date is not None:
            when = pd.Timestamp(f"{date} {time or '12:00'}")
        for at in (when, None):  # a position nobody held that day: its latest holder with slots
            try:
                return geo.ring_position(name, at, self.archive).platform
            except FumaroleError:
                continue
        return str(name)  # said when shown: "unknown geostationary satellite …"

    @property
    def when(self) -> pd.Timestamp | None:
        """The instant viewed: the slot time, else noon of the date, else None."""
        if self.slot_time is not None:
            return self.slot_time
        return None if self.date is None else pd.Timestamp(f"{self.date} 12:00")

    def ring(self) -> tuple[geo.RingPosition, ...]:
        """The ring of the time viewed (today's when no date is set)."""
        return geo.ring_at(self.when, self.archive)

    def _follow_position(self, event) -> None:
        """A new date across a handover: show the satellite that holds, then, the position shown before."""
        if event.old is None or event.new is None:
            return
        clock = self.time or "12:00"
        before, after = pd.Timestamp(f"{event.old} {clock}"), pd.Timestamp(f"{event.new} {clock}")
        try:
            held = geo.ring_position(self.satellite, before, self.archive)
            if not held.name or not held.covers(before):
                return
            now = geo.ring_position(held.name, after, self.archive)
        except FumaroleError:
            return
        if now.platform != self.satellite:
            self.satellite = now.platform

    def _refresh_choices(self) -> None:
        """The satellite list: the ring of the date viewed, and the satellite shown if it is not in it."""
        choices = {_satellite_label(pos): pos.platform for pos in self.ring() if pos.platform}
        if self.satellite not in choices.values():
            try:
                choices[_satellite_label(geo.ring_position(self.satellite, self.when, self.archive))] = self.satellite
            except FumaroleError:
                choices[str(self.satellite)] = self.satellite
        self.param.satellite.objects = choices

    # ------------------------------------------------------------------------------------------- timeline
    @property
    def position(self) -> geo.RingPosition:
        """The satellite shown in depth, and the ring position it held at the time viewed."""
        return geo.ring_position(self.satellite, self.when, self.archive)

    def timeline(self, platform: str | None = None, day: dt.date | None = None) -> list[pd.Timestamp]:
        """The slot times offered for a satellite on a day (its own slots, and the ring's on its repeat cycle)."""
        platform = platform or self.satellite
        day = day or self.date
        key = (platform, day)
        if key not in self._timelines:
            t0 = pd.Timestamp(day)
            t1 = t0 + pd.Timedelta(days=1)
            own = set(geo.slots(self.archive, platform, t0, t1)["time"])
            cycle = geo.ring_position(platform, t0, self.archive).repeat_minutes
            if own:  # a satellite with no slot at all that day offers none
                for pos in geo.ring_at(t0 + pd.Timedelta(hours=12), self.archive):
                    if pos.platform and pos.platform != platform:
                        others = geo.slots(self.archive, pos.platform, t0, t1)["time"]
                        own |= {t for t in others if (t.hour * 60 + t.minute) % cycle == 0}
            self._timelines[key] = sorted(pd.Timestamp(t) for t in own)
        return self._timelines[key]

    def ring_timeline(self, day: dt.date | None = None) -> list[pd.Timestamp]:
        """Every slot time of any ring satellite on a day (the mosaic's times)."""
        day = day or self.date
        ring = geo.ring_at(pd.Timestamp(day) + pd.Timedelta(hours=12), self.archive)
        return sorted({t for pos in ring if pos.platform for t in self.timeline(pos.platform, day)})

    def _times(self) -> list[pd.Timestamp]:
        return self.ring_timeline() if self.mode == "mosaic" else self.timeline()

    @param.depends("satellite", "date", "mode", watch=True)
    def _on_day(self) -> None:
        """A new satellite or day: offer that day's timeline; keep the time if it is in it, else the nearest."""
        self._timelines.clear()  # a new day (or satellite) looks at the archive again: new slots show up
        try:
            geo.ring_position(self.satellite, None, self.archive)
        except FumaroleError as exc:  # a satellite nobody knows (a hand-made URL): said, and GOES-East shown
            self.report("error", str(exc))
            self.satellite = self._platform_of("GOES-East", self.date, self.time)
            return
        key = self._platform_of(self.satellite, self.date, self.time)
        if key != self.satellite:  # a position or satellite name (a permalink): its platform id on that date
            self.satellite = key
            return
        self._refresh_choices()
        if self.date is None:
            self.param.time.objects = []
            return
        times = self._times()
        labels = [_hhmm(t) for t in times]
        self.param.time.objects = labels
        if labels and self.time not in labels:
            if self.time is None:
                self.time = labels[-1]
            else:
                want = pd.Timestamp(f"{self.date} {self.time}")
                self.time = labels[int(np.argmin([abs((t - want).total_seconds()) for t in times]))]

    @param.depends("satellite", watch=True)
    def _on_satellite(self) -> None:
        self.param.update(x_range=None, y_range=None)

    @property
    def slot_time(self) -> pd.Timestamp | None:
        """The slot shown: date + time, UTC."""
        if self.date is None or not self.time:
            return None
        return pd.Timestamp(f"{self.date} {self.time}")

    # ------------------------------------------------------------------------------------------- messages
    def report(self, level: str, message: str, *, alert: bool = True) -> None:
        """Write a sentence to the log console and (for warnings and errors) to the page's alert.

        Files are named relative to the archive root: no page shows where the server keeps its files.
        """
        message = without_root(message, self.archive.root)
        self.log.write(level, message)
        if alert:
            self.param.update(alert=message, alert_level={"error": "danger"}.get(level, level))

    def _what(self, platform: str, t: pd.Timestamp, product: str) -> str:
        satellite = geo.ring_position(platform, t, self.archive).satellite
        return f"{satellite} {t:%Y-%m-%d %H:%M} UTC {render.product_title(product)}"

    # ------------------------------------------------------------------------------------------- frames
    def load(self, platform: str | None = None, time=None, product: str | None = None) -> xr.Dataset:
        """The data of a product for a slot (defaults: the current ones); raises the data layer's errors."""
        return services.load_product(self.archive, platform or self.satellite, time if time is not None else
                                   self.slot_time, product or self.product)

    def frame_at(self, time=None, x_range=None, y_range=None, width: int = MAP_SIZE, height: int | None = None,
                 platform: str | None = None, product: str | None = None) -> xr.DataArray:
        """The frame of a slot over a view (cached per process); raises FumaroleError when it cannot be made."""
        product = product or self.product
        t = pd.Timestamp(time if time is not None else self.slot_time)
        key = (platform or self.satellite, t, product, x_range and tuple(x_range), y_range and tuple(y_range),
               int(width), height and int(height))
        hit = self._frames.get(key)  # the animation's frames: no slot look-up, no scene key per step
        if hit is not None:
            return hit
        data = self.load(platform, t, product)
        out = render.frame(data, product, x_range, y_range, width, height)
        self._frames[key] = out  # the frames themselves live in render.FRAMES; these are references
        while len(self._frames) > 64:
            self._frames.pop(next(iter(self._frames)), None)
        return out

    def current_frame(self, x_range=None, y_range=None, width: int = MAP_SIZE,
                      height: int | None = None) -> xr.DataArray | None:
        """The frame shown, or None with the reason in :attr:`alert` and the log."""
        t = self.slot_time
        if t is None:
            self.report("warning", f"no {self.position.satellite} slot in the archive")
            return None
        try:
            out = self.frame_at(t, x_range, y_range, width, height)
        except FumaroleError as exc:
            self.report("error", f"{self._what(self.satellite, t, self.product)} cannot be shown: {exc}")
            return None
        self.alert = ""
        return out

    def _grid_scene(self, platform: str | None = None) -> xr.Dataset | None:
        """One channel of a satellite's latest slot (cached): its grid, projection and disk; None if it has none."""
        pos = geo.ring_position(platform or self.satellite, None, self.archive)
        slot = geo.latest_slot(self.archive, pos.platform)
        if slot is None or not slot.channels:
            return None
        channel = next(c for c in slot.channels if c != "hrv")
        return geo.read_scene(self.archive, pos.platform, slot.time, [channel])

    def disk_ranges(self, platform: str | None = None):
        """(x_range, y_range) of a satellite's whole grid, from its latest slot (None if it has none)."""
        scene = self._grid_scene(platform)
        return None if scene is None else render.disk_ranges(scene)

    # ------------------------------------------------------------------------------------------- stepping
    def step_slot(self, n: int = 1) -> None:
        """Move ``n`` slots along the timeline (into the next or previous day at its ends)."""
        times = self._times()
        current = self.slot_time
        if not times or current is None:
            return
        later = [t for t in times if t > current]
        earlier = [t for t in times if t < current]
        if n > 0 and later:
            self.time = _hhmm(later[min(n, len(later)) - 1])
            return
        if n < 0 and earlier:
            self.time = _hhmm(earlier[-min(-n, len(earlier))])
            return
        self._to_next_day_with_slots(1 if n > 0 else -1, first=n > 0)

    def _to_next_day_with_slots(self, direction: int, first: bool) -> None:
        days = [pd.Timestamp(d).date() for d in geo.days(self.archive, self.satellite)]
        ahead = [d for d in days if (d > self.date if direction > 0 else d < self.date)]
        if not ahead:
            edge = "last" if direction > 0 else "first"
            self.report("info", f"{self.time} on {self.date} is the {edge} {self.position.satellite} slot of the "
                                f"archive")
            return
        day = ahead[0] if direction > 0 else ahead[-1]
        times = self._times_of(day)
        self._set_slot(day, _hhmm(times[0] if first else times[-1]))

    def _times_of(self, day: dt.date) -> list[pd.Timestamp]:
        return self.ring_timeline(day) if self.mode == "mosaic" else self.timeline(day=day)

    def _set_slot(self, day: dt.date, hhmm: str) -> None:
        """Move to a slot of another day: the day's slot list first, then date and time in one change.

        The slot list (``time``'s objects) is the new day's before the date and time change, so no widget sees a
        time that is not in its list (Panel's Select then falls back to the first slot: the defect of issue 11,
        where the list and URL said 18:00 and the image 00:00).
        """
        self.param.time.objects = [_hhmm(t) for t in self._times_of(day)]
        self.param.update(date=day, time=hhmm)

    def step_day(self, n: int = 1) -> None:
        """Move ``n`` days, to the slot nearest the same time of day; a day without slots is said, not shown."""
        if self.date is None:
            return
        day = self.date + dt.timedelta(days=n)
        times = self._times_of(day)
        if not times:
            days = ", ".join(str(pd.Timestamp(d).date()) for d in geo.days(self.archive, self.satellite))
            self.report("warning", f"no {self.position.satellite} slot on {day}; days with slots: {days or 'none'}")
            return
        want = pd.Timestamp(f"{day} {self.time or '00:00'}")
        best = min(times, key=lambda t: abs((t - want).total_seconds()))
        self._set_slot(day, _hhmm(best))

    def play_step(self) -> pd.Timestamp | None:
        """One animation step: the next slot of the day (looping) whose frame can be made; bad slots skipped.

        The frame is made (or found in the cache) before the time changes, so the plot's redraw only looks it up.
        Each skipped slot is said in the log and in :attr:`skipped`.
        """
        times = self._times()
        current = self.slot_time
        if not times or current is None or (self._callback is not None and not self.playing):
            return None  # a step queued before Pause: the animation stops on the frame shown
        start = next((i for i, t in enumerate(times) if t > current), 0)
        for k in range(len(times)):
            t = times[(start + k) % len(times)]
            try:
                self._make(t)
            except FumaroleError as exc:
                reason = f"animation skipped {_hhmm(t)}: {exc}"
                self.skipped = [*self.skipped, reason][-50:]
                self.report("warning", reason)
                continue
            self.time = _hhmm(t)
            self._steps.append(clock.monotonic())
            if len(self._steps) > 2 and self._steps[-1] - self._steps[0] > 0 and next(self._count) % 4 == 0:
                # said every 4 frames: no redraw of the status per frame
                self.rate = round((len(self._steps) - 1) / (self._steps[-1] - self._steps[0]), 1)
            self.prefetch([times[(start + k + j) % len(times)] for j in range(1, PREFETCH_AHEAD + 1)])
            return t
        return None

    def _make(self, t: pd.Timestamp) -> None:
        """Make (or find in the cache) what the current mode shows at ``t``; raises FumaroleError."""
        if self.mode == "mosaic":
            x_range, y_range, width, height = self._last_mosaic_view
            self.mosaic_frame(t, x_range, y_range, width, height)
        else:
            x_range, y_range, width, height = self._last_view
            self.frame_at(t, x_range, y_range, width, height)

    def prefetch(self, times) -> int:
        """Make the frames of ``times`` ahead in a background thread (bounded; failures said when shown)."""
        jobs = []
        for t in dict.fromkeys(times):
            key = (self.mode, self.satellite, self.product, t, self._last_view, self._last_mosaic_view)
            jobs.append((key, lambda t=t: self._make(t)))
        return services.prefetch(jobs)

    @param.depends("playing", "speed", watch=True)
    def _on_play(self) -> None:
        period = int(1000 / self.speed)
        self._steps.clear()
        self.rate = None
        if self._player_live():
            self._play_in_page()
            return
        if self.playing and self._callback is None:
            times = self._times()
            current = self.slot_time
            if times and current is not None:
                start = next((i for i, t in enumerate(times) if t > current), 0)
                self.prefetch([times[(start + j) % len(times)] for j in range(PREFETCH_AHEAD)])
            self._callback = pn.state.add_periodic_callback(self.play_step, period=period)
        elif self.playing:
            self._callback.period = period
        elif self._callback is not None:
            self._callback.stop()
            self._callback = None

    # ------------------------------------------------------------------------------------------- the page's player
    def player(self) -> FramePlayer:
        """The page's frame player (one per view; an invisible element of the one-satellite view)."""
        if self._player is None:
            self._player = FramePlayer(slot=_slot_key(self.slot_time), fps=self.speed, height=0, width=0, margin=0,
                                       order=[_slot_key(t) for t in self._safe_times()])
            self._player.on_msg(self._on_player_msg)
            self._player.param.watch(self._on_player_slot, ["slot"])
            self._player.param.watch(self._on_player_stopped, ["stopped"])
            self._player.param.watch(lambda e: setattr(self, "rate", e.new) if self.playing else None, ["rate"])
        return self._player

    def _player_live(self) -> bool:
        return self._player is not None and self._live and self.mode == "satellite"

    def _safe_times(self) -> list[pd.Timestamp]:
        try:
            return self._times() if self.date is not None else []
        except FumaroleError:
            return []

    def _on_player_msg(self, msg: dict) -> None:
        """The page's player: ``ready`` (its frames are none: send them again), ``step`` (``<`` / ``>`` clicked)."""
        msg = getattr(msg, "data", msg)
        if not isinstance(msg, dict):
            return
        if msg.get("ready"):
            self._live = True
            self._doc = pn.state.curdoc
            self._delivered.clear()
            if self._player_live():
                if self.playing:
                    self._play_in_page()
                else:
                    self._deliver_around()
        elif "step" in msg:
            self.step_slot(int(msg["step"]))

    def _play_in_page(self) -> None:
        """Play and Pause with the page's player: the frames of the day's loop sent ahead, the timer in the page."""
        if self._callback is not None:  # the server's timer ran before the page's player was ready
            self._callback.stop()
            self._callback = None
        player = self.player()
        if self.playing:
            player.param.update(order=[_slot_key(t) for t in self._safe_times()], fps=self.speed, playing=True)
            self._deliver(self._safe_times()[:PLAYER_FRAMES])
        elif player.playing:
            self.pausing = True  # until the page says the frame it stopped on (_on_player_stopped)
            player.playing = False
        player.fps = self.speed

    def _on_player_stopped(self, event) -> None:
        """The page stopped its timer on a frame: the state takes that frame's slot (Pause stops on the frame shown)."""
        if event.new:
            self._to_slot_key(event.new.split(" ")[0])
        self.pausing = False

    def _on_player_slot(self, event) -> None:
        """The page shows another slot (playing): the state follows it (the frame is already there: no redraw)."""
        if event.new and event.new != _slot_key(self.slot_time):
            self._to_slot_key(event.new)

    def _to_slot_key(self, key: str) -> None:
        t = pd.Timestamp(key)
        if t.date() != self.date:
            self._set_slot(t.date(), _hhmm(t))
        elif _hhmm(t) != self.time:
            self.time = _hhmm(t)

    def _player_follows(self, *_) -> None:
        """Another satellite, product or mode: the player's slot list (its plot is made again, then its frames)."""
        if self._player is not None:
            self._player.param.update(slot=_slot_key(self.slot_time), order=[_slot_key(t) for t in self._safe_times()])

    def _on_slot(self, *_) -> None:
        """A new slot (or satellite, product, mode): the page's player shows it if it has its frame; else a redraw."""
        key = _slot_key(self.slot_time)
        if self._player is not None:
            self._player.param.update(slot=key, order=[_slot_key(t) for t in self._safe_times()])
            if self._player_live() and (self._view_key, key) in self._delivered:
                self.alert = ""  # the frame was made (as a redraw's current_frame says by clearing it)
                if not self.playing:
                    self._deliver_around()
                return
        self.redraw += 1
        if self._player_live() and not self.playing:
            self._deliver_around()

    def _deliver_around(self) -> None:
        """Send the page the frames of the slots next to the one shown (``<`` / ``>`` then swap them at once)."""
        times = self._safe_times()
        current = self.slot_time
        if not times or current is None:
            return
        i = int(np.argmin([abs((t - current).total_seconds()) for t in times]))
        near = sorted(range(len(times)), key=lambda j: (abs(j - i), j < i))[:2 * PREFETCH_AHEAD + 1]
        self._deliver([times[j] for j in near])

    def _deliver(self, times) -> None:
        """Make (background thread) and send the page the frames of ``times`` for the view shown, once each."""
        if not self._player_live() or self._doc is None or not self._view_key:
            return
        view, vkey, doc = self._last_view, self._view_key, self._doc
        platform, product = self.satellite, self.product
        jobs = []
        for t in times:
            skey = _slot_key(t)
            if (vkey, skey) in self._delivered:
                continue

            def make(t=t, skey=skey):
                try:
                    payload = self._payload(platform, product, t, view)
                except FumaroleError as exc:
                    why = str(exc)
                    doc.add_next_tick_callback(lambda: self._skip(skey, why))
                    return
                doc.add_next_tick_callback(lambda: self._send_frame(vkey, skey, payload))

            jobs.append(((id(self), vkey, skey), make))
        services.prefetch(jobs)

    def _skip(self, skey: str, why: str) -> None:
        player = self.player()
        if skey not in player.skip:
            player.skip = [*player.skip, skey][-50:]
            if self.playing:
                reason = f"animation skipped {skey[-5:]}: {why}"
                self.skipped = [*self.skipped, reason][-50:]
                self.report("warning", reason)

    def _send_frame(self, vkey: str, skey: str, payload: dict) -> None:
        """Send one frame to the page (on the session's loop), unless the view changed or the page has it."""
        if vkey != self._view_key or (vkey, skey) in self._delivered or not self._player_live():
            return
        self._delivered[(vkey, skey)] = True
        while len(self._delivered) > PLAYER_FRAMES:
            self._delivered.popitem(last=False)
        self._player._send_msg({"view": vkey, "slot": skey, **payload})

    def _payload(self, platform: str, product: str, t: pd.Timestamp, view) -> dict:
        """The image and stamp columns of a slot's frame over a view, deflated (encoded once per process)."""
        key = (platform, product, pd.Timestamp(t), view)
        hit = PAYLOADS.get(key)
        if hit is not None:
            return hit
        x_range, y_range, width, height = view
        frame = self.frame_at(t, x_range, y_range, width, height, platform=platform, product=product)
        words = self._stamp_words(platform, product, t)
        out = {"image": render.wire_columns(render.image_element(frame)),
               "stamp": render.wire_columns(render.stamp_element(width, height, x_range, y_range, words))}
        PAYLOADS[key] = out
        while len(PAYLOADS) > PAYLOADS_MAX:
            PAYLOADS.popitem(last=False)
        return out

    def _new_view(self) -> None:
        """The image was drawn for another view (pan, zoom, resize, satellite, product): the page's frames renew."""
        x_range, y_range, width, height = self._last_view
        vkey = f"{self.satellite}|{self.product}|{x_range}|{y_range}|{width}|{height}"
        if vkey == self._view_key:
            return
        self._view_key = vkey
        self._delivered = OrderedDict((k, v) for k, v in self._delivered.items() if k[0] == vkey)
        if self._player is not None:
            self._player.view = vkey
            if self._player_live():
                self._deliver(self._safe_times()[:PLAYER_FRAMES] if self.playing else [])
                if not self.playing:
                    self._deliver_around()

    # ------------------------------------------------------------------------------------------- readout, legend
    def values_at(self, x: float | None, y: float | None) -> dict | None:
        """The values under a point of the satellite view (projection metres): channels used, or the cloud top."""
        if x is None or y is None or self.slot_time is None:
            return None
        try:
            data = self.load()
        except FumaroleError:
            return None
        return render.pixel_values(data, x, y, channels=self._readout_names())

    def readout_text(self, x: float | None, y: float | None) -> str:
        """The hover readout: BT / reflectance of each channel the composite uses, or the cloud-top value."""
        info = self.values_at(x, y)
        if info is None:
            return "Hover or click the image: the values of the pixel under the cursor."
        return self._values_text(info)

    def mosaic_values_at(self, lon: float | None, lat: float | None) -> dict | None:
        """The values under a point of the mosaic: the satellite the pixel comes from, and its values there."""
        t = self.slot_time
        if lon is None or lat is None or t is None:
            return None
        lon_range, lat_range, width, height = self._last_mosaic_view
        try:
            out = self.mosaic_frame(t, lon_range, lat_range, width, height)
        except FumaroleError:
            return None
        col = int(np.abs(out["x"].values - lon).argmin())
        row = int(np.abs(out["y"].values - lat).argmin())
        k = int(out["source"].values[row, col])
        if k < 0:
            return None
        platform = out.attrs["platforms"][k]
        try:
            scene = services.ring_scenes(self.archive, t, self.product).scenes.get(platform)
        except FumaroleError:
            return None
        if scene is None:
            return None
        info = render.pixel_values(scene, lat=float(lat), lon=float(lon), channels=self._readout_names(platform, t))
        if info is not None:
            pos = geo.ring_position(platform, t, self.archive)
            info.update(platform=platform, satellite=pos.satellite, position=pos.name)
        return info

    def _readout_names(self, platform: str | None = None, t=None) -> list[str]:
        if render.is_cloud_top(self.product):
            return [render.CLOUD_TOP[self.product].variable]
        sensor = geo.ring_position(platform or self.satellite, t if t is not None else self.when, self.archive).sensor
        return list(render.product_channels(self.product, sensor)[0])

    def mosaic_readout_text(self, lon: float | None, lat: float | None) -> str:
        """The mosaic's readout: the satellite the pixel comes from, where, and the product's values with units."""
        info = self.mosaic_values_at(lon, lat)
        if info is None:
            return "Hover or click the mosaic: the satellite the pixel comes from and its values."
        who = f"**{info['satellite']}** ({info['position']})" if info.get("position") else f"**{info['satellite']}**"
        return who + " · " + self._values_text(info)

    def _values_text(self, info: dict) -> str:
        parts = []
        for name, v in info["values"].items():
            if render.is_cloud_top(self.product):
                style = render.CLOUD_TOP[self.product]
                value = "clear sky (no cloud top)" if v["value"] is None else \
                    f"{v['value'] * style.scale:.{1 if style.units != 'km' else 2}f} {style.units}"
                parts.append(f"**{style.title}:** {value}")
            else:
                value = "no data" if v["value"] is None else f"{v['value']:.2f} {v['units']}"
                parts.append(f"**{v.get('band') or name}** ({v.get('wavelength_um', 0):g} µm): {value}")
        where = f"({info['latitude']:.2f}°, {info['longitude']:.2f}°)"
        return " · ".join(parts) + f" · {where}"

    def legend_lines(self, product: str | None = None, sensor: str | None = None) -> list[str]:
        """The product's legend: title, what the colours mean, one line per band (or the cloud-top note)."""
        product = product or self.product
        sensor = sensor or self.position.sensor
        if render.is_cloud_top(product):
            style = render.CLOUD_TOP[product]
            return [style.title, PRODUCT_NOTES[product], f"Colour range {style.clim[0]:g} … {style.clim[1]:g} "
                                                         f"{style.units}"]
        info = rgbmod.describe(product, sensor)
        return [info["title"], info["legend"], *info["bands"]]

    def title(self) -> str:
        """"GOES-16 (GOES-East, 75.2° W) — Ash RGB — 2021-04-12 15:00 UTC"."""
        pos = self.position
        when = f"{self.slot_time:%Y-%m-%d %H:%M} UTC" if self.slot_time is not None else "no slot"
        where = f"{pos.name}, {_sub_lon(pos)}" if pos.name else _sub_lon(pos)
        return f"{pos.satellite} ({where}) — {render.product_title(self.product)} — {when}"

    # ------------------------------------------------------------------------------------------- export
    def export_png(self) -> io.BytesIO:
        """PNG of the current view with the legend, satellite, product and time drawn in (the mosaic's, in mosaic)."""
        if self.mode == "mosaic":
            return self.mosaic_export_png()
        x_range, y_range, _, _ = self._last_view
        frame = self.current_frame(x_range, y_range, 900, 900)
        if frame is None:
            raise UserInputError(self.alert or "nothing to export")
        pos = self.position
        coast = render.coastline_xy(frame.attrs["crs_proj4"]) if self.coastlines else None
        sources = [CREDITS[pos.sensor]] + ([CREDITS["ctth"]] if render.is_cloud_top(self.product) else [])
        png = render.frame_png(
            frame, title=self.title().rsplit(" — ", 1)[0],
            subtitle=f"{self.slot_time:%Y-%m-%d %H:%M} UTC (slot)", legend=self.legend_lines()[1:],
            coast=coast, credits=f"Fumarole GEO ring · data: {', '.join(sources)} · coastlines: Natural Earth")
        return io.BytesIO(png)

    def mosaic_export_png(self) -> io.BytesIO:
        """PNG of the mosaic's view: title, time, legend or colour bar, the satellites used and credits drawn in."""
        t = self.slot_time
        lon_range, lat_range, width, height = self._last_mosaic_view
        out = self.mosaic_at(lon_range, lat_range, 1200, int(1200 * (lat_range[1] - lat_range[0])
                                                             / max(lon_range[1] - lon_range[0], 1e-6)))
        if out is None:
            raise UserInputError(self.alert or "nothing to export")
        if render.is_cloud_top(self.product):
            frame = out["value"].rename(self.product)
            frame.attrs.update(kind="field")
        else:
            frame = out["rgba"].rename(self.product)
            frame.attrs.update(kind="rgb")
        lon, lat = coastline_lines("110m")
        ring = [p for p in self.ring() if p.platform]
        used = [p for p in ring if out.attrs["names"].get(p.platform) and p.platform not in out.attrs["skipped"]]
        sensors = dict.fromkeys(CREDITS[p.sensor] for p in used)
        sources = [*sensors] + ([CREDITS["ctth"]] if render.is_cloud_top(self.product) else [])
        legend = [*self.legend_lines(sensor=used[0].sensor if used else None)[1:], "",
                  "Satellites: " + ", ".join(f"{p.satellite} ({p.name})" for p in used)]
        png = render.frame_png(
            frame, title=f"Global mosaic — {render.product_title(self.product)}",
            subtitle=f"{t:%Y-%m-%d %H:%M} UTC (slot; each satellite at its slot of that repeat cycle)",
            legend=legend, coast=(lon, lat) if self.coastlines else None, size=(16.0, 6.5),
            credits=f"Fumarole GEO ring · data: {', '.join(sources)} · coastlines: Natural Earth")
        return io.BytesIO(png)

    def export_filename(self) -> str:
        """fumarole_G16_20210412T1500_ash.png (the mosaic: fumarole_mosaic_20210412T1500_ash.png)."""
        t = self.slot_time
        stamp = f"{t:%Y%m%dT%H%M}" if t is not None else "none"
        who = "mosaic" if self.mode == "mosaic" else self.satellite
        return f"fumarole_{who}_{stamp}_{self.product}.png"

    def export_animation(self, fmt: str = "mp4") -> tuple[str, io.BytesIO]:
        """The one-satellite view's product over the day's slots (the player's range), as MP4 or GIF: name, bytes.

        The view shown (its zoom, in projection metres) at 1024 pixels, at the player's speed; a slot that cannot be
        drawn is skipped and said in the log console; when none can, the reason is said and UserInputError raised.
        """
        times = tuple(self.timeline())
        x_range, y_range, _, _ = self._last_view
        view = (tuple(x_range), tuple(y_range)) if x_range is not None and y_range is not None else None
        loop = animation_service.GeoLoop(self.satellite, self.product, times, view=view, width=1024,
                                         fps=float(self.speed))
        try:
            out = animation_service.geo_animation(self.archive, loop, fmt)
        except FumaroleError as exc:
            self.report("error", f"the animation of {self.satellite} {render.product_title(self.product)} on "
                                 f"{self.date} could not be drawn: {exc}")
            raise UserInputError(str(exc)) from None
        for skipped in out.skipped:
            self.report("warning", f"animation: skipped {skipped}", alert=False)
        self.log.write("info", f"animation exported: {out.file_name}, {len(out.times)} frames of {out.size[0]} × "
                               f"{out.size[1]} pixels ({len(out.data) / 1e6:.2f} MB)")
        return out.file_name, io.BytesIO(out.data)

    # ------------------------------------------------------------------------------------------- the ring
    def ring_table(self) -> pd.DataFrame:
        """The latest slot of each satellite of the ring of the time viewed, at or before it.

        ``stale`` when older than that time by more than its repeat cycle, or missing.
        """
        table = geo.ring_latest(self.archive, self.slot_time)
        cycle = pd.to_timedelta([geo.ring_position(p, self.slot_time, self.archive).repeat_minutes if p else 0
                                 for p in table["platform"]], unit="min")
        table["stale"] = table["time"].isna() | (table["age"] > cycle)
        return table

    def ring_frame(self, platform: str, time) -> tuple[xr.DataArray | None, str, str]:
        """(frame, product shown, note) of one ring image; the frame is None with the reason as note."""
        product = self.product
        sensor = geo.ring_position(platform, time, self.archive).sensor
        note = ""
        try:
            render.product_channels(product, sensor)
        except UserInputError as exc:
            note = f"{exc}; showing the Natural Colour RGB"
            product = "natural_color"
        try:
            data = services.load_product(self.archive, platform, time, product)
            return render.frame(data, product, width=RING_FRAME, height=RING_FRAME), product, note
        except FumaroleError as exc:
            return None, product, str(exc)

    def ring_png(self, platform: str, time) -> tuple[bytes | None, str, str]:
        """(PNG bytes, product shown, note) of one ring thumbnail, encoded once per process (:data:`RING_PNGS`)."""
        key = (platform, pd.Timestamp(time), self.product, self.coastlines)
        hit = RING_PNGS.get(key)
        if hit is not None:
            return hit
        frame, product, note = self.ring_frame(platform, time)
        out = (None if frame is None else render.thumbnail_png(frame, self.coastlines), product, note)
        if frame is not None:  # a failure is looked at again next time (the file may have arrived)
            RING_PNGS[key] = out
            while len(RING_PNGS) > 120:
                RING_PNGS.pop(next(iter(RING_PNGS)), None)
        return out

    def _ring_card(self, row) -> pn.Column:
        platform = row.platform
        satellite = row.satellite or "no satellite"
        head = (f'<div class="georing-name" style="font-weight:bold;font-size:15px">{html.escape(row.name)}</div>'
                f'<div class="georing-satellite" style="color:#444">{html.escape(satellite)} · '
                f'{_lon_text(row.sub_lon)}</div>')
        if not platform:
            text = html.escape(row.note)
            return pn.Column(pn.pane.HTML(head + f'<div class="georing-time">{text}</div>',
                                          sizing_mode="stretch_width", margin=(0, 0)), **self._card_size())
        if pd.isna(row.time):
            time_text = "no slot in the archive"
        else:
            time_text = f"{row.time:%Y-%m-%d} <b>{row.time:%H:%M} UTC</b>"
        badge = ""
        if row.stale:
            behind = f" — {_age_text(row.age)} behind" if not pd.isna(row.age) else ""
            badge = (f'<span class="georing-stale" style="background:#b71c1c;color:white;padding:1px 6px;'
                     f'border-radius:3px;font-weight:bold;font-size:12px;white-space:nowrap;display:inline-block">'
                     f'STALE{behind}</span>')
        items = [pn.pane.HTML(head + f'<div class="georing-time">{time_text}</div>{badge}', height=80,
                              sizing_mode="stretch_width", margin=(0, 0))]
        if not pd.isna(row.time):
            png, product, note = self.ring_png(platform, row.time)
            if png is not None:
                alt = (f"{satellite} {render.product_title(product)} {row.time:%Y-%m-%d %H:%M} UTC, full disk "
                       f"seen from {_lon_text(row.sub_lon)}")
                items.append(pn.pane.HTML(
                    f'<img class="georing-thumb" alt="{html.escape(alt)}" src="data:image/png;base64,'
                    f'{base64.b64encode(png).decode()}" style="width:100%;height:auto;display:block;'
                    f'aspect-ratio:1">', margin=(0, 0), sizing_mode="stretch_width"))
            if note:
                items.append(pn.pane.Alert(note, alert_type="warning", sizing_mode="stretch_width", margin=(0, 0)))
        button = pn.widgets.Button(label=f"Open {row.name}", color="light", sizing_mode="stretch_width",
                                   margin=(4, 0))
        button.on_click(lambda _e, p=platform, t=row.time: self.open_satellite(p, t))
        items.append(button)
        return pn.Column(*items, **self._card_size())

    @staticmethod
    def _card_size() -> dict:
        """A ring card: as wide as the window allows, 180 px … 360 px (five in a row on a 1920 px screen)."""
        return dict(sizing_mode="stretch_width", min_width=RING_SIZE - 10, max_width=RING_FRAME, margin=(0, 2),
                    css_classes=["georing-card"], styles={"flex": "1 1 150px"})

    def open_satellite(self, platform: str, time=None) -> None:
        """Show one satellite in depth, at ``time`` (default: its latest slot)."""
        t = pd.Timestamp(time) if time is not None and not pd.isna(time) else None
        updates = {"mode": "satellite", "satellite": platform}
        if t is not None:
            updates.update(date=t.date(), time=_hhmm(t))
        self.param.update(**updates)

    @param.depends("product", "coastlines", "date", "time")
    def ring_view(self):
        """The five latest images side by side, each with its name, sub-longitude, slot time and a stale badge.

        The ring is the one of the time viewed: each position shows the satellite holding it then.
        """
        table = self.ring_table()
        now = table["time"].max()
        newest = f"newest slot {now:%Y-%m-%d %H:%M} UTC" if not pd.isna(now) else "no slot in the archive"
        stale = [r.name for r in table.itertuples() if r.stale]
        if stale:
            self.log.write("warning", f"stale in the ring ({newest}): {', '.join(stale)}")
        cards = [self._ring_card(row) for row in table.itertuples()]
        head = pn.pane.Markdown(f"**Latest image of each satellite** — {render.product_title(self.product)} — "
                                f"{newest}; a satellite is *stale* when its latest slot is older than the time viewed "
                                f"by more than its repeat cycle. The satellites are those holding each position "
                                f"then.", margin=(0, 10))
        return pn.Column(head, pn.FlexBox(*cards, gap="6px"), sizing_mode="stretch_width")

    # ------------------------------------------------------------------------------------------- plots
    def _empty(self, kind: str, ranges, kdims=("x", "y")):
        (x0, x1), (y0, y1) = ranges
        if kind == "field":
            style = render.CLOUD_TOP[self.product]
            dim = hv.Dimension(self.product, label=style.title, unit=style.units)
            return hv.Image(np.full((2, 2), np.nan), bounds=(x0, y0, x1, y1), kdims=list(kdims), vdims=[dim])
        return hv.RGB(np.zeros((2, 2, 4), dtype=np.uint8), bounds=(x0, y0, x1, y1), kdims=list(kdims),
                      vdims=["R", "G", "B", "A"])

    def stamp_text(self, mosaic: bool | None = None) -> str:
        """What every frame says in its corner: ``GOES-16 · Ash RGB · 2021-04-12 15:00 UTC`` (mosaic: ``Mosaic``)."""
        t = self.slot_time
        when = f"{t:%Y-%m-%d %H:%M} UTC" if t is not None else "no slot"
        mosaic = self.mode == "mosaic" if mosaic is None else mosaic
        who = "Mosaic" if mosaic else self.position.satellite
        return f"{who} · {render.product_title(self.product)} · {when}"

    def _stamp_words(self, platform: str, product: str, t) -> str:
        """:meth:`stamp_text` of a satellite's slot ``t`` (the frames the page's player is sent ahead)."""
        satellite = geo.ring_position(platform, t, self.archive).satellite
        return f"{satellite} · {render.product_title(product)} · {pd.Timestamp(t):%Y-%m-%d %H:%M} UTC"

    def _stamp(self, platform, x_range, y_range, width, height, kdims=("x", "y")) -> hv.RGB:
        element = render.stamp_element(width, height, x_range, y_range, self.stamp_text(platform is None), kdims)
        return element.opts(hooks=[_name_stamp])

    def _image(self, x_range, y_range, width, height, time=None, date=None, kind=None, ranges=None, **_):
        width = int(width or MAP_SIZE)
        height = int(height or MAP_SIZE)
        x_range = tuple(x_range) if x_range else ranges[0]
        y_range = tuple(y_range) if y_range else ranges[1]
        self._last_view = (x_range, y_range, width, height)
        self._new_view()
        frame = self.current_frame(x_range, y_range, width, height)
        if frame is None:
            base = self._empty(kind, ranges)
        else:
            base = render.image_element(frame)
            if kind == "field":
                base = base.opts(colorbar=True)
        return base.opts(hooks=[_name_frame])

    def _stamp_layer(self, x_range, y_range, width, height, mosaic=False, default=None, **_):
        """The stamp of the frame a view shows (its own layer, above the coastlines, in the same update)."""
        x_range = tuple(x_range) if x_range else default[0]
        y_range = tuple(y_range) if y_range else default[1]
        kdims = ("longitude", "latitude") if mosaic else ("x", "y")
        return self._stamp(None if mosaic else self.satellite, x_range, y_range, int(width or MAP_SIZE),
                           int(height or MAP_SIZE), kdims)

    def _coast(self, x_range, y_range, coastlines=True, proj4="", kind="rgb"):
        if not coastlines:
            return hv.Path([], kdims=["x", "y"])
        colour = "#333333" if kind == "field" else "#f2e34c"
        return render.coastline_path(proj4, x_range, y_range, color=colour)

    @param.depends("satellite", "product", "mode")
    def satellite_plot(self):
        """The satellite's image (regridded to the screen on each pan and zoom), coastlines, hover readout."""
        grid = self._grid_scene()
        if grid is None:
            return pn.pane.Alert(f"The archive has no {self.position.satellite} slot.", alert_type="warning")
        # in whole metres, as the URL has them: a page opened from the URL draws the same view, pixel for pixel
        # (a view off by a fraction of a metre moved the coastlines' anti-aliasing by a grey level or two)
        ranges = tuple(tuple(float(round(v)) for v in r) for r in render.disk_ranges(grid))
        kind = "field" if render.is_cloud_top(self.product) else "rgb"
        x_range = tuple(self.x_range) if self.x_range else ranges[0]
        y_range = tuple(self.y_range) if self.y_range else ranges[1]
        rng = hv.streams.RangeXY(x_range=x_range, y_range=y_range)
        size = hv.streams.PlotSize(width=MAP_SIZE, height=MAP_SIZE)
        # a new slot redraws on the server only when the page's player lacks its frame (``redraw``, _on_slot)
        state = hv.streams.Params(self, ["redraw"])
        image = hv.DynamicMap(lambda **kw: self._image(kind=kind, ranges=ranges, **kw), streams=[rng, size, state])
        rng.add_subscriber(self._on_range)
        self._pointer.source = image
        self._tap.source = image
        proj4 = str(grid.attrs["crs_proj4"])
        coast = hv.DynamicMap(lambda x_range, y_range, coastlines: self._coast(x_range, y_range, coastlines, proj4,
                                                                                kind),
                              streams=[rng, hv.streams.Params(self, ["coastlines"])])
        # one stream for the image and its stamp: a step is one refresh of the plot, not two (issue 11's speed)
        stamp = hv.DynamicMap(lambda **kw: self._stamp_layer(default=ranges, **kw), streams=[rng, size, state])
        layers = [image, coast, stamp]
        if kind == "field":
            layers.insert(0, self._disk_layer(grid))
        overlay = layers[0]
        for layer in layers[1:]:
            overlay = overlay * layer
        overlay = overlay.opts(
            xaxis=None, yaxis=None, bgcolor="black", responsive=True, aspect=1, min_width=280, max_width=MAP_MAX,
            xlim=x_range, ylim=y_range, active_tools=["pan"], show_frame=False, hooks=[_wheel_after_click],
        )
        return pn.pane.HoloViews(overlay, margin=(0, 5), sizing_mode="stretch_width", max_width=MAP_MAX,
                                 css_classes=["georing-image"])

    def _disk_layer(self, scene: xr.Dataset) -> hv.RGB:
        """The Earth's disk in grey (clear sky under a cloud-top field), on a screen-sized grid."""
        small = render.view_of(scene, width=MAP_SIZE)
        grid = xr.DataArray(np.zeros(small[next(iter(small.data_vars))].shape), dims=("y", "x"),
                            coords={"y": small.y, "x": small.x}, attrs={"crs_proj4": scene.attrs["crs_proj4"]})
        return render.rgb_element(xr.DataArray(render.disk_rgba(grid), dims=("y", "x", "rgba"), coords=grid.coords))

    def _on_range(self, x_range=None, y_range=None):
        if x_range and y_range:
            self.param.update(x_range=tuple(round(v) for v in x_range), y_range=tuple(round(v) for v in y_range))

    # ------------------------------------------------------------------------------------------- mosaic
    def _mosaic_scenes(self, t: pd.Timestamp, product: str | None = None) -> dict[str, xr.Dataset | None]:
        """Each ring satellite's data at ``t`` (its slot in the repeat cycle holding t); None where missing.

        Raises FumaroleError only when no satellite at all can be read.
        """
        found = services.ring_scenes(self.archive, t, product or self.product)
        self._mosaic_names = found.names
        self._mosaic_problems = found.problems
        return found.scenes

    def mosaic_frame(self, t: pd.Timestamp, lon_range=None, lat_range=None, width: int = MOSAIC_WIDTH,
                     height: int | None = None) -> xr.Dataset:
        """The mosaic at ``t`` over a lat/lon view (the last 24 kept per session); raises FumaroleError."""
        lon_range = tuple(lon_range) if lon_range else MOSAIC_LON
        lat_range = tuple(lat_range) if lat_range else MOSAIC_LAT
        key = (pd.Timestamp(t), self.product, lon_range, lat_range, int(width), height and int(height))
        hit = self._mosaics.get(key)
        if hit is not None:
            return hit
        found = services.ring_scenes(self.archive, t, self.product)
        out = render.mosaic(found.scenes, lon_range, lat_range, width, height, self.product)
        out.attrs.update(names=found.names, problems=found.problems)
        self._mosaics[key] = out
        while len(self._mosaics) > 24:
            self._mosaics.pop(next(iter(self._mosaics)), None)
        return out

    def mosaic_at(self, lon_range=None, lat_range=None, width: int = MOSAIC_WIDTH,
                  height: int | None = None) -> xr.Dataset | None:
        """The mosaic of the current time and product over a lat/lon view, or None with the reason said."""
        t = self.slot_time
        if t is None:
            self.report("warning", "no slot in the archive")
            return None
        try:
            out = self.mosaic_frame(t, lon_range, lat_range, width, height)
        except FumaroleError as exc:
            self.report("error", str(exc))
            return None
        self._mosaic_names, self._mosaic_problems = out.attrs["names"], out.attrs["problems"]
        names = getattr(self, "_mosaic_names", {})
        notes = [f"{names.get(p, p)}: {why}" for p, why in out.attrs["skipped"].items() if why != "no slot"]
        notes = self._mosaic_problems + notes
        if notes:
            self.report("warning", f"Mosaic {t:%Y-%m-%d %H:%M} UTC — {'; '.join(notes)}. The neighbouring "
                                   f"satellites fill in where they see the ground.")
        else:
            self.alert = ""
        return out

    def _mosaic_image(self, x_range, y_range, width, height, time=None, date=None, kind="rgb", source=False, **_):
        width = int(width or MOSAIC_WIDTH)
        height = int(height or MOSAIC_HEIGHT)
        lon_range = tuple(x_range) if x_range else MOSAIC_LON
        lat_range = tuple(y_range) if y_range else MOSAIC_LAT
        self._last_mosaic_view = (lon_range, lat_range, width, height)
        kdims = ("longitude", "latitude")
        out = self.mosaic_at(lon_range, lat_range, width, height)
        if out is None:
            return self._empty("rgb" if source else kind, (lon_range, lat_range), kdims)
        if source:
            rgba = xr.DataArray(render.source_rgba(out["source"].values), dims=("y", "x", "rgba"), coords=out.coords)
            return render.rgb_element(rgba, kdims=kdims)
        if kind == "field":
            field = out["value"].rename(self.product)
            field.attrs.update(kind="field")
            return render.field_element(field, self.product, kdims=kdims)
        return render.rgb_element(out["rgba"], kdims=kdims)

    @param.depends("product", "show_source", "mode")
    def mosaic_plot(self):
        """The global lat/lon mosaic (regridded to the screen on each pan and zoom) and coastlines."""
        kind = "field" if render.is_cloud_top(self.product) and not self.show_source else "rgb"
        lon_range = tuple(self.lon_range) if self.lon_range else MOSAIC_LON
        lat_range = tuple(self.lat_range) if self.lat_range else MOSAIC_LAT
        rng = hv.streams.RangeXY(x_range=lon_range, y_range=lat_range)
        size = hv.streams.PlotSize(width=MOSAIC_WIDTH, height=MOSAIC_HEIGHT)
        state = hv.streams.Params(self, ["time", "date"])
        source = self.show_source
        image = hv.DynamicMap(lambda **kw: self._mosaic_image(kind=kind, source=source, **kw),
                              streams=[rng, size, state])
        rng.add_subscriber(self._on_mosaic_range)
        self._mosaic_pointer.source = image
        self._mosaic_tap.source = image

        def coast(x_range, y_range, coastlines):
            if not coastlines:
                return hv.Path([], kdims=["longitude", "latitude"])
            return overlays.coastlines(None, x_range, y_range).opts(color="#222222" if source else "#f2e34c")

        lines = hv.DynamicMap(coast, streams=[rng, hv.streams.Params(self, ["coastlines"])])
        stamp = hv.DynamicMap(lambda **kw: self._stamp_layer(mosaic=True, default=(MOSAIC_LON, MOSAIC_LAT), **kw),
                              streams=[rng, size, state])
        overlay = (image * lines * stamp).opts(
            responsive=True, aspect=MOSAIC_WIDTH / MOSAIC_HEIGHT, min_width=300, max_width=MOSAIC_MAX,
            xlim=lon_range, ylim=lat_range, xlabel="Longitude (°)", ylabel="Latitude (°)", bgcolor="#dddddd",
            active_tools=["pan"], hooks=[_wheel_after_click],
        )
        return pn.pane.HoloViews(overlay, margin=(0, 5), sizing_mode="stretch_width", max_width=MOSAIC_MAX,
                                 css_classes=["georing-image"])

    def _on_mosaic_range(self, x_range=None, y_range=None):
        if x_range and y_range:
            self.param.update(lon_range=tuple(round(v, 2) for v in x_range),
                              lat_range=tuple(round(v, 2) for v in y_range))

    @param.depends("show_source", "mode", "date", "time")
    def source_legend(self):
        """The source layer's legend: one swatch per satellite."""
        if not self.show_source:
            return pn.pane.Markdown("Each pixel comes from the satellite that sees it at the smallest viewing "
                                    "zenith angle; where that satellite's slot is missing or has no value, from the "
                                    "next one. Tick *Show source satellite* to see which.", margin=(0, 10))
        items = "".join(
            f'<span class="georing-source" style="margin-right:14px"><span style="display:inline-block;width:14px;'
            f'height:14px;background:{c};vertical-align:middle;margin-right:5px"></span>{html.escape(p.name)} '
            f'({html.escape(p.satellite if p.platform else "no satellite")}, {_sub_lon(p)})</span>'
            for p, c in zip(self.ring(), render.SOURCE_COLOURS, strict=True))
        return pn.pane.HTML(f"<div><b>Source satellite:</b> {items}</div>", margin=(0, 10))

    # ------------------------------------------------------------------------------------------- layout
    def controls(self) -> pn.Column:
        """The sidebar: every setting, as widgets made from the parameters."""
        w = pn.widgets
        play = w.Toggle.from_param(self.param.playing, label="▶ Play / ❚❚ Pause", color="primary")
        return pn.Column(
            w.RadioButtonGroup.from_param(self.param.mode, label="View"),
            w.Select.from_param(self.param.satellite, label="Satellite"),
            self.date_picker(),
            self.slot_select(),
            w.Select.from_param(self.param.product, label="Product"),
            self._labelled_checkbox("coastlines", "Coastlines"),
            self._labelled_checkbox("show_source", "Show source satellite (mosaic)"),
            play,
            w.FloatSlider.from_param(self.param.speed, label="Speed (frames per second)"),
            sizing_mode="stretch_width",
        )

    def _labelled_checkbox(self, name: str, label: str) -> pn.widgets.CheckBoxGroup:
        """A Boolean parameter as one labelled checkbox (:func:`app.views.shell.labelled_checkbox`)."""
        return labelled_checkbox(self, name, label, css_classes=[f"georing-{name.replace('_', '-')}"])

    def stepper(self, in_page: bool = False) -> pn.Row:
        """``<<<  <  >  >>>``: a day back, a slot back, a slot forward, a day forward.

        ``in_page`` (the one-satellite view): ``<`` and ``>`` go to the page's player first (it swaps a frame sent
        ahead at once, then asks the server to step), not to the server directly.
        """
        buttons = []
        for label, action, tip in (("<<<", lambda _e: self.step_day(-1), "a day back"),
                                   ("<", lambda _e: self.step_slot(-1), "previous slot"),
                                   (">", lambda _e: self.step_slot(1), "next slot"),
                                   (">>>", lambda _e: self.step_day(1), "a day forward")):
            b = pn.widgets.Button(label=label, width=56, color="default", description=tip,
                                  css_classes=["georing-step"])
            if in_page and label in ("<", ">"):
                n = 1 if label == ">" else -1
                b.js_on_click(code=f"document.dispatchEvent(new CustomEvent('georing-step', {{detail: {n}}}))")
            else:
                b.on_click(action)
            buttons.append(b)
        play = pn.widgets.Toggle.from_param(self.param.playing, label="▶ / ❚❚", width=70, color="primary",
                                            css_classes=["georing-play-toggle"])
        return pn.FlexBox(*buttons, play, self.play_status, gap="4px", margin=(0, 5), sizing_mode="stretch_width")

    def play_text(self) -> str:
        """``▶ Playing — asked 10 fps, shown 9.6 fps`` or ``❚❚ Paused on 15:00``: the play state and the real rate."""
        if self.playing:
            shown = f", shown {self.rate:g} fps" if self.rate else ""
            return f"▶ Playing — asked {self.speed:g} fps{shown}"
        if self.pausing:
            return "❚❚ Pausing…"
        return f"❚❚ Paused on {self.time or 'no slot'}"

    @property
    def play_status(self) -> pn.pane.HTML:
        """The play state and rate, one pane whose text a watcher changes (not redrawn while playing)."""
        pane = pn.pane.HTML("", margin=(0, 4))

        def show(*_):
            pane.object = (f'<div class="georing-play" role="status" style="padding:6px 4px">'
                           f'{html.escape(self.play_text())}</div>')

        show()
        self.param.watch(show, ["playing", "speed", "rate", "pausing"])
        self.param.watch(lambda *_: None if self.playing else show(), ["time", "date"])
        return pane

    def slot_select(self) -> pn.widgets.Select:
        """The slot list, a view of the state: its options and value are set together, always the day's.

        Panel's own link sets the options and the value one after the other, and a value not yet in the list made
        the widget fall back to the first slot (issue 11). The user's choice goes to :attr:`time`.
        """
        select = pn.widgets.Select(label="Slot (UTC)", options=list(self.param.time.objects or []),
                                   value=self.time if self.time in (self.param.time.objects or []) else None,
                                   css_classes=["georing-slot"])

        def to_widget(*_):
            options = list(self.param.time.objects or [])
            if self.time is not None and self.time not in options:
                return  # a change under way: the list follows when the time is the day's
            self._syncing = True
            try:
                select.param.update(options=options, value=self.time)
            finally:
                self._syncing = False

        def to_state(event):
            if not self._syncing and event.new is not None and event.new != self.time:
                self.time = event.new

        self.param.watch(to_widget, ["time", "date", "satellite", "mode"])
        self.param.watch(to_widget, ["time"], what="objects")
        select.param.watch(to_state, "value")
        return select

    def archive_days(self) -> list[dt.date]:
        """The days the archive has slots of the satellite shown (of any ring satellite in the mosaic)."""
        if self.mode == "mosaic":
            ring = [p.platform for p in self.ring() if p.platform]
        else:
            ring = [self.satellite]
        days = set()
        for platform in ring:
            try:
                days |= {pd.Timestamp(d).date() for d in geo.days(self.archive, platform)}
            except FumaroleError:
                continue
        return sorted(days)

    def date_picker(self) -> pn.Column:
        """The date picker: only the archive's days can be picked (the others disabled), with a note saying so."""
        picker = pn.widgets.DatePicker.from_param(self.param.date, label="Date (UTC)", css_classes=["georing-date"])
        note = pn.pane.HTML("", margin=(0, 10), css_classes=["georing-days"])

        def offer(*_):
            days = self.archive_days()
            picker.enabled_dates = days or None
            if days:
                listed = ", ".join(str(d) for d in days[:6]) + (" …" if len(days) > 6 else "")
                note.object = (f'<small>{len(days)} day{"s" if len(days) != 1 else ""} in the archive: '
                               f'{html.escape(listed)}; other days are disabled.</small>')
            else:
                note.object = "<small>No day of this satellite in the archive.</small>"

        offer()
        self.param.watch(offer, ["satellite", "mode"])
        return pn.Column(picker, note, margin=0, sizing_mode="stretch_width")

    @param.depends("satellite", "date", "time", "product", "mode")
    def time_label(self):
        """The heading above the image: satellite, product and slot time."""
        if self.mode == "mosaic":
            when = f"{self.slot_time:%Y-%m-%d %H:%M} UTC" if self.slot_time is not None else "no slot"
            text = f"Global mosaic — {render.product_title(self.product)} — {when}"
        else:
            text = self.title()
        return pn.pane.HTML(f'<div class="georing-title" style="font-size:17px;font-weight:bold">'
                            f'{html.escape(text)}</div>', margin=(4, 10), sizing_mode="stretch_width")

    @param.depends("satellite", "product")
    def legend(self):
        """The composite's legend (what the colours mean, one line per band) or the cloud-top note."""
        try:
            lines = self.legend_lines()
        except UserInputError as exc:
            return pn.pane.Markdown(str(exc))
        body = "  \n".join(html.escape(x) for x in lines[2:])
        return pn.pane.Markdown(f"**{lines[0]}** — {lines[1]}  \n{body}", margin=(0, 10),
                                sizing_mode="stretch_width", max_width=MAP_SIZE + 100)

    def alert_pane(self) -> pn.pane.Alert:
        """The page's alert: what could not be shown and why (hidden when all is well).

        One pane for the session whose text a watcher changes (rather than a pane rebuilt on each change), so a
        sentence written while a plot is being drawn still reaches the page.
        """
        if self._alert is None:
            self._alert = pn.pane.Alert(self.alert or "", alert_type=self.alert_level, visible=bool(self.alert),
                                        sizing_mode="stretch_width", css_classes=["georing-alert"])
            self.param.watch(self._on_alert, ["alert", "alert_level"])
        return self._alert

    def _on_alert(self, *_):
        self._alert.param.update(object=self.alert or "", alert_type=self.alert_level, visible=bool(self.alert))

    def readout(self, mosaic: bool = False) -> pn.pane.HTML:
        """The readout below the image: the values under the pointer (hover) or the last point clicked (touch)."""
        text = self.mosaic_readout_text if mosaic else self.readout_text

        def as_html(words: str) -> str:
            bold = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(words))
            return f'<div class="georing-readout" role="status" aria-live="polite">{bold}</div>'

        pane = pn.pane.HTML(as_html(text(None, None)), margin=(0, 10), sizing_mode="stretch_width")
        streams = (self._mosaic_pointer, self._mosaic_tap) if mosaic else (self._pointer, self._tap)

        def show(x=None, y=None, **_):
            if x is not None and y is not None:
                pane.object = as_html(text(x, y))

        for stream in streams:
            stream.add_subscriber(show)
        return pane

    def download(self) -> pn.widgets.FileDownload:
        """The PNG export button (legend, satellite, product and time drawn in)."""
        button = pn.widgets.FileDownload(callback=self.export_png, filename=self.export_filename(),
                                         label="Export PNG", color="light")

        def rename(*_):
            button.filename = self.export_filename()

        self.param.watch(rename, ["satellite", "date", "time", "product", "mode"])
        return button

    def animation_download(self) -> pn.Row:
        """The "Export animation" control: a format (MP4 or GIF) and the button that downloads the day's loop."""
        return animation_export(self.export_animation, "fumarole_animation", "georing")

    @param.depends("mode")
    def main_view(self):
        """The view of the current mode."""
        if self.mode == "ring":
            return self.ring_view
        if self.mode == "mosaic":
            return pn.Column(self.time_label, self.stepper(), self.mosaic_plot, self.readout(mosaic=True),
                             self.source_legend, self.legend, self.download(), sizing_mode="stretch_width")
        if not USE_PLAYER:
            return pn.Column(self.time_label, self.stepper(), self.satellite_plot, self.readout(), self.legend,
                             self.download(), sizing_mode="stretch_width")
        exports = pn.FlexBox(self.download(), self.animation_download(), gap="4px", sizing_mode="stretch_width")
        return pn.Column(self.time_label, self.stepper(in_page=True), self.satellite_plot, self.readout(),
                         self.legend, exports, self.player(), sizing_mode="stretch_width")

    def check(self) -> bool:
        """Read what the current mode shows (cached) and say in the alert what cannot be shown; True if all can.

        Called before the page is built, so the first picture's problems are on the page from the start.
        """
        t = self.slot_time
        if self.mode == "ring" or t is None:
            return True
        try:
            if self.mode == "mosaic":
                self._mosaic_scenes(t)
                if self._mosaic_problems:
                    self.report("warning", f"Mosaic {t:%Y-%m-%d %H:%M} UTC — {'; '.join(self._mosaic_problems)}. "
                                           f"The neighbouring satellites fill in where they see the ground.")
                    return False
            else:
                self.load()
        except FumaroleError as exc:
            what = "Mosaic" if self.mode == "mosaic" else self._what(self.satellite, t, self.product)
            self.report("error", f"{what} cannot be shown: {exc}")
            return False
        return True

    @classmethod
    def from_query(cls, query: dict, archive: Archive | None = None, log: LogConsole | None = None) -> GeoRing:
        """A view from a permalink's query: each bad value refused, said in the alert (naming it and what was used).

        The URL is corrected when the view is synced to it (:meth:`sync_location`).
        """
        params, problems = {}, []
        for name in URL_STATE:
            if name not in query:
                continue
            raw = query[name]
            try:
                params[name] = cls._permalink_value(name, raw)
            except (ValueError, TypeError) as exc:
                problems.append(f"{name}={raw!r} is not valid ({exc})")
        satellite = params.get("satellite")
        if satellite is not None and satellite not in constellation.platforms():
            try:
                geo.ring_position(satellite, None, archive or get_archive())
            except FumaroleError:
                problems.append(f"satellite={satellite!r} is not a satellite or ring position we know")
                params.pop("satellite")
        view = cls(archive=archive, log=log, **params)
        if "time" in params and view.time != params["time"]:
            problems.append(f"time={params['time']} is not a slot of that day")
        if problems:
            used = (f"showing {view.position.satellite}, {render.product_title(view.product)}, "
                    f"{view.date} {view.time or 'no slot'} UTC")
            view.report("warning", f"The link had values that cannot be shown: {'; '.join(problems)} — {used}.")
        return view

    @staticmethod
    def _permalink_value(name: str, raw):
        """One query value, checked and converted; raises ValueError with the reason."""
        if name in ("coastlines", "playing", "show_source"):
            if str(raw).lower() not in ("true", "false"):
                raise ValueError("true or false")
            return str(raw).lower() == "true"
        if name == "speed":
            value = float(raw)
            if not 0.25 <= value <= 10:
                raise ValueError("a speed from 0.25 to 10 frames per second")
            return value
        if name == "date":
            return dt.date.fromisoformat(str(raw))
        if name == "time":
            value = dt.datetime.strptime(str(raw), "%H:%M")
            return f"{value:%H:%M}"
        if name == "mode" and raw not in MODES.values():
            raise ValueError(f"one of {', '.join(MODES.values())}")
        if name == "product" and raw not in PRODUCTS.values():
            raise ValueError("not a product we make")
        if name.endswith("_range"):
            values = json.loads(raw) if isinstance(raw, str) else raw
            lo, hi = (float(v) for v in values)
            if not lo < hi:
                raise ValueError("the first value must be below the second")
            return (lo, hi)
        return raw

    def sync_location(self, location) -> None:
        """Keep the page's URL and the state one (the URL corrected to the values shown)."""
        def push(*_):
            location.update_query(**self._query())

        # One way, state -> URL: the URL is read once, by from_query, which refuses bad values; Panel's two-way
        # location.sync re-applied the URL's values on load and, when one failed, stopped writing the URL.
        push()
        self.param.watch(push, URL_STATE)

    def _query(self) -> dict:
        out = {}
        for name in URL_STATE:
            value = getattr(self, name)
            if value is None:
                continue
            value = self.param[name].serialize(value)
            out[name] = value if isinstance(value, str) else json.dumps(value)
        return out

    def state_attributes(self) -> dict[str, str]:
        """The state a page shows, as the ``data-*`` attributes of its ``.georing-state`` element (for tests)."""
        t = self.slot_time
        return {"mode": self.mode, "satellite": "" if self.mode == "mosaic" else self.satellite,
                "slot": f"{t:%Y-%m-%dT%H:%M}" if t is not None else "", "product": self.product,
                "playing": str(self.playing).lower(), "speed": f"{self.speed:g}", "stamp": self.stamp_text()}

    def data_age_pane(self) -> pn.pane.HTML:
        """The archive's newest slot and its age (:func:`data_age_text`): at first paint, again when the day changes."""
        pane = pn.pane.HTML("", margin=(0, 10), sizing_mode="stretch_width")

        def show(*_):
            try:
                newest = geo.ring_latest(self.archive)["time"].max()
            except FumaroleError:
                newest = None
            text = html.escape(data_age_text(newest, kind="slot"))
            pane.object = f'<div class="georing-data-age" style="font-size:12px;color:#555">{text}</div>'

        show()
        self.param.watch(show, ["date"])
        return pane

    def state_pane(self) -> pn.pane.HTML:
        """A hidden element carrying the shown state as ``data-*`` attributes (a test reads the slot from it)."""
        pane = pn.pane.HTML("", margin=0, height=0, styles={"display": "none"})

        def show(*_):
            attrs = " ".join(f'data-{k}="{html.escape(v)}"' for k, v in self.state_attributes().items())
            pane.object = f'<div class="georing-state" aria-hidden="true" {attrs}></div>'

        show()
        self.param.watch(show, ["mode", "satellite", "date", "time", "product", "playing", "speed"])
        return pane

    def __panel__(self):
        self.check()
        if self.playing and self._callback is None:  # a link with playing=true: the animation runs from the start
            self._on_play()
        return pn.Column(self.alert_pane(), self.data_age_pane(), self.main_view, self.state_pane(),
                         sizing_mode="stretch_width")
