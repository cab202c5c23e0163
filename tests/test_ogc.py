"""The map services for GIS clients over real HTTP: WMS 1.3.0, WMTS 1.0.0 and XYZ tiles on the tiny archive.

OWSLib (the OGC client library QGIS's Python users and many scripts use) reads the capabilities and asks for maps
and tiles; pictures are decoded and checked against what the archive holds (the SO2 pixels of
app.services.so2map, the v1 GEO picture of the same box), axis order with an asymmetric box, every exception code
parsed from its XML, ETag and 304.
"""

from __future__ import annotations

import json
import math
import shutil
import urllib.parse
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from conftest import archive_over, serve_api
from conftest import http_get as get
from conftest import png_rgba as rgba
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from owslib.wms import WebMapService
from owslib.wmts import WebMapTileService

from app.api import v1
from app.render.colormaps import SO2, hex_to_rgb
from app.services import so2map, tiles

DAY = "2021-04-12"
SLOT = "2021-04-12T15:00:00Z"
PLUME = (13.822, -51.886)  # a 45 DU pixel of orbit 18121, east of St Vincent
OGC = "{http://www.opengis.net/ogc}"
OWS = "{http://www.opengis.net/ows/1.1}"
#: OWSLib 0.35's WMTS reader tests an element's truth (its own warning, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:Truth-testing of elements:FutureWarning")


@pytest.fixture(scope="module")
def api(archive):
    with serve_api(archive, ("ogc", "v1", "geo")) as url:
        yield url


@pytest.fixture(scope="module")
def wms(api):
    return WebMapService(f"{api}/api/v1/wms", version="1.3.0", timeout=120)


def getmap(api: str, headers: dict | None = None, **params) -> tuple[int, dict, bytes]:
    query = {"SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "STYLES": "", "FORMAT": "image/png",
             "TRANSPARENT": "TRUE", **params}
    return get(f"{api}/api/v1/wms?" + "&".join(f"{k}={v}" for k, v in query.items()), headers)


# ------------------------------------------------------------------------------------------------ capabilities

def test_capabilities_read_by_owslib(wms):
    layers = set(wms.contents)
    assert {"so2", "geo.goes-east.ash", "geo.goes-west.dust", "geo.meteosat.ash", "geo.meteosat-iodc.ash",
            "geo.himawari.true_color", "mosaic.ash", "mosaic.cloud_top_height"} <= layers
    # SEVIRI has no True Colour recipe: that product is absent for the Meteosat positions, present for the others
    assert "geo.meteosat.true_color" not in layers and "geo.goes-east.true_color" in layers
    so2 = wms["so2"]
    assert {"EPSG:4326", "EPSG:3857", "CRS:84"} <= set(so2.crsOptions)
    assert so2.timepositions == [DAY] and so2.defaulttimeposition == DAY
    east = wms["geo.goes-east.ash"]
    assert east.timepositions == ["2021-04-12T12:00:00Z", "2021-04-12T15:00:00Z"]
    assert east.defaulttimeposition == "2021-04-12T15:00:00Z"
    assert east.boundingBoxWGS84 == pytest.approx((-75.2 - 81.3, -81.3, -75.2 + 81.3, 81.3))
    assert wms["geo.meteosat-iodc.ash"].timepositions == ["2021-04-12T12:00:00Z"]
    assert wms["mosaic.ash"].timepositions == ["2021-04-12T12:00:00Z", "2021-04-12T15:00:00Z"]
    assert so2.styles["default"]["legend"].endswith("LAYER=so2")
    assert [op.name for op in wms.operations] == ["GetCapabilities", "GetMap", "GetFeatureInfo"]
    assert so2.queryable == 1 and east.queryable == 1 and wms["mosaic.ash"].queryable == 0


