"""Animation export (issue 10, item 4): GEO slots and SO2 days as MP4 and animated GIF, from the API and the pages.

The files are decoded with imageio (its ffmpeg plugin for MP4, Pillow for GIF) and checked against what the API
gives for the same slot or day: the map's pixels against ``/api/v1/geo/image.png`` (the GIF within a stated mean
difference, its 256-colour palette aside; the MP4 within a wider one, H.264's loss), the SO2 colours against the
pixel values of ``/api/v1/so2/value``, the colour bar's pixels against the scale's colours.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
import urllib.parse

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
from conftest import archive_over, serve_api
from conftest import http_get as get
from PIL import Image

from app.render import animate
from app.render import geo as render_geo
from app.render.colormaps import SO2
from app.render.frame import export_layout
from app.services import animation as anim

BBOX = "-70,5,-50,20"
#: Mean absolute difference (0-255, over the map's pixels and channels) allowed between a decoded frame's map and
#: the API's PNG: GIF's adaptive palette, and H.264 at CRF 18 in yuv420p (colour at half resolution). Coastlines
#: drawn over the map (a few % of its pixels) are inside these bounds.
GIF_MAD, MP4_MAD = 6.0, 14.0


@pytest.fixture(scope="module")
def api(archive):
    with serve_api(archive, ("geo", "v1")) as url:
        yield url


def _frames(body: bytes, fmt: str) -> np.ndarray:
    return iio.imread(body, index=None, extension=f".{fmt}")[..., :3]


def _map(frame: np.ndarray, box: tuple[int, ...]) -> np.ndarray:
    left, top, w, h = box
    return frame[top:top + h, left:left + w].astype(np.int16)


def _api_png(api: str, **query) -> np.ndarray:
    status, _, body = get(f"{api}/api/v1/geo/image.png?{urllib.parse.urlencode(query)}")
    assert status == 200, body[:300]
    rgba = np.asarray(Image.open(io.BytesIO(body)).convert("RGBA")).astype(np.float32)
    alpha = rgba[..., 3:4] / 255.0
    return (rgba[..., :3] * alpha).round().astype(np.int16)  # over black, as the frame shows space


def _geo(api: str, fmt: str, **extra):
    query = {"satellite": "G16", "product": "ash", "date": "2021-04-12", "bbox": BBOX, "width": 800, **extra}
    return get(f"{api}/api/v1/animation/geo.{fmt}?{urllib.parse.urlencode(query)}")


@pytest.mark.parametrize(("fmt", "bound"), [("gif", GIF_MAD), ("mp4", MP4_MAD)])
def test_a_geo_loop_has_one_frame_per_slot_and_the_api_png_as_its_map(api, fmt, bound):
    status, headers, body = _geo(api, fmt, fps=5)
    assert status == 200, body[:300]
    assert headers["Content-Type"] == animate.MEDIA[fmt]
    name = f"fumarole_G16_ash_20210412T1200_20210412T1500.{fmt}"
    assert headers["Content-Disposition"] == f'attachment; filename="{name}"'
    assert headers["X-Fumarole-Times"] == "2021-04-12 12:00 UTC | 2021-04-12 15:00 UTC"
    w, h = (int(v) for v in headers["X-Fumarole-Frame-Size"].split("x"))
    assert w == 800 and w % 2 == 0 and h % 2 == 0
    box = tuple(int(v) for v in headers["X-Fumarole-Map-Box"].split(","))
    frames = _frames(body, fmt)
    assert frames.shape == (2, h, w, 3)
    meta = iio.immeta(body, extension=f".{fmt}")
    if fmt == "gif":
        assert meta["duration"] == 200 and meta["loop"] == 0  # 5 frames a second, looping forever
    else:
        assert meta["fps"] == 5.0 and meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    pngs = [_api_png(api, satellite="G16", product="ash", time=slot, bbox=BBOX, width=box[2], height=box[3])
            for slot in ("2021-04-12T12:00", "2021-04-12T15:00")]
    mad = [[float(np.abs(_map(frames[k], box) - png).mean()) for png in pngs] for k in range(2)]
    for k in range(2):
        assert mad[k][k] <= bound, (fmt, k, mad)
        assert mad[k][1 - k] > mad[k][k] + 4, (fmt, k, mad)  # frame k is slot k's picture, not the other's
    # the time stamp (top right) differs between the frames
    stamp = (slice(0, box[1]), slice(w // 2, w))
    assert np.abs(frames[0][stamp].astype(int) - frames[1][stamp]).max() > 100
    # the title band: light text on the dark background
    band = frames[0][: box[1], : w // 2].mean(axis=2)
    assert (band > 200).sum() > 300 and (band < 40).sum() > 0.8 * band.size


def test_the_answer_carries_an_etag_and_a_304_for_a_current_copy(api):
    status, headers, body = _geo(api, "gif")
    assert status == 200 and headers["Etag"].startswith('"')
    again = get(f"{api}/api/v1/animation/geo.gif?satellite=G16&product=ash&date=2021-04-12&bbox={BBOX}&width=800",
                {"If-None-Match": headers["Etag"]})
    assert again[0] == 304 and again[2] == b""
    other = _geo(api, "gif", width=640)
    assert other[0] == 200 and other[1]["Etag"] != headers["Etag"]


def _bar_row(frame: np.ndarray, box, colours: np.ndarray) -> int:
    """The most pixels on one row under the map whose colour is within 12 of a scale colour."""
    left, top, w, h = box
    below = frame[top + h:].astype(np.int16)
    d = np.abs(below[:, :, None, :] - colours[None, None, :, :]).max(axis=3).min(axis=2)
    return int((d <= 12).sum(axis=1).max())


def _hex(colours) -> np.ndarray:
    return np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours], dtype=np.int16)


def test_a_cloud_top_loop_of_the_disk_has_its_colour_bar_in_every_frame(api):
    status, headers, body = get(f"{api}/api/v1/animation/geo.gif?satellite=GOES-East&product=cloud_top_height"
                                f"&date=2021-04-12&width=600")
    assert status == 200, body[:300]
    frames = _frames(body, "gif")
    box = tuple(int(v) for v in headers["X-Fumarole-Map-Box"].split(","))
    colours = _hex(render_geo.CLOUD_TOP["cloud_top_height"].cmap)
    bar_w = min(box[2], round(0.6 * 600))
    for frame in frames:
        assert _bar_row(frame, box, colours) > 0.8 * bar_w  # a row of the bar's colours, as wide as the bar


def test_an_so2_loop_draws_the_day_in_the_scale_and_names_the_days_without_data(api, archive):
    status, headers, body = get(f"{api}/api/v1/animation/so2.gif?start=2021-04-11&end=2021-04-12&zone=Caribbean"
                                f"&width=800&fps=2")
    assert status == 200, body[:300]
    assert headers["Content-Disposition"] == 'attachment; filename="fumarole_so2_7km_caribbean_20210411_20210412.gif"'
    assert headers["X-Fumarole-Times"] == "2021-04-12"
    assert headers["X-Fumarole-Skipped"] == "2021-04-11: no TROPOMI granule over Caribbean on 2021-04-11"
    frames = _frames(body, "gif")
    assert frames.shape[0] == 1 and iio.immeta(body, extension=".gif")["duration"] == 500
    box = tuple(int(v) for v in headers["X-Fumarole-Map-Box"].split(","))
    assert _bar_row(frames[0], box, _hex(SO2)) > 0.8 * min(box[2], 480)  # the DU colour bar
    # the strongest pixel of the day's map: the API's value there is above the range, drawn in the darkest colour
    zone = anim.so2map.ZONES["Caribbean"]
    loop = anim.So2Loop((pd.Timestamp("2021-04-12"),), zone, width=800)
    lay = anim.so2_layout(loop)
    pic, _, _ = anim.so2_picture(archive, loop, loop.days[0], anim.so2_plans(archive, loop)[loop.days[0]], lay, [])
    iy, ix = np.unravel_index(np.nanargmax(pic.image), pic.image.shape)
    lon = zone.lon_min + (ix + 0.5) / box[2] * (zone.lon_max - zone.lon_min)
    lat = zone.lat_max - (iy + 0.5) / box[3] * (zone.lat_max - zone.lat_min)
    status, _, answer = get(f"{api}/api/v1/so2/value?date=2021-04-12&lat={lat:.4f}&lon={lon:.4f}")
    values = [p["value"] for p in json.loads(answer)["pixels"] if p["valid"]]
    assert status == 200 and max(values) > 20.0, values
    drawn = frames[0][box[1] + iy, box[0] + ix].astype(int)
    assert np.abs(drawn - _hex(SO2[-1:])[0]).max() <= 6, drawn
    # no data (white) where no orbit passed, and the map is mostly the scale's pale low end
    assert (np.abs(_map(frames[0], box) - 255).max(axis=2) <= 3).sum() > 100


def test_a_damaged_slot_is_skipped_and_named(tiny_copy, tmp_path):
    slot = sorted((tiny_copy / "abi/G16/2021/04/12").glob("*C11_G16_s202110215*"))[0]
    slot.write_bytes(slot.read_bytes()[:300])  # truncated: an HDF5 file that cannot be opened
    archive = archive_over(tiny_copy, tmp_path)
    with serve_api(archive, ("v1",)) as url:
        status, headers, body = get(f"{url}/api/v1/animation/geo.gif?satellite=G16&product=ash&date=2021-04-12"
                                    f"&bbox={BBOX}&width=400")
    assert status == 200, body[:300]
    assert headers["X-Fumarole-Times"] == "2021-04-12 12:00 UTC"
    assert headers["X-Fumarole-Skipped"].startswith("2021-04-12 15:00 UTC: ")
    assert slot.name in headers["X-Fumarole-Skipped"] and str(tiny_copy) not in headers["X-Fumarole-Skipped"]
    assert _frames(body, "gif").shape[0] == 1


@pytest.mark.parametrize(("tail", "parameter", "words"), [
    ("so2.mp4?start=2021-01-01&end=2021-12-01&zone=World", "end", "at most 144"),
    ("so2.gif?start=2021-03-01&end=2021-04-20&zone=World&width=1920", "width", "million pixels"),
    ("geo.mp4?satellite=G16&width=4000", "width", "4000"),
    ("geo.gif?satellite=G16&latest=500", "latest", "500"),
    ("geo.mp4?satellite=G16&fps=100", "fps", "100"),
    ("so2.gif?date=2021-04-12&zone=Nowhere", "zone", "Nowhere"),
])
def test_over_budget_and_bad_requests_are_refused_naming_the_parameter(api, tail, parameter, words):
    status, headers, body = get(f"{api}/api/v1/animation/{tail}")
    answer = json.loads(body)
    assert status in (400, 422) and headers["Content-Type"].startswith("application/json"), (status, answer)
    assert answer["parameter"] == parameter and words in answer["error"], answer


def test_a_period_without_a_slot_is_a_404_naming_the_satellite_and_period(api):
    status, _, body = get(f"{api}/api/v1/animation/geo.gif?satellite=G16&date=2021-05-01")
    assert status == 404 and json.loads(body) == {"error": "G16 has no slot in the period", "parameter": "start"}


def test_the_routes_are_in_the_openapi_document(api):
    status, _, body = get(f"{api}/api/v1/openapi.json")
    paths = json.loads(body)["paths"]
    for kind in ("geo", "so2"):
        for fmt, media in (("mp4", "video/mp4"), ("gif", "image/gif")):
            op = paths[f"/api/v1/animation/{kind}.{fmt}"]["get"]
            assert media in op["responses"]["200"]["content"]
            assert {"width", "fps"} <= {p["name"] for p in op["parameters"]}


# ----------------------------------------------------------------------------------------------- the encoder

def test_the_encoder_refuses_what_it_cannot_write_in_words():
    frame = np.zeros((100, 160, 3), np.uint8)
    with pytest.raises(animate.EncodeError, match="99 pixels; H.264 in yuv420p needs even sides"):
        animate.encode([np.zeros((99, 160, 3), np.uint8)], "mp4")
    with pytest.raises(animate.EncodeError, match="frame 1 is 160 × 120 pixels; the first was 160 × 100"):
        animate.encode([frame, np.zeros((120, 160, 3), np.uint8)], "gif")
    with pytest.raises(animate.EncodeError, match="no frame to encode"):
        animate.encode([], "gif")
    with pytest.raises(animate.EncodeError, match="unknown animation format 'avi'"):
        animate.encode([frame], "avi")


def test_the_encoder_leaves_no_temporary_file():
    before = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("fumarole-animation-")}
    frames = [np.full((64, 96, 3), 40 * k, np.uint8) for k in range(4)]
    for fmt in animate.FORMATS:
        decoded = _frames(animate.encode(iter(frames), fmt, fps=8), fmt)
        assert decoded.shape == (4, 64, 96, 3)
        assert np.abs(decoded[:, 30, 40, 0].astype(int) - [0, 40, 80, 120]).max() <= 2
    after = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("fumarole-animation-")}
    assert after == before


def test_the_pixel_budget_names_the_width():
    lay = export_layout(1920, 0.6)
    with pytest.raises(anim.AnimationLimitError, match="lower the width") as err:
        anim.check_bounds(1920, 40, lay, "end")
    assert err.value.parameter == "width"
    anim.check_bounds(1024, 24, export_layout(1024, 0.75), "end")  # the 24 frames at 1024 px fit


def test_time_to_export_24_geo_frames_at_1024_px(archive, capsys):
    """The figure the docs record (printed, never asserted): 24 frames of a GEO loop at 1024 px, GIF and MP4."""
    times = anim.geo_times(archive, "G16", pd.Timestamp("2021-04-12"), pd.Timestamp("2021-04-13"))
    loop = anim.GeoLoop("G16", "ash", tuple((times * 12)[:24]), bbox=(-70, 5, -50, 20), width=1024)
    out = {}
    for fmt in ("gif", "mp4"):
        t0 = time.perf_counter()
        made = anim.geo_animation(archive, loop, fmt)
        out[fmt] = (time.perf_counter() - t0, len(made.data))
        assert len(_frames(made.data, fmt)) == 24
    with capsys.disabled():
        print("\n24 GEO frames at 1024 px: " + ", ".join(f"{f.upper()} {s:.1f} s ({n / 1e6:.2f} MB)"
                                                           for f, (s, n) in out.items()))


# ----------------------------------------------------------------------------------------------- the pages

def _page_text_has(page, words: str, timeout_s: float = 60.0) -> None:
    """Wait until the page's log console (inside Panel's shadow roots, which Playwright's CSS pierces) says it."""
    from playwright.sync_api import expect

    expect(page.locator(".fumarole-log").first).to_contain_text(words, timeout=timeout_s * 1000)


