"""The GEO HTTP API: images of a satellite's product as PNG, the values under a point, the slots of a day, as JSON.

Routes (all ``GET``; the server of ``fumarole serve`` loads them as a Panel plugin: ``panel serve --plugins
app.api.geo`` adds :data:`ROUTES` to its Tornado application, next to the dashboards)::

    /api/geo/image.png?satellite=G16&product=ash&time=2021-04-12T15:00&bbox=-70,5,-50,20&width=800
    /api/geo/value?satellite=G16&time=2021-04-12T15:00&lat=13.33&lon=-61.18[&channels=ir_105,ir_120]
    /api/geo/slots?satellite=G16&date=2021-04-12

- ``satellite``: platform id (``G16``, ``G19``, ``MTI1`` …), satellite (``GOES-16``) or ring position
  (``GOES-East``). A position is resolved by the time asked for: ``GOES-East`` is GOES-16 on 2021-04-12 and
  GOES-19 from 2025-04-07 (``assets/platforms.yaml``, overridden by the catalogue); without a time, its latest
  holder with slots in the archive. ``slots`` of a position list the slots of whoever held it then (each with its
  ``platform``). Answers name the satellite and the position it held then (``X-Fumarole-Satellite``,
  ``X-Fumarole-Position``).
- ``product``: an RGB composite (``ash``, ``dust``, ``natural_color``, ``true_color``, ``day_microphysics``,
  ``so2``) or ``cloud_top_height`` / ``cloud_top_temperature`` / ``cloud_top_pressure``; default ``ash``.
- ``time``: the slot, ISO (``2021-04-12T15:00``, UTC), years 1970 … 2100; default (or ``latest``) the
  satellite's latest slot. ``date`` (``slots``): a day, ``YYYY-MM-DD``, same years.
- ``bbox``: ``lon_min,lat_min,lon_max,lat_max`` in degrees: the picture is that box on a latitude–longitude grid
  (equirectangular, north up; ``lon_min > lon_max`` crosses the antimeridian; at most 360° wide), regridded from
  the satellite's fixed grid (nearest neighbour). Without it, the full disk in the satellite's own projection.
- ``width`` and ``height`` in pixels, each 16 … 4096 (another value is a 400). With a ``bbox``, a side not given
  follows the box's shape (square degrees; ``width`` 800 when neither is given), then both are brought within
  16 … 4096 keeping the shape as far as they can (:func:`image_size`): a picture never has more than 4096 × 4096
  pixels, whatever the box. Without a ``bbox``, the disk is shown at most at its own resolution.
- ``lat``, ``lon`` (``value``): the point, degrees; ``channels`` (``value``): generic channel names to read, comma
  separated (default: every channel of the slot — on a full-resolution archive, asking only for those needed
  spares reading the others).

A parameter given twice counts once (the last); one this route does not know, or a value longer than
:data:`MAX_VALUE_CHARS` characters, is a 400.

The PNG is RGBA: transparent where the satellite has no value (space, beyond the disk); a cloud-top field is
coloured with the dashboard's colour map over its fixed range (``X-Fumarole-Colour-Range`` header gives it, with
units), clear sky grey. PNGs are kept by their inputs (the normalised parameters and each file of the slot's size
and modification time) in the byte-bounded cache ``api-png``, and carry an ``ETag``: a request with a matching
``If-None-Match`` is answered 304 without drawing anything.

``value`` reads the optional NWC SAF cloud top and, when no channel is asked for, every channel: a damaged file
among those only drops what it feeds (``cloud_top: null``, or the channels it holds) and says so in
``"warnings": ["<file, relative to the archive root>: <reason>"]``, with 200.

Errors are JSON ``{"error": "<a sentence naming the value at fault>"}``: 400 for a bad parameter, 404 for a slot or
point that is not there (or a position nobody we read held then), 422 for a damaged file the answer needs (named
relative to the archive root — an answer never shows a server path; whatever the reader raised on it), 503
(with ``Retry-After``) when too many requests wait, 504 when one takes longer than its time bound; anything
unexpected is a JSON 500 ``"internal error: <type>"`` (logged with its traceback), never Tornado's HTML page.
Every answer allows any origin (``Access-Control-Allow-Origin: *``) so other web pages can embed the images and
fetch the values.

The work is the dashboard's own: :func:`app.services.geo.load_product`, :func:`~app.render.geo.frame`,
:func:`~app.render.geo.lonlat_frame`, :func:`~app.render.geo.pixel_values`. It runs on the API's own bounded
pool (:mod:`app.api.pool`), never on the event loop nor on Tornado's default executor, so neither pages nor API
requests starve the other; identical concurrent requests are computed once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass

import pandas as pd
import tornado.web
from tornado.httputil import responses

from app.api import pool as api_pool
from app.core.cache import SingleFlight, bounded_cache
from app.data import geo
from app.data.archive import Archive, get_archive
from app.data.errors import FumaroleError, GranuleError, UserInputError
from app.data.index import without_root
from app.render import geo as render
from app.services import geo as services

__all__ = ["ROUTES", "NotFound", "ImageRequest", "ImageAnswer", "image_request", "image_size", "image_png",
           "value_json", "slots_json", "relative_message", "ImageHandler", "ValueHandler", "SlotsHandler",
           "routes"]

log = logging.getLogger(__name__)

WIDTH_BOUNDS = (16, 4096)
MAX_PIXELS = 4096 * 4096
DEFAULT_WIDTH = 800
YEAR_BOUNDS = (1970, 2100)
MAX_VALUE_CHARS = 256

#: PNGs by their inputs: 5 % of the process's memory budget (app.core.cache).
PNG_CACHE = bounded_cache("api-png", 0.05)
_PNG_FLIGHT = SingleFlight()


class NotFound(UserInputError):
    """What was asked for is not there (a point the satellite does not see); answered with 404."""


# --------------------------------------------------------------------------------------------- parameters


def _check_names(args: dict, allowed: tuple[str, ...]) -> None:
    unknown = [k for k in args if k not in allowed]
    if unknown:
        shown = ", ".join(repr(k[:40]) for k in unknown[:5])
        raise UserInputError(f"unknown parameter {shown}; parameters are {', '.join(allowed)}")
    for name, value in args.items():
        if len(str(value)) > MAX_VALUE_CHARS:
            raise UserInputError(f"parameter {name!r} is too long ({len(str(value))} characters; at most "
                                 f"{MAX_VALUE_CHARS})")


def _required(args: dict, name: str) -> str:
    value = args.get(name)
    if value is None or str(value).strip() == "":
        raise UserInputError(f"parameter {name!r} is required")
    return str(value).strip()


def _number(args: dict, name: str, low: float, high: float, unit: str) -> float:
    text = _required(args, name)
    try:
        value = float(text)
    except ValueError:
        raise UserInputError(f"{name} {text!r} is not a number") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise UserInputError(f"{name} {text} is out of range ({low:g} … {high:g} {unit})")
    return value


def _integer(args: dict, name: str, default: int | None, bounds: tuple[int, int]) -> int | None:
    text = args.get(name)
    if text is None or str(text).strip() == "":
        return default
    try:
        value = int(str(text).strip())
    except ValueError:
        raise UserInputError(f"{name} {text!r} is not a whole number of pixels") from None
    if not bounds[0] <= value <= bounds[1]:
        shown = str(value) if len(str(value)) <= 20 else f"{str(value)[:20]}…"
        raise UserInputError(f"{name} {shown} is out of range ({bounds[0]} … {bounds[1]} pixels)")
    return value


def _timestamp(name: str, text: str, expected: str) -> pd.Timestamp:
    """A UTC time from ``text``, in years 1970 … 2100, or a UserInputError naming the parameter."""
    try:
        t = pd.Timestamp(text)
    except Exception:  # noqa: BLE001 - pandas raises many types for text that is not a time; all mean the same
        t = None
    if t is None or pd.isna(t):
        raise UserInputError(f"{name} {text!r} is not a date and time (expected {expected}, UTC)")
    if not YEAR_BOUNDS[0] <= t.year <= YEAR_BOUNDS[1]:
        raise UserInputError(f"{name} {text!r} is out of range (years {YEAR_BOUNDS[0]} … {YEAR_BOUNDS[1]})")
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return pd.Timestamp(t).as_unit("ns")


def _satellite_and_time(archive: Archive, args: dict) -> tuple[geo.RingPosition, pd.Timestamp]:
    """The satellite asked for (a position resolved by the time) and the slot time (default: its latest slot)."""
    name = _required(args, "satellite")
    text = args.get("time")
    if text is None or str(text).strip() in ("", "latest"):
        pos = geo.ring_position(name, None, archive)
        slot = geo.latest_slot(archive, pos.platform)
        if slot is None:
            held = f" ({pos.name})" if pos.name else ""
            raise geo.MissingSlotError(f"the archive has no {pos.satellite}{held} slot at all", pos.platform,
                                       pd.NaT, None)
        return geo.ring_position(pos.platform, slot.time, archive), slot.time
    t = _timestamp("time", str(text).strip(), "YYYY-MM-DDTHH:MM")
    return geo.ring_position(name, t, archive), t


def _product(args: dict) -> str:
    product = str(args.get("product") or "ash").strip()
    if product not in render.products():
        raise UserInputError(f"unknown product {product!r}; products are {', '.join(render.products())}")
    return product


def _bbox(text: str) -> tuple[tuple[float, float], tuple[float, float]]:
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 4:
        raise UserInputError(f"bbox {text!r} must be four numbers: lon_min,lat_min,lon_max,lat_max (degrees)")
    try:
        lon0, lat0, lon1, lat1 = (float(p) for p in parts)
    except ValueError:
        raise UserInputError(f"bbox {text!r} must be four numbers: lon_min,lat_min,lon_max,lat_max") from None
    if not all(math.isfinite(v) for v in (lon0, lat0, lon1, lat1)):
        raise UserInputError(f"bbox {text!r} must be four finite numbers")
    if not (-90 <= lat0 < lat1 <= 90):
        raise UserInputError(f"bbox {text!r}: latitudes must satisfy −90 ≤ lat_min < lat_max ≤ 90")
    if not (-180 <= lon0 <= 360 and -180 <= lon1 <= 360) or lon0 == lon1:
        raise UserInputError(f"bbox {text!r}: longitudes must lie in −180 … 360 and differ (lon_min > lon_max "
                             f"crosses the antimeridian)")
    if lon1 - lon0 > 360:
        raise UserInputError(f"bbox {text!r} is wider than 360° of longitude")
    return (lon0, lon1), (lat0, lat1)


def image_size(lon_range, lat_range, width: int | None, height: int | None) -> tuple[int, int]:
    """(width, height) in pixels of a lat/lon box's picture: both in 16 … 4096, at most 4096 × 4096 pixels.

    A side not given follows the box's shape (square degrees; ``width`` 800 when neither is). When that side
    falls outside 16 … 4096, both sides are scaled by the same factor to bring it back (the shape is kept), then
    each is clamped to 16 … 4096 (so only a box thinner than 16 : 4096 loses its shape). Two sides given are
    used as they are (the caller checked each).
    """
    lo, hi = WIDTH_BOUNDS
    if width is not None and height is not None:
        return int(width), int(height)
    lon0, lon1 = float(lon_range[0]), float(lon_range[1])
    span = lon1 - lon0 if lon1 > lon0 else lon1 + 360.0 - lon0
    aspect = (float(lat_range[1]) - float(lat_range[0])) / span  # height / width
    if height is None:
        w = float(DEFAULT_WIDTH if width is None else width)
        h = w * aspect
    else:
        h = float(height)
        w = h / aspect if aspect > 0 else float(hi)
    if not (math.isfinite(w) and math.isfinite(h)):
        w, h = (float(lo), float(hi)) if aspect > 1 else (float(hi), float(lo))
    scale = min(1.0, hi / w, hi / h, math.sqrt(MAX_PIXELS / (w * h)))
    w, h = w * scale, h * scale
    return int(min(hi, max(lo, round(w)))), int(min(hi, max(lo, round(h))))


@dataclass(frozen=True)
class ImageRequest:
    """An ``image.png`` request, checked and normalised (the key of its PNG, with the data's stamp)."""

    platform: str
    product: str
    time: pd.Timestamp
    lon_range: tuple[float, float] | None
    lat_range: tuple[float, float] | None
    width: int
    height: int | None


@dataclass(frozen=True)
class ImageAnswer:
    """A PNG (None when the client's copy is current: 304), its headers and its ETag."""

    png: bytes | None
    headers: dict
    etag: str


def image_request(archive: Archive, args: dict) -> ImageRequest:
    """The checked parameters of ``/api/geo/image.png`` (UserInputError naming the one at fault)."""
    _check_names(args, ("satellite", "product", "time", "bbox", "width", "height"))
    _required(args, "satellite")
    product = _product(args)
    width = _integer(args, "width", None, WIDTH_BOUNDS)
    height = _integer(args, "height", None, WIDTH_BOUNDS)
    lon_range = lat_range = None
    if args.get("bbox") and str(args["bbox"]).strip():
        lon_range, lat_range = _bbox(args["bbox"])
        width, height = image_size(lon_range, lat_range, width, height)
    elif width is None:
        width = DEFAULT_WIDTH
    pos, t = _satellite_and_time(archive, args)
    return ImageRequest(pos.platform, product, t, lon_range, lat_range, width, height)


def _image_headers(archive: Archive, req: ImageRequest) -> dict:
    pos = geo.ring_position(req.platform, req.time, archive)
    headers = {"X-Fumarole-Satellite": pos.satellite, "X-Fumarole-Time": f"{req.time:%Y-%m-%dT%H:%M:%SZ}",
               "X-Fumarole-Product": render.product_title(req.product)}
    if pos.name:
        headers["X-Fumarole-Position"] = pos.name
    if render.is_cloud_top(req.product):
        style = render.CLOUD_TOP[req.product]
        headers["X-Fumarole-Colour-Range"] = f"{style.clim[0]:g} {style.clim[1]:g} {style.units}"
    return headers


def _render_png(archive: Archive, req: ImageRequest) -> bytes:
    """Draw the picture of a request (the work the PNG cache and the merging of requests spare)."""
    data = services.load_product(archive, req.platform, req.time, req.product)
    if req.lon_range is not None:
        picture = render.lonlat_frame(data, req.product, req.lon_range, req.lat_range, req.width, req.height)
    else:
        picture = render.frame(data, req.product, width=req.width, height=req.height)
    return render.png_bytes(render.frame_rgba(picture))


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return etag in tags or "*" in tags


def image_png(archive: Archive, args: dict, if_none_match: str | None = None) -> ImageAnswer:
    """The answer of ``/api/geo/image.png`` for the query ``args`` (name -> text).

    The PNG is looked up in :data:`PNG_CACHE` by the normalised request and the slot's file stamps; identical
    requests in flight are drawn once. When ``if_none_match`` holds the answer's ETag, nothing is drawn and
    the answer's ``png`` is None.
    """
    req = image_request(archive, args)
    key = ("png", req, geo.slot_stamp(archive, req.platform, req.time))
    etag = '"' + hashlib.sha256(repr(key).encode("utf-8")).hexdigest()[:32] + '"'
    headers = _image_headers(archive, req)
    if _matches(if_none_match, etag):
        return ImageAnswer(None, headers, etag)
    png = PNG_CACHE.get(key)
    if png is None:
        def draw() -> bytes:
            again = PNG_CACHE.get(key)
            if again is not None:
                return again
            made = _render_png(archive, req)
            PNG_CACHE.put(key, made)
            return made

        png = _PNG_FLIGHT.do(key, draw)
    return ImageAnswer(png, headers, etag)


def _scene_with_warnings(archive: Archive, pos: geo.RingPosition, t: pd.Timestamp, channels: list[str] | None,
                         root: str) -> tuple:
    scene = geo.read_scene(archive, pos.platform, t, channels, skip_damaged=channels is None)
    warnings = [relative_message(f"{d['path']}: {d['problem']}", root) for d in scene.attrs.get("damaged", ())]
    return scene, warnings


def _cloud_top(archive: Archive, pos: geo.RingPosition, t: pd.Timestamp, lat: float, lon: float, root: str
               ) -> tuple[dict | None, list[str]]:
    """The cloud top under the point (or None) and what could not be read (the CTTH file is optional)."""
    try:
        ctth = geo.read_cloud_top(archive, pos.platform, t)
    except geo.MissingSlotError:
        return None, []
    except GranuleError as exc:
        return None, [relative_message(str(exc), root)]
    names = ["cloud_top_height", "cloud_top_temperature", "cloud_top_pressure"]
    top = render.pixel_values(ctth, lat=lat, lon=lon, channels=names)
    if top is None:
        return None, []
    out = {k: v["value"] for k, v in top["values"].items()}
    out["units"] = {k: v["units"] for k, v in top["values"].items()}
    return out, []


def value_json(archive: Archive, args: dict) -> dict:
    """The answer of ``/api/geo/value``: every channel's value (and the cloud top) in the pixel under lat/lon.

    A damaged optional file (the CTTH; a channel's file when no channel was asked for) only drops what it feeds
    and adds a sentence to ``warnings`` naming it relative to the archive root.
    """
    _check_names(args, ("satellite", "time", "lat", "lon", "channels"))
    _required(args, "satellite")
    lat = _number(args, "lat", -90.0, 90.0, "degrees")
    lon = _number(args, "lon", -180.0, 360.0, "degrees")
    pos, t = _satellite_and_time(archive, args)
    channels = None
    if args.get("channels") and str(args["channels"]).strip():
        channels = [c.strip() for c in str(args["channels"]).split(",") if c.strip()] or None
    root = _root(archive)
    scene, warnings = _scene_with_warnings(archive, pos, t, channels, root)
    info = render.pixel_values(scene, lat=lat, lon=lon)
    if info is None:
        raise NotFound(f"the point lat={lat:g}, lon={lon:g} is not seen by {pos.satellite} ({pos.name}, "
                       f"{pos.sub_lon:g}°): it lies beyond the disk")
    vza = float(render.viewing_zenith(pos.sub_lon, lon, lat))
    cloud_top, more = _cloud_top(archive, pos, t, lat, lon, root)
    out = {
        "satellite": pos.satellite, "platform": pos.platform, "position": pos.name, "sub_lon": pos.sub_lon,
        "time": f"{t:%Y-%m-%dT%H:%M:%SZ}", "lat": lat, "lon": lon,
        "pixel": {k: info[k] for k in ("row", "col", "latitude", "longitude")},
        "viewing_zenith_angle": round(vza, 2) if math.isfinite(vza) else None,
        "channels": info["values"], "cloud_top": cloud_top,
    }
    if warnings or more:
        out["warnings"] = [*warnings, *more]
    return out


def slots_json(archive: Archive, args: dict) -> list[dict]:
    """The answer of ``/api/geo/slots``: the satellite's slots of a day (or of the whole archive), in time order."""
    _check_names(args, ("satellite", "date"))
    name = _required(args, "satellite")
    start = end = None
    if args.get("date") and str(args["date"]).strip():
        start = _timestamp("date", str(args["date"]).strip(), "YYYY-MM-DD").normalize()
        end = start + pd.Timedelta(days=1)
    geo.ring_position(name, start, archive)  # an unknown name is a 400 naming the known ones
    table = geo.slots(archive, name, start, end)
    return [{"time": f"{r.time:%Y-%m-%dT%H:%M:%SZ}", "platform": r.platform, "channels": list(r.channels),
             "files": int(r.n_files), "cloud_top": r.cloud_top is not None, "complete": bool(r.complete)}
            for r in table.itertuples()]


# --------------------------------------------------------------------------------------------- file names


def _root(archive: Archive) -> str:
    """The archive's root (a folder or a URL), as messages name files relative to it."""
    from app.data.catalog import archive_root

    try:
        return str(archive_root(archive.catalog))
    except Exception:  # noqa: BLE001 - a message must still be given when the catalogue has no root
        return ""


_ABSOLUTE_DIRS = re.compile(r"(?<![\w.:/-])/(?:[^\s/'\"(),:;]+/)+")


def relative_message(text: str, root: str) -> str:
    """``text`` with every file named relative to the archive ``root``; other server folders left out.

    ``/srv/archive/abi/G16/…/C13.nc: is truncated`` reads ``abi/G16/…/C13.nc: is truncated``; a path outside the
    archive keeps only its file name: no answer tells a client where the server keeps its files.
    """
    return _ABSOLUTE_DIRS.sub("", without_root(str(text), root))


# --------------------------------------------------------------------------------------------- Tornado


def _failure(exc: BaseException) -> tuple[int, str]:
    """HTTP status and message of an exception raised while answering."""
    if isinstance(exc, api_pool.Busy):
        return 503, str(exc)
    if isinstance(exc, api_pool.TimedOut):
        return 504, str(exc)
    if isinstance(exc, geo.MissingSlotError | geo.MissingChannelError | NotFound):
        return 404, str(exc)
    if isinstance(exc, UserInputError):
        return 400, str(exc)
    if isinstance(exc, GranuleError):  # the file's fault, not ours: not a 5xx
        return 422, f"a file of this slot cannot be read: {exc}"
    if isinstance(exc, FumaroleError):
        return 500, str(exc)
    if isinstance(exc, tornado.web.HTTPError):
        return exc.status_code, exc.log_message or exc.reason or responses.get(exc.status_code, "error")
    return 500, f"internal error: {type(exc).__name__}"


class _GeoHandler(tornado.web.RequestHandler):
    """Common to the GEO routes: the archive, the answer on the API's pool, errors as JSON sentences."""

    route = "geo"

    def initialize(self, catalog: str | None = None, archive: Archive | None = None) -> None:
        self._catalog = catalog
        self._given = archive

    def set_default_headers(self) -> None:
        """Any origin may embed the images and fetch the values."""
        self.set_header("Access-Control-Allow-Origin", "*")

    def archive(self) -> Archive:
        """The archive answered from."""
        return self._given or get_archive(self._catalog)

    def args(self) -> dict:
        """The query's parameters (the last value of each)."""
        return {k: self.get_query_argument(k) for k in self.request.query_arguments}

    def answer(self, archive: Archive, args: dict):  # pragma: no cover - overridden
        """The result of the query (each route's own)."""
        raise NotImplementedError

    def merge_key(self, args: dict) -> tuple:
        """Requests with the same key in flight at once share one answer."""
        return (self.route, self._catalog, id(self._given), tuple(sorted(args.items())))

    def _fail(self, status: int, message: str, headers: dict | None = None) -> None:
        self.clear()
        self.set_default_headers()
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if status == 503:
            self.set_header("Retry-After", str(api_pool.RETRY_AFTER_S))
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        self.finish(json.dumps({"error": message}, ensure_ascii=False))

    def _work(self, args: dict):
        archive = self.archive()
        try:
            return self.answer(archive, args)
        except FumaroleError as exc:  # name files relative to the archive root
            exc.args = (relative_message(str(exc), _root(archive)),)
            raise

    async def prepare(self) -> None:
        """With access control on (``fumarole serve --users/--oidc-issuer/--tokens``), ask who is asking.

        The server's auth hook (app/serve_auth.py) takes a bearer token, the pages' login cookie or a public route;
        nobody: 401 JSON naming the reason, with ``WWW-Authenticate: Bearer``.
        """
        provider = getattr(self.application, "auth_provider", None)
        get_user = getattr(provider, "get_user", None)
        get_user_async = getattr(provider, "get_user_async", None)
        if get_user is None and get_user_async is None:
            return  # no access control configured: the API is as open as the pages
        user = get_user(self) if get_user is not None else await get_user_async(self)
        if user:
            return
        login = getattr(provider, "login_url", None) or "/login"
        reason, error = getattr(self, "fumarole_refusal", None) or (
            f"this server requires a login: sign in at {login} first (the API shares the pages' login cookie)",
            None)
        challenge = 'Bearer realm="fumarole"' + (f', error="{error}"' if error else "")
        self._fail(401, reason, {"WWW-Authenticate": challenge})

    async def get(self) -> None:
        """Answer on the API's pool; errors as JSON sentences (400, 401, 404, 500, 503, 504)."""
        try:
            args = self.args()
            result = await api_pool.run(self.merge_key(args), lambda: self._work(args))
        except Exception as exc:  # noqa: BLE001 - every failure is a JSON answer, never Tornado's HTML page
            status, message = _failure(exc)
            if status == 500 and not isinstance(exc, FumaroleError):
                log.error("%s %s failed", self.request.method, self.request.uri, exc_info=exc)
            self._fail(status, str(message))
            return
        self.send(result)

    def write_error(self, status_code: int, **kwargs) -> None:
        """Errors Tornado itself raises (a method not allowed, a bad request line) as JSON too."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = self._reason if exc is None else _failure(exc)[1]
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": str(message)}, ensure_ascii=False))

    def send(self, result) -> None:
        """Write the result as JSON."""
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(result, ensure_ascii=False))


class ImageHandler(_GeoHandler):
    """``GET /api/geo/image.png``: a satellite's product as PNG (full disk, or a lat/lon box)."""

    route = "image.png"

    def merge_key(self, args: dict) -> tuple:
        """The parameters and the client's ETag (a 304 is not a PNG)."""
        return (*super().merge_key(args), self.request.headers.get("If-None-Match", ""))

    def answer(self, archive, args):
        """The PNG answer (or a 304's)."""
        return image_png(archive, args, self.request.headers.get("If-None-Match"))

    def send(self, result: ImageAnswer) -> None:
        """Write the PNG with its headers, or 304 when the client has it."""
        self.set_header("Cache-Control", "public, max-age=600")
        self.set_header("Etag", result.etag)
        for name, value in result.headers.items():
            self.set_header(name, value.encode("ascii", "replace").decode())
        if result.png is None:
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Type", "image/png")
        self.finish(result.png)


class ValueHandler(_GeoHandler):
    """``GET /api/geo/value``: the channel values (and cloud top) under a point, as JSON."""

    route = "value"

    def answer(self, archive, args):
        """The values under the point."""
        return value_json(archive, args)


class SlotsHandler(_GeoHandler):
    """``GET /api/geo/slots``: a satellite's slots of a day, as a JSON list."""

    route = "slots"

    def answer(self, archive, args):
        """The slots of the day."""
        return slots_json(archive, args)


def routes(catalog: str | None = None, archive: Archive | None = None) -> list[tuple]:
    """The API's Tornado routes over a catalogue (default: ``FUMAROLE_CATALOG``) or a given archive."""
    kwargs = {"catalog": catalog, "archive": archive}
    return [
        (r"/api/geo/image\.png", ImageHandler, kwargs),
        (r"/api/geo/value", ValueHandler, kwargs),
        (r"/api/geo/slots", SlotsHandler, kwargs),
    ]


#: What ``panel serve --plugins app.api.geo`` adds to the server (the default catalogue).
ROUTES = routes()
