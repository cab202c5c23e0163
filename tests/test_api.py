"""The GEO HTTP API over real HTTP: a Tornado server with the API's routes on the tiny archive, in a thread.

(`tests/test_dashboard_georing.py` checks that `fumarole serve` serves the same routes next to the dashboards.)
"""

from __future__ import annotations

import io
import json
import os
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import archive_over, serve_api
from PIL import Image

from app.api import geo as api_geo
from app.api import pool as api_pool
from app.api.geo import image_size, relative_message
from app.core.cache import ByteBoundedCache, SingleFlight
from app.data.archive import Archive
from app.render import geo as render

# La Soufrière, St Vincent, and the scenario's ash cloud east of it at 15:00
SOUFRIERE = (13.33, -61.18)


@pytest.fixture(scope="module")
def api(tiny_archive_path):
    """Base URL of a Tornado server with the GEO routes over the tiny archive (stopped after the module)."""
    archive = Archive("tiny")
    archive.refresh(lambda *_: None)
    with serve_api(archive) as url:
        yield url


def _get(url: str, headers: dict | None = None, method: str = "GET"):
    """(status, headers, body bytes) of a request, errors included."""
    request = urllib.request.Request(url, headers=headers or {}, method=method,
                                     data=b"" if method in ("POST", "PUT") else None)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _png(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGBA")).astype(int)


def test_image_of_a_bbox_is_regridded_to_lat_lon(api):
    status, headers, body = _get(f"{api}/api/geo/image.png?satellite=G16&product=ash&time=2021-04-12T15:00"
                                 f"&bbox=-100,-10,-40,40&width=600")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert headers["Access-Control-Allow-Origin"] == "*" and headers["X-Fumarole-Time"] == "2021-04-12T15:00:00Z"
    rgba = _png(body)
    assert rgba.shape == (500, 600, 4)  # 60° × 50° at 0.1° a pixel
    assert (rgba[..., 3] == 255).all()  # GOES-East sees all of it
    # the ash cloud east of St Vincent: Ash RGB red-to-magenta (red high, green low), and nowhere far from it

    def ash(px):
        return (px[..., 0] > 170) & (px[..., 1] < 150) & (px[..., 2] > 100)

    row = lambda lat: int((40 - lat) * 10)  # noqa: E731
    col = lambda lon: int((lon + 100) * 10)  # noqa: E731
    near = rgba[row(17):row(10), col(-63):col(-52)]
    assert ash(near).sum() >= 5
    assert ash(rgba).sum() == ash(near).sum()


def test_the_whole_disk_and_another_composite(api):
    status, headers, body = _get(f"{api}/api/geo/image.png?satellite=GOES-East&time=2021-04-12T15:00&width=300")
    assert status == 200
    assert headers["X-Fumarole-Satellite"] == "GOES-16" and headers["X-Fumarole-Position"] == "GOES-East"
    ash = _png(body)
    assert ash.shape == (226, 226, 4)  # the tiny disk is 226 pixels wide: at most its own resolution
    assert ash[0, 0, 3] == 0 and ash[ash.shape[0] // 2, ash.shape[1] // 2, 3] == 255  # space transparent
    _, _, body = _get(f"{api}/api/geo/image.png?satellite=G16&product=dust&time=2021-04-12T15:00&width=300")
    dust = _png(body)
    assert dust.shape == ash.shape and np.abs(dust - ash).mean() > 5


def test_cloud_top_image_uses_the_colour_scale(api):
    status, headers, body = _get(f"{api}/api/geo/image.png?satellite=H08&product=cloud_top_height"
                                 f"&time=2021-04-12T12:00&bbox=100,-40,180,40&width=400")
    assert status == 200 and headers["X-Fumarole-Colour-Range"] == "0 16 km"
    rgba = _png(body)
    colours = {tuple(c) for c in rgba[rgba[..., 3] == 255][:, :3]}
    grey = tuple(render.CLEAR_SKY[:3])
    palette = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in render.CLOUD_TOP["cloud_top_height"].cmap}
    assert grey in colours  # clear sky
    assert len(colours - {grey}) > 20 and colours - {grey} <= palette  # clouds in the scale's colours only


def test_value_gives_every_channel_and_the_cloud_top(api):
    status, headers, body = _get(f"{api}/api/geo/value?satellite=G16&time=2021-04-12T15:00&lat=0&lon=-75.2")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    data = json.loads(body)
    assert data["satellite"] == "GOES-16" and data["time"] == "2021-04-12T15:00:00Z"
    assert data["viewing_zenith_angle"] < 1.0
    c13 = data["channels"]["ir_105"]
    assert c13["band"] == "C13" and c13["units"] == "K" and 180 < c13["value"] < 330
    assert data["channels"]["vis_06"]["units"] == "%"
    assert set(data["cloud_top"]) == {"cloud_top_height", "cloud_top_temperature", "cloud_top_pressure", "units"}
    # under the ash cloud the split window is negative (reverse absorption by silicate ash)
    split = []
    for lat in (13.0, 13.5, 14.0):
        for lon in (-60.5, -60.0, -59.5, -59.0):
            _, _, body = _get(f"{api}/api/geo/value?satellite=G16&time=2021-04-12T15:00&lat={lat}&lon={lon}")
            ch = json.loads(body)["channels"]
            split.append(ch["ir_105"]["value"] - ch["ir_120"]["value"])
    assert min(split) < -0.5
    # only the channels asked for
    _, _, body = _get(f"{api}/api/geo/value?satellite=H08&time=2021-04-12T12:00&lat=-25&lon=135"
                      f"&channels=ir_105,ir_120")
    assert list(json.loads(body)["channels"]) == ["ir_105", "ir_120"]


def test_slots_list_a_day(api):
    status, _, body = _get(f"{api}/api/geo/slots?satellite=G16&date=2021-04-12")
    assert status == 200
    slots = json.loads(body)
    assert [s["time"] for s in slots] == ["2021-04-12T12:00:00Z", "2021-04-12T15:00:00Z"]
    assert slots[0]["files"] == 12 and slots[0]["cloud_top"] and "ir_105" in slots[0]["channels"]
    assert {s["platform"] for s in slots} == {"G16"}
    _, _, body = _get(f"{api}/api/geo/slots?satellite=Meteosat%20IODC&date=2021-04-12")
    assert [(s["time"], s["platform"]) for s in json.loads(body)] == [("2021-04-12T12:00:00Z", "MSG1")]
    # the position of another date is held by another satellite (Meteosat-9 since 2022-06-01): none here
    _, _, body = _get(f"{api}/api/geo/slots?satellite=Meteosat%20IODC&date=2025-07-08")
    assert json.loads(body) == []
    # a position without a date: every slot of whoever held it
    _, _, body = _get(f"{api}/api/geo/slots?satellite=Meteosat%20IODC")
    assert [s["platform"] for s in json.loads(body)] == ["MSG1"]
    _, _, body = _get(f"{api}/api/geo/slots?satellite=H08&date=2021-04-13")
    assert json.loads(body) == []


@pytest.mark.parametrize(("query", "status", "error"), [
    ("image.png?satellite=G99", 400, "unknown geostationary satellite 'G99'; the ring today has G18 (GOES-18, "
                                     "GOES-West), G19 (GOES-19, GOES-East)"),
    ("image.png?satellite=G99&time=2021-04-12T15:00", 400, "unknown geostationary satellite 'G99'; the ring on "
                                                           "2021-04-12 has G17 (GOES-17, GOES-West), G16"),
    # a position is resolved by the time asked for: in 2025 GOES-East is GOES-19, which the 2021 archive lacks
    ("image.png?satellite=GOES-East&time=2025-07-08T12:00", 404,
     "no GOES-19 slot at 2025-07-08 12:00 UTC: the archive has no GOES-19 (GOES-East from 2025-04-07) slot at all"),
    ("value?satellite=GOES-West&time=2016-01-01T00:00&lat=0&lon=-137", 404,
     "no satellite we read held GOES-West on 2016-01-01"),
    ("image.png?satellite=G16&product=volcano", 400, "unknown product 'volcano'; products are ash, dust"),
    ("image.png?satellite=G16&bbox=-100,40,-40", 400, "bbox '-100,40,-40' must be four numbers"),
    ("image.png?satellite=G16&bbox=-100,40,-40,10", 400, "latitudes must satisfy"),
    ("image.png?satellite=G16&width=99999", 400, "width 99999 is out of range (16 … 4096 pixels)"),
    ("image.png?satellite=G16&time=yesterday", 400, "time 'yesterday' is not a date and time"),
    ("image.png?satellite=G16&colour=red", 400, "unknown parameter 'colour'; parameters are satellite, product"),
    ("image.png?product=ash", 400, "parameter 'satellite' is required"),
    ("image.png?satellite=MSG1&time=2021-04-12T15:00", 404,
     "no Meteosat-8 slot at 2021-04-12 15:00 UTC; nearest: 12:00"),
    ("value?satellite=G16&lat=13&lon=100", 404, "the point lat=13, lon=100 is not seen by GOES-16"),
    ("value?satellite=G16&lat=95&lon=0", 400, "lat 95 is out of range (-90 … 90 degrees)"),
    ("slots?satellite=G16&date=12/04/2021x", 400, "date '12/04/2021x' is not a date"),
    ("value?satellite=MSG4&lat=0&lon=0&channels=ir_105", 400, "Meteosat-11 (SEVIRI) has no channel 'ir_105'"),
    # times that are not times, or out of range: 400 naming the parameter and the range (issue 12)
    ("image.png?satellite=G16&time=NaT", 400, "time 'NaT' is not a date and time (expected YYYY-MM-DDTHH:MM"),
    ("image.png?satellite=G16&time=nan", 400, "time 'nan' is not a date and time"),
    ("value?satellite=G16&lat=0&lon=-75&time=3000-01-01T00:00", 400,
     "time '3000-01-01T00:00' is out of range (years 1970 … 2100)"),
    ("image.png?satellite=G16&time=1677-09-22T00:12", 400, "time '1677-09-22T00:12' is out of range (years 1970"),
    ("slots?satellite=G16&date=3000-01-01", 400, "date '3000-01-01' is out of range (years 1970 … 2100)"),
    ("slots?satellite=G16&date=NaT", 400, "date 'NaT' is not a date and time (expected YYYY-MM-DD"),
    # sizes: an explicit value out of range is a 400 naming the parameter, with or without a box
    ("image.png?satellite=G16&bbox=-62,13,-61,14&width=8", 400, "width 8 is out of range (16 … 4096 pixels)"),
    ("image.png?satellite=G16&bbox=-62,13,-61,14&height=5000", 400, "height 5000 is out of range (16 … 4096"),
    ("image.png?satellite=G16&bbox=-170,13,200,14", 400, "is wider than 360° of longitude"),
    ("image.png?satellite=G16&width=" + "9" * 300, 400, "parameter 'width' is too long (300 characters; at most 256)"),
])
def test_errors_are_json_sentences(api, query, status, error):
    got, headers, body = _get(f"{api}/api/geo/{query}")
    assert got == status and headers["Content-Type"].startswith("application/json")
    message = json.loads(body)["error"]
    assert message.startswith(error) or error in message


# --- bounded pictures --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "shape"), [
    # the reported case: width=64 on a 0.1°-wide box gave a 64 × 102,400 PNG; now the height stops at 4096 and
    # the width shrinks with it (to its floor of 16)
    ("bbox=-61.3,-80,-61.2,80&width=64", (4096, 16)),
    ("bbox=-61.3,-80,-61.2,80&width=256", (4096, 16)),
    # a flat box: the height has its floor, the width stays
    ("bbox=-100,10,-40,10.1&width=300", (16, 300)),
    # only a height: the width follows the box's shape (60° × 30°)
    ("bbox=-100,0,-40,30&height=40", (40, 80)),
    # neither: 800 wide, the height from the shape
    ("bbox=-100,0,-40,30", (400, 800)),
])
def test_picture_size_is_bounded_whatever_the_box(api, query, shape):
    status, headers, body = _get(f"{api}/api/geo/image.png?satellite=G16&time=2021-04-12T15:00&{query}")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert _png(body).shape[:2] == shape


