"""The GEO ring in a real browser (Debian's chromium) on the tiny archive: the ring's five images with their times,
stepping and composites that change the picture, the mosaic without gaps, a missing slot said on the page, the
cloud-top colour scale, and the HTTP API served next to the dashboards."""

import io
import json
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from app.render.geo import CLEAR_SKY, SOURCE_COLOURS

pytestmark = pytest.mark.browser


def _wait_until(predicate, page, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value is not None and value is not False:
            return value
        page.wait_for_timeout(250)  # let the browser work before looking again
    raise AssertionError("condition not met within the deadline")


def _canvases(page, min_w=100, min_h=100):
    """Boxes of the plots' canvases (Bokeh stacks several canvases per plot: one box each)."""
    boxes = {}
    for c in page.locator("canvas").all():
        b = c.bounding_box()
        if b and b["width"] >= min_w and b["height"] >= min_h:
            boxes[tuple(round(b[k]) for k in ("x", "y", "width", "height"))] = b
    return list(boxes.values())


def _pixels(page, box) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.screenshot(clip=box))).convert("RGB")).astype(int)


def _coloured(rgb: np.ndarray) -> float:
    """Fraction of pixels that are neither grey-ish (black, white, background) nor text: imagery colours."""
    return float((rgb.std(axis=-1) > 12).mean())


def _biggest(page):
    boxes = _canvases(page, 300, 300)
    return max(boxes, key=lambda b: b["width"] * b["height"]) if boxes else None


def _painted_map(page, fraction=0.3):
    box = _biggest(page)
    if box is None:
        return None
    rgb = _pixels(page, box)
    return rgb if _coloured(rgb) > fraction else None


def _title(page) -> str:
    return page.locator(".georing-title").first.inner_text()


def test_the_ring_shows_five_images_with_times(dashboard_server, page, shots):
    t0 = time.monotonic()
    page.goto(f"{dashboard_server}/georing")

    def five_painted():  # the thumbnails are images (PNG bytes encoded once), not five Bokeh plots
        boxes = [b for b in (i.bounding_box() for i in page.locator("img.georing-thumb").all())
                 if b and b["width"] > 120]
        painted = [b for b in boxes if _coloured(_pixels(page, b)) > 0.25]
        return painted if len(painted) == 5 else None

    boxes = _wait_until(five_painted, page)
    painted_s = time.monotonic() - t0
    (shots / "georing-ring-timing.txt").write_text(f"ring page painted in {painted_s:.2f} s (Playwright)\n")
    page.screenshot(path=str(shots / "georing-ring.png"), full_page=True)
    alts = [i.get_attribute("alt") for i in page.locator("img.georing-thumb").all()]
    assert alts[1] == "GOES-16 Ash RGB 2021-04-12 15:00 UTC, full disk seen from 75.2° W", alts
    # side by side, west to east
    xs = [b["x"] for b in sorted(boxes, key=lambda b: b["x"])]
    assert len({round(b["y"]) for b in boxes}) == 1 and xs == sorted(xs)
    names = page.locator(".georing-name").all_inner_texts()
    assert names == ["GOES-West", "GOES-East", "Meteosat", "Meteosat IODC", "Himawari"]
    times = page.locator(".georing-time").all_inner_texts()
    assert times == ["2021-04-12 15:00 UTC"] * 3 + ["2021-04-12 12:00 UTC", "2021-04-12 15:00 UTC"]
    assert page.locator(".georing-stale").all_inner_texts() == ["STALE — 3 h behind"]
    # each satellite sees another part of the Earth: the five pictures differ
    pictures = [_pixels(page, b) for b in sorted(boxes, key=lambda b: b["x"])]
    assert all(np.abs(a[:150, :150] - b[:150, :150]).mean() > 3 for a, b in zip(pictures, pictures[1:], strict=False))


