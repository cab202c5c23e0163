"""The VolcPlume dashboard's state and views: TROPOMI SO2 map, orbits, filters, CALIOP tracks and curtain.

:class:`VolcPlume` holds every setting a user can change as a ``param`` parameter (so a test drives it without a
browser, and the URL holds the whole state). The work is split in dependency steps so cheap changes stay cheap:

1. the day's granules (date, level, quantity) are read once per process (cached in the data layer); a level or the
   layer height that the day's files do not have (their processor predates it) is said beside the level selector,
   in the log console and, when chosen, in an alert over an empty map — the orbits stay listed;
2. the zone picks the orbits that cross it and their times in the zone;
3. the filters (QA, SZA, edge pixels) and the chosen orbits make the layers;
4. the map aggregates the layers to the screen on each pan or zoom;
5. the colour range is only the colour mapper's: changing it never re-aggregates.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import io
import json
import re
import weakref

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from app.core.lonlat import lon_difference, wrap_lon
from app.core.zones import ZONES, Zone
from app.data.archive import (
    CALIOP,
    TROPOMI,
    Archive,
    get_archive,
    read_curtain_cached,
    read_swath_cached,
    read_track_cached,
)
from app.data.errors import FumaroleError, UserInputError
from app.data.volcanoes import find_volcano, load_volcanoes
from app.render import overlays
from app.render.colormaps import LAYER_HEIGHT, LAYER_HEIGHT_RANGE_KM, SO2
from app.render.curtain import curtain_image, profile_at
from app.render.export import map_png
from app.render.swath import aggregate, make_layer
from app.science.filters import DEFAULT_FILTERS, Filters, valid_mask
from app.services import animation as animation_service
from app.views.log_console import LogConsole
from app.views.shell import WRAP_INLINE_CSS, animation_export, labelled_checkbox

hv.extension("bokeh", logo=False)

LEVELS = {"PBL": "so2_pbl", "1km": "so2_1km", "3km": "so2_3km", "7km": "so2_7km", "15km": "so2_15km"}
LEVEL_LABELS = {"PBL": "PBL", "1km": "1 km", "3km": "3 km", "7km": "7 km", "15km": "15 km"}
#: What the map shows: the SO2 column of the chosen box level (DU), or the SO2 layer height (km) where the files
#: have it (processor 02.05.00 on) — a layer of its own, never mixed with the columns.
QUANTITIES = {"column": "SO2 column (DU)", "layer_height": "SO2 layer height (km)"}
#: The layer-height fields read: the height, its own QA (the QA filter applies to it) and the SZA.
LAYER_HEIGHT_FIELDS = ("so2_layer_height", "qa_value_layer_height", "solar_zenith_angle")
#: What is read of a granule that lacks the field shown: enough for its orbit chip and time labels.
GEOLOCATION_FIELDS = ("qa_value", "solar_zenith_angle")
SECONDARY = {
    "—": None,
    "CALIOP 532 nm total backscatter": "total_attenuated_backscatter_532",
    "CALIOP 532 nm depolarisation ratio": "depolarization_ratio_532",
    "CALIOP 1064 nm backscatter": "attenuated_backscatter_1064",
}
#: The state a permalink holds, in the order a URL is applied (the zone and day before their orbits).
URL_STATE = ["zone", "level", "quantity", "secondary", "date", "so2_min", "so2_max", "height_min", "height_max",
             "qa_min", "edge_pixels", "sza_max", "show_borders", "show_timestamps", "orbits", "volcano", "radii",
             "caliop_granule", "x_range", "y_range"]
#: Colour-range controls checked together (low, high).
RANGE_PAIRS = {n: pair for pair in (("so2_min", "so2_max"), ("height_min", "height_max")) for n in pair}
#: The URL's query keys of the synchronised parameters: the orbits go in as their numbers (``orbits=18121,18122``),
#: not their chip labels, whose in-zone times belong to one zone; the page maps them back to the zone's labels.
URL_SYNC = {("orbit_numbers" if n == "orbits" else n): n for n in URL_STATE}
URL_LABELS = {"so2_min": "SO2 min", "so2_max": "SO2 max", "height_min": "Height min", "height_max": "Height max",
              "zone": "zone", "level": "level", "date": "date", "volcano": "volcano"}
RADII_KM = [25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 1000, 2000]
MAP_WIDTH, MAP_HEIGHT = 900, 520
#: The Bokeh name of the map's figure (tests read its ranges and title from the page).
MAP_NAME = "volcplume-map"
#: The Bokeh names of the view the server last set (the page squares the frame from it, see ``_SQUARE_JS``).
BASE_X, BASE_Y = "volcplume-view-x", "volcplume-view-y"


_SQUARE_JS = """
// The frame shows one degree as long across as up. The view the server set (bx, by: the zone's extent or a
// link's zoom) is widened about its centre on one axis for the frame's shape, from that view itself each time the
// frame changes shape (a zone change sets a new view, then the frame's aspect changes): a page changed in place
// and a page opened from its link show the same extent. A view the user panned or zoomed is squared as it is.
const xr = fig.x_range, yr = fig.y_range, w = fig.inner_width, h = fig.inner_height;
if (!(w > 0 && h > 0)) return;
const near = (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
const mid = r => (r.start + r.end) / 2;
const widened = (r, b) => near(mid(r), mid(b)) && r.end - r.start >= b.end - b.start - 1e-9;
const set = bx.end > bx.start && by.end > by.start && (
  (near(xr.start, bx.start) && near(xr.end, bx.end) && widened(yr, by)) ||
  (near(yr.start, by.start) && near(yr.end, by.end) && widened(xr, bx)));
let x0 = set ? bx.start : xr.start, x1 = set ? bx.end : xr.end;
let y0 = set ? by.start : yr.start, y1 = set ? by.end : yr.end;
const sx = (x1 - x0) / w, sy = (y1 - y0) / h;
if (!set && Math.abs(sx - sy) <= 0.005 * Math.max(sx, sy)) return;
if (sx > sy) { const c = (y0 + y1) / 2, half = sx * h / 2; y0 = c - half; y1 = c + half; }
else { const c = (x0 + x1) / 2, half = sy * w / 2; x0 = c - half; x1 = c + half; }
if (near(xr.start, x0) && near(xr.end, x1) && near(yr.start, y0) && near(yr.end, y1)) return;
xr.setv({start: x0, end: x1});
yr.setv({start: y0, end: y1});
"""


#: The colour bar's (vertical) title at 13 px, or smaller down to 8 px when the frame is too short for it.
_FIT_BAR_TITLE_JS = """
const h = fig.inner_height, n = String(bar.title || '').length;
if (!(h > 0 && n > 0)) return;
const size = Math.max(8, Math.min(13, Math.floor(h / (0.62 * n))));
if (bar.title_text_font_size !== size + 'px') bar.title_text_font_size = size + 'px';
"""


def _with_text(png: bytes, text: dict[str, str]) -> bytes:
    """The PNG with ``text`` in its tEXt chunks (title, colour bar, extent: what the picture shows, readable)."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_itxt(key, value)
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def _frame_aspect(x_range, y_range) -> float:
    """Width / height of the map's frame that shows one degree of longitude as long as one of latitude.

    The frame keeps this ratio at any window width, so circles in km stay round (data aspect 1 in the frame).
    """
    return float(x_range[1] - x_range[0]) / float(y_range[1] - y_range[0])


def _map_hook(plot, _element, view=None) -> None:
    """Name the map's figure; the mouse wheel scrolls the page until the map is clicked, then it zooms."""
    from bokeh.models import ColorBar, CustomJS, Range1d, WheelZoomTool

    fig = plot.state
    # HoloViews sets its own values of these when it updates the figure: they are set again after every update
    for key, value in (("match_aspect", True), ("aspect_scale", 1), ("sizing_mode", "scale_width")):
        if getattr(fig, key) != value:  # a box zoom keeps the data aspect; the window's width sets the map's
            setattr(fig, key, value)
    if fig.name == MAP_NAME:  # the page's callbacks are attached once (HoloViews runs the hooks after each update)
        return
    fig.name = MAP_NAME
    # the frame's pixels may not have the view's ratio (axes, title and colour bar take their share of the window):
    # widen the shorter span about its centre so one degree is as long across as up (circles stay round)
    (x0, x1), (y0, y1) = view or ((fig.x_range.start, fig.x_range.end), (fig.y_range.start, fig.y_range.end))
    base_x, base_y = Range1d(start=x0, end=x1, name=BASE_X), Range1d(start=y0, end=y1, name=BASE_Y)
    square = CustomJS(args={"fig": fig, "bx": base_x, "by": base_y}, code=_SQUARE_JS)
    fig.js_on_change("inner_width", square)
    fig.js_on_change("inner_height", square)
    fig.y_range.js_on_change("end", square)  # a new extent set by the server (a zone change): y is set last
    bars = [r for r in fig.right if isinstance(r, ColorBar)]
    if bars:  # on a phone the frame is ~130 px high: the colour bar's title shrinks to fit instead of being cut
        fit = CustomJS(args={"fig": fig, "bar": bars[0]}, code=_FIT_BAR_TITLE_JS)
        fig.js_on_change("inner_height", fit)
    wheel = next((t for t in fig.tools if isinstance(t, WheelZoomTool)), None)
    fig.toolbar.active_scroll = None
    if wheel is not None:
        fig.js_on_event("tap", CustomJS(args={"toolbar": fig.toolbar, "wheel": wheel},
                                        code="toolbar.active_scroll = wheel"))


def _utc_naive(t) -> pd.Timestamp:
    t = pd.Timestamp(t)
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t


def _age_words(minutes: int) -> str:
    if minutes < 1:
        return "less than a minute"
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    days = minutes // (24 * 60)
    return f"{days:,} day" + ("" if days == 1 else "s")


def data_age_text(newest, now=None, kind: str = "data") -> str:
    """The age line of a dashboard's status area, from the archive's newest granule end or slot time (UTC).

    ``kind="data"`` (VolcPlume): ``data as of 14:35 UTC (2 h 10 min ago)``; ``kind="slot"`` (the GEO ring):
    ``newest slot 15:00 UTC, 8 min old``. The date is written when it is not ``now``'s day; a day or more is said
    in days (``data as of 2021-04-12 14:35 UTC (2,063 days ago)``). ``now`` defaults to the clock.
    """
    if newest is None or pd.isna(newest):
        return "no data in the archive yet" if kind == "data" else "no slot in the archive yet"
    t = _utc_naive(newest)
    ref = _utc_naive(pd.Timestamp.now(tz="UTC") if now is None else now)
    age = _age_words(max(0, int((ref - t).total_seconds() // 60)))
    when = f"{t:%H:%M} UTC" if t.normalize() == ref.normalize() else f"{t:%Y-%m-%d %H:%M} UTC"
    return f"data as of {when} ({age} ago)" if kind == "data" else f"newest slot {when}, {age} old"


def _day_bounds(day: dt.date) -> tuple[pd.Timestamp, pd.Timestamp]:
    t0 = pd.Timestamp(day)
    return t0, t0 + pd.Timedelta(days=1)


def _in_zone(lat: np.ndarray, lon: np.ndarray, zone: Zone) -> np.ndarray:
    lo = wrap_lon(lon, zone.central_longitude)
    return (lat >= zone.lat_min) & (lat <= zone.lat_max) & (lo >= zone.lon_min) & (lo <= zone.lon_max)


def _number_problem(label: str, value) -> str | None:
    """Why a colour-range value is refused: not a number, or negative (None if it is a number ≥ 0)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        return f"{label} must be a number; got {value!r}"
    if value < 0:
        return f"{label} must not be negative; got {value:g}"
    return None


def _invert(mapping: dict[str, str]) -> dict[str, str]:
    """{value: label} -> {label: value}, the options of a widget that shows labels and keeps values."""
    return {label: value for value, label in mapping.items()}


_ORBIT_NUMBER = re.compile(r"\s*#?\s*(\d+)")


def orbit_numbers_of(value) -> list[int]:
    """The orbit numbers a permalink names.

    ``"18121,18122"``, ``18121``, ``[18121, 18122]`` or the chip labels of older links (``["#18121: 16:02 → 16:10"]``,
    whose times are dropped). Raises ValueError naming what is not an orbit number.
    """
    if value is None or value == "":
        return []
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a list of orbit numbers ({exc})") from None
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list | tuple) else [value]
    numbers = []
    for item in items:
        if isinstance(item, bool):
            raise ValueError(f"{item!r} is not an orbit number")
        if isinstance(item, int | np.integer):
            numbers.append(int(item))
            continue
        match = _ORBIT_NUMBER.match(str(item))
        if match is None:
            raise ValueError(f"{item!r} is not an orbit number")
        numbers.append(int(match.group(1)))
    return list(dict.fromkeys(numbers))


class OrbitNumbers(param.List):
    """A list of orbit numbers, written in a URL as ``18121,18122`` (read back from that, a number or a list)."""

    @classmethod
    def serialize(cls, value):
        """``[18121, 18122]`` -> ``"18121,18122"``."""
        return ",".join(str(int(v)) for v in value or [])

    @classmethod
    def deserialize(cls, value):
        """``"18121,18122"`` (or one number, a list, older chip labels) -> ``[18121, 18122]``."""
        return orbit_numbers_of(value)


def orbit_label(orbit: int, t_in: np.ndarray) -> str:
    """The chip text of an orbit: "#18112: 00:30 → 01:21" (the times it spends in the zone)."""
    a = pd.Timestamp(t_in.min()).strftime("%H:%M")
    b = pd.Timestamp(t_in.max()).strftime("%H:%M")
    return f"#{orbit}: {a} → {b}"


class _LayersStream(hv.streams.Stream):
    """The filtered swaths a map figure draws (sent by :meth:`VolcPlume._push`)."""

    layers = param.List(default=[], constant=True)


class _ViewStream(hv.streams.Stream):
    """The zone, day and extent a map figure shows (sent by :meth:`VolcPlume._push`, not by a pan or zoom)."""

    view = param.Tuple(default=("", "", ((0.0, 1.0), (0.0, 1.0))), length=3, constant=True)


class _CaliopStream(hv.streams.Stream):
    """The CALIOP granule chosen and the secondary variable (sent by :meth:`VolcPlume._push`)."""

    caliop = param.Tuple(default=(None, ""), length=2, constant=True)


class VolcPlume(pn.viewable.Viewer):
    """TROPOMI SO2 map with the filters TROPOMI users apply, orbit chips, volcanoes and the CALIOP curtain."""

    zone = param.Selector(default="Caribbean", objects=list(ZONES), doc="map extent: World, Pacific World or a region")
    level = param.Selector(default="7km", objects=list(LEVELS), doc="box-profile height of the SO2 column")
    quantity = param.Selector(default="column", objects=list(QUANTITIES),
                              doc="what the map shows: the SO2 column of the level (DU) or the SO2 layer height (km)")
    secondary = param.Selector(default="—", objects=list(SECONDARY), doc="secondary variable: CALIOP curtain")
    date = param.CalendarDate(default=None, allow_None=True, doc="UTC day shown")
    so2_min = param.Number(default=0.2, bounds=(-10, None), softbounds=(0, 50), doc="colour range low end (DU)")
    so2_max = param.Number(default=20.0, bounds=(0, None), softbounds=(0, 100), doc="colour range high end (DU)")
    height_min = param.Number(default=LAYER_HEIGHT_RANGE_KM[0], bounds=(0, None), softbounds=(0, 30),
                              doc="layer-height colour range low end (km)")
    height_max = param.Number(default=LAYER_HEIGHT_RANGE_KM[1], bounds=(0, None), softbounds=(0, 30),
                              doc="layer-height colour range high end (km)")
    qa_min = param.Number(default=DEFAULT_FILTERS.qa_min, bounds=(0, 1), step=0.05,
                          doc="pixels shown have qa_value > this (strictly; the S5P SO2 recommendation is 0.5)")
    edge_pixels = param.Integer(default=DEFAULT_FILTERS.edge_pixels, bounds=(0, 100),
                                doc="ground pixels dropped on each swath edge (of 450)")
    sza_max = param.Number(default=DEFAULT_FILTERS.sza_max, bounds=(0, 90), doc="maximum solar zenith angle (degrees)")
    show_borders = param.Boolean(default=False, doc="draw land borders")
    show_timestamps = param.Boolean(default=True, doc="write UTC times along each orbit")
    orbits = param.ListSelector(default=[], objects=[], doc="orbits shown (labels '#orbit: HH:MM → HH:MM')")
    volcano = param.String(default="Soufriere St. Vincent", doc="selected volcano (GVP name or number)")
    radii = param.ListSelector(default=[100, 250, 500], objects=RADII_KM, doc="dashed circles around the volcano (km)")
    caliop_granule = param.Selector(default=None, objects=[], allow_None=True, doc="CALIOP granule in the curtain")
    curtain_focus = param.Integer(default=-1, doc="profile the map selected on the curtain (-1: whole granule)")
    x_range = param.Range(default=None, allow_None=True, doc="current map longitudes (frame of the zone)")
    y_range = param.Range(default=None, allow_None=True, doc="current map latitudes")

    orbit_numbers = OrbitNumbers(default=[], item_type=int, precedence=-1,
                                 doc="the orbits shown, by number (the URL's ``orbits``); follows ``orbits``")
    layers = param.List(default=[], precedence=-1, doc="derived: the filtered swaths of the chosen orbits")
    status = param.String(default="", precedence=-1, doc="derived: a sentence on what is shown, or why nothing")
    unavailable = param.Dict(default={}, precedence=-1,
                             doc="derived: level ('3km', …, 'layer_height') -> why the day's granules lack it")
    input_errors = param.Dict(default={}, precedence=-1,
                              doc="derived: control name -> why the value typed there was refused (said beside it)")
    url_problems = param.List(default=[], precedence=-1,
                              doc="derived: the permalink's bad values, each with what was used instead")
    draw_error = param.String(default="", precedence=-1,
                              doc="derived: why the last drawing failed (the last good picture stays)")

    def __init__(self, archive: Archive | None = None, log: LogConsole | None = None, **params):
        self.archive = archive or get_archive()
        self.log = log or LogConsole()
        self._swaths: dict[int, xr.Dataset] = {}
        self._swaths_key: tuple = ()  # (day, fields read) of the swaths held: others are never mixed in
        self._unreadable: set[str] = set()  # granules of the day that could not be read (said once in the log)
        self._orbit_labels: dict[str, int] = {}
        self._caliop_labels: dict[str, str] = {}
        self._days = sorted(pd.Timestamp(d).date() for d in self.archive.days(TROPOMI))
        if params.get("date") is None:
            days = self.archive.days(TROPOMI)
            params["date"] = pd.Timestamp(days[len(days) // 2]).date() if days else dt.date(2021, 4, 12)
        #: what each user action recomputed ("layers": the filtered swaths made, "map": the map sent a new state)
        self.recomputes: collections.Counter = collections.Counter()
        self._hold = 0  # > 0 while one user action runs: the layers are made and the map is sent once, at its end
        self._stale_layers = False  # the orbits or filters changed while held: the layers are made at the end
        self._streams: dict[str, hv.streams.Stream] = {}  # the map's streams (see :meth:`map_plot`)
        self._sent: dict[str, object] = {}  # what the map's streams were last sent
        self._figures = weakref.WeakSet()  # the map's Bokeh figures: retitled and moved in place, never rebuilt
        self._from_browser = False  # a pan or zoom in the page is being written into the state
        self._map_pane = None
        super().__init__(**params)
        with self._held():
            self._zone_orbits()
            self._stale_layers = True
        self._pointer = hv.streams.PointerXY(x=None, y=None)
        self._curtain_pointer = hv.streams.PointerX(x=None)
        self._last_good: dict[str, object] = {}
        self._seen_view = (self.zone, self.x_range, self.y_range)
        if self.x_range is None or self.y_range is None:
            self._reset_view()

    # --------------------------------------------------------------------------------------------- data steps
    @property
    def variable(self) -> str:
        """Canonical name of the SO2 column shown."""
        return LEVELS[self.level]

    @property
    def shown_variable(self) -> str:
        """Canonical name of what the map shows: the column of the level, or ``so2_layer_height``."""
        return "so2_layer_height" if self.quantity == "layer_height" else self.variable

    @property
    def field(self) -> str:
        """The optional field shown: the level key (``"3km"``…), ``"layer_height"``, or ``"PBL"`` (always there)."""
        return "layer_height" if self.quantity == "layer_height" else self.level

    def filters(self) -> Filters:
        """The map's pixel filters as one value (the defaults are :data:`~app.science.filters.DEFAULT_FILTERS`)."""
        return Filters(qa_min=self.qa_min, sza_max=self.sza_max, edge_pixels=self.edge_pixels)

    def field_label(self, field: str | None = None) -> str:
        """"SO2 7 km" or "SO2 layer height"."""
        field = field or self.field
        return "SO2 layer height" if field == "layer_height" else f"SO2 {LEVEL_LABELS[field]}"

    @property
    def shown_unavailable(self) -> str | None:
        """Why the field shown is missing from every granule of the day in the zone, or None."""
        note = self.unavailable.get(self.field)
        return note["reason"] if note and note["missing"] == note["of"] else None

    @property
    def zone_obj(self) -> Zone:
        """The current zone."""
        return ZONES[self.zone]

    # --------------------------------------------------------------------------------------------- the view
    def _reset_view(self) -> None:
        """The view is the zone's extent (a zone change, or a view that does not fit the zone's frame)."""
        zone = self.zone_obj
        self._from_browser = False  # a pan out of the zone's frame: the figure is moved back, too
        self.param.update(x_range=tuple(float(v) for v in zone.x_range),
                          y_range=tuple(float(v) for v in zone.y_range))

    def view_ranges(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The map's extent from the state: the zoomed view (x_range, y_range) or else the zone's."""
        zone = self.zone_obj
        return (tuple(self.x_range) if self.x_range else zone.x_range,
                tuple(self.y_range) if self.y_range else zone.y_range)

    def _view_fits_zone(self) -> bool:
        if self.x_range is None or self.y_range is None:
            return False
        west = self.zone_obj.central_longitude - 180.0
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        return x0 < x1 and y0 < y1 and x1 > west - 180 and x0 < west + 540 and y1 > -91 and y0 < 91

    @contextlib.contextmanager
    def _held(self):
        """One user action: its steps only mark what changed; the layers are made and the map sent once, at its end."""
        self._hold += 1
        try:
            yield
        finally:
            self._hold -= 1
            if self._hold == 0:
                if self._stale_layers:
                    self._make_layers()
                self._push()

    @param.depends("layers", "x_range", "y_range", "caliop_granule", "secondary", watch=True)
    def _send_state(self) -> None:
        self._push()

    def _push(self) -> None:
        """Send the map what changed (the layers; the zone, day and extent), once per user action.

        The figure is never built again: its title, colour-bar title and extent are set on the Bokeh models, and
        the streams that changed are triggered together, so each overlay is drawn once. A pan or zoom in the page
        (the view written back by :meth:`_on_range`) has already redrawn what depends on the extent.
        """
        if self._hold or not self._streams:
            return
        view = (self.zone, str(self.date), self.view_ranges())
        moved = self._sent.get("view") != view
        changed = []
        if self._sent.get("layers") is not self.layers:
            self._sent["layers"] = self.layers
            self._streams["layers"].update(layers=self.layers)
            changed.append(self._streams["layers"])
        if moved:
            self._sent["view"] = view
            if not self._from_browser:
                x_range, y_range = view[2]
                self._streams["range"].update(x_range=x_range, y_range=y_range)  # no event: the callbacks read it
                self._streams["view"].update(view=view)
                changed.append(self._streams["view"])
        caliop = (self.caliop_granule, self.secondary)
        if self._sent.get("caliop") != caliop:  # a zone or day lists its own granules: sent with the new view
            self._sent["caliop"] = caliop
            self._streams["caliop"].update(caliop=caliop)
            changed.append(self._streams["caliop"])
        self._relabel(move=moved and not self._from_browser)
        if changed:
            self.recomputes["map"] += 1
            hv.streams.Stream.trigger(changed)

    def _relabel(self, move: bool = False) -> None:
        """Set the title and colour-bar title (and, with ``move``, the extent) on every figure of the map."""
        for fig in list(self._figures):
            self._label_figure(fig, move)

    def _label_figure(self, fig, move: bool = False) -> None:
        from bokeh.models import ColorBar

        if fig.title is not None and fig.title.text != self.map_title():
            fig.title.text = self.map_title()
        for bar in (r for r in fig.right if isinstance(r, ColorBar)):
            if bar.title != self.colorbar_label():
                bar.title = self.colorbar_label()
        if move:
            (x0, x1), (y0, y1) = self.view_ranges()
            for cb in fig.js_property_callbacks.get("change:inner_width", []):  # the view the page squares from
                if "bx" in cb.args:
                    cb.args["bx"].update(start=x0, end=x1)
                    cb.args["by"].update(start=y0, end=y1)
            fig.aspect_ratio = _frame_aspect((x0, x1), (y0, y1))
            fig.x_range.update(start=x0, end=x1)
            fig.y_range.update(start=y0, end=y1)  # last: the page squares the frame when y's end changes

    def _figure_hook(self, plot, element) -> None:
        """The map's hook (run when the figure is made and after every update): name, tools, labels of the state."""
        _map_hook(plot, element, self.view_ranges())
        self._figures.add(plot.state)
        self._label_figure(plot.state)

    @param.depends("zone", "date", "level", "quantity", watch=True)
    def _on_source(self) -> None:
        """A new zone, day, level or quantity (one or several, from a link): one action.

        The view moves to the zone, the zone's orbits are listed (read when not read yet), the layers are made once
        and the map is sent the new state once.
        """
        with self._held():
            self._on_view()
            self._zone_orbits()
            self._stale_layers = True

    @param.depends("x_range", "y_range", watch=True)
    def _on_view(self) -> None:
        """A zone change moves the map to the zone; a zoom set with it (a permalink) is kept when it fits."""
        zone_changed = self.zone != self._seen_view[0]
        range_changed = (self.x_range, self.y_range) != self._seen_view[1:]
        self._seen_view = (self.zone, self.x_range, self.y_range)
        if zone_changed and not range_changed:
            self._reset_view()
        elif self.x_range is not None and not self._view_fits_zone():
            self.log.write("warning", f"the view x_range={self.x_range}, y_range={self.y_range} does not fit "
                                      f"the zone {self.zone}: its extent is shown")
            self._reset_view()

    def _fields_read(self) -> tuple[str, ...]:
        if self.quantity == "layer_height":
            return LAYER_HEIGHT_FIELDS
        return (self.variable, "qa_value", "solar_zenith_angle")

    def _read_orbits(self, rows: pd.DataFrame) -> None:
        """Read the granules not read yet (cached per process, so another session's reads are reused).

        A granule without the field shown (its processor predates the level or the layer height) is read for its
        geolocation only: its orbit stays listed, with nothing to draw, and the selector says why.
        """
        key = (self.date, self._fields_read())
        if key != self._swaths_key:  # a level and a zone changed together (a permalink): the zone's watcher may run
            self._swaths, self._unreadable = {}, set()  # first, with the swaths of the old level still held
            self._swaths_key = key
        todo = [p for p, o in zip(rows["path"], rows["orbit"], strict=True)
                if int(o) not in self._swaths and p not in self._unreadable]
        if not todo:
            return
        lacking = [p for p in todo if self.field in self.archive.unavailable_fields(p)]
        variables = self._fields_read()
        reader = self.archive.reader_key(TROPOMI)  # the catalogue's reader of the product (app.data.readers)
        read = self.archive.read_many([p for p in todo if p not in lacking],
                                      lambda p: read_swath_cached(p, variables, reader=reader), self.log.write)
        names = {name for name, _, _ in read.unavailable}
        lacking += [p for p in todo if self.archive.name_of(p) in names]
        geo = self.archive.read_many(lacking, lambda p: read_swath_cached(p, GEOLOCATION_FIELDS, reader=reader),
                                     self.log.write)
        datasets = read.datasets + geo.datasets
        done = {str(ds.attrs.get("source", "")) for ds in datasets}
        self._unreadable |= {p for p in todo if str(p) not in done}
        for ds in datasets:
            self._swaths[int(ds.attrs["orbit"])] = ds
        skipped = len(read.skipped) + len(geo.skipped)
        self.log.write("info", f"{self.date}: read {len(datasets)} TROPOMI orbits ({self.field_label()})"
                       + (f", {len(lacking)} without it" if lacking else "")
                       + (f", skipped {skipped}" if skipped else ""))

    def _availability(self, rows: pd.DataFrame) -> None:
        """Which levels (and the layer height) the day's granules in the zone lack, and why: for the selector."""
        paths = [str(p) for p in rows["path"]]
        notes: dict[str, dict] = {}
        for field in [*(k for k in LEVELS if k != "PBL"), "layer_height"]:
            reasons = [r for r in (self.archive.unavailable_fields(p).get(field) for p in paths) if r]
            if reasons:
                notes[field] = {"missing": len(reasons), "of": len(paths),
                                "reason": "; ".join(dict.fromkeys(reasons))}
        if notes != self.unavailable:
            for field, note in notes.items():
                where = "" if note["missing"] == note["of"] else f" in {note['missing']} of {note['of']} orbits"
                self.log.write("info", f"{self.date}: {self.field_label(field)} is unavailable{where}: "
                                       f"{note['reason']}")
        self.unavailable = notes

    def _zone_orbits(self) -> None:
        """The orbits of the day that cross the zone (the index's footprints first, then the pixels).

        The swaths held are for one day and set of fields: :meth:`_read_orbits` forgets them when those change.
        """
        zone = self.zone_obj
        t0, t1 = _day_bounds(self.date)
        rows = self.archive.granules(TROPOMI, t0, t1, zone.bbox())
        self._availability(rows)
        self._read_orbits(rows)
        candidates = {int(o) for o in rows["orbit"]}
        labels: dict[str, int] = {}
        for orbit, ds in sorted(self._swaths.items()):
            if orbit not in candidates:
                continue
            inside = _in_zone(ds["latitude"].values, ds["longitude"].values, zone)
            rows_in = inside.any(axis=1)
            if rows_in.any():
                labels[orbit_label(orbit, ds["time"].values[rows_in])] = orbit
        self._orbit_labels = labels
        self.param.orbits.objects = list(labels)
        self.orbits = list(labels)
        self._caliop_granules()
        if not labels:
            self.status = f"no TROPOMI orbit crosses this zone ({self.zone}) on {self.date}"
            self.log.write("warning", self.status)

    def _caliop_granules(self) -> None:
        t0, t1 = _day_bounds(self.date)
        try:
            rows = self.archive.granules(CALIOP, t0, t1, self.zone_obj.bbox())
        except (FumaroleError, ValueError, KeyError) as exc:
            self.log.write("warning", f"CALIOP granules cannot be listed: {self.archive.describe(exc)}")
            rows = pd.DataFrame({"path": [], "start": []})
        self._caliop_labels = {
            f"{pd.Timestamp(r.start):%H:%M} UTC {str(r.path).rsplit('Z', 1)[-1][:1]}": str(r.path)
            for r in rows.itertuples()
        }
        objects = list(self._caliop_labels)
        self.param.caliop_granule.objects = objects
        if self.caliop_granule not in objects:
            self.caliop_granule = objects[0] if objects else None

    def _layer_values(self, ds: xr.Dataset, orbit: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The filtered values of the field shown and the QA used (the layer height's own QA for it)."""
        name = self.shown_variable
        if name not in ds:  # the granule lacks the field shown: its orbit is listed, nothing is drawn
            nan = np.full(ds["latitude"].shape, np.nan, dtype=np.float32)
            return nan, nan
        if self.quantity == "layer_height":
            ds = ds.rename({"qa_value_layer_height": "qa_value"})
        try:
            mask = valid_mask(ds, name, **self.filters().as_dict()).values
        except FumaroleError as exc:
            self.log.write("warning", f"orbit {orbit}: {exc}")
            return None
        return np.where(mask, ds[name].values, np.nan), ds["qa_value"].values

    @param.depends("orbits", "qa_min", "edge_pixels", "sza_max", watch=True)
    def _filters_changed(self) -> None:
        if self._hold:  # within an action (a zone change lists new orbits): made once, at its end
            self._stale_layers = True
        else:
            self._make_layers()

    def _make_layers(self) -> None:
        """The filtered swaths of the orbits shown (one recompute per action, counted in ``recomputes``)."""
        self._stale_layers = False
        self.recomputes["layers"] += 1
        layers = []
        central = self.zone_obj.central_longitude
        for label in self.orbits:
            orbit = self._orbit_labels.get(label)
            ds = self._swaths.get(orbit)
            got = None if ds is None else self._layer_values(ds, orbit)
            if got is None:
                continue
            layer = make_layer(ds["latitude"].values, ds["longitude"].values, got[0], ds["time"].values, orbit,
                               central_longitude=central)
            layer.qa = got[1]
            layers.append(layer)
        self.layers = layers
        n = sum(int(np.isfinite(lay.values).sum()) for lay in layers)
        reason = self.shown_unavailable
        if reason:
            self.status = f"{self.field_label()} is unavailable on {self.date}: {reason}"
        elif layers:
            self.status = f"{len(layers)} orbits, {n:,} pixels pass the filters"

    def pixel_counts(self) -> dict[int, int]:
        """Valid pixels per orbit shown (after the filters)."""
        return {lay.orbit: int(np.isfinite(lay.values).sum()) for lay in self.layers}

    # --------------------------------------------------------------------------------------------- input checks
    def check_value(self, name: str, value) -> str | None:
        """Why ``value`` cannot be set as ``name`` (a sentence naming it), or None when it can.

        Colour ranges must be numbers, not negative, and min < max; the volcano must be in the GVP list; the date
        must be a day of the archive; every other value must be one its parameter accepts.
        """
        label = URL_LABELS.get(name, name)
        if name in RANGE_PAIRS:
            problem = _number_problem(label, value)
            if problem:
                return problem
            low, high = RANGE_PAIRS[name]
            lo = value if name == low else getattr(self, low)
            hi = value if name == high else getattr(self, high)
            if lo >= hi:
                return f"{URL_LABELS[low]} ({lo:g}) must be less than {URL_LABELS[high]} ({hi:g})"
            return None
        if name == "volcano":
            try:
                find_volcano(str(value))
            except FumaroleError:
                return f"unknown volcano {value!r}: choose a name from the GVP list"
            return None
        if name == "date" and value is not None and self._days and value not in self._days:
            return f"the archive has no TROPOMI data on {value}: choose one of its days ({self.days_note()})"
        try:
            self.param[name]._validate(value)
        except (ValueError, TypeError) as exc:
            return f"{label}: {exc}"
        return None

    def set_checked(self, name: str, value) -> bool:
        """Set ``name`` to ``value`` if :meth:`check_value` accepts it; else say why (beside the control, log)."""
        problem = self.check_value(name, value)
        errors = {k: v for k, v in self.input_errors.items() if k != name}
        if problem is not None:
            errors[name] = problem
            self.log.write("warning", f"refused: {problem}")
        self.input_errors = errors
        if problem is None:
            setattr(self, name, value)
        return problem is None

    def days_note(self) -> str:
        """"12 days, 2021-04-08 … 2021-04-19" (or "1 day, 2021-04-12"): the archive's TROPOMI days."""
        if not self._days:
            return "no day"
        if len(self._days) == 1:
            return f"1 day, {self._days[0]}"
        return f"{len(self._days)} days, {self._days[0]} … {self._days[-1]}"

    def _query_value(self, name: str, raw):
        """A permalink value read and checked: ``(value, None)`` or ``(None, why it is refused)``.

        Strings are read as the URL writes them (JSON where it parses, e.g. ``[-70.0, -50.0]``, else the text).
        """
        par = self.param[name]
        try:
            value = raw
            if isinstance(raw, str) and not isinstance(par, param.String | param.Selector):
                try:
                    value = json.loads(raw)
                except ValueError:
                    value = par.deserialize(raw)
            if isinstance(par, param.Range) and value is not None:
                value = tuple(float(v) for v in value)
            if name in RANGE_PAIRS and value is not None:
                value = float(value)
        except (ValueError, TypeError) as exc:
            return None, f"{URL_LABELS.get(name, name)}: {raw!r} cannot be read ({exc})"
        if name == "orbits":
            try:
                return orbit_numbers_of(raw), None
            except ValueError as exc:
                return None, f"orbits: {exc}"
        if name == "caliop_granule":
            return value, None
        if name in RANGE_PAIRS:
            return value, _number_problem(URL_LABELS[name], value)
        return value, self.check_value(name, value)

    @param.depends("orbits", watch=True, on_init=True)
    def _orbits_to_numbers(self) -> None:
        numbers = [self._orbit_labels[label] for label in self.orbits if label in self._orbit_labels]
        if numbers != self.orbit_numbers:
            self.orbit_numbers = numbers

    @param.depends("orbit_numbers", watch=True)
    def _numbers_to_orbits(self) -> None:
        """Orbit numbers set (from the URL): the zone's chips of those numbers (the others are not in the zone)."""
        wanted = set(self.orbit_numbers)
        labels = [label for label, orbit in self._orbit_labels.items() if orbit in wanted]
        if labels != list(self.orbits):
            self.orbits = labels

    def _pair_problems(self, query: dict, good: dict) -> list[str]:
        """Colour ranges of a link whose min is not below its max: both refused, said once."""
        problems = []
        for low, high in dict.fromkeys(RANGE_PAIRS.values()):
            lo, hi = good.get(low, getattr(self, low)), good.get(high, getattr(self, high))
            if lo < hi:
                continue
            given = [n for n in (low, high) if n in good]
            for n in given:
                good.pop(n)
            problems.append(", ".join(f"{n}={query[n]}" for n in given)
                            + f": {URL_LABELS[low]} ({lo:g}) must be less than {URL_LABELS[high]} ({hi:g}); used "
                            + " and ".join(f"{getattr(self, n):g}" for n in (low, high)))
        return problems

    def _apply_late(self, later: dict, problems: list[str]) -> None:
        """The link's orbits and CALIOP granule, once its zone and day have listed theirs."""
        for name, value in later.items():
            objects = self.param[name].objects
            if name == "caliop_granule":
                if value in objects:
                    self.caliop_granule = value
                else:
                    problems.append(f"caliop_granule={value}: not a CALIOP granule of this zone and day; "
                                    f"used {self.caliop_granule}")
                continue
            # orbit numbers (the labels of older links were read as their numbers): the zone's chips of them
            ok = [label for label, orbit in self._orbit_labels.items() if orbit in value]
            missing = [n for n in value if n not in self._orbit_labels.values()]
            if missing:
                problems.append(f"orbits: {len(missing)} of the link's orbits ({', '.join(map(str, missing))}) do "
                                f"not cross {self.zone} on {self.date}; shown: {len(ok)}")
            self.orbits = ok

    def apply_query(self, query: dict) -> list[str]:
        """Apply a permalink's values one by one; return a sentence per bad value, with what is used instead.

        ``query`` maps URL_STATE names to strings (as in the URL) or values already parsed. The good values are
        set in one update (so a zoom comes with its zone); the bad ones are said (alert over the map, log
        console), and the state keeps its own.
        """
        problems, good = [], {}
        for name in URL_STATE:
            if name not in query:
                continue
            value, problem = self._query_value(name, query[name])
            if problem is not None:
                used = self.param.orbit_numbers.serialize(self.orbit_numbers) if name == "orbits" \
                    else self.param[name].serialize(getattr(self, name))
                problems.append(f"{name}={query[name]}: {problem}; used {used}")
            else:
                good[name] = value
        problems += self._pair_problems(query, good)
        later = {k: good.pop(k) for k in ("orbits", "caliop_granule") if k in good}
        self.param.update(**good)
        self._apply_late(later, problems)
        for p in problems:
            self.log.write("warning", f"permalink: {p}")
        self.url_problems = problems
        return problems

    # --------------------------------------------------------------------------------------------- actions
    def auto_range(self, _event=None) -> None:
        """Colour range from robust percentiles (2nd, 99.5th) of what is shown in the view."""
        xr_, yr = self.x_range or self.zone_obj.x_range, self.y_range or self.zone_obj.y_range
        agg = aggregate(self.layers, xr_, yr, 600, 400)
        v = agg.values[np.isfinite(agg.values)]
        if v.size == 0:
            self.log.write("warning", "Auto range: no pixel shown in the view")
            return
        lo, hi = np.percentile(v, [2, 99.5])
        self.param.update(so2_min=round(float(max(lo, 0.0)), 2), so2_max=round(float(max(hi, lo + 0.1)), 2))

    # --------------------------------------------------------------------------------------------- map
    def _guarded(self, name: str, draw, empty):
        """Call ``draw()``; a failure is said (alert over the map and log console) and the last good element stays.

        Every DynamicMap callback goes through here so it always returns one element type: its own, or ``empty()``.
        """
        try:
            element = draw()
        except Exception as exc:  # noqa: BLE001 - said on the page and in the log, never a blank map
            self.draw_error = f"The map's {name} could not be drawn: {type(exc).__name__}: {exc}"
            self.log.write("error", self.draw_error)
            return self._last_good.get(name) or empty()
        self._last_good[name] = element
        if self.draw_error.startswith(f"The map's {name} "):
            self.draw_error = ""
        return element

    #: aggregated grids kept per page (the last few: ~2 MB each at the map's size)
    AGGREGATES_KEPT = 6

    def _aggregated(self, layers, x_range, y_range, width: int, height: int) -> xr.DataArray:
        """The layers aggregated on the map's grid, kept per (day, field, filters, zone, orbits, view, size).

        The same view asked again (a plot's first render and its size update, 7 km → PBL → 7 km, a zone and
        back) is not aggregated again. The key names what the layers are made of, not the layer objects (made
        again by each action), and the layers' orbits, so layers not yet made for the state are never mistaken.
        """
        key = (self.date, self.shown_variable, self.filters().key(), self.zone,
               tuple(lay.orbit for lay in layers), x_range, y_range, width, height)
        kept = self.__dict__.setdefault("_aggregates", collections.OrderedDict())
        if key in kept:
            kept.move_to_end(key)
            return kept[key]
        agg = aggregate(layers, x_range, y_range, width, height)
        kept[key] = agg
        while len(kept) > self.AGGREGATES_KEPT:
            kept.popitem(last=False)
        return agg

    def _image(self, x_range, y_range, width, height, layers, scale=1.0, view=None):
        unit = "km" if self.quantity == "layer_height" else "DU"
        vdim = hv.Dimension("v", label=f"{self.field_label()}, {self.date}", unit=unit)  # the colour bar's title

        def draw():
            view_x, view_y = self.view_ranges()
            # rounded: the plot's first render asks again for 27.999999999999996 where the state says 28
            xr_ = tuple(round(float(v), 6) for v in (x_range or view_x))
            yr = tuple(round(float(v), 6) for v in (y_range or view_y))
            agg = self._aggregated(layers, xr_, yr, width or MAP_WIDTH, height or MAP_HEIGHT)
            return hv.Image(agg, kdims=["x", "y"], vdims=[vdim])

        return self._guarded("SO2 image", draw, lambda: hv.Image([], kdims=["x", "y"], vdims=[vdim]))

    def _coast(self, x_range, y_range, show_borders, view=None):
        def draw():
            view_x, view_y = self.view_ranges()
            xr_ = tuple(x_range) if x_range else view_x
            yr = tuple(y_range) if y_range else view_y
            central = self.zone_obj.central_longitude
            coast = overlays.coastlines(None, xr_, yr, central)
            if show_borders:
                return coast * overlays.borders(None, xr_, yr, central)
            return coast * overlays.borders(None, (0, 0), (0, 0), central)

        return self._guarded("coastlines", draw, lambda: hv.Path([]) * hv.Path([]))

    def _labels(self, x_range, y_range, layers, show_timestamps, view=None):
        def draw():
            if not show_timestamps or not layers:
                return overlays.empty_time_labels()
            view_x, view_y = self.view_ranges()
            return overlays.orbit_time_labels(layers, tuple(x_range) if x_range else view_x,
                                              tuple(y_range) if y_range else view_y,
                                              central_longitude=self.zone_obj.central_longitude)

        return self._guarded("time labels", draw, overlays.empty_time_labels)

    def _world_scale(self, x_range=None) -> bool:
        view_x = tuple(x_range) if x_range else self.view_ranges()[0]
        return view_x[1] - view_x[0] > overlays.COARSE_SCALE_ABOVE_DEG

    @param.depends("zone", "x_range")
    def _volcanoes(self, x_range=None):
        """GVP volcanoes; at World scale only those that erupted since 1900, smaller (the SO2 stays visible).

        The same element is returned while the zone and the scale stay (a pan): nothing is sent to the page again.
        """
        def draw():
            key = (self.zone, self._world_scale(x_range))
            last = getattr(self, "_last_volcanoes", None)
            if last is not None and last[0] == key:
                return last[1]
            table = load_volcanoes()
            if key[1]:
                points = overlays.volcano_points(overlays.recent_volcanoes(table), self.zone_obj.central_longitude,
                                                 size=6)
            else:
                points = overlays.volcano_points(table, self.zone_obj.central_longitude)
            self._last_volcanoes = (key, points)
            return points

        return self._guarded("volcanoes", draw, lambda: overlays.volcano_points(load_volcanoes().iloc[:0]))

    @param.depends("volcano", "zone")
    def _selected_volcano(self):
        """The selected volcano, highlighted (a larger yellow triangle)."""
        def draw():
            try:
                v = find_volcano(self.volcano)
            except FumaroleError:
                return overlays.selected_volcano(None, None, self.zone_obj.central_longitude)
            return overlays.selected_volcano(float(v["latitude"]), float(v["longitude"]),
                                             self.zone_obj.central_longitude)

        return self._guarded("selected volcano", draw, lambda: overlays.selected_volcano(None, None))

    @param.depends("volcano", "radii", "zone")
    def _circles(self):
        def draw():
            try:
                v = find_volcano(self.volcano)
            except FumaroleError as exc:
                self.log.write("warning", str(exc))
                return overlays.volcano_circles(0.0, 0.0, [], self.zone_obj.central_longitude)
            return overlays.volcano_circles(float(v["latitude"]), float(v["longitude"]), self.radii,
                                            self.zone_obj.central_longitude)

        return self._guarded("circles", draw, lambda: overlays.volcano_circles(0.0, 0.0, []))

    def _track_lines(self, selected: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        tracks = []
        for label, path in self._caliop_labels.items():
            if (label == self.caliop_granule) != selected:
                continue
            try:
                tr = read_track_cached(path)
            except FumaroleError as exc:  # a damaged granule: named relative to the archive root, the rest drawn
                if not selected:
                    self.log.write("warning", f"skipped {self.archive.describe(exc)}")
                continue
            tracks.append((tr["longitude"].values, tr["latitude"].values))
        return tracks

    @param.depends("date", "zone", "caliop_granule", "secondary")
    def _tracks(self):
        """The CALIOP tracks of the zone and day but the selected one, as one blue ``hv.Path`` (empty if none)."""
        central = self.zone_obj.central_longitude
        return self._guarded("CALIOP tracks", lambda: overlays.track_paths(self._track_lines(False), central),
                             lambda: overlays.track_paths([]))

    @param.depends("date", "zone", "caliop_granule", "secondary")
    def _selected_track(self):
        """The selected CALIOP granule's track, magenta (an empty ``hv.Path`` if none)."""
        central = self.zone_obj.central_longitude
        return self._guarded("selected CALIOP track",
                             lambda: overlays.track_paths(self._track_lines(True), central, color="#e6007e"),
                             lambda: overlays.track_paths([], color="#e6007e"))

    def _marker(self, x):
        def draw():
            curtain = self._current_curtain()
            info = profile_at(curtain, x) if curtain is not None and x is not None else None
            if info is None:
                return hv.Points([], kdims=["x", "y"])
            lon = wrap_lon(info["longitude"], self.zone_obj.central_longitude)
            return hv.Points([(lon, info["latitude"])], kdims=["x", "y"])

        marker = self._guarded("curtain marker", draw, lambda: hv.Points([], kdims=["x", "y"]))
        return marker.opts(marker="circle", size=14, color="#e6007e", line_color="white", line_width=2)

    def map_title(self) -> str:
        """"TROPOMI SO2 7 km — 2021-04-12"; "… — unavailable in these files" when the day's files lack it.

        The reason, too long for a title, is in the alert above the map and the note beside the selector.
        """
        title = f"TROPOMI {self.field_label()} — {self.date}"
        return f"{title} — unavailable in these files" if self.shown_unavailable else title

    def colorbar_label(self) -> str:
        """"SO2 7 km, 2021-04-12 (DU)": what the colours mean, for which level and day."""
        unit = "km" if self.quantity == "layer_height" else "DU"
        return f"{self.field_label()}, {self.date} ({unit})"

    def colour_range(self) -> tuple[float, float]:
        """The colour range of what is shown: DU for a column, km for the layer height."""
        if self.quantity == "layer_height":
            return self.height_min, self.height_max
        return self.so2_min, self.so2_max

    def colour_map(self) -> list[str]:
        """The colour map of what is shown: :data:`SO2` for columns, :data:`LAYER_HEIGHT` for heights."""
        return LAYER_HEIGHT if self.quantity == "layer_height" else SO2

    def map_plot(self):
        """The map: datashaded swaths, coastlines, volcanoes, circles, time labels, CALIOP tracks.

        Built once per page: a zone, date, level or quantity change updates it in place (:meth:`_push`: its
        title, colour-bar title and extent set on the figure, the overlays that changed sent together); the view
        (x_range, y_range) follows pans and zooms.
        """
        view_x, view_y = self.view_ranges()
        rng = hv.streams.RangeXY(x_range=view_x, y_range=view_y)
        size = hv.streams.PlotSize(width=MAP_WIDTH, height=MAP_HEIGHT)
        layers = _LayersStream(layers=self.layers)
        view = _ViewStream(view=(self.zone, str(self.date), (view_x, view_y)))
        caliop = _CaliopStream(caliop=(self.caliop_granule, self.secondary))
        self._streams = {"range": rng, "layers": layers, "view": view, "caliop": caliop}
        self._sent = {"layers": self.layers, "view": view.view, "caliop": caliop.caliop}
        image = hv.DynamicMap(self._image, streams=[rng, size, layers, view])
        image = image.apply.opts(
            clim=pn.bind(lambda *_: self.colour_range(), self.param.so2_min, self.param.so2_max,
                         self.param.height_min, self.param.height_max),  # reads quantity (bound once, below)
            cmap=pn.bind(lambda _: self.colour_map(), self.param.quantity),
            colorbar=True, clipping_colors={"NaN": "#ffffff00"},
            tools=["hover"],
        )
        self._pointer.source = image
        rng.add_subscriber(self._on_range)
        coast = hv.DynamicMap(self._coast, streams=[rng, view, hv.streams.Params(self, ["show_borders"])])
        labels = hv.DynamicMap(self._labels, streams=[rng, layers, view,
                                                      hv.streams.Params(self, ["show_timestamps"])])
        labels = labels.opts(text_font_size="9pt", text_color="#222222")
        tap = hv.streams.Tap(source=image, x=None, y=None)
        tap.add_subscriber(self._on_tap)
        marker = hv.DynamicMap(self._marker, streams=[self._curtain_pointer])
        # one stream per control, shared by the overlays it changes, so one action updates the figure once
        volcano = hv.streams.Params(self, ["volcano", "radii"])
        tracks = hv.DynamicMap(lambda **_: self._tracks(), streams=[view, caliop])
        selected_track = hv.DynamicMap(lambda **_: self._selected_track(), streams=[view, caliop])
        circles = hv.DynamicMap(lambda **_: self._circles(), streams=[view, volcano])
        volcanoes = hv.DynamicMap(lambda x_range=None, **_: self._volcanoes(x_range), streams=[view, rng])
        selected = hv.DynamicMap(lambda **_: self._selected_volcano(), streams=[view, volcano])
        overlay = image * coast * tracks * selected_track * circles * volcanoes * selected * labels * marker
        return overlay.opts(
            hv.opts.Overlay(xlim=view_x, ylim=view_y, xlabel="Longitude (°)", ylabel="Latitude (°)",
                            title=self.map_title(), responsive=True, aspect=_frame_aspect(view_x, view_y),
                            active_tools=["pan"], hooks=[self._figure_hook], show_legend=False, toolbar="above"),
        )

    def _map(self):
        """The map's pane, made once: a zone, date, level or quantity change updates its figure in place."""
        if self._map_pane is None:
            self._map_pane = pn.pane.HoloViews(self.map_plot(), sizing_mode="stretch_width")
        return self._map_pane

    def _on_range(self, x_range=None, y_range=None):
        """A pan or zoom in the page: written into the state (the URL); the plots have already redrawn for it."""
        if x_range and y_range:
            self._from_browser = True
            try:
                self.param.update(x_range=tuple(round(v, 3) for v in x_range),
                                  y_range=tuple(round(v, 3) for v in y_range))
            finally:
                self._from_browser = False

    def _on_tap(self, x=None, y=None):
        """A click near a CALIOP track selects that granule and centres the curtain on the nearest profile."""
        if x is None or y is None:
            return
        best = None
        for label, path in self._caliop_labels.items():
            try:
                tr = read_track_cached(path)
            except FumaroleError:  # said when the tracks were drawn
                continue
            dlon = lon_difference(tr["longitude"].values, x)
            d = np.hypot(dlon * np.cos(np.deg2rad(y)), tr["latitude"].values - y)
            k = int(np.argmin(d))
            if best is None or d[k] < best[0]:
                best = (float(d[k]), label, k)
        if best is not None and best[0] < 2.0:
            self.param.update(caliop_granule=best[1], curtain_focus=best[2])
            if self.secondary == "—":
                self.secondary = "CALIOP 532 nm total backscatter"

    def pixel_info(self, x, y) -> dict | None:
        """The swath pixel nearest the point (lon in the zone's frame, lat): value, QA, time, orbit."""
        if x is None or y is None:
            return None
        best = None
        for lay in self.layers:
            rows = np.flatnonzero((lay.row_lat_max >= y - 1) & (lay.row_lat_min <= y + 1))
            if rows.size == 0:
                continue
            lon, lat = lay.lon[rows], lay.lat[rows]
            for s in (-360.0, 0.0, 360.0):
                d = np.hypot((lon + s - x) * np.cos(np.deg2rad(y)), lat - y)
                k = np.unravel_index(np.argmin(d), d.shape)
                if best is None or d[k] < best[0]:
                    best = (float(d[k]), lay, rows[k[0]], k[1])
        if best is None or best[0] > 3 * best[1].pixel_deg:
            return None
        _, lay, i, j = best
        return {"orbit": lay.orbit, "time": pd.Timestamp(lay.time[i]), "value": float(lay.values[i, j]),
                "qa": float(lay.qa[i, j]), "lat": float(lay.lat[i, j]), "lon": float(lay.lon[i, j])}

    def _readout(self):
        def text(x, y):
            info = self.pixel_info(x, y)
            if info is None:
                return "Hover the map: SO2, QA, time and orbit of the pixel under the cursor."
            unit = "km" if self.quantity == "layer_height" else "DU"
            v = "filtered out" if not np.isfinite(info["value"]) else f"{info['value']:.2f} {unit}"
            return (f"**{self.field_label()}:** {v} · **QA:** {info['qa']:.2f} · "
                    f"**time:** {info['time']:%H:%M:%S} UTC · **orbit:** #{info['orbit']} · "
                    f"({info['lat']:.2f}°, {info['lon']:.2f}°)")
        return pn.pane.Markdown(pn.bind(text, self._pointer.param.x, self._pointer.param.y), margin=(0, 10))

    # --------------------------------------------------------------------------------------------- curtain
    def _current_curtain(self) -> xr.Dataset | None:
        var = SECONDARY.get(self.secondary)
        path = self._caliop_labels.get(self.caliop_granule) if self.caliop_granule else None
        if var is None or path is None:
            return None
        needed = (["total_attenuated_backscatter_532", "perpendicular_attenuated_backscatter_532"]
                  if var == "depolarization_ratio_532" else [var])
        try:
            return read_curtain_cached(path, needed, reader=self.archive.reader_key(CALIOP))
        except FumaroleError as exc:
            self.log.write("warning", f"skipped {self.archive.describe(exc)}")
            return None

    @param.depends("secondary", "caliop_granule", "curtain_focus", "date", "zone")
    def curtain_plot(self):
        """The CALIOP curtain below the map (altitude 0–30 km), or a sentence saying why there is none."""
        var = SECONDARY.get(self.secondary)
        if var is None:
            return pn.pane.Markdown("Choose a CALIOP secondary variable to see its curtain below the map.")
        curtain = self._current_curtain()
        if curtain is None:
            return pn.pane.Alert(f"No CALIOP granule crosses this zone ({self.zone}) on {self.date}.",
                                 alert_type="info")
        n = curtain.sizes["profile"]
        x_range = None
        if 0 <= self.curtain_focus < n:
            half = max(200, n // 8)
            x_range = (max(0, self.curtain_focus - half), min(n - 1, self.curtain_focus + half))
        img = curtain_image(curtain, var, width=MAP_WIDTH, height=260, x_range=x_range)
        self._curtain_pointer.source = img
        img = img.opts(responsive=True, height=300, title=f"CALIOP {self.secondary[7:]} — {self.caliop_granule}")
        return pn.pane.HoloViews(img, sizing_mode="stretch_width", height=320)

    # --------------------------------------------------------------------------------------------- export
    def export_png(self) -> io.BytesIO:
        """PNG of the current map with colour bar, title, date, orbits and credits drawn in."""
        zone = self.zone_obj
        view_x, view_y = self.view_ranges()  # the view on the screen (zoomed, or the zone's)
        agg = aggregate(self.layers, view_x, view_y, 1100, 640)
        try:
            v = find_volcano(self.volcano)
            volcano = (float(v["latitude"]), float(v["longitude"]), str(v["name"]))
        except FumaroleError:
            volcano = None
        png = map_png(
            agg, clim=self.colour_range(), cmap=self.colour_map(), title=self.map_title(),
            subtitle=self.filters().describe(),
            credits=overlays.credits_text(caliop=self.secondary != "—"),
            colorbar_label=self.colorbar_label(), central_longitude=zone.central_longitude,
            borders=self.show_borders, volcano=volcano, radii_km=self.radii, orbit_labels=list(self.orbits),
        )
        return io.BytesIO(_with_text(png, {"Title": self.map_title(), "Colour bar": self.colorbar_label(),
                                           "Extent": json.dumps({"x_range": view_x, "y_range": view_y})}))

    #: Days on each side of the shown day in an exported animation.
    ANIMATION_DAYS = 3

    def export_animation(self, fmt: str = "mp4") -> tuple[str, io.BytesIO]:
        """The SO2 map of the days around the shown day (±:attr:`ANIMATION_DAYS`) as MP4 or GIF: name, bytes.

        The zone, level, filters and colour range shown (the column in DU); a day without data is skipped and said
        in the log console; when none can be drawn the reason is said and UserInputError raised.
        """
        day = pd.Timestamp(self.date)
        days = tuple(day + pd.Timedelta(days=k) for k in range(-self.ANIMATION_DAYS, self.ANIMATION_DAYS + 1))
        volcano = None
        try:
            v = find_volcano(self.volcano)
            volcano = (float(v["latitude"]), float(v["longitude"]), str(v["name"]))
        except FumaroleError:
            pass
        clim = self.colour_range() if self.quantity == "column" else None
        loop = animation_service.So2Loop(days, self.zone_obj, self.level, self.filters(), clim, width=1024, fps=2.0,
                                         volcano=volcano)
        try:
            out = animation_service.so2_animation(self.archive, loop, fmt)
        except FumaroleError as exc:
            message = f"the SO2 animation around {self.date} could not be drawn: {exc}"
            self.log.write("error", message)
            raise UserInputError(message) from None
        for skipped in out.skipped:
            self.log.write("warning", f"animation: skipped {skipped}")
        self.log.write("info", f"animation exported: {out.file_name}, {len(out.times)} days "
                               f"({', '.join(out.times)}), {len(out.data) / 1e6:.2f} MB")
        return out.file_name, io.BytesIO(out.data)

    def animation_download(self) -> pn.Row:
        """The "Export animation" control: a format (MP4 or GIF) and the button that downloads the days' loop."""
        return animation_export(self.export_animation, "fumarole_so2_animation", "volcplume")

    def export_netcdf(self) -> io.BytesIO:
        """The pixels shown (valid, in the view) of every orbit shown, as a netCDF file."""
        zone = self.zone_obj
        xr_, yr = self.x_range or zone.x_range, self.y_range or zone.y_range
        name = self.shown_variable
        qa_name = "qa_value_layer_height" if self.quantity == "layer_height" else "qa_value"
        parts = []
        for lay in self.layers:
            ok = np.isfinite(lay.values)
            for s in (-360.0, 0.0, 360.0):
                lon = lay.lon + s
                sel = ok & (lon >= xr_[0]) & (lon <= xr_[1]) & (lay.lat >= yr[0]) & (lay.lat <= yr[1])
                if sel.any():
                    rows = np.nonzero(sel)[0]
                    parts.append(pd.DataFrame({
                        "orbit": lay.orbit, "time": lay.time[rows], "latitude": lay.lat[sel],
                        "longitude": wrap_lon(lay.lon[sel]), name: lay.values[sel],
                        qa_name: lay.qa[sel],
                    }))
        df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            {"orbit": [], "time": pd.to_datetime([]), "latitude": [], "longitude": [], name: [], qa_name: []})
        ds = xr.Dataset.from_dataframe(df.rename_axis("pixel"))
        if self.quantity == "layer_height":
            ds[name].attrs.update(units="km", long_name="SO2 layer height")
        else:
            ds[name].attrs.update(units="DU", long_name=f"SO2 vertical column, {LEVEL_LABELS[self.level]} box")
        ds.attrs.update(title=self.map_title(), source="Fumarole VolcPlume export", qa_min=self.qa_min,
                        sza_max=self.sza_max, edge_pixels=self.edge_pixels, zone=self.zone,
                        lon_range=list(xr_), lat_range=list(yr), credits=overlays.credits_text(caliop=False))
        return io.BytesIO(ds.to_netcdf(engine="h5netcdf"))

    # --------------------------------------------------------------------------------------------- layout
    def _checked_widget(self, widget, name: str):
        """Tie ``widget`` to the parameter ``name`` through :meth:`set_checked`.

        A refused value is said beside the widget, and the widget goes back to the state's value.
        """
        def on_widget(event):
            if event.new != getattr(self, name) and not self.set_checked(name, event.new):
                widget.value = getattr(self, name)

        def on_state(event):
            if widget.value != event.new:
                widget.value = event.new

        widget.param.watch(on_widget, "value")
        self.param.watch(on_state, name)
        return widget

    def _input_note(self, *names: str):
        """The reason a value typed in one of these controls was refused (red, under it), or nothing."""
        def note(errors):
            text = " ".join(errors[n] + "." for n in names if n in errors)
            return pn.pane.Alert(text, alert_type="danger", margin=(0, 10), sizing_mode="stretch_width") if text \
                else pn.pane.Markdown("", margin=0)
        return pn.bind(note, self.param.input_errors)

    def controls(self) -> pn.Column:
        """The sidebar: every setting, as widgets made from the parameters (typed values checked, said beside)."""
        auto = pn.widgets.Button(label="Auto", width=70, margin=(22, 5, 5, 5))
        auto.on_click(self.auto_range)
        w = pn.widgets

        def number(name, label, width=100):
            return self._checked_widget(w.FloatInput(label=label, value=getattr(self, name), width=width), name)

        volcano = self._checked_widget(w.AutocompleteInput(
            label="Volcano (GVP name)", value=self.volcano, options=list(load_volcanoes()["name"].astype(str)),
            restrict=False, case_sensitive=False, search_strategy="includes", min_characters=2,
            placeholder="type 2 letters of a GVP name"), "volcano")
        date = self._checked_widget(w.DatePicker(label="Date (UTC)", value=self.date, enabled_dates=self._days or None),
                                    "date")
        return pn.Column(
            w.Select.from_param(self.param.zone, label="Select zone"),
            labelled_checkbox(self, "show_borders", "Show land borders"),
            w.RadioButtonGroup.from_param(self.param.quantity, label="Show", options=_invert(QUANTITIES)),
            w.RadioButtonGroup.from_param(self.param.level, label="Level",
                                          options={LEVEL_LABELS[k]: k for k in LEVELS}),
            pn.param.ParamMethod(self._level_note, inplace=True),
            w.Select.from_param(self.param.secondary, label="Secondary variable"),
            date,
            pn.pane.Markdown(f"Only the archive's days can be chosen ({self.days_note()}).",
                             styles={"font-size": "12px", "color": "#555"}, margin=(0, 10)),
            self._input_note("date"),
            pn.Row(number("so2_min", "SO2 min (DU)"), number("so2_max", "SO2 max (DU)"), auto),
            self._input_note("so2_min", "so2_max"),
            pn.Row(number("height_min", "Height min (km)"), number("height_max", "Height max (km)")),
            self._input_note("height_min", "height_max"),
            w.FloatSlider.from_param(self.param.qa_min, label="Quality threshold (qa_value >)"),
            pn.Row(w.IntInput.from_param(self.param.edge_pixels, label="Edge pixels filter", width=130),
                   w.FloatInput.from_param(self.param.sza_max, label="Max SZA (°)", width=110)),
            labelled_checkbox(self, "show_timestamps", "Show timestamps"),
            w.MultiChoice.from_param(self.param.orbits, label="Orbits to display"),
            volcano,
            self._input_note("volcano"),
            pn.pane.Markdown("Circles (km)", margin=(5, 10, 0, 10)),
            w.CheckBoxGroup.from_param(self.param.radii, inline=True, label="Circles (km)",
                                       stylesheets=[WRAP_INLINE_CSS], sizing_mode="stretch_width"),
            w.Select.from_param(self.param.caliop_granule, label="CALIOP granule"),
            sizing_mode="stretch_width",
        )

    def downloads(self) -> pn.FlexBox:
        """Export buttons: PNG of the map, netCDF of the pixels shown, an animation; they wrap on a narrow screen."""
        stem = f"fumarole_{self.date}_{self.variable}"
        return pn.FlexBox(
            gap="4px", sizing_mode="stretch_width", objects=[
            pn.widgets.FileDownload(callback=self.export_png, filename=f"{stem}.png", label="Export PNG",
                                    button_type="light"),
            pn.widgets.FileDownload(callback=self.export_netcdf, filename=f"{stem}.nc", label="Export netCDF",
                                    button_type="light"),
            self.animation_download(),
        ])

    def level_note(self) -> str:
        """The note beside the level selector: each level (or the layer height) the day's files lack, and why."""
        lines = []
        for field, note in self.unavailable.items():
            where = "" if note["missing"] == note["of"] else f" in {note['missing']} of {note['of']} orbits"
            lines.append(f"**{self.field_label(field)[4:]}** unavailable{where}: {note['reason']}")
        return "\n\n".join(lines)

    @param.depends("unavailable")
    def _level_note(self):
        text = self.level_note()
        return pn.pane.Markdown(text, styles={"font-size": "12px", "color": "#8a4b00"}, margin=(0, 10)) if text \
            else pn.pane.Markdown("", margin=0)

    @param.depends("status")
    def _status(self):
        if self.shown_unavailable:
            return pn.pane.Alert(self.status, alert_type="warning", margin=(0, 10))
        return pn.pane.Markdown(f"*{self.status}*", margin=(0, 10))

    def data_age(self) -> str:
        """How old the archive's newest TROPOMI granule is (:func:`data_age_text`), for the status area."""
        try:
            rows = self.archive.granules(TROPOMI)
        except (FumaroleError, ValueError, KeyError):
            return data_age_text(None)
        return data_age_text(rows["end"].max() if len(rows) else None)

    @param.depends("status")
    def _data_age(self):
        text = self.data_age()  # digits, letters, ':', '-', '(', ')', ',': nothing to escape
        return pn.pane.HTML(f'<div class="volcplume-data-age" style="font-size:12px;color:#555">{text}</div>',
                            margin=(0, 10))

    @param.depends("url_problems", "draw_error")
    def _alerts(self):
        """Alerts over the map: a failed drawing (the last picture stays), the permalink's bad values."""
        items = []
        if self.draw_error:
            items.append(pn.pane.Alert(self.draw_error + " The last good picture stays; see the log console.",
                                       alert_type="danger", margin=(0, 10)))
        if self.url_problems:
            text = "This link had values that cannot be used; the page uses others:\n\n" + "\n".join(
                f"- {p}" for p in self.url_problems)
            items.append(pn.pane.Alert(text, alert_type="warning", margin=(0, 10)))
        return pn.Column(*items, sizing_mode="stretch_width", margin=0)

    def __panel__(self):
        credits = pn.pane.Markdown(overlays.credits_text(), styles={"font-size": "11px", "color": "#555"})
        return pn.Column(
            # updated in place (a new Bokeh model would make the server walk the whole document again)
            pn.param.ParamMethod(self._alerts, inplace=True),
            pn.param.ParamMethod(self._status, inplace=True),
            pn.param.ParamMethod(self._data_age, inplace=True),
            self._map(),
            self._readout(),
            credits,
            self.downloads(),
            pn.param.ParamMethod(self.curtain_plot, inplace=True),
            sizing_mode="stretch_width",
        )
