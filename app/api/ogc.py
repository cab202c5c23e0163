"""Map services for GIS clients: an OGC WMS 1.3.0, a WMTS 1.0.0 and XYZ tiles over :mod:`app.services.tiles`.

Routes (``GET``; ``fumarole serve`` loads :data:`ROUTES` as a Panel plugin, ``--plugins app.api.ogc``;
``docs/gis.md`` shows QGIS, Leaflet and OpenLayers using them)::

    /api/v1/wms?SERVICE=WMS&REQUEST=GetCapabilities          the WMS_Capabilities 1.3.0 document
    /api/v1/wms?SERVICE=WMS&REQUEST=GetMap&LAYERS=…           a map as PNG (EPSG:4326, CRS:84, EPSG:3857; TIME)
    /api/v1/wms?SERVICE=WMS&REQUEST=GetLegendGraphic&LAYER=…  a colour bar (the SO2 and cloud-top layers)
    /api/v1/wmts?SERVICE=WMTS&REQUEST=GetCapabilities         the WMTS 1.0.0 document (GoogleMapsCompatible)
    /api/v1/wmts?SERVICE=WMTS&REQUEST=GetTile&…               a tile (KVP); /api/v1/wmts/1.0.0/WMTSCapabilities.xml
    /api/v1/tiles/{layer}/{z}/{x}/{y}.png?time=…              an XYZ tile (Web Mercator, 256 px, z ≤ 12)

WMS and WMTS parameter names are case-insensitive (their standards say so); a parameter they do not know is
ignored, as the standards ask (clients send their own). WMS errors are a ``ServiceExceptionReport`` (``text/xml``,
status 400) with the standard codes (``LayerNotDefined``, ``StyleNotDefined``, ``InvalidCRS``, ``InvalidFormat``,
``MissingDimensionValue``, ``InvalidDimensionValue``, ``OperationNotSupported``; ``MissingParameterValue`` and
``InvalidParameterValue`` from OWS Common for the rest) and a ``locator`` naming the parameter; WMTS errors an
OWS ``ExceptionReport``; the tiles' errors v1's JSON (:mod:`app.api.v1`). Bounds are v1's: WIDTH and HEIGHT at
most 4096, and the SO2 work budget (``app.api.v1.BUDGET``: TROPOMI granules a request may read). Maps and tiles
carry v1's ``ETag`` (inputs and the data's stamp; ``If-None-Match`` answered 304) and are kept in its ``api-png``
cache. A tile outside the data is a transparent PNG.

The handlers are v1's (:class:`app.api.v1.V1Handler`, itself the GEO API's base): the same pool, time bound and
login apply.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import mercantile
import numpy as np

from app.api import geo as api_geo
from app.api import v1
from app.api.params import ApiError, Param, parse
from app.data.archive import Archive
from app.data.errors import FumaroleError, UserInputError
from app.render import geo as render
from app.render.colormaps import SO2
from app.services import tiles

__all__ = ["ROUTES", "routes", "WmsHandler", "WmtsHandler", "TileHandler", "MAX_SIZE", "MAX_LAYERS",
           "capabilities_xml", "wmts_capabilities_xml", "exception_xml"]

MAX_SIZE = 4096
#: Layers one GetMap may stack (each drawn, then laid over the previous).
MAX_LAYERS = 4
CRS_LIST = ("EPSG:4326", "EPSG:3857", "CRS:84")
WMS_NS = "http://www.opengis.net/wms"
OGC_NS = "http://www.opengis.net/ogc"
WMTS_NS = "http://www.opengis.net/wmts/1.0"
OWS_NS = "http://www.opengis.net/ows/1.1"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
#: Web Mercator's half width (m) and the GoogleMapsCompatible scale denominator of zoom 0.
MERC = 20037508.342789244
SCALE_Z0 = 559082264.0287178


class OgcError(UserInputError):
    """A refused OGC request: the exception code and the parameter at fault (``locator``)."""

    def __init__(self, message: str, code: str | None = None, locator: str | None = None, status: int = 400):
        super().__init__(message)
        self.code = code
        self.locator = locator
        self.status = status


# ------------------------------------------------------------------------------------------------ XML

def _el(parent, tag: str, text=None, **attrs) -> ET.Element:
    node = ET.SubElement(parent, tag, {k.replace("__", ":"): str(v) for k, v in attrs.items()})
    if text is not None:
        node.text = str(text)
    return node


def _xml(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def exception_xml(message: str, code: str | None = None, locator: str | None = None) -> str:
    """A WMS 1.3.0 ``ServiceExceptionReport`` with one exception."""
    ET.register_namespace("", OGC_NS)
    root = ET.Element(f"{{{OGC_NS}}}ServiceExceptionReport", {
        "version": "1.3.0", f"{{{XSI}}}schemaLocation":
            f"{OGC_NS} http://schemas.opengis.net/wms/1.3.0/exceptions_1_3_0.xsd"})
    attrs = {k: v for k, v in (("code", code), ("locator", locator)) if v}
    _el(root, f"{{{OGC_NS}}}ServiceException", message, **attrs)
    return _xml(root)


def ows_exception_xml(message: str, code: str | None, locator: str | None) -> str:
    """An OWS 1.1 ``ExceptionReport`` (the WMTS's errors)."""
    ET.register_namespace("ows", OWS_NS)
    root = ET.Element(f"{{{OWS_NS}}}ExceptionReport", {"version": "1.1.0"})
    attrs = {"exceptionCode": code or "NoApplicableCode"}
    if locator:
        attrs["locator"] = locator
    node = _el(root, f"{{{OWS_NS}}}Exception", **attrs)
    _el(node, f"{{{OWS_NS}}}ExceptionText", message)
    return _xml(root)


def _merc_x(lon: float) -> float:
    return mercantile.xy(lon, 0.0)[0]


def _merc_y(lat: float) -> float:
    return mercantile.xy(0.0, max(-tiles.MERCATOR_LAT, min(tiles.MERCATOR_LAT, lat)))[1]


def _legend_url(base: str, layer: tiles.Layer) -> str | None:
    if layer.kind == "so2" or render.is_cloud_top(layer.product):
        return f"{base}?SERVICE=WMS&REQUEST=GetLegendGraphic&FORMAT=image/png&LAYER={layer.name}"
    return None


def _wms_layer(parent, base: str, layer: tiles.Layer) -> None:
    w = f"{{{WMS_NS}}}"
    node = _el(parent, w + "Layer", queryable="0" if layer.kind == "mosaic" else "1", opaque="0")
    _el(node, w + "Name", layer.name)
    _el(node, w + "Title", layer.title)
    _el(node, w + "Abstract", layer.abstract)
    for crs in CRS_LIST:
        _el(node, w + "CRS", crs)
    lon0, lat0, lon1, lat1 = layer.bbox
    box = _el(node, w + "EX_GeographicBoundingBox")
    for tag, value in (("westBoundLongitude", lon0), ("eastBoundLongitude", lon1), ("southBoundLatitude", lat0),
                       ("northBoundLatitude", lat1)):
        _el(box, w + tag, f"{value:g}")
    _el(node, w + "BoundingBox", CRS="CRS:84", minx=f"{lon0:g}", miny=f"{lat0:g}", maxx=f"{lon1:g}",
        maxy=f"{lat1:g}")
    _el(node, w + "BoundingBox", CRS="EPSG:4326", minx=f"{lat0:g}", miny=f"{lon0:g}", maxx=f"{lat1:g}",
        maxy=f"{lon1:g}")
    _el(node, w + "BoundingBox", CRS="EPSG:3857", minx=f"{_merc_x(lon0):.2f}", miny=f"{_merc_y(lat0):.2f}",
        maxx=f"{_merc_x(lon1):.2f}", maxy=f"{_merc_y(lat1):.2f}")
    default = (f"{layer.times[-1]:%Y-%m-%d}" if layer.step_minutes >= 1440
               else f"{layer.times[-1]:%Y-%m-%dT%H:%M:%SZ}")
    _el(node, w + "Dimension", tiles.time_values(layer.times, layer.step_minutes), name="time", units="ISO8601",
        default=default, nearestValue="0", multipleValues="0", current="0")
    style = _el(node, w + "Style")
    _el(style, w + "Name", "default")
    _el(style, w + "Title", "Fumarole's colours")
    url = _legend_url(base, layer)
    if url is not None:
        legend = _el(style, w + "LegendURL", width="256", height="24")
        _el(legend, w + "Format", "image/png")
        _el(legend, w + "OnlineResource", **{f"{{{XLINK}}}type": "simple",
                                             f"{{{XLINK}}}href": url})


def _operation(parent, ns: str, name: str, formats: tuple[str, ...], base: str) -> None:
    op = _el(parent, ns + name)
    for f in formats:
        _el(op, ns + "Format", f)
    get = _el(_el(_el(op, ns + "DCPType"), ns + "HTTP"), ns + "Get")
    _el(get, ns + "OnlineResource", **{f"{{{XLINK}}}type": "simple", f"{{{XLINK}}}href": base + "?"})


def capabilities_xml(archive: Archive, base: str) -> str:
    """The WMS_Capabilities 1.3.0 document of ``archive``'s layers, its operations at ``base`` (the /wms URL)."""
    ET.register_namespace("", WMS_NS)
    ET.register_namespace("xlink", XLINK)
    ET.register_namespace("xsi", XSI)
    w = f"{{{WMS_NS}}}"
    root = ET.Element(w + "WMS_Capabilities", {
        "version": "1.3.0", f"{{{XSI}}}schemaLocation":
            f"{WMS_NS} http://schemas.opengis.net/wms/1.3.0/capabilities_1_3_0.xsd"})
    service = _el(root, w + "Service")
    _el(service, w + "Name", "WMS")
    _el(service, w + "Title", "Fumarole")
    _el(service, w + "Abstract", "TROPOMI SO2 maps, geostationary products and the ring's global mosaic of a "
                                 "Fumarole archive.")
    _el(service, w + "OnlineResource", **{f"{{{XLINK}}}type": "simple", f"{{{XLINK}}}href": base})
    _el(service, w + "Fees", "none")
    _el(service, w + "AccessConstraints", "none")
    _el(service, w + "LayerLimit", MAX_LAYERS)
    _el(service, w + "MaxWidth", MAX_SIZE)
    _el(service, w + "MaxHeight", MAX_SIZE)
    cap = _el(root, w + "Capability")
    request = _el(cap, w + "Request")
    _operation(request, w, "GetCapabilities", ("text/xml",), base)
    _operation(request, w, "GetMap", ("image/png",), base)
    _operation(request, w, "GetFeatureInfo", INFO_FORMATS, base)
    exc = _el(cap, w + "Exception")
    _el(exc, w + "Format", "XML")
    top = _el(cap, w + "Layer")
    _el(top, w + "Title", "Fumarole")
    for crs in CRS_LIST:
        _el(top, w + "CRS", crs)
    box = _el(top, w + "EX_GeographicBoundingBox")
    for tag, value in (("westBoundLongitude", -180), ("eastBoundLongitude", 180), ("southBoundLatitude", -90),
                       ("northBoundLatitude", 90)):
        _el(box, w + tag, value)
    for layer in tiles.layers(archive):
        _wms_layer(top, base, layer)
    return _xml(root)


def _tile_matrix_set(parent) -> None:
    m, o = f"{{{WMTS_NS}}}", f"{{{OWS_NS}}}"
    tms = _el(parent, m + "TileMatrixSet")
    _el(tms, o + "Identifier", "GoogleMapsCompatible")
    _el(tms, o + "SupportedCRS", "urn:ogc:def:crs:EPSG::3857")
    _el(tms, m + "WellKnownScaleSet", "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible")
    for z in range(tiles.MAX_ZOOM + 1):
        matrix = _el(tms, m + "TileMatrix")
        _el(matrix, o + "Identifier", z)
        _el(matrix, m + "ScaleDenominator", repr(SCALE_Z0 / 2**z))
        _el(matrix, m + "TopLeftCorner", f"{-MERC!r} {MERC!r}")
        _el(matrix, m + "TileWidth", tiles.TILE_SIZE)
        _el(matrix, m + "TileHeight", tiles.TILE_SIZE)
        _el(matrix, m + "MatrixWidth", 2**z)
        _el(matrix, m + "MatrixHeight", 2**z)


def _wmts_operation(parent, name: str, url: str) -> None:
    o = f"{{{OWS_NS}}}"
    op = _el(parent, o + "Operation", name=name)
    get = _el(_el(_el(op, o + "DCP"), o + "HTTP"), o + "Get", **{f"{{{XLINK}}}href": url + "?"})
    values = _el(_el(get, o + "Constraint", name="GetEncoding"), o + "AllowedValues")
    _el(values, o + "Value", "KVP")


def wmts_capabilities_xml(archive: Archive, root_url: str) -> str:
    """The WMTS 1.0.0 Capabilities document: every layer in GoogleMapsCompatible, KVP at /wmts, REST as /tiles."""
    ET.register_namespace("", WMTS_NS)
    ET.register_namespace("ows", OWS_NS)
    ET.register_namespace("xlink", XLINK)
    m, o = f"{{{WMTS_NS}}}", f"{{{OWS_NS}}}"
    root = ET.Element(m + "Capabilities", {"version": "1.0.0"})
    ident = _el(root, o + "ServiceIdentification")
    _el(ident, o + "Title", "Fumarole")
    _el(ident, o + "ServiceType", "OGC WMTS")
    _el(ident, o + "ServiceTypeVersion", "1.0.0")
    ops = _el(root, o + "OperationsMetadata")
    for name in ("GetCapabilities", "GetTile"):
        _wmts_operation(ops, name, f"{root_url}/api/v1/wmts")
    contents = _el(root, m + "Contents")
    for layer in tiles.layers(archive):
        node = _el(contents, m + "Layer")
        _el(node, o + "Title", layer.title)
        _el(node, o + "Abstract", layer.abstract)
        lon0, lat0, lon1, lat1 = layer.bbox
        box = _el(node, o + "WGS84BoundingBox")
        _el(box, o + "LowerCorner", f"{lon0:g} {max(lat0, -tiles.MERCATOR_LAT):g}")
        _el(box, o + "UpperCorner", f"{lon1:g} {min(lat1, tiles.MERCATOR_LAT):g}")
        _el(node, o + "Identifier", layer.name)
        style = _el(node, m + "Style", isDefault="true")
        _el(style, o + "Identifier", "default")
        _el(node, m + "Format", "image/png")
        dim = _el(node, m + "Dimension")
        _el(dim, o + "Identifier", "Time")
        _el(dim, o + "UOM", "ISO8601")
        values = tiles.time_values(layer.times, layer.step_minutes).split(",")
        _el(dim, m + "Default", values[-1].split("/")[1] if "/" in values[-1] else values[-1])
        _el(dim, m + "Current", "false")
        for value in values:
            _el(dim, m + "Value", value)
        link = _el(node, m + "TileMatrixSetLink")
        _el(link, m + "TileMatrixSet", "GoogleMapsCompatible")
        _el(node, m + "ResourceURL", format="image/png", resourceType="tile",
            template=f"{root_url}/api/v1/tiles/{layer.name}/{{TileMatrix}}/{{TileCol}}/{{TileRow}}.png?time={{Time}}")
    _tile_matrix_set(contents)
    return _xml(root)


# ------------------------------------------------------------------------------------------------ GetMap

@dataclass(frozen=True)
class MapRequest:
    """A GetMap checked: the layers, the time asked for, the box in lon/lat, size, projection, background."""

    layers: tuple[tiles.Layer, ...]
    time: str | None
    lon_range: tuple[float, float]
    lat_range: tuple[float, float]
    width: int
    height: int
    mercator: bool
    background: tuple[int, int, int, int]


def _need(args: dict, name: str) -> str:
    value = args.get(name)
    if value is None or value.strip() == "":
        raise OgcError(f"parameter {name} is required", "MissingParameterValue", name)
    return value.strip()


def _size(args: dict, name: str) -> int:
    text = _need(args, name)
    if not re.fullmatch(r"\d{1,6}", text):
        raise OgcError(f"{name} {text[:20]!r} is not a whole number of pixels", "InvalidParameterValue", name)
    value = int(text)
    if not 1 <= value <= MAX_SIZE:
        raise OgcError(f"{name} {value} is out of range (1 … {MAX_SIZE} pixels)", "InvalidParameterValue", name)
    return value


def _bbox(args: dict, crs: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """(lon range, lat range) of BBOX in ``crs`` (EPSG:4326 is lat,lon order in WMS 1.3.0)."""
    text = _need(args, "BBOX")
    try:
        a, b, c, d = (float(p) for p in text.split(","))
    except ValueError:
        raise OgcError(f"BBOX {text[:60]!r} must be four numbers: minx,miny,maxx,maxy", "InvalidParameterValue",
                       "BBOX") from None
    if not all(math.isfinite(v) for v in (a, b, c, d)) or not (a < c and b < d):
        raise OgcError(f"BBOX {text[:60]!r} must be four finite numbers with minx < maxx and miny < maxy",
                       "InvalidParameterValue", "BBOX")
    if crs == "EPSG:3857":
        if max(abs(a), abs(c)) > 2 * MERC or max(abs(b), abs(d)) > 2 * MERC:
            raise OgcError(f"BBOX {text[:60]!r} lies outside Web Mercator's world (±{MERC:.0f} m)",
                           "InvalidParameterValue", "BBOX")
        lon = (mercantile.lnglat(a, 0.0).lng, mercantile.lnglat(c, 0.0).lng)
        return lon, (mercantile.lnglat(0.0, b).lat, mercantile.lnglat(0.0, d).lat)
    lon_range, lat_range = ((b, d), (a, c)) if crs == "EPSG:4326" else ((a, c), (b, d))
    if not (-90 <= lat_range[0] and lat_range[1] <= 90):
        raise OgcError(f"BBOX {text[:60]!r}: latitudes must lie in -90 … 90 (with CRS={crs} the "
                       f"{'first and third' if crs == 'EPSG:4326' else 'second and fourth'} numbers)",
                       "InvalidParameterValue", "BBOX")
    if not (-180 <= lon_range[0] and lon_range[1] <= 360 and lon_range[1] - lon_range[0] <= 360):
        raise OgcError(f"BBOX {text[:60]!r}: longitudes must lie in -180 … 360 and span at most 360°",
                       "InvalidParameterValue", "BBOX")
    return lon_range, lat_range


def _background(args: dict) -> tuple[int, int, int, int]:
    text = (args.get("TRANSPARENT") or "FALSE").strip()
    transparent = text.upper()
    if transparent not in ("TRUE", "FALSE"):
        raise OgcError(f"TRANSPARENT {text[:20]!r} must be TRUE or FALSE", "InvalidParameterValue",
                       "TRANSPARENT")
    colour = (args.get("BGCOLOR") or "0xFFFFFF").strip()
    if not re.fullmatch(r"0[xX][0-9a-fA-F]{6}", colour):
        raise OgcError(f"BGCOLOR {colour[:20]!r} must be 0xRRGGBB", "InvalidParameterValue", "BGCOLOR")
    rgb = [int(colour[i:i + 2], 16) for i in (2, 4, 6)]
    return (*rgb, 0 if transparent == "TRUE" else 255)


def _layers(archive: Archive, args: dict) -> tuple[tiles.Layer, ...]:
    names = [n.strip() for n in _need(args, "LAYERS").split(",")]
    if len(names) > MAX_LAYERS:
        raise OgcError(f"LAYERS names {len(names)} layers; at most {MAX_LAYERS} per map", "InvalidParameterValue",
                       "LAYERS")
    out = []
    for name in names:
        try:
            out.append(tiles.parse_layer(archive, name))
        except tiles.MapError as exc:
            raise OgcError(str(exc), exc.code, "LAYERS") from None
    styles = [s.strip() for s in (args.get("STYLES") or "").split(",")]
    for style in styles:
        if style not in ("", "default"):
            raise OgcError(f"STYLES {style[:40]!r} is not a style of these layers (their one style is 'default', "
                           "or leave STYLES empty)", "StyleNotDefined", "STYLES")
    if args.get("STYLES") is None:
        raise OgcError("parameter STYLES is required (leave it empty for the default style: STYLES=)",
                       "MissingParameterValue", "STYLES")
    return tuple(out)


def map_request(archive: Archive, args: dict) -> MapRequest:
    """The checked GetMap of ``args`` (upper-case names); :class:`OgcError` naming the code and parameter."""
    version = (args.get("VERSION") or "1.3.0").strip()
    if version != "1.3.0":
        raise OgcError(f"VERSION {version[:20]!r} is not served: this WMS speaks 1.3.0", "InvalidParameterValue",
                       "VERSION")
    layers = _layers(archive, args)
    crs = _need(args, "CRS").upper()
    if crs not in CRS_LIST:
        raise OgcError(f"CRS {crs[:40]!r} is not offered; use one of {', '.join(CRS_LIST)}", "InvalidCRS", "CRS")
    fmt = _need(args, "FORMAT")
    if fmt.lower() != "image/png":
        raise OgcError(f"FORMAT {fmt[:40]!r} is not offered; use image/png", "InvalidFormat", "FORMAT")
    exceptions = (args.get("EXCEPTIONS") or "XML").strip()
    if exceptions not in ("XML", "application/vnd.ogc.se_xml"):
        raise OgcError(f"EXCEPTIONS {exceptions[:40]!r} is not offered; use XML", "InvalidParameterValue",
                       "EXCEPTIONS")
    lon_range, lat_range = _bbox(args, crs)
    width, height = _size(args, "WIDTH"), _size(args, "HEIGHT")
    time = args.get("TIME")
    if time is not None and time.strip() == "":
        raise OgcError("TIME is empty: give a time of the layer's time dimension (GetCapabilities lists them) or "
                       "leave TIME out for the latest", "MissingDimensionValue", "TIME")
    return MapRequest(layers, None if time is None else time.strip(), lon_range, lat_range, width, height,
                      crs == "EPSG:3857", _background(args))


def _jobs(archive: Archive, layers, time: str | None, lon_range, lat_range) -> list[tiles.Job]:
    box = (lon_range[0], lat_range[0], lon_range[1], lat_range[1])
    jobs = []
    for layer in layers:
        try:
            jobs.append(tiles.prepare(archive, layer, time, box))
        except tiles.MapError as exc:
            raise OgcError(str(exc), exc.code, exc.parameter) from None
    granules = sum(j.granules for j in jobs if j.layer.kind == "so2")
    if granules > v1.BUDGET["so2"]:
        raise OgcError(f"this map would read {granules} TROPOMI granules; at most {v1.BUDGET['so2']} per request: "
                       "narrow the box", "InvalidParameterValue", "BBOX")
    return jobs


def _over(below: np.ndarray, above: np.ndarray) -> np.ndarray:
    """``above`` laid over ``below`` (RGBA uint8, straight alpha)."""
    a = above[..., 3:4].astype(np.float32) / 255.0
    b = below[..., 3:4].astype(np.float32) / 255.0
    alpha = a + b * (1 - a)
    with np.errstate(invalid="ignore", divide="ignore"):
        rgb = (above[..., :3] * a + below[..., :3] * b * (1 - a)) / np.where(alpha > 0, alpha, 1)
    return np.concatenate([np.clip(np.rint(rgb), 0, 255), np.rint(alpha * 255)], axis=-1).astype(np.uint8)


def _compose(jobs: list[tiles.Job], req_box, width: int, height: int, mercator: bool,
             background: tuple[int, int, int, int]) -> np.ndarray:
    lon_range, lat_range = req_box
    out = np.zeros((height, width, 4), dtype=np.uint8)
    out[...] = background
    for job in jobs:
        out = _over(out, job.draw(lon_range, lat_range, width, height, mercator))
    return out


def _skipped(archive: Archive, jobs: list[tiles.Job]) -> dict:
    """``X-Fumarole-Skipped`` naming the granules that could not be read (relative to the archive), if any."""
    said = [api_geo.relative_message(m, api_geo._root(archive)) for j in jobs for m in j.skipped]
    return {"X-Fumarole-Skipped": " | ".join(said)[:900]} if said else {}


def get_map(ctx: v1.Ctx) -> v1.Png:
    """``GetMap``: the layers over the box at the time asked for, as PNG (ETag from the inputs and data stamps)."""
    req = map_request(ctx.archive, ctx.values)
    jobs = _jobs(ctx.archive, req.layers, req.time, req.lon_range, req.lat_range)
    headers = {"X-Fumarole-Time": " ".join(j.headers["X-Fumarole-Time"] for j in jobs)}

    def draw():
        rgba = _compose(jobs, (req.lon_range, req.lat_range), req.width, req.height, req.mercator, req.background)
        return render.png_bytes(rgba), _skipped(ctx.archive, jobs)

    key = ("wms", tuple(j.layer.name for j in jobs), tuple(j.time for j in jobs), req.lon_range, req.lat_range,
           req.width, req.height, req.mercator, req.background)
    return v1._png_answer(ctx, key, tuple(j.stamp for j in jobs), draw, headers)


INFO_FORMATS = ("application/json", "application/geo+json")


def _point(req: MapRequest, args: dict) -> tuple[float, float]:
    """(lat, lon) of the centre of pixel I, J of the map ``req``; InvalidPoint outside it."""
    out = []
    for name, size in (("I", req.width), ("J", req.height)):
        text = _need(args, name)
        if not re.fullmatch(r"\d{1,6}", text) or not int(text) < size:
            raise OgcError(f"{name} {text[:20]!r} is not a pixel of the map (0 … {size - 1})", "InvalidPoint", name)
        out.append(int(text))
    i, j = out
    lon0, lon1 = req.lon_range
    lon = lon0 + (i + 0.5) / req.width * (lon1 - lon0)
    bottom, top = req.lat_range
    rows = (tiles.mercator_row_lats(bottom, top, req.height) if req.mercator
            else tiles.lonlat_rows(bottom, top, req.height))
    return float(rows[j]), ((lon + 180.0) % 360.0) - 180.0


def _feature(archive: Archive, job: tiles.Job, lat: float, lon: float) -> dict | None:
    """The values of a layer under the point as a GeoJSON feature (None where it has none)."""
    props: dict = {"layer": job.layer.name, "time": job.headers["X-Fumarole-Time"]}
    if job.layer.kind == "so2":
        props["pixels"] = tiles.so2_pixels(archive, job, lat, lon)
        props["units"] = "DU"
        if not props["pixels"]:
            return None
    else:
        try:
            got = api_geo.value_json(archive, {"satellite": job.headers["X-Fumarole-Satellite"],
                                               "time": job.headers["X-Fumarole-Time"], "lat": str(lat),
                                               "lon": str(lon)})
        except api_geo.NotFound:
            return None
        props.update({k: got[k] for k in ("satellite", "position", "pixel", "viewing_zenith_angle", "channels",
                                          "cloud_top")})
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(lon, 5), round(lat, 5)]},
            "properties": props}