@pytest.mark.browser
def test_the_georing_page_exports_the_days_slots_as_a_gif(dashboard_server, page, shots):
    page.goto(f"{dashboard_server}/georing?mode=satellite&satellite=G16&time=15:00")
    button = page.get_by_role("button", name="Export animation")
    button.wait_for(timeout=90_000)
    page.get_by_role("button", name="GIF", exact=True).click()
    with page.expect_download(timeout=120_000) as info:
        button.click()
    download = info.value
    assert download.suggested_filename == "fumarole_G16_ash_20210412T1200_20210412T1500.gif"
    data = open(download.path(), "rb").read()
    frames = _frames(data, "gif")
    assert frames.shape[0] == 2 and frames.shape[2] == 1024  # the day's two slots at 1024 px
    assert iio.immeta(data, extension=".gif")["duration"] == 500  # the page's speed: 2 frames a second
    assert np.abs(frames[0].astype(int) - frames[1]).mean() > 2  # two slots, two pictures
    _page_text_has(page, "animation exported: fumarole_G16_ash_20210412T1200_20210412T1500.gif, 2 frames")
    Image.fromarray(frames[1]).save(shots / "animation-georing-frame.png")


@pytest.mark.browser
def test_the_volcplume_page_exports_the_days_around_the_shown_day_as_mp4(dashboard_server, page, shots):
    page.goto(f"{dashboard_server}/volcplume?date=2021-04-12&zone=Caribbean")
    button = page.get_by_role("button", name="Export animation")
    button.wait_for(timeout=90_000)
    with page.expect_download(timeout=180_000) as info:
        button.click()
    download = info.value
    assert download.suggested_filename == "fumarole_so2_7km_caribbean_20210409_20210415.mp4"
    data = open(download.path(), "rb").read()
    frames = _frames(data, "mp4")
    meta = iio.immeta(data, extension=".mp4")
    assert frames.shape[0] == 1 and frames.shape[2] == 1024 and meta["codec"] == "h264"  # the one day with data
    page.get_by_text("Log console", exact=True).click()  # the card is built when first opened
    _page_text_has(page, "animation: skipped 2021-04-09: no TROPOMI granule over Caribbean on 2021-04-09")
    _page_text_has(page, "animation exported: fumarole_so2_7km_caribbean_20210409_20210415.mp4, 1 days (2021-04-12)")
    Image.fromarray(frames[0]).save(shots / "animation-volcplume-frame.png")