def test_stepping_and_composites_change_the_picture(dashboard_server, page, shots):
    page.goto(f"{dashboard_server}/georing?mode=satellite&satellite=G16&time=15:00")
    before = _wait_until(lambda: _painted_map(page), page)
    assert "2021-04-12 15:00 UTC" in _title(page) and "Ash RGB" in _title(page)
    page.screenshot(path=str(shots / "georing-satellite-ash-1500.png"), full_page=True)
    page.get_by_role("button", name="<", exact=True).click()
    _wait_until(lambda: "2021-04-12 12:00 UTC" in _title(page), page)
    after = _wait_until(lambda: (lambda px: px if px is not None and np.abs(px - before).mean() > 2 else None)(
        _painted_map(page)), page)
    assert "time=12%3A00" in page.url or "time=12:00" in page.url
    page.screenshot(path=str(shots / "georing-satellite-ash-1200.png"), full_page=True)
    # the hover readout: the brightness temperatures of the channels the Ash RGB uses
    box = _biggest(page)
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.45)
    _wait_until(lambda: page.get_by_text("C13").count() > 0 and page.get_by_text("C11").count() > 0, page)
    # another composite: another picture
    product = page.locator("select").filter(has=page.locator("option", has_text="Dust RGB"))
    product.select_option(label="Dust RGB")
    _wait_until(lambda: "Dust RGB" in _title(page), page)
    _wait_until(lambda: (lambda px: px is not None and np.abs(px - after).mean() > 5)(_painted_map(page)), page)
    assert "product=dust" in page.url
    page.screenshot(path=str(shots / "georing-satellite-dust-1200.png"), full_page=True)


def _frame(rgb: np.ndarray):
    """(top, bottom, left, right) of the plot frame: the rows and columns that are mostly not white."""
    not_white = (rgb < 250).any(axis=-1)
    rows = np.flatnonzero(not_white.mean(axis=1) > 0.6)
    cols = np.flatnonzero(not_white.mean(axis=0) > 0.6)
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_the_mosaic_has_no_gaps(dashboard_server, page, shots):
    page.goto(f"{dashboard_server}/georing?mode=mosaic&time=12:00")
    rgb = _wait_until(lambda: _painted_map(page, 0.5), page)
    page.screenshot(path=str(shots / "georing-mosaic-ash.png"), full_page=True)
    top, bottom, left, right = _frame(rgb)
    assert right - left > 600 and bottom - top > 250
    # the frame spans 80° S … 80° N: within ±60° no pixel shows the plot's background (#dddddd, no data)
    h = bottom - top
    band = rgb[top + int(h * 20 / 160) + 2: bottom - int(h * 20 / 160) - 2, left + 2: right - 2]
    background = (np.abs(band - 221) <= 2).all(axis=-1)
    assert background.mean() < 0.001, f"{background.sum()} background pixels within ±60°"
    assert _coloured(band) > 0.9
    # the source layer: the five satellites' colours, named in the legend
    # Panel's checkbox: its text and its input are siblings in the widget's shadow root (no <label for>)
    widget = page.locator("*").filter(has=page.get_by_text("Show source satellite (mosaic)", exact=True)).filter(
        has=page.locator("input[type=checkbox]")).last
    widget.locator("input[type=checkbox]").check()
    page.get_by_text("Source satellite:").wait_for()

    def five_colours():
        px = _painted_map(page, 0.5)
        if px is None:
            return None
        counts = [int((np.abs(px - [int(c[i:i + 2], 16) for i in (1, 3, 5)]).sum(axis=-1) < 30).sum())
                  for c in SOURCE_COLOURS]
        return counts if min(counts) > 2000 else None

    _wait_until(five_colours, page)
    assert page.locator(".georing-source").count() == 5
    page.screenshot(path=str(shots / "georing-mosaic-source.png"), full_page=True)


def test_a_missing_slot_is_said_and_the_neighbour_shows(dashboard_server, page, shots):
    page.goto(f"{dashboard_server}/georing?mode=satellite&satellite=MSG1&time=15:00")
    alert = page.locator(".georing-alert").first
    alert.get_by_text("no Meteosat-8 slot at 2021-04-12 15:00 UTC; nearest: 12:00").wait_for(timeout=60_000)
    page.screenshot(path=str(shots / "georing-missing-slot.png"), full_page=True)
    page.get_by_role("button", name="<", exact=True).click()
    _wait_until(lambda: "2021-04-12 12:00 UTC" in _title(page), page)
    _wait_until(lambda: _painted_map(page), page)
    _wait_until(lambda: not alert.is_visible(), page)


def test_cloud_top_height_has_its_colour_scale(dashboard_server, page, shots):
    page.goto(f"{dashboard_server}/georing?mode=satellite&satellite=H08&time=12:00&product=cloud_top_height")
    rgb = _wait_until(lambda: _painted_map(page, 0.1), page)
    grey = (np.abs(rgb - CLEAR_SKY[:3]) <= 3).all(axis=-1).mean()
    assert grey > 0.2  # clear sky on the disk
    assert "Cloud-top height" in _title(page)
    page.screenshot(path=str(shots / "georing-cloud-top-height.png"), full_page=True)


