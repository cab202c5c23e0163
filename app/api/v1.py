"""The HTTP API v1: maps and curtains as PNG, values, lists and time series as JSON or CSV, and its OpenAPI document.

Routes (all ``GET``, on the same server as the dashboards: ``fumarole serve`` loads :data:`ROUTES` as a Panel
plugin, ``--plugins app.api.v1``; ``docs/api.md`` has an example of each)::

    /api/v1/so2/map.png          the TROPOMI SO2 map of a day or a time range, a zone or a box
    /api/v1/so2/value            the SO2 pixels over a point (each orbit of the period)
    /api/v1/so2/orbits           the TROPOMI orbits of a day in a zone
    /api/v1/so2/timeseries       SO2 mass (or flux) around a volcano, CSV or JSON (app.services.timeseries)
    /api/v1/caliop/curtain.png   a CALIOP curtain (a granule by its name in the index)
    /api/v1/caliop/granules      the CALIOP granules of a day in a zone
    /api/v1/geo/image.png        a GEO product of a slot (app.api.geo's answer)
    /api/v1/geo/value            GEO channel values under a point
    /api/v1/geo/slots            a satellite's slots of a day
    /api/v1/geo/mosaic.png       the ring's global mosaic
    /api/v1/animation/geo.mp4    a loop of a satellite's slots as MP4 (H.264) or /api/v1/animation/geo.gif
    /api/v1/animation/so2.mp4    a loop of SO2 days as MP4 or /api/v1/animation/so2.gif (app.services.animation)
    /api/v1/volcanoes            the GVP list (search), JSON or GeoJSON; /api/v1/volcanoes.geojson
    /api/v1/openapi.json         the OpenAPI 3.1 document, generated from the declarations below
    /api/v1/docs                 the document as a plain HTML page (no script, nothing fetched from elsewhere)

Every route declares its parameters once (:class:`app.api.params.Param`); the same declarations check each
request (:func:`app.api.params.parse`) and write the document (:mod:`app.api.openapi`). Refusals are JSON
``{"error": "<sentence>", "parameter": "<name or null>"}``: 400 malformed or unknown, 404 not there, 422 out of
range or over the work budget (:data:`BUDGET`: granules a request may read) or a damaged file the answer needs,
503/504 when the API's pool is full or too slow (:mod:`app.api.pool`). PNGs carry an ``ETag`` made of the
normalised inputs and the data's stamp (each file's name, modification time and size) and ``Cache-Control``; a
request whose ``If-None-Match`` holds it is answered 304 without drawing. The old ``/api/geo/...`` routes
(:mod:`app.api.geo`) keep working.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import tornado.web

from app.api import geo as api_geo
from app.api import pool as api_pool
from app.api.params import ApiError, Param, parse, period
from app.core.cache import SingleFlight
from app.data import geo
from app.data.archive import Archive
from app.data.errors import FumaroleError, GranuleError, UserInputError
from app.render import geo as render
from app.science.filters import DEFAULT_FILTERS, Filters
from app.services import animation as anim
from app.services import curtain as curtains
from app.services import geo as geo_services
from app.services import so2map
from app.services import timeseries as ts

__all__ = ["ROUTES", "ROUTE_SPECS", "BUDGET", "Route", "Png", "Text", "Media", "routes", "V1Handler", "failure"]

#: Granules one request may read, by kind of work; past it the request is refused (422) with the count.
BUDGET = {"so2": 64, "timeseries": 800}
PNG_MAX_AGE_S = 600
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FLIGHT = SingleFlight()


@dataclass
class Png:
    """A PNG answer (``png`` None: the client's copy is current, 304) with its headers and ETag."""

    png: bytes | None
    headers: dict
    etag: str


@dataclass
class Text:
    """A text answer (CSV, HTML, JSON already written) and its media type."""

    body: str
    media: str
    headers: dict = field(default_factory=dict)


@dataclass
class Media:
    """A file answer (an animation) with its media type, headers and ETag (``body`` None: 304)."""

    body: bytes | None
    media: str
    headers: dict
    etag: str


@dataclass
class Ctx:
    """What an answer function gets: the archive, the checked values, the raw query, the client's ETags."""

    archive: Archive
    values: dict
    raw: dict
    if_none_match: str | None = None


@dataclass(frozen=True)
class Route:
    """One route: its path, what it answers (media type, JSON schema), its parameters and its answer function."""

    path: str
    operation: str
    tag: str
    summary: str
    description: str
    params: tuple[Param, ...]
    media: str
    answer: Callable[[Ctx], Any]
    schema: dict | None = None
    example: str = ""
    aliases: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------------------ shared pieces

def _cached(ctx: Ctx, full: tuple, draw: Callable[[], tuple[bytes, dict]]) -> tuple[str, bytes | None, dict]:
    """The ETag of ``full`` (inputs and data stamp) and the answer drawn once for it.

    Kept in :data:`app.api.geo.PNG_CACHE`; identical requests in flight share one drawing. The body is ``None`` when
    the client's copy (If-None-Match) is current.
    """
    etag = '"' + hashlib.sha256(repr(full).encode("utf-8")).hexdigest()[:32] + '"'
    if api_geo._matches(ctx.if_none_match, etag):
        return etag, None, {}
    hit = api_geo.PNG_CACHE.get(full)
    if hit is None:
        def make():
            again = api_geo.PNG_CACHE.get(full)
            if again is not None:
                return again
            made = draw()
            api_geo.PNG_CACHE.put(full, made)
            return made

        hit = _FLIGHT.do(full, make)
    body, more = hit
    return etag, body, more


def _png_answer(ctx: Ctx, key: tuple, stamp: tuple, draw: Callable[[], tuple[bytes, dict]], headers: dict) -> Png:
    """A PNG from :data:`app.api.geo.PNG_CACHE` by ``key`` and the data's ``stamp``; 304 when the client has it."""
    etag, png, more = _cached(ctx, ("v1", *key, stamp), draw)
    return Png(png, {**headers, **more}, etag)


def _over_budget(kind: str, n: int, what: str, parameter: str) -> None:
    if n > BUDGET[kind]:
        raise ApiError(422, f"this request would read {n} {what}; at most {BUDGET[kind]} per request: narrow the "
                            f"period or the area", parameter)


def _zone(values: dict) -> so2map.Zone:
    if values.get("bbox") is not None:
        if values.get("zone") is not None:
            raise ApiError(400, "give either zone or bbox, not both", "bbox")
        return so2map.Zone.from_bbox(*values["bbox"])
    return so2map.ZONES[values.get("zone") or "Caribbean"]


def _filters(values: dict) -> Filters:
    return Filters(qa_min=float(values["qa_min"]), sza_max=float(values["sza_max"]),
                   edge_pixels=int(values["edge_pixels"]))


_LAT = Param("lat", "number", "latitude of the point", required=True, minimum=-90, maximum=90, unit="degrees",
             example=13.5)
_BBOX_DOC = ("lon_min,lat_min,lon_max,lat_max in degrees (lon_min > lon_max crosses the antimeridian); instead of "
             "zone")
ZONE_PARAMS = (Param("zone", "string", "a named map zone of the VolcPlume dashboard (default Caribbean)",
                     choices=tuple(so2map.ZONES)),
               Param("bbox", "bbox", _BBOX_DOC, example="-70,5,-50,20"))
PERIOD_PARAMS = (Param("date", "date", "a UTC day; or give start and end", example="2021-04-12"),
                 Param("start", "time", "start of a period (UTC), with end; at most a year", example="2021-04-12"),
                 Param("end", "time", "end of the period (UTC, excluded; a day alone is included)",
                       example="2021-04-12"))
FILTER_PARAMS = (
    Param("qa_min", "number", "keep pixels with qa_value > qa_min (strictly)", default=DEFAULT_FILTERS.qa_min,
          minimum=0, maximum=1),
    Param("sza_max", "number", "keep pixels with solar zenith angle <= sza_max", default=DEFAULT_FILTERS.sza_max,
          minimum=0, maximum=90, unit="degrees"),
    Param("edge_pixels", "integer", "drop this many outermost ground pixels on each side of the swath", default=0,
          minimum=0, maximum=100),
)
LEVEL = Param("level", "string", "box-profile height of the SO2 column", default="7km", choices=tuple(so2map.LEVELS))
QUANTITY = Param("quantity", "string", "the SO2 column of the level (DU) or the SO2 layer height (km)",
                 default="column", choices=so2map.QUANTITIES)


def _so2_request(ctx: Ctx, width: int = 1200) -> so2map.So2Request:
    v = ctx.values
    t0, t1 = period(v, ctx.raw)
    clim = None
    if v.get("vmin") is not None or v.get("vmax") is not None:
        low, high = so2map.DEFAULT_CLIM[v["quantity"]]
        lo = low if v.get("vmin") is None else float(v["vmin"])
        hi = high if v.get("vmax") is None else float(v["vmax"])
        if not lo < hi:
            raise ApiError(422, f"vmin ({lo:g}) must be less than vmax ({hi:g})",
                           "vmax" if v.get("vmax") is not None else "vmin")
        clim = (lo, hi)
    return so2map.So2Request(t0, t1, _zone(v), v["level"], v["quantity"], _filters(v), clim, width)


def _so2_plan(ctx: Ctx, req: so2map.So2Request) -> so2map.Plan:
    found = so2map.plan(ctx.archive, req)
    _over_budget("so2", len(found.rows), "TROPOMI granules", "end" if ctx.values.get("start") else "date")
    return found


# ------------------------------------------------------------------------------------------------ SO2

def so2_map(ctx: Ctx) -> Png:
    """``/api/v1/so2/map.png``."""
    req = _so2_request(ctx, int(ctx.values["width"]))
    found = _so2_plan(ctx, req)

    def draw():
        try:
            png, info = so2map.map_picture(ctx.archive, req, found.rows)
        except UserInputError as exc:
            raise ApiError(422, str(exc), "level") from None
        more = {"X-Fumarole-Orbits": str(len(info["orbits"])), "X-Fumarole-Pixels": str(info["pixels"]),
                "X-Fumarole-Colour-Range": f"{info['clim'][0]:g} {info['clim'][1]:g} {info['units']}"}
        if info["skipped"]:
            more["X-Fumarole-Skipped"] = " | ".join(info["skipped"])[:900]
        return png, more

    headers = {"X-Fumarole-Period": f"{req.t0:%Y-%m-%dT%H:%M:%SZ}/{req.t1:%Y-%m-%dT%H:%M:%SZ}",
               "X-Fumarole-Granules": str(len(found.rows))}
    return _png_answer(ctx, ("so2", req), found.stamp, draw, headers)


def so2_value(ctx: Ctx) -> dict:
    """``/api/v1/so2/value``."""
    req = _so2_request(ctx)
    found = _so2_plan(ctx, req)
    skipped: list[str] = []
    pixels = so2map.so2_values(ctx.archive, req, found.rows, ctx.values["lat"], ctx.values["lon"], skipped.append)
    out = {"lat": ctx.values["lat"], "lon": ctx.values["lon"], "variable": req.variable,
           "units": "km" if req.quantity == "layer_height" else "DU", "filters": req.filters.as_dict(),
           "period": {"start": f"{req.t0:%Y-%m-%dT%H:%M:%SZ}", "end": f"{req.t1:%Y-%m-%dT%H:%M:%SZ}"},
           "pixels": pixels}
    if skipped:
        out["warnings"] = skipped
    return out


def so2_orbits(ctx: Ctx) -> list[dict]:
    """``/api/v1/so2/orbits``."""
    zone = _zone(ctx.values)
    return so2map.orbits(ctx.archive, ctx.values["date"], zone.bbox())


def _volcano(name: str) -> ts.VolcanoRef:
    try:
        return ts.resolve_volcano(name)
    except UserInputError as exc:
        raise ApiError(404, str(exc), "volcano") from None


def so2_timeseries(ctx: Ctx) -> Text | dict:
    """``/api/v1/so2/timeseries``."""
    v = ctx.values
    volcano = _volcano(v["volcano"])
    t0, t1 = period(v, ctx.raw, required=True)
    try:
        radii = ts.parse_radii(v["radii"])
    except UserInputError as exc:
        raise ApiError(422, str(exc), "radii") from None
    if len(radii) > 12:
        raise ApiError(422, f"at most 12 radii per request; got {len(radii)}", "radii")
    variable = so2map.LEVELS[v["level"]]
    reach = ctx.archive.granules(ts.PRODUCT, t0, t1, ts.disk_bbox(volcano.latitude, volcano.longitude, max(radii)))
    _over_budget("timeseries", len(reach), "TROPOMI granules", "end")
    filters = _filters(v)
    try:
        table, report = ts.compute_mass_timeseries(ctx.archive.index, volcano, t0, t1, radii, variable, filters)
    except UserInputError as exc:  # the question was checked above: what is left is "no data there"
        raise ApiError(404, str(exc), None) from None
    extra = None
    if v["quantity"] == "flux":
        from app.data.wind import wind_from_catalog

        table = ts.compute_flux_timeseries(table, wind_from_catalog(ctx.archive.catalog),
                                           plume_height_km=v["plume_height"], volcano=volcano)
        extra = {"plume_height_km": v["plume_height"] if v["plume_height"] is not None else "default"}
    if v["format"] == "json":
        rows = json.loads(table.to_json(orient="records", date_format="iso", date_unit="ms"))
        return {"volcano": {"name": volcano.name, "number": volcano.number, "latitude": volcano.latitude,
                            "longitude": volcano.longitude},
                "start": f"{t0:%Y-%m-%dT%H:%M:%SZ}", "end": f"{t1:%Y-%m-%dT%H:%M:%SZ}", "variable": variable,
                "filters": filters.as_dict(), "radii_km": list(radii), "kind": v["quantity"],
                "granules_used": len(report.granules_used),
                "skipped": [f"{n}: {r}" for n, r in report.skipped_granules()], "rows": rows}
    buffer = io.StringIO()
    ts.write_timeseries_csv(table, buffer, volcano=volcano, start=t0, end=t1, variable=variable, filters=filters,
                            radii=radii, n_granules=len(report.granules_used), scheduler=report.scheduler,
                            skipped=report.skipped_granules(), extra=extra)
    name = f"so2_{v['quantity']}_{volcano.number or 'volcano'}_{t0:%Y%m%d}_{t1:%Y%m%d}.csv"
    return Text(buffer.getvalue(), "text/csv; charset=utf-8",
                {"Content-Disposition": f'inline; filename="{name}"'})


# ------------------------------------------------------------------------------------------------ CALIOP

def caliop_curtain(ctx: Ctx) -> Png:
    """``/api/v1/caliop/curtain.png``."""
    v = ctx.values
    try:
        row = curtains.find_granule(ctx.archive, v["granule"])
    except curtains.GranuleNotFound as exc:
        raise ApiError(404, str(exc), "granule") from None
    alt = (float(v["alt_min"]), float(v["alt_max"]))
    if not alt[0] < alt[1]:
        raise ApiError(422, f"alt_min ({alt[0]:g} km) must be below alt_max ({alt[1]:g} km)", "alt_max")
    path = str(row["path"])
    stamp = (ctx.archive.name_of(path), float(row["mtime"]), int(row["size"]))
    width, height = int(v["width"]), int(v["height"])

    def draw():
        png, info = curtains.curtain_png(ctx.archive, path, v["variable"], alt, width, height)
        return png, {"X-Fumarole-Start": info["start"], "X-Fumarole-End": info["end"],
                     "X-Fumarole-Units": info["units"].replace("⁻¹", "^-1")}

    headers = {"X-Fumarole-Granule": stamp[0].rsplit("/", 1)[-1]}
    return _png_answer(ctx, ("curtain", v["variable"], alt, width, height), stamp, draw, headers)


def caliop_granules(ctx: Ctx) -> list[dict]:
    """``/api/v1/caliop/granules``."""
    t0, t1 = period(ctx.values, ctx.raw)
    rows = curtains.granules(ctx.archive, t0, t1, _zone(ctx.values).bbox())
    return [{"granule": ctx.archive.name_of(r.path).rsplit("/", 1)[-1],
             "start": f"{pd.Timestamp(r.start):%Y-%m-%dT%H:%M:%SZ}", "end": f"{pd.Timestamp(r.end):%Y-%m-%dT%H:%M:%SZ}",
             "day_night": str(r.day_night or "")} for r in rows.itertuples()]


# ------------------------------------------------------------------------------------------------ GEO

def _satellite(ctx: Ctx) -> str:
    sat, pos = ctx.values.get("satellite"), ctx.values.get("position")
    if sat and pos:
        raise ApiError(400, "give either satellite or position, not both", "position")
    if not sat and not pos:
        raise ApiError(400, "parameter 'satellite' (or 'position') is required: a platform id (G16), a satellite "
                            "(GOES-16) or a ring position (GOES-East)", "satellite")
    name = sat or pos
    when = ctx.values.get("time")
    t = None if when in (None, "latest") else when
    try:
        geo.ring_position(name, t if t is not None else ctx.values.get("date"), ctx.archive)
    except geo.MissingSlotError as exc:
        raise ApiError(404, str(exc), "position" if pos else "satellite") from None
    except UserInputError as exc:
        raise ApiError(404, str(exc), "position" if pos else "satellite") from None
    return name


def _geo_args(ctx: Ctx, names: tuple[str, ...]) -> dict:
    """The query for :mod:`app.api.geo`'s answer functions (checked here already), satellite named."""
    args = {"satellite": _satellite(ctx)}
    for name in names:
        if ctx.raw.get(name) not in (None, ""):
            args[name] = str(ctx.raw[name]).strip()
    return args


def geo_image(ctx: Ctx) -> Png:
    """``/api/v1/geo/image.png``: :func:`app.api.geo.image_png` behind the v1 checks."""
    answer = api_geo.image_png(ctx.archive, _geo_args(ctx, ("product", "time", "bbox", "width", "height")),
                               ctx.if_none_match)
    return Png(answer.png, answer.headers, answer.etag)


def geo_value(ctx: Ctx) -> dict:
    """``/api/v1/geo/value``."""
    return api_geo.value_json(ctx.archive, _geo_args(ctx, ("time", "lat", "lon", "channels")))


def geo_slots(ctx: Ctx) -> list[dict]:
    """``/api/v1/geo/slots``."""
    return api_geo.slots_json(ctx.archive, _geo_args(ctx, ("date",)))


def _mosaic_time(ctx: Ctx) -> pd.Timestamp:
    t = ctx.values.get("time")
    if t in (None, "latest"):
        times = geo.ring_latest(ctx.archive)["time"].dropna()
        if times.empty:
            raise ApiError(404, "the archive has no geostationary slot at all", "time")
        return pd.Timestamp(times.max())
    return t


def _mosaic_rgba(data, product: str) -> np.ndarray:
    if render.is_cloud_top(product):
        style = render.CLOUD_TOP[product]
        rgba = render.colorize(data["value"].values, style.cmap, style.clim)
        clear = (data["source"].values >= 0) & (rgba[..., 3] == 0)
        rgba[clear] = render.CLEAR_SKY
        return rgba
    return np.asarray(data["rgba"].values)


def geo_mosaic(ctx: Ctx) -> Png:
    """``/api/v1/geo/mosaic.png``: every ring satellite on one lat/lon grid, each cell from the best-placed one."""
    v = ctx.values
    t = _mosaic_time(ctx)
    lon0, lat0, lon1, lat1 = v["bbox"] if v["bbox"] is not None else (-180.0, -80.0, 180.0, 80.0)
    width, height = api_geo.image_size((lon0, lon1), (lat0, lat1), v["width"], v["height"])
    ring = [p for p in geo.ring_at(t, ctx.archive) if p.platform]
    stamp = tuple(geo.slot_stamp(ctx.archive, p.platform, t.floor(f"{p.repeat_minutes}min")) for p in ring)
    if not any(stamp):
        raise ApiError(404, f"no ring satellite has a slot at {t:%Y-%m-%d %H:%M} UTC", "time")
    product = v["product"]

    def draw():
        found = geo_services.ring_scenes(ctx.archive, t, product)
        data = render.mosaic(found.scenes, (lon0, lon1), (lat0, lat1), width, height, product)
        used = sorted({data.attrs["platforms"][int(k)] for k in np.unique(data["source"].values) if k >= 0})
        more = {"X-Fumarole-Satellites": " ".join(used)}
        if found.problems:
            more["X-Fumarole-Skipped"] = " | ".join(api_geo.relative_message(p, api_geo._root(ctx.archive))
                                                    for p in found.problems)[:900]
        return render.png_bytes(_mosaic_rgba(data, product)), more

    headers = {"X-Fumarole-Time": f"{t:%Y-%m-%dT%H:%M:%SZ}", "X-Fumarole-Product": render.product_title(product)}
    return _png_answer(ctx, ("mosaic", product, t, lon0, lat0, lon1, lat1, width, height), stamp, draw, headers)


# ------------------------------------------------------------------------------------------------ animations

def _media_answer(ctx: Ctx, key: tuple, media: str, draw: Callable[[], tuple[bytes, dict]], headers: dict) -> Media:
    """A file from :data:`app.api.geo.PNG_CACHE` by ``key`` (inputs and data stamp); 304 when the client has it."""
    etag, body, more = _cached(ctx, ("v1-media", *key), draw)
    return Media(body, media, {**headers, **more}, etag)


def _animation_headers(out: anim.Animation, root: str) -> dict:
    more = {"Content-Disposition": f'attachment; filename="{out.file_name}"',
            "X-Fumarole-Frames": str(len(out.times)), "X-Fumarole-Frame-Size": f"{out.size[0]}x{out.size[1]}",
            "X-Fumarole-Map-Box": ",".join(str(v) for v in out.map_box), "X-Fumarole-Fps": f"{out.fps:g}",
            "X-Fumarole-Times": " | ".join(out.times)[:900]}
    if out.skipped:
        more["X-Fumarole-Skipped"] = " | ".join(api_geo.relative_message(s, root) for s in out.skipped)[:900]
    return more


def _limits(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except anim.AnimationLimitError as exc:
        raise ApiError(422, str(exc), exc.parameter) from None


def _geo_loop_times(ctx: Ctx, name: str) -> list[pd.Timestamp]:
    v = ctx.values
    span = period(v, ctx.raw, required=False)
    latest = v.get("latest")
    if span is None:
        times = anim.geo_times(ctx.archive, name, None, None, latest or 24)
    else:
        times = anim.geo_times(ctx.archive, name, span[0], span[1], latest)
    if not times:
        where = "in the period" if span is not None else "in the archive"
        raise ApiError(404, f"{name} has no slot {where}", "start" if span is not None else "satellite")
    if len(times) > anim.MAX_FRAMES:
        raise ApiError(422, f"the period holds {len(times)} slots; at most {anim.MAX_FRAMES} frames per animation: "
                            f"narrow it, or give latest", "end")
    return times


def _geo_animation(ctx: Ctx, fmt: str) -> Media:
    v = ctx.values
    name = _satellite(ctx)
    times = _geo_loop_times(ctx, name)
    loop = anim.GeoLoop(name, v["product"], tuple(times), v["bbox"], None, int(v["width"]), float(v["fps"]))
    lay = _limits(lambda: anim.geo_layout(ctx.archive, loop))
    _limits(lambda: anim.check_bounds(loop.width, len(times), lay, "end"))
    stamp = anim.geo_stamp(ctx.archive, loop)

    def draw():
        out = _limits(lambda: anim.geo_animation(ctx.archive, loop, fmt))
        return out.data, _animation_headers(out, api_geo._root(ctx.archive))

    return _media_answer(ctx, ("geo", fmt, stamp), anim.animate.MEDIA[fmt], draw,
                         {"X-Fumarole-Product": render.product_title(loop.product)})


def geo_animation_mp4(ctx: Ctx) -> Media:
    """``/api/v1/animation/geo.mp4``."""
    return _geo_animation(ctx, "mp4")


def geo_animation_gif(ctx: Ctx) -> Media:
    """``/api/v1/animation/geo.gif``."""
    return _geo_animation(ctx, "gif")


def _so2_animation(ctx: Ctx, fmt: str) -> Media:
    v = ctx.values
    v["quantity"] = "column"  # an animation shows the column (DU)
    req = _so2_request(ctx, int(v["width"]))
    days = anim.so2_days(req.t0, req.t1)
    loop = anim.So2Loop(tuple(days), req.zone, req.level, req.filters, req.clim, int(v["width"]), float(v["fps"]))
    _limits(lambda: anim.check_bounds(loop.width, len(days), anim.so2_layout(loop), "end"))
    plans = _limits(lambda: anim.so2_plans(ctx.archive, loop))
    if not any(len(p.rows) for p in plans.values()):
        raise ApiError(404, f"no TROPOMI granule over {req.zone.name} in {req.period_label()}",
                       "end" if v.get("start") else "date")
    stamp = anim.so2_stamp(loop, plans)

    def draw():
        out = _limits(lambda: anim.so2_animation(ctx.archive, loop, fmt, plans))
        return out.data, _animation_headers(out, api_geo._root(ctx.archive))

    return _media_answer(ctx, ("so2", fmt, stamp), anim.animate.MEDIA[fmt], draw, {})


def so2_animation_mp4(ctx: Ctx) -> Media:
    """``/api/v1/animation/so2.mp4``."""
    return _so2_animation(ctx, "mp4")


def so2_animation_gif(ctx: Ctx) -> Media:
    """``/api/v1/animation/so2.gif``."""
    return _so2_animation(ctx, "gif")


# ------------------------------------------------------------------------------------------------ volcanoes

def _clean(value):
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value) if not isinstance(value, int | bool) else value


VOLCANO_FIELDS = ("number", "name", "country", "type", "last_eruption", "region", "subregion", "latitude",
                  "longitude", "elevation_m")


def _volcano_rows(ctx: Ctx) -> tuple[list[dict], int]:
    from app.data.volcanoes import load_volcanoes, search_volcanoes

    table = load_volcanoes()
    q, limit = ctx.values.get("q"), int(ctx.values["limit"])
    found = search_volcanoes(q, table, limit) if q else table.sort_values("name", kind="stable").head(limit)
    total = len(found) if q else len(table)
    rows = [{k: _clean(r.get(k)) for k in VOLCANO_FIELDS} for r in found.to_dict("records")]
    return rows, total


def _geojson(rows: list[dict]) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": r["number"],
         "geometry": {"type": "Point", "coordinates": [r["longitude"], r["latitude"]]},
         "properties": {k: r[k] for k in VOLCANO_FIELDS if k not in ("latitude", "longitude")}}
        for r in rows if r["latitude"] is not None and r["longitude"] is not None]}