def test_capabilities_are_valid_xml_with_epsg4326_in_lat_lon_order(api):
    status, headers, body = get(f"{api}/api/v1/wms?service=wms&request=getcapabilities")  # names any case
    assert status == 200 and headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(body)
    ns = "{http://www.opengis.net/wms}"
    assert root.tag == ns + "WMS_Capabilities" and root.get("version") == "1.3.0"
    east = next(n for n in root.iter(ns + "Layer") if n.findtext(ns + "Name") == "geo.goes-east.ash")
    boxes = {b.get("CRS"): b for b in east.findall(ns + "BoundingBox")}
    assert float(boxes["EPSG:4326"].get("minx")) == pytest.approx(-81.3)  # latitude first
    assert float(boxes["EPSG:4326"].get("miny")) == pytest.approx(-156.5)
    assert float(boxes["CRS:84"].get("minx")) == pytest.approx(-156.5)
    south = 6378137.0 * math.log(math.tan(math.pi / 4 + math.radians(-81.3) / 2))
    assert float(boxes["EPSG:3857"].get("miny")) == pytest.approx(south, abs=1)


def test_capabilities_follow_the_archive(tiny_copy, tmp_path):
    """A ring position without files is absent, with every product of it; the others stay."""
    shutil.rmtree(tiny_copy / "ahi")
    arch = archive_over(tiny_copy, tmp_path)
    with serve_api(arch, ("ogc",)) as url:
        names = set(WebMapService(f"{url}/api/v1/wms", version="1.3.0", timeout=120).contents)
        status, _, body = getmap(url, LAYERS="geo.himawari.ash", CRS="CRS:84", BBOX="100,-10,150,30", WIDTH=64,
                                 HEIGHT=64)
    assert not any(n.startswith("geo.himawari.") for n in names)
    assert "geo.goes-east.ash" in names and "so2" in names
    assert status == 400 and _exception(body) == ("LayerNotDefined", "LAYERS")


# ------------------------------------------------------------------------------------------------ GetMap

def test_so2_getmap_colours_the_plume_and_leaves_gaps_transparent(wms, archive):
    box = (-90.0, 3.0, -40.0, 28.0)  # the Caribbean zone
    width, height = 1000, 500
    answer = wms.getmap(layers=["so2"], styles=[""], srs="EPSG:4326", bbox=box, size=(width, height),
                        format="image/png", transparent=True, time=DAY)
    img = rgba(answer.read())
    assert img.shape == (height, width, 4)

    def pixel(lat, lon):
        return img[int((box[3] - lat) / (box[3] - box[1]) * height), int((lon - box[0]) / (box[2] - box[0]) * width)]

    assert tuple(pixel(*PLUME)) == (*hex_to_rgb_255(SO2[-1]), 255)  # 45 DU: past the top of 0.2 … 20 DU
    req = so2map.So2Request(pd.Timestamp(DAY), pd.Timestamp(DAY) + pd.Timedelta(days=1), so2map.ZONES["Caribbean"])
    rows = so2map.plan(archive, req).rows
    # transparent cells well inside the gaps between orbits: no orbit has a valid pixel there
    clear = img[..., 3] == 0
    inner = clear[1:-1, 1:-1] & clear[:-2, 1:-1] & clear[2:, 1:-1] & clear[1:-1, :-2] & clear[1:-1, 2:]
    rows_i, cols_i = np.nonzero(inner)
    assert 0 < len(rows_i) < 0.05 * width * height
    for k in np.linspace(0, len(rows_i) - 1, 6).astype(int):
        lat = box[3] - (rows_i[k] + 1.5) / height * (box[3] - box[1])
        lon = box[0] + (cols_i[k] + 1.5) / width * (box[2] - box[0])
        assert not [p for p in so2map.so2_values(archive, req, rows, lat, lon) if p["valid"]], (lat, lon)
    # and where a pixel passes, the map is coloured
    for lat, lon in ((24.0, -86.0), (10.0, -70.0), (27.0, -42.0)):
        assert [p for p in so2map.so2_values(archive, req, rows, lat, lon) if p["valid"]]
        assert pixel(lat, lon)[3] == 255


def hex_to_rgb_255(colour: str) -> tuple[int, int, int]:
    return tuple(round(c * 255) for c in hex_to_rgb(colour))