def feature_info(ctx: v1.Ctx) -> v1.Text:
    """``GetFeatureInfo``: the values of the queried layers under pixel I, J, as GeoJSON."""
    req = map_request(ctx.archive, ctx.values)
    names = [n.strip() for n in _need(ctx.values, "QUERY_LAYERS").split(",")]
    shown = {lay.name for lay in req.layers}
    for name in names:
        if name not in shown:
            raise OgcError(f"QUERY_LAYERS names {name[:60]!r}, which LAYERS does not", "LayerNotDefined",
                           "QUERY_LAYERS")
        if name.startswith("mosaic."):
            raise OgcError(f"layer {name!r} is not queryable: ask its satellites' geo.… layers", "LayerNotQueryable",
                           "QUERY_LAYERS")
    fmt = (ctx.values.get("INFO_FORMAT") or "application/json").strip()
    if fmt not in INFO_FORMATS:
        raise OgcError(f"INFO_FORMAT {fmt[:40]!r} is not offered; use application/json", "InvalidFormat",
                       "INFO_FORMAT")
    lat, lon = _point(req, ctx.values)
    layers = [lay for lay in req.layers if lay.name in names]
    jobs = _jobs(ctx.archive, layers, req.time, (lon - 0.01, lon + 0.01), (max(-90, lat - 0.01), min(90, lat + 0.01)))
    features = [f for f in (_feature(ctx.archive, j, lat, lon) for j in jobs) if f is not None]
    body = {"type": "FeatureCollection", "features": features}
    return v1.Text(json.dumps(v1._finite(body), ensure_ascii=False, allow_nan=False),
                   "application/json; charset=utf-8")