def volcanoes(ctx: Ctx) -> dict:
    """``/api/v1/volcanoes``."""
    rows, total = _volcano_rows(ctx)
    if ctx.values["format"] == "geojson":
        return _geojson(rows)
    return {"total": total, "volcanoes": rows}


def volcanoes_geojson(ctx: Ctx) -> dict:
    """``/api/v1/volcanoes.geojson``."""
    return _geojson(_volcano_rows(ctx)[0])


# ------------------------------------------------------------------------------------------------ declarations

_W = {"minimum": 16, "maximum": 4096, "unit": "pixels"}
_SAT = (Param("satellite", "string", "platform id (G16), satellite (GOES-16) or ring position (GOES-East)",
              example="G16"),
        Param("position", "string", "a ring position (GOES-East, GOES-West, Meteosat, Meteosat IODC, Himawari), "
                                    "resolved by the time asked for; instead of satellite"))
_GEO_TIME = Param("time", "time", "the slot (UTC) or 'latest' (default)", example="2021-04-12T15:00",
                  pattern=r"^(latest|\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?)$")
_PRODUCT = Param("product", "string", "an RGB composite or a cloud-top field", default="ash",
                 choices=tuple(render.products()))

_AW = {"minimum": 16, "maximum": anim.MAX_WIDTH, "unit": "pixels"}
_FPS = Param("fps", "number", "frames a second", default=4.0, minimum=0.5, maximum=30)
_ANIM_LIMITS = (f"At most {anim.MAX_FRAMES} frames, {anim.MAX_WIDTH} pixels wide, and "
                f"{anim.PIXEL_BUDGET // 1_000_000} million pixels × frames; a slot or day that cannot be drawn is "
                f"skipped and named in X-Fumarole-Skipped. X-Fumarole-Map-Box gives the map's pixels in the frame "
                f"(left,top,width,height).")