def test_geo_getmap_equals_the_v1_picture_of_the_box(api, wms):
    answer = wms.getmap(layers=["geo.goes-east.ash"], styles=[""], srs="EPSG:4326", bbox=(-70, 5, -50, 20),
                        size=(400, 300), format="image/png", transparent=True, time=SLOT)
    ours = rgba(answer.read())
    status, _, body = get(f"{api}/api/v1/geo/image.png?satellite=G16&product=ash&time=2021-04-12T15:00"
                          "&bbox=-70,5,-50,20&width=400&height=300")
    assert status == 200
    theirs = rgba(body)
    assert ours.shape == theirs.shape == (300, 400, 4)
    assert (ours[..., 3] == 255).all()
    assert np.array_equal(ours, theirs)


def test_epsg4326_axis_order_is_lat_lon(api):
    """A map of lat 0..10, lon 20..60 (wider than tall) must not come out transposed."""
    common = {"LAYERS": "geo.meteosat.ash", "TIME": "2021-04-12T12:00:00Z", "WIDTH": 400, "HEIGHT": 100}
    s1, _, lat_lon = getmap(api, CRS="EPSG:4326", BBOX="0,20,10,60", **common)
    s2, _, lon_lat = getmap(api, CRS="CRS:84", BBOX="20,0,60,10", **common)
    s3, _, v1_png = get(f"{api}/api/v1/geo/image.png?satellite=MSG4&product=ash&time=2021-04-12T12:00"
                        "&bbox=20,0,60,10&width=400&height=100")
    s4, _, swapped = getmap(api, CRS="EPSG:4326", BBOX="20,0,60,10", **common)  # lat 20..60, lon 0..10
    assert (s1, s2, s3, s4) == (200, 200, 200, 200)
    assert np.array_equal(rgba(lat_lon), rgba(lon_lat))
    assert np.array_equal(rgba(lat_lon), rgba(v1_png))
    assert np.abs(rgba(swapped)[..., :3] - rgba(lat_lon)[..., :3]).mean() > 10