def test_image_size_keeps_the_shape_within_the_bounds():
    assert image_size((-100, -40), (0, 50), None, 4000) == (4096, 3413)  # 4800 wide by shape: both scaled
    assert image_size((-100, -40), (0, 50), 600, None) == (600, 500)
    assert image_size((170, -170), (-10, 10), 100, None) == (100, 100)  # across the antimeridian: 20° × 20°
    assert image_size((0, 1e-9), (-90, 90), None, None) == (16, 4096)
    assert image_size((0, 360), (0, 1e-9), None, 16) == (4096, 16)
    for lon, lat, w, h in [((-61.3, -61.2), (-80, 80), 4096, None), ((0, 300), (0, 0.001), None, 4096)]:
        width, height = image_size(lon, lat, w, h)
        assert 16 <= width <= 4096 and 16 <= height <= 4096


# --- PNG cache, ETag, merged requests ----------------------------------------------------------------------------


def test_png_has_an_etag_and_a_matching_request_is_a_304(api):
    url = f"{api}/api/geo/image.png?satellite=G16&product=dust&time=2021-04-12T15:00&bbox=-70,5,-50,20&width=200"
    status, headers, body = _get(url)
    assert status == 200 and _png(body).shape == (150, 200, 4)
    etag = headers["Etag"]
    assert etag.startswith('"') and len(etag) == 34
    status, headers2, body2 = _get(url, headers={"If-None-Match": etag})
    assert status == 304 and body2 == b"" and headers2["Etag"] == etag
    status, _, body3 = _get(url, headers={"If-None-Match": '"somethingelse"'})
    assert status == 200 and body3 == body
    # another picture has another tag
    _, headers4, _ = _get(url.replace("width=200", "width=100"))
    assert headers4["Etag"] != etag