def legend(ctx: v1.Ctx) -> v1.Png:
    """``GetLegendGraphic``: the layer's colour bar, low values left (256 × 24 px)."""
    name = _need(ctx.values, "LAYER")
    try:
        layer = tiles.parse_layer(ctx.archive, name)
    except tiles.MapError as exc:
        raise OgcError(str(exc), exc.code, "LAYER") from None
    if layer.kind == "so2":
        cmap, clim = SO2, tiles.SO2_CLIM
    elif render.is_cloud_top(layer.product):
        style = render.CLOUD_TOP[layer.product]
        cmap, clim = style.cmap, style.clim
    else:
        raise OgcError(f"layer {name!r} is an RGB composite: it has no colour bar", "LayerNotDefined", "LAYER")

    def draw():
        ramp = np.linspace(clim[0], clim[1], 256)[None, :].repeat(24, axis=0)
        return render.png_bytes(render.colorize(ramp, cmap, clim)), {}

    return v1._png_answer(ctx, ("legend", layer.name), (), draw, {"X-Fumarole-Colour-Range": f"{clim[0]:g} "
                                                                                            f"{clim[1]:g}"})


# ------------------------------------------------------------------------------------------------ tiles

def _tile_numbers(z, x, y) -> tuple[int, int, int]:
    for name, text in (("z", z), ("x", x), ("y", y)):
        if not re.fullmatch(r"-?\d{1,7}", str(text)):
            raise ApiError(400, f"{name} {str(text)[:20]!r} is not a whole number", name)
    z, x, y = int(z), int(x), int(y)
    if not 0 <= z <= tiles.MAX_ZOOM:
        raise ApiError(422, f"zoom {z} is out of range (0 … {tiles.MAX_ZOOM})", "z")
    n = 2**z
    for name, v in (("x", x), ("y", y)):
        if not 0 <= v < n:
            raise ApiError(422, f"{name} {v} is out of range at zoom {z} (0 … {n - 1})", name)
    return z, x, y