def test_getmap_in_web_mercator_matches_the_lon_lat_map_row_by_row(api):
    """EPSG:3857 rows are the lon/lat picture's rows at each row's centre latitude (Mercator is separable)."""
    lat0, lat1 = 0.0, 40.0
    y0 = 6378137.0 * math.log(math.tan(math.pi / 4 + math.radians(lat0) / 2))
    y1 = 6378137.0 * math.log(math.tan(math.pi / 4 + math.radians(lat1) / 2))
    x0, x1 = (6378137.0 * math.radians(v) for v in (-100.0, -50.0))
    height = 200
    common = {"LAYERS": "geo.goes-east.cloud_top_height", "TIME": SLOT, "WIDTH": 250}
    s1, _, merc = getmap(api, CRS="EPSG:3857", BBOX=f"{x0},{y0},{x1},{y1}", HEIGHT=height, **common)
    s2, _, flat = getmap(api, CRS="EPSG:4326", BBOX=f"{lat0},-100,{lat1},-50", HEIGHT=2000, **common)
    assert (s1, s2) == (200, 200)
    merc, flat = rgba(merc), rgba(flat)
    ys = y1 - (np.arange(height) + 0.5) * (y1 - y0) / height
    lats = np.degrees(2 * np.arctan(np.exp(ys / 6378137.0)) - math.pi / 2)
    expected = flat[np.clip(((lat1 - lats) / (lat1 - lat0) * 2000).astype(int), 0, 1999)]
    same = np.abs(merc - expected).max(axis=-1) <= 2
    assert same.mean() > 0.97  # nearest-neighbour grids of different heights agree but at cell borders
    assert not np.array_equal(merc, flat[:: 2000 // height])  # and it is not the lon/lat picture squeezed


def test_getmap_etag_and_304(api):
    params = {"LAYERS": "geo.goes-east.ash", "CRS": "CRS:84", "BBOX": "-70,5,-50,20", "WIDTH": 128, "HEIGHT": 96}
    status, headers, body = getmap(api, **params)
    assert status == 200 and headers["Etag"] and headers["Cache-Control"].startswith("public")
    again = getmap(api, {"If-None-Match": headers["Etag"]}, **params)
    assert again[0] == 304 and again[2] == b""
    other = getmap(api, **{**params, "WIDTH": 129})
    assert other[1]["Etag"] != headers["Etag"]


def test_two_layers_stack_in_order(api):
    """LAYERS=mosaic.ash,so2: the SO2 pixels over the mosaic; the mosaic shows through the gaps between orbits."""
    common = {"CRS": "CRS:84", "BBOX": "-90,3,-40,28", "WIDTH": 500, "HEIGHT": 250, "TIME": SLOT}
    s1, _, so2 = getmap(api, LAYERS="so2", **common)
    s2, _, ash = getmap(api, LAYERS="mosaic.ash", **common)
    s3, _, both = getmap(api, LAYERS="mosaic.ash,so2", **common)
    assert (s1, s2, s3) == (200, 200, 200)
    so2, ash, both = rgba(so2), rgba(ash), rgba(both)
    shown = so2[..., 3] == 255
    assert 0.5 < shown.mean() < 1
    assert np.array_equal(both[shown], so2[shown])
    assert np.array_equal(both[~shown], ash[~shown])


# ------------------------------------------------------------------------------------------------ errors

def _exception(body: bytes) -> tuple[str | None, str | None]:
    root = ET.fromstring(body)
    assert root.tag == OGC + "ServiceExceptionReport" and root.get("version") == "1.3.0"
    node = root.find(OGC + "ServiceException")
    assert node.text
    return node.get("code"), node.get("locator")


GOOD = {"LAYERS": "geo.goes-east.ash", "CRS": "CRS:84", "BBOX": "-70,5,-50,20", "WIDTH": "64", "HEIGHT": "48"}


@pytest.mark.parametrize(("change", "code", "locator", "named"), [
    ({"LAYERS": "geo.atlantis.ash"}, "LayerNotDefined", "LAYERS", "geo.atlantis.ash"),
    ({"LAYERS": "so3"}, "LayerNotDefined", "LAYERS", "so3"),
    ({"STYLES": "fancy"}, "StyleNotDefined", "STYLES", "fancy"),
    ({"CRS": "EPSG:32633"}, "InvalidCRS", "CRS", "EPSG:32633"),
    ({"FORMAT": "image/jpeg"}, "InvalidFormat", "FORMAT", "image/jpeg"),
    ({"TIME": ""}, "MissingDimensionValue", "TIME", "TIME"),
    ({"TIME": "2021-04-12T13:00:00Z"}, "InvalidDimensionValue", "TIME", "2021-04-12T13:00"),
    ({"TIME": "yesterday"}, "InvalidDimensionValue", "TIME", "yesterday"),
    ({"LAYERS": "so2", "TIME": "2021-04-13"}, "InvalidDimensionValue", "TIME", "2021-04-13"),
    ({"REQUEST": "DescribeLayer"}, "OperationNotSupported", "REQUEST", "DescribeLayer"),
    ({"REQUEST": "GetFeatureInfo", "QUERY_LAYERS": "geo.goes-east.ash", "I": "64", "J": "0"}, "InvalidPoint", "I",
     "64"),
    ({"REQUEST": "GetFeatureInfo", "LAYERS": "mosaic.ash", "QUERY_LAYERS": "mosaic.ash", "I": "1", "J": "1"},
     "LayerNotQueryable", "QUERY_LAYERS", "mosaic.ash"),
    ({"REQUEST": "GetFeatureInfo", "QUERY_LAYERS": "geo.goes-east.ash", "I": "1", "J": "1", "INFO_FORMAT": "text/html"},
     "InvalidFormat", "INFO_FORMAT", "text/html"),
    ({"BBOX": None}, "MissingParameterValue", "BBOX", "BBOX"),
    ({"BBOX": "-50,5,-70,20"}, "InvalidParameterValue", "BBOX", "-50,5,-70,20"),
    ({"WIDTH": "5000"}, "InvalidParameterValue", "WIDTH", "5000"),
    ({"TRANSPARENT": "maybe"}, "InvalidParameterValue", "TRANSPARENT", "maybe"),
    ({"VERSION": "1.1.1"}, "InvalidParameterValue", "VERSION", "1.1.1"),
])
def test_every_error_is_a_service_exception(api, change, code, locator, named):
    query = {"SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "STYLES": "", "FORMAT": "image/png",
             **GOOD, **change}
    status, headers, body = get(f"{api}/api/v1/wms?" + "&".join(f"{k}={v}" for k, v in query.items()
                                                               if v is not None))
    assert status == 400 and headers["Content-Type"].startswith("text/xml")
    assert _exception(body) == (code, locator)
    assert named in ET.fromstring(body).find(OGC + "ServiceException").text


def test_feature_info_gives_the_values_under_the_pixel(wms, api):
    import json

    box = (PLUME[1] - 1, PLUME[0] - 1, PLUME[1] + 1, PLUME[0] + 1)  # 2° around the plume pixel: it is the centre
    answer = wms.getfeatureinfo(layers=["so2"], query_layers=["so2"], styles=[""], srs="EPSG:4326", bbox=box,
                                size=(101, 101), format="image/png", info_format="application/json", xy=(50, 50),
                                time=DAY)
    features = json.loads(answer.read())["features"]
    assert len(features) == 1 and features[0]["geometry"]["coordinates"] == pytest.approx([PLUME[1], PLUME[0]])
    pixels = features[0]["properties"]["pixels"]
    assert [p["value"] for p in pixels if p["valid"]] == [pytest.approx(44.986, abs=0.01)]
    status, _, body = get(f"{api}/api/v1/geo/value?satellite=G16&time=2021-04-12T15:00&lat={PLUME[0]}"
                          f"&lon={PLUME[1]}")
    answer = wms.getfeatureinfo(layers=["geo.goes-east.ash"], query_layers=["geo.goes-east.ash"], styles=[""],
                                srs="EPSG:4326", bbox=box, size=(101, 101), format="image/png",
                                info_format="application/json", xy=(50, 50), time=SLOT)
    props = json.loads(answer.read())["features"][0]["properties"]
    assert status == 200 and props["channels"] == json.loads(body)["channels"]
    assert props["satellite"] == "GOES-16" and props["position"] == "GOES-East"
    # beyond the disk: no feature
    answer = wms.getfeatureinfo(layers=["geo.goes-east.ash"], query_layers=["geo.goes-east.ash"], styles=[""],
                                srs="EPSG:4326", bbox=(100, 10, 120, 30), size=(10, 10), format="image/png",
                                info_format="application/json", xy=(5, 5), time=SLOT)
    assert json.loads(answer.read())["features"] == []


def test_parameter_names_are_case_insensitive(api):
    status, headers, body = get(f"{api}/api/v1/wms?service=WMS&request=GetMap&layers=geo.goes-east.ash&styles="
                                "&crs=CRS:84&bbox=-70,5,-50,20&width=64&height=48&format=image/png&Time=" + SLOT)
    assert status == 200 and headers["Content-Type"] == "image/png" and rgba(body).shape == (48, 64, 4)


def test_the_work_budget_applies(api, monkeypatch):
    monkeypatch.setitem(v1.BUDGET, "so2", 2)
    status, _, body = getmap(api, LAYERS="so2", CRS="CRS:84", BBOX="-90,3,-40,28", WIDTH=100, HEIGHT=50, TIME=DAY)
    assert status == 400 and _exception(body) == ("InvalidParameterValue", "BBOX")
    assert "at most 2" in ET.fromstring(body).find(OGC + "ServiceException").text


def test_legend_of_the_so2_layer(api):
    status, headers, body = get(f"{api}/api/v1/wms?SERVICE=WMS&REQUEST=GetLegendGraphic&FORMAT=image/png&LAYER=so2")
    img = rgba(body)
    assert status == 200 and img.shape == (24, 256, 4)
    assert tuple(img[0, 0, :3]) == hex_to_rgb_255(SO2[0]) and tuple(img[0, -1, :3]) == hex_to_rgb_255(SO2[-1])


# ------------------------------------------------------------------------------------------------ tiles

def test_tile_maths_against_known_bounds():
    assert tiles.tile_box(0, 0, 0) == ((-180.0, 180.0), pytest.approx((-85.0511287798066, 85.0511287798066)))
    lon, lat = tiles.tile_box(1, 0, 0)
    assert lon == pytest.approx((-180.0, 0.0)) and lat == pytest.approx((0.0, 85.0511287798066))
    n = 2**12  # the tile holding La Soufrière (13.33 N, 61.18 W), by the slippy-map formulas
    x = int((-61.18 + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(13.33))) / math.pi) / 2 * n)
    assert (x, y) == (1351, 1894)
    lon, lat = tiles.tile_box(12, x, y)
    assert lon[0] < -61.18 < lon[1] and lat[0] < 13.33 < lat[1]
    assert lon[1] - lon[0] == pytest.approx(360 / n)
    rows = tiles.mercator_row_lats(0.0, 85.0511287798066, 256)
    expected = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * (np.arange(256) + 0.5) / 512))))  # tile 1/0/0's rows
    assert np.allclose(rows, expected, atol=1e-9)