@pytest.fixture
def copy_archive(tiny_copy, tmp_path) -> Archive:
    """The tiny catalogue over a private copy of the tiny archive (tests damage or touch its files)."""
    return archive_over(tiny_copy, tmp_path)


def test_png_is_kept_by_its_inputs_and_drawn_again_when_a_file_changes(copy_archive, tiny_copy, monkeypatch):
    calls = []
    real = api_geo._render_png
    monkeypatch.setattr(api_geo, "_render_png", lambda *a: calls.append(a) or real(*a))
    args = {"satellite": "GOES-East", "product": "ash", "time": "2021-04-12T15:00", "bbox": "-70,5,-50,20",
            "width": "120"}
    first = api_geo.image_png(copy_archive, args)
    again = api_geo.image_png(copy_archive, {**args, "satellite": "G16", "time": "2021-04-12T15:00:00Z"})
    assert len(calls) == 1 and again.png == first.png and again.etag == first.etag  # same normalised request
    assert api_geo.image_png(copy_archive, args, if_none_match=first.etag).png is None and len(calls) == 1
    c13 = next(tiny_copy.glob("abi/G16/*/*/*/OR_ABI-L1b-RadF-M6C13_G16_s2021102150*.nc"))
    os.utime(c13, (c13.stat().st_atime, c13.stat().st_mtime + 10))  # the file written again
    changed = api_geo.image_png(copy_archive, args, if_none_match=first.etag)
    assert len(calls) == 2 and changed.etag != first.etag and changed.png == first.png