def _intersects(layer: tiles.Layer, lon_range, lat_range) -> bool:
    lon0, lat0, lon1, lat1 = layer.bbox
    return lon_range[0] < lon1 and lon_range[1] > lon0 and lat_range[0] < lat1 and lat_range[1] > lat0


def tile_png(archive: Archive, layer_name: str, z, x, y, time: str | None, if_none_match: str | None) -> v1.Png:
    """One Web Mercator tile of a layer at a time (the latest when None); transparent outside the data."""
    z, x, y = _tile_numbers(z, x, y)
    try:
        layer = tiles.parse_layer(archive, layer_name)
    except tiles.MapError as exc:
        raise ApiError(404, str(exc), "layer") from None
    lon_range, lat_range = tiles.tile_box(z, x, y)
    try:
        job = tiles.prepare(archive, layer, time, (lon_range[0], lat_range[0], lon_range[1], lat_range[1]))
    except tiles.MapError as exc:
        raise ApiError(404 if exc.code == "LayerNotDefined" else 422, str(exc),
                       "time" if exc.parameter == "TIME" else "layer") from None
    if job.layer.kind == "so2" and job.granules > v1.BUDGET["so2"]:
        raise ApiError(422, f"this tile would read {job.granules} TROPOMI granules; at most {v1.BUDGET['so2']} per "
                            "request: zoom in", "z")
    empty = not job.stamp or not _intersects(layer, lon_range, lat_range)

    def draw():
        if empty:
            return tiles.transparent_png(tiles.TILE_SIZE, tiles.TILE_SIZE), {"X-Fumarole-Empty": "1"}
        rgba = job.draw(lon_range, lat_range, tiles.TILE_SIZE, tiles.TILE_SIZE, mercator=True)
        return render.png_bytes(rgba), _skipped(archive, [job])

    ctx = v1.Ctx(archive, {}, {}, if_none_match)
    return v1._png_answer(ctx, ("tile", layer.name, job.time, z, x, y), job.stamp, draw, dict(job.headers))