def test_xyz_tile_shows_the_expected_region(api):
    status, headers, body = get(f"{api}/api/v1/tiles/geo.goes-east.ash/1/0/0.png?time={SLOT}")
    assert status == 200 and headers["Content-Type"] == "image/png"
    img = rgba(body)
    assert img.shape == (256, 256, 4)

    def pixel(lat, lon, z=1, x=0, y=0):
        n = 2**z
        px = ((lon + 180) / 360 * n - x) * 256
        py = ((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n - y) * 256
        return img[int(py), int(px)]

    assert pixel(13.3, -61.2)[3] == 255  # the Caribbean: on GOES-East's disk
    assert pixel(70.0, -170.0)[3] == 0  # the Bering Strait, beyond the disk: transparent
    # the same region as the WMS map in Web Mercator of that tile's box
    status, _, wms = getmap(api, LAYERS="geo.goes-east.ash", CRS="EPSG:3857", TIME=SLOT, WIDTH=256, HEIGHT=256,
                            BBOX=f"{-tiles_m()},0,0,{tiles_m()}")
    assert status == 200 and np.array_equal(rgba(wms), img)
    status, _, world = get(f"{api}/api/v1/tiles/mosaic.ash/0/0/0.png?time={SLOT}")
    assert status == 200 and (rgba(world)[..., 3] == 255).mean() > 0.7


def tiles_m() -> float:
    return 20037508.342789244


def test_tile_outside_the_data_is_transparent(api):
    status, headers, body = get(f"{api}/api/v1/tiles/geo.goes-east.ash/3/6/2.png?time={SLOT}")  # Central Asia
    assert status == 200 and (rgba(body)[..., 3] == 0).all()
    # an SO2 tile inside a gap between two orbits: found on the Caribbean map (0.05° pixels), 0.2° clear around it
    status, _, body = getmap(api, LAYERS="so2", CRS="CRS:84", BBOX="-90,3,-40,28", WIDTH=1000, HEIGHT=500, TIME=DAY)
    clear = rgba(body)[..., 3] == 0
    ok = np.ones_like(clear)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            ok &= np.roll(clear, (dy, dx), axis=(0, 1))
    rows, cols = np.nonzero(ok[3:-3, 3:-3])
    assert len(rows)
    lat, lon = 28 - (rows[0] + 3.5) * 0.05, -90 + (cols[0] + 3.5) * 0.05
    n = 2**12
    x, y = int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    status, _, body = get(f"{api}/api/v1/tiles/so2/12/{x}/{y}.png?time={DAY}")
    assert status == 200 and (rgba(body)[..., 3] == 0).all()
    status, _, body = get(f"{api}/api/v1/tiles/so2/12/{x - 60}/{y}.png?time={DAY}")  # 5° west: on an orbit
    assert status == 200 and (rgba(body)[..., 3] == 255).all()


def test_tile_errors_are_v1_json(api):
    import json

    for path, status_expected, parameter in (("geo.goes-east.ash/13/0/0.png", 422, "z"),
                                             ("geo.goes-east.ash/1/2/0.png", 422, "x"),
                                             ("geo.atlantis.ash/1/0/0.png", 404, "layer"),
                                             ("so2/1/0/0.png?time=2021-04-13", 422, "time"),
                                             ("so2/1/0/0.png?time=soon", 400, "time")):
        status, headers, body = get(f"{api}/api/v1/tiles/{path}")
        assert status == status_expected, path
        assert json.loads(body)["parameter"] == parameter


def test_tile_etag_and_304(api):
    url = f"{api}/api/v1/tiles/so2/2/1/1.png?time={DAY}"
    status, headers, body = get(url)
    assert status == 200 and (rgba(body)[..., 3] == 255).any()
    assert get(url, {"If-None-Match": headers["Etag"]})[0] == 304


def test_wmts_read_by_owslib(api):
    wmts = WebMapTileService(f"{api}/api/v1/wmts", timeout=120)
    assert {"so2", "geo.goes-east.ash", "mosaic.ash"} <= set(wmts.contents)
    matrices = wmts.tilematrixsets["GoogleMapsCompatible"].tilematrix
    assert len(matrices) == tiles.MAX_ZOOM + 1 and matrices["1"].matrixwidth == 2
    assert matrices["0"].scaledenominator == pytest.approx(559082264.0287178)
    assert wmts.contents["so2"].dimensions["Time"]["values"] == [DAY]
    tile = wmts.gettile(layer="geo.goes-east.ash", tilematrixset="GoogleMapsCompatible", tilematrix="1", row=0,
                        column=0, format="image/png", time=SLOT)
    status, _, xyz = get(f"{api}/api/v1/tiles/geo.goes-east.ash/1/0/0.png?time={SLOT}")
    assert np.array_equal(rgba(tile.read()), rgba(xyz))
    status, headers, body = get(f"{api}/api/v1/wmts?SERVICE=WMTS&REQUEST=GetTile&LAYER=so2&TILEMATRIXSET="
                                "GoogleMapsCompatible&TILEMATRIX=20&TILEROW=0&TILECOL=0&FORMAT=image/png")
    node = ET.fromstring(body).find(OWS + "Exception")
    assert status == 400 and node.get("exceptionCode") == "TileOutOfRange" and node.get("locator") == "TILEMATRIX"


def test_a_damaged_granule_is_skipped_and_named(tiny_copy, tmp_path):
    """A TROPOMI granule damaged after indexing: the map is drawn from the others and the header names it."""
    arch = archive_over(tiny_copy, tmp_path)
    rows = arch.granules("tropomi_so2", "2021-04-12", "2021-04-13", (-90.0, 3.0, -40.0, 28.0))
    assert len(rows) >= 2
    victim = rows["path"].iloc[0]
    with open(victim, "rb") as f:
        head = f.read(3000)
    with open(victim, "wb") as f:
        f.write(head)
    name = str(victim).removeprefix(str(tiny_copy)).lstrip("/")
    with serve_api(arch, ("ogc",)) as url:
        status, headers, body = getmap(url, LAYERS="so2", CRS="CRS:84", BBOX="-90,3,-40,28", WIDTH=200, HEIGHT=100,
                                       TIME=DAY)
        tile = get(f"{url}/api/v1/tiles/so2/3/2/3.png?time={DAY}")
    said = headers["X-Fumarole-Skipped"]
    assert status == 200 and name in said and str(tiny_copy) not in said
    assert (rgba(body)[..., 3] == 255).mean() > 0.3  # the other orbits are drawn
    assert tile[0] == 200 and name in tile[1]["X-Fumarole-Skipped"]


# ------------------------------------------------------------------------------------------------ fuzz

_LAYERS = ["so2", "geo.goes-east.ash", "geo.himawari.cloud_top_height", "mosaic.ash", "geo.nowhere.ash", "",
           "../../etc/passwd", "so2,so2,so2,so2,so2", "mosaic.ash,geo.goes-east.dust"]
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12))
_BBOX = st.one_of(st.lists(_NUMBER, min_size=3, max_size=5).map(lambda v: ",".join(map(str, v))),
                  st.sampled_from(["-70,5,-50,20", "5,-70,20,-50", "-8000000,0,-5000000,3000000", "0,0,0,0"]),
                  _TEXT)