def test_the_api_is_served_with_the_dashboards(dashboard_server):
    with urllib.request.urlopen(f"{dashboard_server}/api/geo/slots?satellite=G16&date=2021-04-12", timeout=60) as r:
        assert [s["time"][11:16] for s in json.loads(r.read())] == ["12:00", "15:00"]
    url = f"{dashboard_server}/api/geo/image.png?satellite=H08&product=ash&time=2021-04-12T15:00&bbox=120,-10,160,30"
    with urllib.request.urlopen(url + "&width=400", timeout=60) as r:
        assert r.headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(r.read())).size == (400, 400)


def test_the_ring_of_another_date_names_that_dates_satellites(dashboard_server, page, shots):
    """The ring is the one of the date viewed: on 2025-07-08 GOES-18, GOES-19, Meteosat-12, Meteosat-9, Himawari-9
    (none of which the 2021 tiny archive holds: each card says so), and a permalink by position follows the date."""
    page.goto(f"{dashboard_server}/georing?mode=ring&date=2025-07-08&time=12:00")
    _wait_until(lambda: len(page.locator(".georing-name").all_inner_texts()) == 5, page)
    satellites = page.locator(".georing-satellite").all_inner_texts()
    assert satellites == ["GOES-18 · 137.2° W", "GOES-19 · 75.2° W", "Meteosat-12 · 0°", "Meteosat-9 · 45.5° E",
                          "Himawari-9 · 140.7° E"]
    assert page.locator(".georing-time").all_inner_texts() == ["no slot in the archive"] * 5
    page.screenshot(path=str(shots / "georing-ring-2025.png"), full_page=True)
    # a position in the URL is resolved by the date: GOES-East on the sample day is GOES-16
    page.goto(f"{dashboard_server}/georing?mode=satellite&satellite=GOES-East&date=2021-04-12&time=15:00")
    _wait_until(lambda: _painted_map(page), page)
    assert _title(page).startswith("GOES-16 (GOES-East, 75.2° W)")


def test_the_mosaic_reads_values_and_exports_like_one_satellite(dashboard_server, page, shots):
    """Issue 11: the mosaic's hover/click readout names the satellite a pixel comes from and its values with units;
    its Export PNG draws title, time, legend and credits, and says them in the PNG's text fields."""
    import re

    page.goto(f"{dashboard_server}/georing?mode=mosaic&date=2021-04-12&time=12:00&product=ash")
    _wait_until(lambda: _painted_map(page, 0.5), page)
    box = _biggest(page)
    readout = page.locator(".georing-readout").first
    pattern = re.compile(r"^(GOES-17|GOES-16|Meteosat-11|Meteosat-8|Himawari-8) \(([^)]+)\) · .*\d K · "
                         r"\((-?\d+\.\d\d)°, (-?\d+\.\d\d)°\)$")

    last = []

    def said(name):
        last.append(readout.inner_text().strip())
        match = pattern.match(last[-1])
        return match if match and match.group(1) == name else None

    def readout_of(name):
        try:
            return _wait_until(lambda: said(name), page, 30)
        except AssertionError:
            raise AssertionError(f"the readout does not name {name}: {last[-1] if last else None!r}") from None

    # hover the middle of the plot (0° E, 0° N): Meteosat-11 sees it best
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    match = readout_of("Meteosat-11")
    assert match.group(2) == "Meteosat" and abs(float(match.group(3))) < 15 and abs(float(match.group(4))) < 20
    # a click (a tap on a phone) far east: Himawari-8, with Himawari's band names
    page.mouse.click(box["x"] + box["width"] * 0.88, box["y"] + box["height"] * 0.5)
    match = readout_of("Himawari-8")
    assert "**" not in readout.inner_text() and "B13" in readout.inner_text()
    page.screenshot(path=str(shots / "georing-mosaic-readout.png"), full_page=True)
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="Export PNG").click()
    download = info.value
    assert download.suggested_filename == "fumarole_mosaic_20210412T1200_ash.png"
    picture = Image.open(download.path())
    assert picture.size == (1600, 650)
    assert picture.text["Title"] == "Global mosaic - Ash RGB"
    assert picture.text["Time"].startswith("2021-04-12 12:00 UTC") and "2021-04-12 12:00 UTC" in _title(page)
    assert "EUMETSAT" in picture.text["Credits"] and "JMA" in picture.text["Credits"]
    rgb = np.asarray(picture.convert("RGB")).astype(int)
    assert _coloured(rgb) > 0.15  # the mosaic is drawn
    picture.save(shots / "georing-mosaic-export.png")