# ------------------------------------------------------------------------------------------------ Tornado

#: The longest value an OGC parameter may have (a LAYERS list of several names is longer than v1's 256).
MAX_CHARS = 1024


def _upper(args: dict) -> dict:
    """The query with upper-case names (OGC names are case-insensitive), each value at most MAX_CHARS long."""
    for name, value in args.items():
        if len(value) > MAX_CHARS:
            raise OgcError(f"parameter {name[:40]!r} is too long ({len(value)} characters; at most {MAX_CHARS})",
                           "InvalidParameterValue", name[:40].upper())
    return {k.upper(): v for k, v in args.items()}


def _base(handler) -> str:
    return f"{handler.request.protocol}://{handler.request.host}"


class _OgcHandler(v1.V1Handler):
    """A v1 handler whose errors are OGC XML: the same pool, time bound, login and PNG answers."""

    route = "ogc"
    media = "text/xml; charset=utf-8"

    def initialize(self, catalog: str | None = None, archive: Archive | None = None) -> None:
        """The archive answered from."""
        super().initialize(None, catalog, archive)
        self.route = type(self).route

    def error_xml(self, message: str, code: str | None, locator: str | None) -> str:  # pragma: no cover
        """The error document."""
        raise NotImplementedError

    def _fail(self, status: int, message: str, parameter: str | None = None, code: str | None = None) -> None:
        self.clear()
        self.set_default_headers()
        self.set_status(status)
        self.set_header("Content-Type", self.media)
        self.set_header("Cache-Control", "no-store")
        if status == 503:
            self.set_header("Retry-After", str(v1.api_pool.RETRY_AFTER_S))
        self.finish(self.error_xml(message, code, parameter))

    async def get(self, *path) -> None:
        """Answer on the API's pool; every failure an OGC exception document."""
        try:
            args = self.args()
            result = await v1.api_pool.run(self.merge_key(args), lambda: self._work(args))
        except OgcError as exc:
            self._fail(exc.status, str(exc), exc.locator, exc.code)
            return
        except Exception as exc:  # noqa: BLE001 - every failure is an exception document, never Tornado's page
            status, message, parameter = v1.failure(exc)
            if status == 500 and not isinstance(exc, FumaroleError):
                api_geo.log.error("%s %s failed", self.request.method, self.request.uri, exc_info=exc)
            code = "InvalidDimensionValue" if parameter == "time" else None
            self._fail(400 if status in (404, 422) else status, str(message), parameter, code)
            return
        self.send(result)

    def write_error(self, status_code: int, **kwargs) -> None:
        """Errors Tornado itself raises, as an exception document too."""
        self.set_header("Content-Type", self.media)
        self.finish(self.error_xml(self._reason, None, None))


