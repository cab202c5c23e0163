"""The HTTP API v1 over real HTTP: a Tornado server with the v1 and the old GEO routes on the tiny archive, in a thread.

Values are checked against the services they come from (the same request to app.services.timeseries, the reader,
the GVP list, the index), pictures decoded (size, the colour over the plume and over clean air), and every class of
bad input named by its status and parameter.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import archive_over, serve_api
from conftest import http_get as get
from conftest import png_rgba as rgba
from openapi_spec_validator import validate

from app.api import openapi, params, v1
from app.core.zones import ZONES
from app.render.colormaps import CALIOP_532, hex_to_rgb
from app.render.export import map_figure
from app.services import so2map
from app.services import timeseries as ts

DAY = "2021-04-12"
PLUME = (13.822, -51.886)  # a 45 DU pixel of orbit 18121, east of St Vincent
CLEAN = (24.0, -86.0)  # the Gulf of Mexico: background columns below 1 DU


def serve_v1(archive):
    """Base URL of a Tornado server with the v1 and the old GEO routes over ``archive`` (stopped on exit)."""
    return serve_api(archive, ("geo", "v1"))


@pytest.fixture(scope="module")
def api(archive):
    with serve_v1(archive) as url:
        yield url


def map_pixel(zone: so2map.Zone, width: int, lat: float, lon: float) -> tuple[int, int]:
    """(row, col) of a point in the SO2 map picture, from the figure's own layout (the axes' data transform)."""
    size, (nx, ny) = so2map.picture_size(zone, width)
    x = zone.lon_min + (np.arange(nx) + 0.5) * (zone.lon_max - zone.lon_min) / nx  # cell centres, as aggregate's
    y = zone.lat_min + (np.arange(ny) + 0.5) * (zone.lat_max - zone.lat_min) / ny
    agg = xr.DataArray(np.zeros((ny, nx)), coords={"y": y, "x": x}, dims=("y", "x"))
    fig = map_figure(agg, clim=(0, 1), cmap="viridis", title="t", size=size, coast=False)
    fig.canvas.draw()
    x, y = fig.axes[0].transData.transform((lon, lat))
    height = round(size[1] * 100)
    return int(height - y), int(x)


# --------------------------------------------------------------------------------------------- SO2


def test_so2_map_shows_the_plume_in_the_dark_end_of_the_scale(api):
    url = f"{api}/api/v1/so2/map.png?date={DAY}&zone=Caribbean&level=7km&width=1024"
    status, headers, body = get(url)
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert headers["X-Fumarole-Colour-Range"] == "0.2 20 DU" and headers["X-Fumarole-Orbits"] == "3"
    assert headers["Cache-Control"] == "public, max-age=600" and re.fullmatch(r'"[0-9a-f]{32}"', headers["Etag"])
    picture = rgba(body)
    zone = so2map.ZONES["Caribbean"]
    assert picture.shape[:2] == (round(so2map.picture_size(zone, 1024)[0][1] * 100), 1024)
    # the JSON of the same pixel: 45 DU, far over vmax
    _, _, text = get(f"{api}/api/v1/so2/value?date={DAY}&lat={PLUME[0]}&lon={PLUME[1]}")
    values = [p["value"] for p in json.loads(text)["pixels"] if p["valid"]]
    assert values and max(values) > 40
    r, c = map_pixel(zone, 1024, *PLUME)
    plume = picture[r - 1:r + 2, c - 1:c + 2, :3].reshape(-1, 3)
    darkest = np.array([round(255 * v) for v in hex_to_rgb("#260000")])
    assert (np.abs(plume - darkest).sum(axis=1) <= 30).any(), plume  # over vmax: the scale's last colour
    r, c = map_pixel(zone, 1024, *CLEAN)
    clean = picture[r, c, :3]
    assert clean[0] > 240 and clean[1] > 220 and clean[2] < 200  # pale yellow: the low end
    # nothing passes qa > 1: the same places are white, and the picture differs
    _, _, none = get(f"{api}/api/v1/so2/map.png?date={DAY}&zone=Caribbean&level=7km&width=1024&qa_min=1")
    empty = rgba(none)
    r, c = map_pixel(zone, 1024, *PLUME)
    assert tuple(empty[r, c, :3]) == (255, 255, 255)


def test_so2_map_of_a_bbox_and_a_time_range(api):
    status, headers, body = get(f"{api}/api/v1/so2/map.png?start={DAY}T16:00&end={DAY}T18:00&bbox=-70,5,-40,25"
                                f"&width=600&vmin=1&vmax=10")
    assert status == 200 and headers["X-Fumarole-Colour-Range"] == "1 10 DU"
    assert headers["X-Fumarole-Period"] == "2021-04-12T16:00:00Z/2021-04-12T18:00:00Z"
    assert rgba(body).shape[1] == 600
    assert headers["X-Fumarole-Orbits"] == "2"  # 18121 (15:18–16:59) and 18122, not 18123 (18:41 on)


def test_so2_values_equal_the_filtered_reader_values(api, archive):
    _, _, body = get(f"{api}/api/v1/so2/value?date={DAY}&lat={PLUME[0]}&lon={PLUME[1]}&level=7km")
    answer = json.loads(body)
    assert answer["units"] == "DU" and answer["filters"]["qa_min"] == 0.5
    req = so2map.So2Request(pd.Timestamp(DAY), pd.Timestamp(DAY) + pd.Timedelta(days=1), so2map.ZONES["World"])
    rows = so2map.plan(archive, req).rows
    read = so2map.read_swaths(archive, [str(p) for p in rows["path"]], ("so2_7km", "qa_value", "solar_zenith_angle"))
    by_orbit = {int(d.attrs["orbit"]): d for d in read.datasets}
    assert answer["pixels"]
    for p in answer["pixels"]:
        ds = by_orbit[p["orbit"]]
        i, j = p["scanline"], p["ground_pixel"]
        assert p["raw"] == pytest.approx(float(ds["so2_7km"].values[i, j]), rel=1e-6)
        assert p["qa_value"] == pytest.approx(float(ds["qa_value"].values[i, j]), rel=1e-6)
        assert abs(p["latitude"] - PLUME[0]) < 1.0 and abs(p["longitude"] - PLUME[1]) < 1.5
        assert p["valid"] == (p["qa_value"] > 0.5 and p["solar_zenith_angle"] <= 80)


def test_orbits_and_caliop_granules_are_the_index_rows(api, archive):
    _, _, body = get(f"{api}/api/v1/so2/orbits?date={DAY}&zone=Caribbean")
    orbits = json.loads(body)
    table = archive.index.orbits_for_day(pd.Timestamp(DAY), so2map.ZONES["Caribbean"].bbox())
    assert [o["orbit"] for o in orbits] == [int(o) for o in table["orbit"]]
    assert {18121, 18122, 18123} <= {o["orbit"] for o in orbits}  # the afternoon orbits over the Caribbean
    assert orbits[0]["label"] == table["label"].iloc[0] and orbits[0]["granules"][0].startswith("tropomi/2021/")
    _, _, body = get(f"{api}/api/v1/caliop/granules?date={DAY}&zone=Caribbean")
    names = [g["granule"] for g in json.loads(body)]
    rows = archive.granules("caliop_l1b", pd.Timestamp(DAY), pd.Timestamp(DAY) + pd.Timedelta(days=1),
                            so2map.ZONES["Caribbean"].bbox())
    assert names == [os.path.basename(p) for p in rows["path"]] and names


def test_timeseries_csv_masses_equal_the_engine(api, archive):
    query = "volcano=Soufriere%20St.%20Vincent&start=2021-04-12&end=2021-04-12&radii=100,300"
    status, headers, body = get(f"{api}/api/v1/so2/timeseries?{query}")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    header, table = ts.read_timeseries_csv(io.StringIO(body.decode()))
    assert header["volcano"] == "Soufriere St. Vincent" and header["radii_km"] == "100,300"
    expected, _ = ts.compute_mass_timeseries(archive.index, "Soufriere St. Vincent", "2021-04-12", "2021-04-12",
                                             (100, 300), "so2_7km", None)
    assert len(table) == len(expected) > 0
    np.testing.assert_allclose(table["mass_t"].to_numpy(float), expected["mass_t"].to_numpy(float), rtol=1e-6)
    assert table["mass_t"].max() > 100  # tonnes of SO2 in the 300 km disk of the eruption's plume
    _, _, body = get(f"{api}/api/v1/so2/timeseries?{query}&format=json")
    answer = json.loads(body)
    assert [r["mass_t"] for r in answer["rows"]] == pytest.approx(list(expected["mass_t"]), rel=1e-6, nan_ok=True)
    _, _, body = get(f"{api}/api/v1/so2/timeseries?{query}&quantity=flux&format=json")
    flux = json.loads(body)["rows"]
    assert flux and {"flux_t_day", "wind_ms"} <= set(flux[0])


# --------------------------------------------------------------------------------------------- CALIOP


def test_caliop_curtain_is_the_scale_s_colours_and_named_by_the_index(api):
    name = "CAL_LID_L1-Standard-V4-51.2021-04-12T15-17-42ZD"
    status, headers, body = get(f"{api}/api/v1/caliop/curtain.png?granule={name}&width=800&height=300")
    assert status == 200 and headers["X-Fumarole-Granule"] == f"{name}.hdf"
    assert headers["X-Fumarole-Start"].startswith("2021-04-12T15:")
    picture = rgba(body)
    assert picture.shape == (300, 800, 4) and (picture[..., 3] == 255).all()
    palette = {tuple(round(255 * v) for v in hex_to_rgb(c)) for c in [*CALIOP_532.palette, CALIOP_532.bad]}
    assert {tuple(p) for p in picture[..., :3].reshape(-1, 3)} <= palette
    # molecular backscatter grows towards the ground: the bottom rows are in higher bins than the top ones
    lut = {tuple(round(255 * v) for v in hex_to_rgb(c)): k for k, c in enumerate(CALIOP_532.palette)}
    bins = np.vectorize(lambda r, g, b: lut.get((r, g, b), -1))(picture[..., 0], picture[..., 1], picture[..., 2])
    assert np.mean(bins[250:290][bins[250:290] >= 0]) > np.mean(bins[:40][bins[:40] >= 0]) + 3
    _, _, depol = get(f"{api}/api/v1/caliop/curtain.png?granule={name}.hdf&variable=depolarization_ratio_532"
                      f"&width=800&height=300")
    assert np.abs(rgba(depol) - picture).mean() > 10


# --------------------------------------------------------------------------------------------- GEO


def test_geo_routes_in_v1_answer_as_the_old_ones(api):
    query = "satellite=G16&product=ash&time=2021-04-12T15:00&bbox=-70,5,-50,20&width=400"
    new = get(f"{api}/api/v1/geo/image.png?{query}")
    old = get(f"{api}/api/geo/image.png?{query}")
    assert new[0] == old[0] == 200 and new[2] == old[2] and new[1]["Etag"] == old[1]["Etag"]
    _, _, body = get(f"{api}/api/v1/geo/image.png?position=GOES-East&time=2021-04-12T15:00&width=300")
    assert rgba(body).shape == (226, 226, 4)
    value = json.loads(get(f"{api}/api/v1/geo/value?satellite=G16&time=2021-04-12T15:00&lat=13.5&lon=-60")[2])
    assert value == json.loads(get(f"{api}/api/geo/value?satellite=G16&time=2021-04-12T15:00&lat=13.5&lon=-60")[2])
    assert value["channels"]["ir_105"]["units"] == "K" and 180 < value["channels"]["ir_105"]["value"] < 330
    slots = json.loads(get(f"{api}/api/v1/geo/slots?satellite=G16&date=2021-04-12")[2])
    assert [s["time"] for s in slots] == ["2021-04-12T12:00:00Z", "2021-04-12T15:00:00Z"]


def test_mosaic_takes_every_ring_satellite_and_shows_the_ash(api):
    status, headers, body = get(f"{api}/api/v1/geo/mosaic.png?product=ash&time=2021-04-12T15:00&width=720")
    assert status == 200 and headers["X-Fumarole-Time"] == "2021-04-12T15:00:00Z"
    picture = rgba(body)
    assert picture.shape == (320, 720, 4)  # -180 … 180, -80 … 80 at 0.5°
    assert set(headers["X-Fumarole-Satellites"].split()) >= {"G16", "G17", "MSG4", "H08"}
    row, col = lambda lat: int((80 - lat) * 2), lambda lon: int((lon + 180) * 2)  # noqa: E731
    near = picture[row(17):row(10), col(-63):col(-52)]
    ash = (near[..., 0] > 170) & (near[..., 1] < 150) & (near[..., 2] > 100)
    assert ash.sum() >= 2
    latest = get(f"{api}/api/v1/geo/mosaic.png?product=cloud_top_height&width=360")
    assert latest[0] == 200 and latest[1]["X-Fumarole-Time"] == "2021-04-12T15:00:00Z"


# --------------------------------------------------------------------------------------------- volcanoes


def test_volcanoes_search_and_geojson(api):
    from app.data.volcanoes import search_volcanoes

    answer = json.loads(get(f"{api}/api/v1/volcanoes?q=soufriere")[2])
    assert [v["number"] for v in answer["volcanoes"]] == [int(n) for n in search_volcanoes("soufriere")["number"]]
    st_vincent = next(v for v in answer["volcanoes"] if v["number"] == 360150)
    assert st_vincent["latitude"] == pytest.approx(13.33) and st_vincent["longitude"] == pytest.approx(-61.18)
    status, headers, body = get(f"{api}/api/v1/volcanoes.geojson?q=etna")
    assert headers["Content-Type"].startswith("application/geo+json")
    feature = json.loads(body)["features"][0]
    assert feature["properties"]["name"] == "Etna" and feature["geometry"]["coordinates"] == pytest.approx(
        [14.999, 37.748], abs=0.01)
    assert json.loads(get(f"{api}/api/v1/volcanoes?limit=2000")[2])["total"] > 1000


# --------------------------------------------------------------------------------------------- caching


def test_etag_gives_304_and_changes_with_the_inputs(api):
    url = f"{api}/api/v1/caliop/curtain.png?granule=CAL_LID_L1-Standard-V4-51.2021-04-12T15-17-42ZD&width=200"
    status, headers, body = get(url)
    etag = headers["Etag"]
    again = get(url, {"If-None-Match": etag})
    assert again[0] == 304 and again[2] == b"" and again[1]["Etag"] == etag
    assert get(url, {"If-None-Match": '"other"'})[0] == 200
    other = get(url.replace("width=200", "width=201"))
    assert other[1]["Etag"] != etag
    mosaic = get(f"{api}/api/v1/geo/mosaic.png?product=ash&time=2021-04-12T12:00&width=360")
    assert get(f"{api}/api/v1/geo/mosaic.png?product=ash&time=2021-04-12T12:00&width=360",
               {"If-None-Match": mosaic[1]["Etag"]})[0] == 304


def test_etag_changes_with_the_data(tiny_copy, tmp_path):
    archive = archive_over(tiny_copy, tmp_path)
    with serve_v1(archive) as url:
        query = f"{url}/api/v1/caliop/curtain.png?granule=CAL_LID_L1-Standard-V4-51.2021-04-12T15-17-42ZD&width=100"
        first = get(query)[1]["Etag"]
        path = next(tiny_copy.glob("caliop/2021/04/12/*T15-17-42ZD.hdf"))
        os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 60))
        archive.refresh(lambda *_: None)
        status, headers, _ = get(query, {"If-None-Match": first})
        assert status == 200 and headers["Etag"] != first


# --------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("query", "status", "parameter", "words"), [
    ("so2/map.png?date=2021-04-12&colour=red", 400, "colour", "unknown parameter 'colour'"),
    ("so2/map.png?date=2021-04-12&width=wide", 400, "width", "width 'wide' is not a whole number"),
    ("so2/map.png?date=2021-04-12&width=100000", 422, "width", "width 100000 is out of range (16 … 4096 pixels)"),
    ("so2/map.png?date=2021-13-45", 400, "date", "date '2021-13-45' is not a valid date"),
    ("so2/map.png?date=12/04/2021", 400, "date", "is not a date (expected YYYY-MM-DD)"),
    ("so2/map.png?date=2021-04-12&zone=Atlantis", 400, "zone", "zone 'Atlantis' is not one of World"),
    ("so2/map.png?date=2021-04-12&zone=Caribbean&bbox=0,0,1,1", 400, "bbox", "either zone or bbox"),
    ("so2/map.png?date=2021-04-12&bbox=0,10,5,5", 422, "bbox", "latitudes must satisfy"),
    ("so2/map.png?start=2021-01-01&end=2022-06-01", 422, "end", "longer than a year"),
    ("so2/map.png?start=2021-04-12&end=2021-04-11T00:00", 422, "end", "is not after the start"),
    ("so2/map.png?date=2021-04-12&start=2021-04-12", 400, "start", "either date or start and end"),
    ("so2/map.png?date=2021-04-12&vmin=5&vmax=2", 422, "vmax", "vmin (5) must be less than vmax (2)"),
    ("so2/map.png?date=2021-04-12&level=3km", 422, "level", "SO2 3 km is unavailable in the granules of 2021-04-12"),
    ("so2/map.png?date=2021-04-12&qa_min=2", 422, "qa_min", "qa_min 2 is out of range (0 … 1)"),
    ("so2/map.png", 400, "date", "give a day"),
    ("so2/timeseries?volcano=Atlantis&start=2021-04-12&end=2021-04-12", 404, "volcano", "Atlantis"),
    ("so2/timeseries?start=2021-04-12&end=2021-04-12", 400, "volcano", "parameter 'volcano' is required"),
    ("so2/timeseries?volcano=Etna&start=2021-04-12&end=2021-04-12&radii=0", 422, "radii", "more than 0 km"),
    ("geo/image.png?satellite=G99&time=2021-04-12T15:00", 404, "satellite", "unknown geostationary satellite 'G99'"),
    ("geo/image.png?satellite=G16&product=sparkle", 400, "product", "product 'sparkle' is not one of ash"),
    ("geo/image.png?satellite=G16&position=GOES-East", 400, "position", "either satellite or position"),
    ("geo/image.png?satellite=G16&time=2021-04-12T13:00", 404, "time", "no GOES-16 slot at 2021-04-12 13:00"),
    ("geo/value?satellite=G16&time=2021-04-12T15:00&lat=95&lon=0", 422, "lat", "lat 95 is out of range"),
    ("geo/value?satellite=G16&time=2021-04-12T15:00&lat=0&lon=100", 404, "lat", "beyond the disk"),
    ("caliop/curtain.png?granule=../../etc/passwd", 400, "granule", "is not of the expected form"),
    ("caliop/curtain.png?granule=%2e%2e%2f%2e%2e%2fetc%2fpasswd", 400, "granule", "is not of the expected form"),
    ("caliop/curtain.png?granule=..", 404, "granule", "no CALIOP granule named '..'"),
    ("caliop/curtain.png?granule=CAL_LID_L1-Standard-V4-51.2021-04-12T15-17-42ZD&alt_min=20&alt_max=10", 422,
     "alt_max", "alt_min (20 km) must be below alt_max (10 km)"),
    ("volcanoes?limit=0", 422, "limit", "limit 0 is out of range"),
    ("volcanoes?q=" + "x" * 10_000, 400, "q", "parameter 'q' is too long (10000 characters"),
])
def test_bad_input_is_named_in_a_json_sentence(api, query, status, parameter, words):
    got, headers, body = get(f"{api}/api/v1/{query}")
    answer = json.loads(body)
    assert (got, answer["parameter"]) == (status, parameter), answer
    assert words in answer["error"] and headers["Content-Type"].startswith("application/json")
    assert "/work/" not in answer["error"] and "Traceback" not in answer["error"]


def test_the_work_budget_refuses_a_request_with_the_reason(api, archive, monkeypatch):
    n = len(archive.granules("tropomi_so2", pd.Timestamp(DAY), pd.Timestamp(DAY) + pd.Timedelta(days=1),
                             so2map.ZONES["Caribbean"].bbox()))
    assert n >= 3
    monkeypatch.setitem(v1.BUDGET, "so2", 2)
    status, _, body = get(f"{api}/api/v1/so2/map.png?date={DAY}&zone=Caribbean&width=300")
    answer = json.loads(body)
    assert status == 422 and answer["parameter"] == "date"
    assert answer["error"] == (f"this request would read {n} TROPOMI granules; at most 2 per request: narrow the "
                               "period or the area")
    monkeypatch.setitem(v1.BUDGET, "timeseries", 0)
    status, _, body = get(f"{api}/api/v1/so2/timeseries?volcano=Etna&start=2021-04-12&end=2021-04-12")
    assert status == 422 and "at most 0 per request" in json.loads(body)["error"]


# --------------------------------------------------------------------------------------------- the document


def test_openapi_document_is_valid_and_is_what_the_handlers_check(api):
    status, _, body = get(f"{api}/api/v1/openapi.json")
    doc = json.loads(body)
    validate(doc)
    assert doc["openapi"] == "3.1.0" and set(doc["paths"]) == {r.path for r in v1.ROUTE_SPECS}
    for route in v1.ROUTE_SPECS:
        declared = doc["paths"][route.path]["get"]["parameters"]
        assert [p["name"] for p in declared] == [p.name for p in route.params]
        assert declared == [p.openapi() for p in route.params]
        width = next((p for p in declared if p["name"] == "width"), None)
        if width is not None:
            assert width["schema"]["maximum"] == (1920 if route.path.startswith("/api/v1/animation/") else 4096)
        # every example of the document is answered
        got = get(f"{api}{route.path}?{route.example}")
        assert got[0] == 200, (route.path, got[2][:300])
        assert got[1]["Content-Type"].split(";")[0] in doc["paths"][route.path]["get"]["responses"]["200"]["content"]


def test_docs_page_is_plain_html_with_every_route_and_nothing_from_elsewhere(api):
    status, headers, body = get(f"{api}/api/v1/docs")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    for route in v1.ROUTE_SPECS:
        assert f"GET {route.path}" in page
    assert "<script" not in page and not re.search(r"(src|href)=['\"]?https?://", page)
    assert "curl -s 'http://localhost:5006/api/v1/so2/map.png?date=2021-04-12" in page
    assert page == openapi.document_html()


def test_level_table_equals_the_dashboard_s():
    from app.views.volcplume import LEVELS

    assert so2map.ZONES is ZONES  # one table, app.core.zones
    assert so2map.LEVELS == LEVELS


def test_parameter_layer_directly():
    width = params.Param("width", "integer", "w", minimum=16, maximum=4096)
    assert params.parse((width,), {"width": "512"}) == {"width": 512}
    for text in ("1e3", " 512 ", "512.0", "0x200"):  # what is checked is what came: nothing stripped or guessed
        with pytest.raises(params.ApiError) as err:
            params.parse((width,), {"width": text})
        assert err.value.status == 400 and err.value.parameter == "width"
    assert params.bbox_value("bbox", "170,-10,-170,10") == (170.0, -10.0, -170.0, 10.0)
    zone = so2map.Zone.from_bbox(170, -10, -170, 10)
    assert (zone.x_range, zone.central_longitude, zone.bbox()) == ((170.0, 190.0), 180.0, (170.0, -10, -170.0, 10))
    raw = {"start": "2021-04-10", "end": "2021-04-12"}
    values = params.parse(v1.PERIOD_PARAMS, raw)
    assert params.period(values, raw) == (pd.Timestamp("2021-04-10"), pd.Timestamp("2021-04-13"))


def test_every_curl_of_docs_api_md_is_answered(api):
    text = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()
    urls = re.findall(r"curl -s (?:-o \S+ )?'http://localhost:5006(/api/v1/[^']+)'", text)
    assert len(urls) >= 16
    for path in urls:
        status, headers, body = get(f"{api}{path}")
        assert status == 200, (path, body[:300])
        if ".png" in path.split("?")[0]:
            assert headers["Content-Type"] == "image/png" and rgba(body).shape[0] >= 16


def test_a_damaged_granule_is_skipped_and_named_the_rest_drawn(tiny_copy, tmp_path):
    archive = archive_over(tiny_copy, tmp_path)  # indexed before the damage: the files are damaged since
    tropomi = next(tiny_copy.glob("tropomi/2021/04/12/*_18122_*.nc"))
    tropomi.write_bytes(tropomi.read_bytes()[:5000])
    caliop = next(tiny_copy.glob("caliop/2021/04/12/*T15-17-42ZD.hdf"))
    caliop.write_bytes(caliop.read_bytes()[:3000])
    with serve_v1(archive) as url:
        status, headers, body = get(f"{url}/api/v1/so2/map.png?date={DAY}&zone=Caribbean&width=400")
        assert status == 200 and headers["X-Fumarole-Orbits"] == "2"  # 18121 and 18123 drawn
        assert headers["X-Fumarole-Skipped"].startswith(f"tropomi/2021/04/12/{tropomi.name}: ")
        assert str(tiny_copy) not in headers["X-Fumarole-Skipped"]
        status, _, body = get(f"{url}/api/v1/caliop/curtain.png?granule={caliop.stem}")
        answer = json.loads(body)
        assert status == 422
        assert answer["error"].startswith("a file this answer needs cannot be read: caliop/2021/04/12/")
        assert caliop.name in answer["error"] and str(tmp_path) not in answer["error"]