class _CountingFlight(SingleFlight):
    """A SingleFlight that counts the callers that reached it."""

    def __init__(self):
        super().__init__()
        self.entered = 0
        self.cond = threading.Condition()

    def do(self, key, compute):
        with self.cond:
            self.entered += 1
            self.cond.notify_all()
        return super().do(key, compute)


def test_twenty_identical_concurrent_requests_draw_once(api, monkeypatch):
    """Merged, not cached: the PNG cache keeps nothing here, and the one render waits until all 20 have asked."""
    flight = _CountingFlight()
    monkeypatch.setattr(api_geo, "_PNG_FLIGHT", flight)
    monkeypatch.setattr(api_geo, "PNG_CACHE", ByteBoundedCache(0, "nothing"))
    archive = Archive("tiny")
    calls = []
    real = api_geo._render_png

    def render_when_all_asked(*a):
        calls.append(a)
        with flight.cond:
            assert flight.cond.wait_for(lambda: flight.entered >= 20, timeout=30)
        return real(*a)

    monkeypatch.setattr(api_geo, "_render_png", render_when_all_asked)
    args = {"satellite": "G16", "product": "natural_color", "time": "2021-04-12T15:00", "bbox": "-80,0,-50,20",
            "width": "90"}
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: api_geo.image_png(archive, args), range(20)))
    assert len(calls) == 1 and flight.entered == 20
    assert len({a.png for a in answers}) == 1 and _png(answers[0].png).shape == (60, 90, 4)