_SIZE = st.one_of(st.integers(-5, 600), st.sampled_from([4096, 4097, 10**9]), _TEXT)
_TIME = st.one_of(st.sampled_from([DAY, SLOT, "2021-04-12T12:00:00Z", "2021-04-11/2021-04-13", "latest", "",
                                   "2021-02-30", "9999-12-31T23:59:59Z"]), _TEXT)
_WMS = st.fixed_dictionaries(
    {"REQUEST": st.sampled_from(["GetMap", "GetCapabilities", "GetFeatureInfo", "GetLegendGraphic", "Delete"])},
    optional={"SERVICE": st.sampled_from(["WMS", "WMTS", ""]), "VERSION": st.sampled_from(["1.3.0", "1.1.1", "x"]),
              "LAYERS": st.sampled_from(_LAYERS), "QUERY_LAYERS": st.sampled_from(_LAYERS),
              "LAYER": st.sampled_from(_LAYERS), "STYLES": st.sampled_from(["", "default", "x"]),
              "CRS": st.sampled_from(["EPSG:4326", "EPSG:3857", "CRS:84", "EPSG:32633", ""]), "BBOX": _BBOX,
              "WIDTH": _SIZE, "HEIGHT": _SIZE, "FORMAT": st.sampled_from(["image/png", "image/jpeg", "text/html"]),
              "TRANSPARENT": st.sampled_from(["TRUE", "FALSE", "maybe"]), "TIME": _TIME,
              "I": _SIZE, "J": _SIZE, "INFO_FORMAT": st.sampled_from(["application/json", "text/xml"]),
              "BGCOLOR": st.sampled_from(["0xFFFFFF", "red", "0x12"])})