_GEO_ANIM_PARAMS = (*_SAT, _PRODUCT, *PERIOD_PARAMS,
                    Param("latest", "integer", "the latest N slots (of the period, or of the archive; default 24 "
                                               "when no period is given)", minimum=1, maximum=anim.MAX_FRAMES),
                    Param("bbox", "bbox", "lon_min,lat_min,lon_max,lat_max; the full disk without"),
                    Param("width", "integer", "frame width", default=1024, **_AW), _FPS)
_SO2_ANIM_PARAMS = (*PERIOD_PARAMS, *ZONE_PARAMS, LEVEL, *FILTER_PARAMS,
                    Param("vmin", "number", "colour range low end (DU)", minimum=0, maximum=1000),
                    Param("vmax", "number", "colour range high end (DU)", minimum=0, maximum=1000),
                    Param("width", "integer", "frame width", default=1024, **_AW),
                    Param("fps", "number", "frames a second", default=2.0, minimum=0.5, maximum=30))
_VIDEO = {"type": "string", "contentMediaType": "video/mp4"}
_GIF = {"type": "string", "contentMediaType": "image/gif"}


def _animation_routes() -> tuple[Route, ...]:
    geo_doc = ("A loop of one satellite's product over its slots (a period, or the latest N), over a lat/lon box "
               "(the pixels of /api/v1/geo/image.png with that box) or the full disk; title, UTC time stamp, "
               "colour bar with units or the composite's legend, and credits in every frame. ")
    so2_doc = ("A loop of the TROPOMI SO2 map of each day of the period over a zone or a box, filtered as on the "
               "dashboard; title, day, colour bar in DU and credits in every frame. ")
    geo_example = "satellite=G16&product=ash&date=2021-04-12&bbox=-70,5,-50,20&width=800"
    so2_example = "start=2021-04-11&end=2021-04-12&zone=Caribbean&width=800"
    out = []
    for fmt, media, schema, what in (("mp4", "video/mp4", _VIDEO, "MP4 (H.264)"), ("gif", "image/gif", _GIF,
                                                                                 "animated GIF")):
        out.append(Route(f"/api/v1/animation/geo.{fmt}", f"geoAnimation{fmt.title()}", "Animation",
                         f"A loop of GEO slots as {what}", geo_doc + _ANIM_LIMITS, _GEO_ANIM_PARAMS, media,
                         geo_animation_mp4 if fmt == "mp4" else geo_animation_gif, schema=schema,
                         example=geo_example))
        out.append(Route(f"/api/v1/animation/so2.{fmt}", f"so2Animation{fmt.title()}", "Animation",
                         f"A loop of SO2 days as {what}", so2_doc + _ANIM_LIMITS, _SO2_ANIM_PARAMS, media,
                         so2_animation_mp4 if fmt == "mp4" else so2_animation_gif, schema=schema,
                         example=so2_example))
    return tuple(out)