def test_twenty_clients_of_one_new_picture_over_http(api, monkeypatch):
    calls = []
    real = api_geo._render_png
    monkeypatch.setattr(api_geo, "_render_png", lambda *a: calls.append(a) or real(*a))
    url = f"{api}/api/geo/image.png?satellite=H08&product=ash&time=2021-04-12T12:00&bbox=120,-20,160,20&width=77"
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: _get(url), range(20)))
    assert [r[0] for r in results] == [200] * 20
    assert len({r[2] for r in results}) == 1 and _png(results[0][2]).shape == (77, 77, 4)
    assert len(calls) == 1


# --- the API's own pool: bounded queue, time bound, JSON for everything --------------------------------------


def _blocking_slots(monkeypatch):
    """Make ``slots`` answers wait for ``release``; ``started`` counts the answers begun."""
    release = threading.Event()
    started = threading.Semaphore(0)
    finished = []

    def slow(archive, args):
        started.release()
        try:
            assert release.wait(30)
            return [{"day": args.get("date")}]
        finally:
            finished.append(1)

    monkeypatch.setattr(api_geo, "slots_json", slow)
    return release, started, finished


def _wait_idle(n_finished: list, expected: int) -> None:
    done = threading.Event()
    for _ in range(500):  # the pool's count drops in the done callback, just after the work returns
        if len(n_finished) >= expected and api_pool.pool().pending == 0:
            return
        done.wait(0.01)
    raise AssertionError(f"the API pool is still busy: {api_pool.pool().pending} jobs")


def test_a_full_queue_is_a_503_with_retry_after(api, monkeypatch):
    monkeypatch.setattr(api_pool, "MAX_WAITING", 0)
    release, started, finished = _blocking_slots(monkeypatch)
    with ThreadPoolExecutor(2) as clients:
        running = [clients.submit(_get, f"{api}/api/geo/slots?satellite=G16&date=2021-04-1{i}") for i in (1, 2)]
        assert started.acquire(timeout=30) and started.acquire(timeout=30)  # both workers busy
        status, headers, body = _get(f"{api}/api/geo/slots?satellite=G16&date=2021-04-13")
        assert status == 503 and headers["Retry-After"] == str(api_pool.RETRY_AFTER_S)
        assert headers["Content-Type"].startswith("application/json")
        assert json.loads(body)["error"].startswith("the API is busy")
        release.set()
        assert [json.loads(f.result()[2]) for f in running] == [[{"day": "2021-04-11"}], [{"day": "2021-04-12"}]]
    _wait_idle(finished, 2)


def test_a_request_past_its_time_bound_is_a_504(api, monkeypatch):
    monkeypatch.setattr(api_pool, "REQUEST_TIMEOUT_S", 0.5)
    release, started, finished = _blocking_slots(monkeypatch)
    status, headers, body = _get(f"{api}/api/geo/slots?satellite=G16&date=2021-04-14")
    assert status == 504 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"] == "the answer took longer than 0.5 s and was given up"
    assert started.acquire(timeout=1)
    release.set()
    _wait_idle(finished, 1)