class WmsHandler(_OgcHandler):
    """``/api/v1/wms``: GetCapabilities, GetMap and GetLegendGraphic of WMS 1.3.0."""

    route = "wms"

    def error_xml(self, message, code, locator) -> str:
        """A ServiceExceptionReport."""
        return exception_xml(message, code, locator)

    def answer(self, archive, args):
        """The operation REQUEST names."""
        values = _upper(args)
        request = (values.get("REQUEST") or "").strip()
        ctx = v1.Ctx(archive, values, args, self.request.headers.get("If-None-Match"))
        if request.lower() == "getcapabilities":
            service = (values.get("SERVICE") or "").strip()
            if service.upper() != "WMS":
                raise OgcError(f"SERVICE {service[:20]!r} must be WMS", "MissingParameterValue" if not service
                               else "InvalidParameterValue", "SERVICE")
            return v1.Text(capabilities_xml(archive, f"{_base(self)}/api/v1/wms"), "text/xml; charset=utf-8")
        if request.lower() == "getmap" or request.lower() == "map":
            return get_map(ctx)
        if request.lower() == "getlegendgraphic":
            return legend(ctx)
        if request.lower() == "getfeatureinfo":
            return feature_info(ctx)
        if not request:
            raise OgcError("parameter REQUEST is required (GetCapabilities or GetMap)", "MissingParameterValue",
                           "REQUEST")
        raise OgcError(f"REQUEST {request[:40]!r} is not supported: GetCapabilities, GetMap, GetFeatureInfo, "
                       "GetLegendGraphic",
                       "OperationNotSupported", "REQUEST")