_ERROR = {"type": "object", "required": ["error"],
          "properties": {"error": {"type": "string"}, "parameter": {"type": ["string", "null"]}}}
_STR_LIST = {"type": "array", "items": {"type": "string"}}
_VOLCANO = {"type": "object", "required": ["number", "name", "latitude", "longitude"],
            "properties": {"number": {"type": ["integer", "null"]}, "name": {"type": "string"},
                           "latitude": {"type": ["number", "null"]}, "longitude": {"type": ["number", "null"]}}}
_GEOJSON = {"type": "object", "required": ["type", "features"],
            "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array"}}}

ROUTE_SPECS: tuple[Route, ...] = (
    Route("/api/v1/so2/map.png", "so2Map", "SO2", "TROPOMI SO2 map as PNG",
          "The SO2 column (or layer height) of the orbits of a day or a period over a zone or a box, filtered as "
          "on the dashboard, with title, colour bar, orbits and credits drawn in.",
          (*PERIOD_PARAMS, *ZONE_PARAMS, LEVEL, QUANTITY, *FILTER_PARAMS,
           Param("vmin", "number", "colour range low end (DU, or km for the layer height)", minimum=0, maximum=1000),
           Param("vmax", "number", "colour range high end", minimum=0, maximum=1000),
           Param("width", "integer", "picture width", default=1200, **_W)),
          "image/png", so2_map, example="date=2021-04-12&zone=Caribbean&level=7km&width=1024"),
    Route("/api/v1/so2/value", "so2Value", "SO2", "SO2 pixels over a point",
          "Every orbit of the period with a pixel over the point: the column, QA, solar zenith angle and whether "
          "it passes the filters.",
          (_LAT, Param("lon", "number", "longitude of the point", required=True, minimum=-180, maximum=360,
                       unit="degrees", example=-60.0),
           *PERIOD_PARAMS, LEVEL, QUANTITY, *FILTER_PARAMS),
          "application/json", so2_value,
          schema={"type": "object", "required": ["pixels"], "properties": {"pixels": {"type": "array"}}},
          example="date=2021-04-12&lat=13.5&lon=-60&level=7km"),
    Route("/api/v1/so2/orbits", "so2Orbits", "SO2", "TROPOMI orbits of a day",
          "The orbits of a UTC day that touch a zone or a box, from the granule index (no file opened).",
          (Param("date", "date", "the UTC day", required=True, example="2021-04-12"), *ZONE_PARAMS),
          "application/json", so2_orbits,
          schema={"type": "array", "items": {"type": "object", "required": ["orbit", "start", "end", "granules"]}},
          example="date=2021-04-12&zone=Caribbean"),
    Route("/api/v1/so2/timeseries", "so2Timeseries", "SO2", "SO2 mass or flux around a volcano (CSV or JSON)",
          "The SO2 mass within each radius of a volcano for every orbit of the period (app.services.timeseries, "
          "the dashboard's engine and cache), or the disk-method flux with the catalogue's wind. CSV with its "
          "provenance header, or JSON.",
          (Param("volcano", "string", "a GVP volcano name or number", required=True, example="Soufriere St. Vincent"),
           *PERIOD_PARAMS[1:],
           Param("radii", "string", "disk radii in km, comma separated (each 0 < r <= 5000, at most 12)",
                 default="50,100,200,300,500", pattern=r"^[0-9.,\s]{1,100}$"),
           LEVEL, *FILTER_PARAMS,
           Param("quantity", "string", "mass (t) per orbit and radius, or the flux (t/day) per orbit",
                 default="mass", choices=("mass", "flux")),
           Param("plume_height", "number", "plume height for the wind of the flux (default: the level's height)",
                 minimum=0.1, maximum=30, unit="km"),
           Param("format", "string", "csv or json", default="csv", choices=("csv", "json"))),
          "text/csv", so2_timeseries,
          example="volcano=Soufriere%20St.%20Vincent&start=2021-04-12&end=2021-04-12&radii=100,300&format=csv"),
    Route("/api/v1/caliop/curtain.png", "caliopCurtain", "CALIOP", "CALIOP curtain as PNG",
          "One granule's curtain (profiles left to right, altitude up), in the dashboard's colour scale; the "
          "granule is named as /api/v1/caliop/granules lists it, never by a path.",
          (Param("granule", "string", "the granule's file name (with or without .hdf)", required=True,
                 pattern=r"^[A-Za-z0-9._-]{1,200}$", example="CAL_LID_L1-Standard-V4-51.2021-04-12T15-17-42ZD"),
           Param("variable", "string", "the curtain variable", default="total_attenuated_backscatter_532",
                 choices=curtains.VARIABLES),
           Param("alt_min", "number", "bottom of the altitude range", default=0.0, minimum=-2, maximum=40, unit="km"),
           Param("alt_max", "number", "top of the altitude range", default=30.0, minimum=-2, maximum=40, unit="km"),
           Param("width", "integer", "picture width (columns of profiles)", default=1000, **_W),
           Param("height", "integer", "picture height (rows of altitude)", default=400, minimum=16, maximum=2048,
                 unit="pixels")),
          "image/png", caliop_curtain,
          example="granule=CAL_LID_L1-Standard-V4-51.2021-04-12T15-17-42ZD&width=800&height=300"),
    Route("/api/v1/caliop/granules", "caliopGranules", "CALIOP", "CALIOP granules of a day or period",
          "The CALIOP granules of the period that cross a zone or a box, by name (for the curtain's granule).",
          (*PERIOD_PARAMS, *ZONE_PARAMS), "application/json", caliop_granules,
          schema={"type": "array", "items": {"type": "object", "required": ["granule", "start", "end"]}},
          example="date=2021-04-12&zone=Caribbean"),
    Route("/api/v1/geo/image.png", "geoImage", "GEO", "A GEO product as PNG",
          "A satellite's product of one slot: the full disk in its own projection, or a lat/lon box regridded "
          "(app.api.geo's answer; the same PNG as /api/geo/image.png).",
          (*_SAT, _PRODUCT, _GEO_TIME, Param("bbox", "bbox", "lon_min,lat_min,lon_max,lat_max; the full disk without"),
           Param("width", "integer", "picture width", **_W), Param("height", "integer", "picture height", **_W)),
          "image/png", geo_image,
          example="satellite=G16&product=ash&time=2021-04-12T15:00&bbox=-70,5,-50,20&width=800"),
    Route("/api/v1/geo/value", "geoValue", "GEO", "GEO channel values under a point",
          "Every channel's value (and the NWC SAF cloud top) in the pixel under the point.",
          (*_SAT, _GEO_TIME, _LAT,
           Param("lon", "number", "longitude of the point", required=True, minimum=-180, maximum=360, unit="degrees"),
           Param("channels", "string", "generic channel names, comma separated (default: all)",
                 pattern=r"^[a-z0-9_]{1,12}(,[a-z0-9_]{1,12}){0,20}$")),
          "application/json", geo_value,
          schema={"type": "object", "required": ["satellite", "time", "channels"]},
          example="satellite=G16&time=2021-04-12T15:00&lat=13.5&lon=-60"),
    Route("/api/v1/geo/slots", "geoSlots", "GEO", "A satellite's slots of a day",
          "The slots (nominal times) of a satellite or ring position on a day, or all of them.",
          (*_SAT, Param("date", "date", "the UTC day (default: every slot)", example="2021-04-12")),
          "application/json", geo_slots,
          schema={"type": "array", "items": {"type": "object", "required": ["time", "platform", "channels"]}},
          example="satellite=G16&date=2021-04-12"),
    Route("/api/v1/geo/mosaic.png", "geoMosaic", "GEO", "The global mosaic of the ring as PNG",
          "Every ring satellite's product on one lat/lon grid, each cell from the satellite that sees it best.",
          (_PRODUCT, _GEO_TIME, Param("bbox", "bbox", "lon_min,lat_min,lon_max,lat_max (default -180,-80,180,80)"),
           Param("width", "integer", "picture width", **_W), Param("height", "integer", "picture height", **_W)),
          "image/png", geo_mosaic, example="product=ash&time=2021-04-12T12:00&width=1200"),
    Route("/api/v1/volcanoes", "volcanoes", "Volcanoes", "The GVP volcano list, searched",
          "Volcanoes whose name matches q (best first), or the list by name; JSON or GeoJSON.",
          (Param("q", "string", "search text (a name or the start of a GVP number)", example="soufriere"),
           Param("limit", "integer", "largest number of volcanoes", default=50, minimum=1, maximum=2000),
           Param("format", "string", "json or geojson", default="json", choices=("json", "geojson"))),
          "application/json", volcanoes,
          schema={"oneOf": [{"type": "object", "required": ["total", "volcanoes"],
                             "properties": {"total": {"type": "integer"},
                                            "volcanoes": {"type": "array", "items": _VOLCANO}}}, _GEOJSON]},
          example="q=soufriere"),
    Route("/api/v1/volcanoes.geojson", "volcanoesGeojson", "Volcanoes", "The GVP volcano list as GeoJSON",
          "The same as /api/v1/volcanoes?format=geojson.",
          (Param("q", "string", "search text", example="etna"),
           Param("limit", "integer", "largest number of volcanoes", default=50, minimum=1, maximum=2000)),
          "application/geo+json", volcanoes_geojson, schema=_GEOJSON, example="q=etna"),
    *_animation_routes(),
)