def test_an_unexpected_error_is_a_json_500_and_logged(api, monkeypatch, caplog):
    def broken(archive, args):
        return 1 / 0

    monkeypatch.setattr(api_geo, "slots_json", broken)
    with caplog.at_level("ERROR", logger="app.api.geo"):
        status, headers, body = _get(f"{api}/api/geo/slots?satellite=G16")
    assert status == 500 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"error": "internal error: ZeroDivisionError"}
    assert any("ZeroDivisionError" in r.exc_text for r in caplog.records if r.exc_text)
    # what Tornado refuses itself is JSON too
    status, headers, body = _get(f"{api}/api/geo/slots?satellite=G16", method="POST")
    assert status == 405 and json.loads(body) == {"error": "Method Not Allowed"}


# --- damaged files: only what they feed is lost; files named relative to the archive root ----------------------


def test_value_with_a_damaged_cloud_top_file_drops_only_the_cloud_top(copy_archive, tiny_copy):
    name = "nwcsaf_ctth/GOES16/2021/04/12/S_NWC_CTTH_GOES16_FULL-DISK_20210412T150000Z.nc"
    ctth = tiny_copy / name
    ctth.write_bytes(ctth.read_bytes()[: ctth.stat().st_size // 3])
    with serve_api(copy_archive) as url:
        status, _, body = _get(f"{url}/api/geo/value?satellite=G16&time=2021-04-12T15:00&lat=13.5&lon=-60")
    assert status == 200
    data = json.loads(body)
    assert data["cloud_top"] is None and 200 < data["channels"]["ir_105"]["value"] < 330
    assert len(data["warnings"]) == 1 and data["warnings"][0].startswith(f"{name}: cannot be opened as netCDF4")
    assert str(tiny_copy) not in body.decode() and "/tmp" not in body.decode()


def test_a_damaged_channel_is_named_relative_to_the_archive_and_the_rest_is_served(copy_archive, tiny_copy):
    c13 = next(tiny_copy.glob("abi/G16/*/*/*/OR_ABI-L1b-RadF-M6C13_G16_s2021102150*.nc"))
    c13.write_bytes(c13.read_bytes()[:1000])
    name = str(c13.relative_to(tiny_copy))
    with serve_api(copy_archive) as url:
        # the Ash RGB needs C13: a 422 (the file's fault, not a 5xx) that names the file relative to the archive root
        status, headers, body = _get(f"{url}/api/geo/image.png?satellite=G16&time=2021-04-12T15:00&width=100")
        assert status == 422 and headers["Content-Type"].startswith("application/json")
        message = json.loads(body)["error"]
        assert message.startswith(f"a file of this slot cannot be read: {name}: ")
        assert str(tiny_copy) not in message and "/tmp" not in message
        # the natural colour RGB does not: served
        status, _, body = _get(f"{url}/api/geo/image.png?satellite=G16&product=natural_color"
                               f"&time=2021-04-12T15:00&width=100")
        assert status == 200 and _png(body).shape == (100, 100, 4)
        # values: every other channel, and a warning naming the file
        status, _, body = _get(f"{url}/api/geo/value?satellite=G16&time=2021-04-12T15:00&lat=13.5&lon=-60")
    assert status == 200
    data = json.loads(body)
    assert "ir_105" not in data["channels"] and len(data["channels"]) == 11
    assert 200 < data["channels"]["ir_120"]["value"] < 330 and data["cloud_top"] is not None
    assert len(data["warnings"]) == 1 and data["warnings"][0].startswith(f"{name}: ")
    assert str(tiny_copy) not in body.decode()


def test_relative_message_hides_server_folders():
    root = "/srv/data/archive"
    assert relative_message(f"{root}/abi/G16/x.nc: is truncated", root) == "abi/G16/x.nc: is truncated"
    assert relative_message("[Errno -51] NetCDF: Unknown file format: '/srv/data/archive/a/b.nc'", root) == \
        "[Errno -51] NetCDF: Unknown file format: 'a/b.nc'"
    assert relative_message("/home/op/elsewhere/c.nc: no such file", root) == "c.nc: no such file"
    assert relative_message("width 8 is out of range (16 … 4096 pixels)", root) == \
        "width 8 is out of range (16 … 4096 pixels)"