class WmtsHandler(_OgcHandler):
    """``/api/v1/wmts`` (KVP) and ``/api/v1/wmts/1.0.0/WMTSCapabilities.xml``: WMTS 1.0.0."""

    route = "wmts"

    def error_xml(self, message, code, locator) -> str:
        """An OWS ExceptionReport."""
        return ows_exception_xml(message, code, locator)

    def answer(self, archive, args):
        """GetCapabilities or GetTile."""
        values = _upper(args)
        rest = self.request.path.endswith(".xml")
        request = "GetCapabilities" if rest else (values.get("REQUEST") or "").strip()
        if request.lower() == "getcapabilities":
            return v1.Text(wmts_capabilities_xml(archive, _base(self)), "text/xml; charset=utf-8")
        if request.lower() != "gettile":
            raise OgcError(f"REQUEST {request[:40]!r} is not supported: GetCapabilities or GetTile",
                           "OperationNotSupported" if request else "MissingParameterValue", "REQUEST")
        if (values.get("TILEMATRIXSET") or "GoogleMapsCompatible") != "GoogleMapsCompatible":
            raise OgcError(f"TILEMATRIXSET {values['TILEMATRIXSET'][:40]!r} is not offered: GoogleMapsCompatible",
                           "InvalidParameterValue", "TILEMATRIXSET")
        fmt = values.get("FORMAT") or "image/png"
        if fmt != "image/png":
            raise OgcError(f"FORMAT {fmt[:40]!r} is not offered: image/png", "InvalidParameterValue", "FORMAT")
        numbers = []
        for name in ("TILEMATRIX", "TILECOL", "TILEROW"):
            text = _need(values, name)
            if not re.fullmatch(r"\d{1,6}", text):
                raise OgcError(f"{name} {text[:20]!r} is not a whole number", "InvalidParameterValue", name)
            numbers.append(int(text))
        try:
            return tile_png(archive, _need(values, "LAYER"), *numbers, values.get("TIME") or None,
                            self.request.headers.get("If-None-Match"))
        except ApiError as exc:
            code = {"layer": "InvalidParameterValue", "time": "InvalidParameterValue"}.get(exc.parameter,
                                                                                           "TileOutOfRange")
            locator = {"z": "TILEMATRIX", "x": "TILECOL", "y": "TILEROW"}.get(exc.parameter, str(exc.parameter).upper())
            raise OgcError(str(exc), code, locator) from None