# ------------------------------------------------------------------------------------------------ Tornado

def failure(exc: BaseException) -> tuple[int, str, str | None]:
    """HTTP status, sentence and parameter of an exception raised while answering."""
    if isinstance(exc, ApiError):
        return exc.status, str(exc), exc.parameter
    if isinstance(exc, geo.MissingChannelError):
        return 404, str(exc), "channels"
    if isinstance(exc, geo.MissingSlotError):
        return 404, str(exc), "time"
    if isinstance(exc, api_geo.NotFound):
        return 404, str(exc), "lat"
    if isinstance(exc, anim.AnimationLimitError):
        return 422, str(exc), exc.parameter
    if isinstance(exc, anim.NothingToDraw):
        return 404, str(exc), None
    if isinstance(exc, UserInputError):
        return 422, str(exc), None
    if isinstance(exc, GranuleError):  # the file's fault, not ours: not a 5xx
        return 422, f"a file this answer needs cannot be read: {exc}", None
    status, message = api_geo._failure(exc)
    return status, message, None


def _finite(value):
    """``value`` with every NaN or infinite float as None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class V1Handler(api_geo._GeoHandler):
    """One v1 route: its parameters checked, its answer on the API's pool, errors as JSON naming the parameter."""

    def initialize(self, spec: Route | None = None, catalog: str | None = None,
                   archive: Archive | None = None) -> None:
        """The route's declaration and the archive it answers from."""
        super().initialize(catalog, archive)
        self.spec = spec
        self.route = spec.path if spec is not None else "v1"

    def merge_key(self, args: dict) -> tuple:
        """The parameters and the client's ETag (a 304 is not a PNG)."""
        return (*super().merge_key(args), self.request.headers.get("If-None-Match", ""))

    def args(self) -> dict:
        """The query's parameters as sent (the last value of each): UTF-8 text without control characters.

        Unlike Tornado's ``get_query_argument`` nothing is stripped or cleaned, so what is checked is what came.
        """
        out = {}
        for name, values in self.request.query_arguments.items():
            try:
                text = values[-1].decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, f"parameter {name[:40]!r} is not UTF-8 text", name[:40]) from None
            if _CONTROL.search(text) or _CONTROL.search(name):
                raise ApiError(400, f"parameter {name[:40]!r} holds a control character", name[:40])
            out[name] = text
        return out

    def answer(self, archive, args):
        """Check the query against the route's declarations, then answer."""
        values = parse(self.spec.params, args)
        return self.spec.answer(Ctx(archive, values, args, self.request.headers.get("If-None-Match")))

    def _fail(self, status: int, message: str, parameter: str | None = None) -> None:
        self.clear()
        self.set_default_headers()
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if status == 503:
            self.set_header("Retry-After", str(api_pool.RETRY_AFTER_S))
        self.finish(json.dumps({"error": message, "parameter": parameter}, ensure_ascii=False))

    async def get(self) -> None:
        """Answer on the API's pool; every failure a JSON sentence naming the parameter at fault."""
        try:
            args = self.args()
            result = await api_pool.run(self.merge_key(args), lambda: self._work(args))
        except Exception as exc:  # noqa: BLE001 - every failure is a JSON answer, never Tornado's HTML page
            status, message, parameter = failure(exc)
            if status == 500 and not isinstance(exc, FumaroleError):
                api_geo.log.error("%s %s failed", self.request.method, self.request.uri, exc_info=exc)
            self._fail(status, str(message), parameter)
            return
        self.send(result)

    def write_error(self, status_code: int, **kwargs) -> None:
        """Errors Tornado itself raises (a method not allowed, a bad request line) as JSON too."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = self._reason if exc is None else failure(exc)[1]
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": str(message), "parameter": None}, ensure_ascii=False))

    def send(self, result) -> None:
        """A PNG (or 304), a text, or JSON."""
        if isinstance(result, Png):  # a PNG is a file answer of its own media type
            result = Media(result.png, "image/png", result.headers, result.etag)
        if isinstance(result, Media):
            self._send_media(result)
            return
        if isinstance(result, Text):
            for name, value in result.headers.items():
                self.set_header(name, value)
            self.set_header("Content-Type", result.media)
            self.finish(result.body)
            return
        media = self.spec.media if self.spec.media.endswith("json") else "application/json"
        self.set_header("Content-Type", f"{media}; charset=utf-8")
        self.finish(json.dumps(_finite(result), ensure_ascii=False, allow_nan=False))


    def _send_media(self, result: Media) -> None:
        """A file (PNG, MP4, GIF) with its caching headers, or 304 when the client's copy is current."""
        self.set_header("Cache-Control", f"public, max-age={PNG_MAX_AGE_S}")
        self.set_header("Etag", result.etag)
        for name, value in result.headers.items():
            self.set_header(name, str(value).encode("ascii", "replace").decode())
        if result.body is None:
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Type", result.media)
        self.finish(result.body)


