"""The GEO HTTP API: images of a satellite's product as PNG, the values under a point, the slots of a day, as JSON.

Routes (all ``GET``; the server of ``fumarole serve`` loads them as a Panel plugin: ``panel serve --plugins
app.api.geo`` adds :data:`ROUTES` to its Tornado application, next to the dashboards)::

    /api/geo/image.png?satellite=G16&product=ash&time=2021-04-12T15:00&bbox=-70,5,-50,20&width=800
    /api/geo/value?satellite=G16&time=2021-04-12T15:00&lat=13.33&lon=-61.18[&channels=ir_105,ir_120]
    /api/geo/slots?satellite=G16&date=2021-04-12

- ``satellite``: platform id (``G16``), satellite (``GOES-16``) or ring position (``GOES-East``).
- ``product``: an RGB composite (``ash``, ``dust``, ``natural_color``, ``true_color``, ``day_microphysics``,
  ``so2``) or ``cloud_top_height`` / ``cloud_top_temperature`` / ``cloud_top_pressure``; default ``ash``.
- ``time``: the slot, ISO (``2021-04-12T15:00``, UTC); default the satellite's latest slot.
- ``bbox``: ``lon_min,lat_min,lon_max,lat_max`` in degrees: the picture is that box on a latitude–longitude grid
  (equirectangular, north up; ``lon_min > lon_max`` crosses the antimeridian), regridded from the satellite's
  fixed grid (nearest neighbour). Without it, the full disk in the satellite's own projection.
- ``width`` (16 … 4096, default 800) and optionally ``height`` in pixels (default: square degrees).
- ``lat``, ``lon`` (``value``): the point, degrees; ``channels`` (``value``): generic channel names to read, comma
  separated (default: every channel of the slot — on a full-resolution archive, asking only for those needed
  spares reading the others).

The PNG is RGBA: transparent where the satellite has no value (space, beyond the disk); a cloud-top field is
coloured with the dashboard's colour map over its fixed range (``X-Fumarole-Colour-Range`` header gives it, with
units), clear sky grey. Errors are JSON ``{"error": "<a sentence naming the value at fault>"}``: 400 for a bad
parameter, 404 for a slot or point that is not there, 500 for a damaged file (named). Every answer allows any
origin (``Access-Control-Allow-Origin: *``) so other web pages can embed the images and fetch the values.

The work is the dashboard's own: :func:`app.render.geo.load_product`, :func:`~app.render.geo.frame`,
:func:`~app.render.geo.lonlat_frame`, :func:`~app.render.geo.pixel_values`. It runs on Tornado's thread pool, so a
long read does not block the dashboards' event loop.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import tornado.web
from tornado.ioloop import IOLoop

from app.data import geo
from app.data.archive import Archive, get_archive
from app.data.errors import FumaroleError, GranuleError, UserInputError
from app.render import geo as render

__all__ = ["ROUTES", "NotFound", "image_png", "value_json", "slots_json", "ImageHandler", "ValueHandler",
           "SlotsHandler"]

WIDTH_BOUNDS = (16, 4096)
DEFAULT_WIDTH = 800


class NotFound(UserInputError):
    """What was asked for is not there (a point the satellite does not see); answered with 404."""


# --------------------------------------------------------------------------------------------- parameters


def _check_names(args: dict, allowed: tuple[str, ...]) -> None:
    unknown = [k for k in args if k not in allowed]
    if unknown:
        raise UserInputError(f"unknown parameter {', '.join(map(repr, unknown))}; parameters are "
                             f"{', '.join(allowed)}")


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
        raise UserInputError(f"{name} {value} is out of range ({bounds[0]} … {bounds[1]} pixels)")
    return value


def _time(archive: Archive, args: dict, pos: geo.RingPosition) -> pd.Timestamp:
    text = args.get("time")
    if text is None or str(text).strip() in ("", "latest"):
        slot = geo.latest_slot(archive, pos.platform)
        if slot is None:
            raise geo.MissingSlotError(f"the archive has no {pos.satellite} ({pos.name}) slot at all", pos.platform,
                                       pd.NaT, None)
        return slot.time
    try:
        t = pd.Timestamp(str(text).strip())
    except (ValueError, TypeError):
        raise UserInputError(f"time {text!r} is not a date and time (expected YYYY-MM-DDTHH:MM, UTC)") from None
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t


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
    return (lon0, lon1), (lat0, lat1)


# --------------------------------------------------------------------------------------------- answers


def image_png(archive: Archive, args: dict) -> tuple[bytes, dict]:
    """PNG bytes and extra headers of ``/api/geo/image.png`` for the query ``args`` (name -> text)."""
    _check_names(args, ("satellite", "product", "time", "bbox", "width", "height"))
    pos = geo.ring_position(_required(args, "satellite"))
    product = _product(args)
    t = _time(archive, args, pos)
    width = _integer(args, "width", DEFAULT_WIDTH, WIDTH_BOUNDS)
    height = _integer(args, "height", None, WIDTH_BOUNDS)
    data = render.load_product(archive, pos.platform, t, product)
    if args.get("bbox"):
        lon_range, lat_range = _bbox(args["bbox"])
        picture = render.lonlat_frame(data, product, lon_range, lat_range, width, height)
    else:
        picture = render.frame(data, product, width=width, height=height)
    headers = {"X-Fumarole-Satellite": pos.satellite, "X-Fumarole-Time": f"{t:%Y-%m-%dT%H:%M:%SZ}",
               "X-Fumarole-Product": render.product_title(product)}
    if render.is_cloud_top(product):
        style = render.CLOUD_TOP[product]
        headers["X-Fumarole-Colour-Range"] = f"{style.clim[0]:g} {style.clim[1]:g} {style.units}"
    return render.png_bytes(render.frame_rgba(picture)), headers


def value_json(archive: Archive, args: dict) -> dict:
    """The answer of ``/api/geo/value``: every channel's value (and the cloud top) in the pixel under lat/lon."""
    _check_names(args, ("satellite", "time", "lat", "lon", "channels"))
    pos = geo.ring_position(_required(args, "satellite"))
    lat = _number(args, "lat", -90.0, 90.0, "degrees")
    lon = _number(args, "lon", -180.0, 360.0, "degrees")
    t = _time(archive, args, pos)
    channels = None
    if args.get("channels"):
        channels = [c.strip() for c in str(args["channels"]).split(",") if c.strip()]
    scene = geo.read_scene(archive, pos.platform, t, channels)
    info = render.pixel_values(scene, lat=lat, lon=lon)
    if info is None:
        raise NotFound(f"the point lat={lat:g}, lon={lon:g} is not seen by {pos.satellite} ({pos.name}, "
                       f"{pos.sub_lon:g}°): it lies beyond the disk")
    vza = float(render.viewing_zenith(pos.sub_lon, lon, lat))
    out = {
        "satellite": pos.satellite, "platform": pos.platform, "position": pos.name, "sub_lon": pos.sub_lon,
        "time": f"{t:%Y-%m-%dT%H:%M:%SZ}", "lat": lat, "lon": lon,
        "pixel": {k: info[k] for k in ("row", "col", "latitude", "longitude")},
        "viewing_zenith_angle": round(vza, 2) if math.isfinite(vza) else None,
        "channels": info["values"], "cloud_top": None,
    }
    try:
        ctth = geo.read_cloud_top(archive, pos.platform, t)
    except geo.MissingSlotError:
        return out
    top = render.pixel_values(ctth, lat=lat, lon=lon,
                              channels=["cloud_top_height", "cloud_top_temperature", "cloud_top_pressure"])
    if top is not None:
        out["cloud_top"] = {k: v["value"] for k, v in top["values"].items()}
        out["cloud_top"]["units"] = {k: v["units"] for k, v in top["values"].items()}
    return out