_TILE_TIME = Param("time", "time", "the day (so2) or the slot (geo, mosaic), UTC; default the latest",
                   example="2021-04-12T15:00")
TILE_ROUTE = v1.Route("/api/v1/tiles/{layer}/{z}/{x}/{y}.png", "tile", "Maps", "An XYZ tile (Web Mercator, 256 px)",
                      "A layer's Web Mercator tile (docs/gis.md); transparent outside the data.", (_TILE_TIME,),
                      "image/png", lambda ctx: None)


class TileHandler(v1.V1Handler):
    """``/api/v1/tiles/{layer}/{z}/{x}/{y}.png?time=…``: errors as v1's JSON."""

    def initialize(self, catalog: str | None = None, archive: Archive | None = None) -> None:
        """The archive answered from."""
        super().initialize(TILE_ROUTE, catalog, archive)

    def merge_key(self, args: dict) -> tuple:
        """The tile, the parameters and the client's ETag."""
        return (*super().merge_key(args), tuple(self.path_args))

    def answer(self, archive, args):
        """The tile (the time checked as v1 checks times)."""
        values = parse(self.spec.params, args)
        layer, z, x, y = self.path_args
        when = args.get("time")
        if values["time"] is None:
            when = None
        return tile_png(archive, layer, z, x, y, when, self.request.headers.get("If-None-Match"))

    async def get(self, *path) -> None:
        """v1's answer (the path's parts are in ``path_args``)."""
        await super().get()


def routes(catalog: str | None = None, archive: Archive | None = None) -> list[tuple]:
    """The OGC routes over a catalogue (default: ``FUMAROLE_CATALOG``) or a given archive."""
    kwargs = {"catalog": catalog, "archive": archive}
    return [
        (r"/api/v1/wms/?", WmsHandler, kwargs),
        (r"/api/v1/wmts/?", WmtsHandler, kwargs),
        (r"/api/v1/wmts/1\.0\.0/WMTSCapabilities\.xml", WmtsHandler, kwargs),
        # any path of this shape reaches the handler, which names the part at fault (JSON 400/404/422)
        (r"/api/v1/tiles/([^/]{1,200})/([^/]{1,40})/([^/]{1,40})/([^/]{1,40})\.png", TileHandler, kwargs),
    ]


#: What ``panel serve --plugins app.api.ogc`` adds to the server (the default catalogue).
ROUTES = routes()