class DocumentHandler(tornado.web.RequestHandler):
    """``/api/v1/openapi.json`` and ``/api/v1/docs``: the document (made once) and its HTML page."""

    def initialize(self, kind: str = "json") -> None:
        self.kind = kind

    def set_default_headers(self) -> None:
        """Any origin may read the document."""
        self.set_header("Access-Control-Allow-Origin", "*")

    def get(self) -> None:
        """The document, as JSON or as HTML."""
        from app.api import openapi

        if self.request.query_arguments:
            self.set_status(400)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            name = next(iter(self.request.query_arguments))
            self.finish(json.dumps({"error": f"unknown parameter {name[:40]!r}; this route takes none",
                                    "parameter": name[:40]}))
            return
        if self.kind == "json":
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(openapi.document_json())
        else:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(openapi.document_html())


def routes(catalog: str | None = None, archive: Archive | None = None) -> list[tuple]:
    """The v1 routes over a catalogue (default: ``FUMAROLE_CATALOG``) or a given archive."""
    out: list[tuple] = []
    for spec in ROUTE_SPECS:
        for path in (spec.path, *spec.aliases):
            out.append((path.replace(".", r"\."), V1Handler, {"spec": spec, "catalog": catalog, "archive": archive}))
    out.append((r"/api/v1/openapi\.json", DocumentHandler, {"kind": "json"}))
    out.append((r"/api/v1/docs/?", DocumentHandler, {"kind": "html"}))
    return out


#: What ``panel serve --plugins app.api.v1`` adds to the server (the default catalogue).
ROUTES = routes()