def slots_json(archive: Archive, args: dict) -> list[dict]:
    """The answer of ``/api/geo/slots``: the satellite's slots of a day (or of the whole archive), in time order."""
    _check_names(args, ("satellite", "date"))
    pos = geo.ring_position(_required(args, "satellite"))
    start = end = None
    if args.get("date"):
        text = str(args["date"]).strip()
        try:
            start = pd.Timestamp(text).normalize()
        except (ValueError, TypeError):
            raise UserInputError(f"date {text!r} is not a date (expected YYYY-MM-DD)") from None
        end = start + pd.Timedelta(days=1)
    table = geo.slots(archive, pos.platform, start, end)
    return [{"time": f"{r.time:%Y-%m-%dT%H:%M:%SZ}", "channels": list(r.channels), "files": int(r.n_files),
             "cloud_top": r.cloud_top is not None, "complete": bool(r.complete)} for r in table.itertuples()]


# --------------------------------------------------------------------------------------------- Tornado


class _GeoHandler(tornado.web.RequestHandler):
    """Common to the GEO routes: the archive, the answer in a worker thread, errors as JSON sentences."""

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

    def _fail(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": message}, ensure_ascii=False))

    async def get(self) -> None:
        """Answer on a worker thread; errors as JSON sentences with 400, 404 or 500."""
        args = self.args()
        try:
            result = await IOLoop.current().run_in_executor(None, self.answer, self.archive(), args)
        except (geo.MissingSlotError, NotFound) as exc:
            self._fail(404, str(exc))
            return
        except UserInputError as exc:
            self._fail(400, str(exc))
            return
        except GranuleError as exc:
            self._fail(500, f"a file of this slot cannot be read: {exc}")
            return
        except FumaroleError as exc:
            self._fail(500, str(exc))
            return
        self.send(result)

    def send(self, result) -> None:
        """Write the result as JSON."""
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(result, ensure_ascii=False))


class ImageHandler(_GeoHandler):
    """``GET /api/geo/image.png``: a satellite's product as PNG (full disk, or a lat/lon box)."""

    def answer(self, archive, args):
        """PNG bytes and headers."""
        return image_png(archive, args)

    def send(self, result) -> None:
        """Write the PNG with its headers."""
        png, headers = result
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", "public, max-age=600")
        for name, value in headers.items():
            self.set_header(name, value.encode("ascii", "replace").decode())
        self.finish(png)


class ValueHandler(_GeoHandler):
    """``GET /api/geo/value``: the channel values (and cloud top) under a point, as JSON."""

    def answer(self, archive, args):
        """The values under the point."""
        return value_json(archive, args)


class SlotsHandler(_GeoHandler):
    """``GET /api/geo/slots``: a satellite's slots of a day, as a JSON list."""

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
