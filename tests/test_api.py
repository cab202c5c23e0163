"""The GEO HTTP API over real HTTP: a Tornado server with the API's routes on the tiny archive, in a thread.

(`tests/test_dashboard_georing.py` checks that `fumarole serve` serves the same routes next to the dashboards.)
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from app.api.geo import routes
from app.data.archive import Archive
from app.render import geo as render

# La Soufrière, St Vincent, and the scenario's ash cloud east of it at 15:00
SOUFRIERE = (13.33, -61.18)


@pytest.fixture(scope="module")
def api(tiny_archive_path):
    """Base URL of a Tornado server with the GEO routes over the tiny archive (stopped after the module)."""
    import tornado.httpserver
    import tornado.web

    archive = Archive("tiny")
    archive.refresh(lambda *_: None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = threading.Event()
    state = {}

    def serve():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = tornado.httpserver.HTTPServer(tornado.web.Application(routes(archive=archive)))
        server.listen(port, "127.0.0.1")
        state.update(loop=loop, server=server)
        started.set()
        loop.run_forever()
        server.stop()
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(30), "the API server did not start"
    yield f"http://127.0.0.1:{port}"
    state["loop"].call_soon_threadsafe(state["loop"].stop)
    thread.join(10)


def _get(url: str):
    """(status, headers, body bytes) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
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
    status, _, body = _get(f"{api}/api/geo/image.png?satellite=GOES-East&time=2021-04-12T15:00&width=300")
    assert status == 200
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
    _, _, body = _get(f"{api}/api/geo/slots?satellite=Meteosat%20IODC&date=2021-04-12")
    assert [s["time"] for s in json.loads(body)] == ["2021-04-12T12:00:00Z"]
    _, _, body = _get(f"{api}/api/geo/slots?satellite=H08&date=2021-04-13")
    assert json.loads(body) == []


@pytest.mark.parametrize(("query", "status", "error"), [
    ("image.png?satellite=G99", 400, "unknown geostationary satellite 'G99'; the ring has G17 (GOES-17, GOES-West)"),
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
])
def test_errors_are_json_sentences(api, query, status, error):
    got, headers, body = _get(f"{api}/api/geo/{query}")
    assert got == status and headers["Content-Type"].startswith("application/json")
    message = json.loads(body)["error"]
    assert message.startswith(error) or error in message