def _check_answer(status: int, headers: dict, body: bytes, what: str) -> None:
    assert status < 500, (what, status, body[:300])
    kind = headers.get("Content-Type", "").split(";")[0]
    if status == 200 and kind == "image/png":
        assert rgba(body).ndim == 3, what
    elif kind in ("text/xml", "application/xml", "application/vnd.ogc.se_xml"):
        ET.fromstring(body)  # a capabilities document or a service exception: well-formed XML
    else:
        assert kind == "application/json", (what, kind)
        json_body = json.loads(body)
        assert status == 200 or json_body.get("error"), (what, json_body)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=_WMS)
def test_wms_fuzz_never_5xx_and_always_a_png_xml_or_json(api, params):
    query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
    _check_answer(*get(f"{api}/api/v1/wms?{query}"), query)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=st.sampled_from(_LAYERS[:5] + ["so2%00", "%2e%2e"]), z=st.integers(-2, 40),
       x=st.one_of(st.integers(-3, 70), st.just(2**40)), y=st.one_of(st.integers(-3, 70), st.just(2**40)),
       time=_TIME)
def test_tile_fuzz_never_5xx_and_a_tile_is_256_px(api, layer, z, x, y, time):
    url = f"{api}/api/v1/tiles/{layer}/{z}/{x}/{y}.png?{urllib.parse.urlencode({'time': time})}"
    status, headers, body = get(url)
    _check_answer(status, headers, body, url)
    if status == 200:
        assert rgba(body).shape == (256, 256, 4)
