"""VolcPlume in a real browser (Debian's chromium): loads cleanly, paints SO2, reacts, restores from the URL."""

import io
import time

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser


def _biggest_canvas_box(page):
    boxes = [c.bounding_box() for c in page.locator("canvas").all()]
    boxes = [b for b in boxes if b and b["width"] > 300 and b["height"] > 200]
    return max(boxes, key=lambda b: b["width"] * b["height"]) if boxes else None


def _map_pixels(page) -> np.ndarray:
    box = _biggest_canvas_box(page)
    assert box is not None, "no map canvas on the page"
    png = page.screenshot(clip=box)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _so2_pixels(rgb: np.ndarray) -> int:
    """Pixels coloured by the upper SO2 scale (orange, red, dark red-brown)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return int(((r > 120) & (g < 140) & (b < 90) & (r - g > 60)).sum())


def _wait_until(predicate, timeout_s=45.0, page=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value is not None and value is not False:
            return value
        page.wait_for_timeout(250)  # let the browser work before looking again
    raise AssertionError("condition not met within the deadline")


def _open(page, url):
    page.goto(url)
    page.get_by_text("Orbits to display").wait_for(timeout=90_000)
    # the map is painted when the SO2 colours appear in it
    _wait_until(lambda: _biggest_canvas_box(page) is not None and _so2_pixels(_map_pixels(page)) > 50, page=page)


def test_map_is_painted_and_level_changes_the_picture(dashboard_server, page, shots):
    _open(page, f"{dashboard_server}/volcplume")
    before = _map_pixels(page)
    page.screenshot(path=str(shots / "volcplume-7km.png"), full_page=True)
    assert _so2_pixels(before) > 50
    # coastlines (black) are drawn
    assert int((before.sum(axis=-1) < 120).sum()) > 200
    page.get_by_role("button", name="PBL").click()
    # the plume is high: the PBL box gives larger columns, so more of the map turns red
    after = _wait_until(lambda: (lambda px: px if _so2_pixels(px) > _so2_pixels(before) * 1.2 else None)(
        _map_pixels(page)), page=page)
    assert np.abs(after - before).sum() > 0
    page.screenshot(path=str(shots / "volcplume-pbl.png"), full_page=True)
    assert "level=PBL" in page.url


def test_permalink_restores_zone_and_level(dashboard_server, page, browser, shots):
    _open(page, f"{dashboard_server}/volcplume?zone=World&level=15km")
    page.screenshot(path=str(shots / "volcplume-world-15km.png"), full_page=True)
    assert page.locator("select").first.input_value() == "World"
    active = page.locator(".bk-btn.bk-active").all_inner_texts()
    assert "15 km" in active and "SO2 column (DU)" in active  # the label of level=15km; the column is shown
    # all 15 orbits of the day cross the World zone
    assert page.get_by_text("#18112: 00:").count() >= 1


def test_a_level_the_files_lack_says_why_over_an_empty_map(dashboard_server, page, shots):
    _open(page, f"{dashboard_server}/volcplume")
    before = _so2_pixels(_map_pixels(page))
    reason = "processor version 02.01.04 predates it"
    # beside the selector, before anything is chosen: the 2021 files have no 3 km column and no layer height
    page.get_by_text("unavailable: " + reason).first.wait_for(timeout=30_000)
    page.get_by_role("button", name="3 km").click()
    alert = page.get_by_text("SO2 3 km is unavailable on 2021-04-12").first  # the alert above the map
    alert.wait_for(timeout=45_000)
    assert reason in alert.inner_text()
    # the plume's pixels go (about 1,000 at 7 km; the red left is the volcano triangles' and the colour bar's),
    # but the orbits stay listed
    _wait_until(lambda: _so2_pixels(_map_pixels(page)) < before - 500, page=page)
    assert page.get_by_text("#18121: 16:").count() >= 1
    assert "level=3km" in page.url
    page.screenshot(path=str(shots / "volcplume-3km-unavailable.png"), full_page=True)


def test_curtain_appears_for_a_day_with_caliop(dashboard_server, page, shots):
    _open(page, f"{dashboard_server}/volcplume")
    n_before = len([c for c in page.locator("canvas").all() if (c.bounding_box() or {}).get("height", 0) > 150])
    page.locator("select").nth(1).select_option(label="CALIOP 532 nm total backscatter")

    def curtain():
        boxes = [c.bounding_box() for c in page.locator("canvas").all()]
        big = [b for b in boxes if b and b["height"] > 150 and b["width"] > 300]
        return big if len(big) > n_before else None

    boxes = _wait_until(curtain, page=page)
    lowest = max(boxes, key=lambda b: b["y"])
    rgb = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=lowest))).convert("RGB")).astype(int)
    # clear air in the CALIOP scale is dark blue: a good part of the curtain is blue-dominant
    blue = (rgb[..., 2] > rgb[..., 0] + 40) & (rgb[..., 2] > rgb[..., 1])
    assert blue.mean() > 0.1
    page.screenshot(path=str(shots / "volcplume-curtain.png"), full_page=True)


def test_volcano_circles_appear(dashboard_server, page, browser, shots):
    # the default view has dashed circles at 100, 250 and 500 km around La Soufrière; none when the URL says so
    _open(page, f"{dashboard_server}/volcplume")
    with_circles = _map_pixels(page)
    other = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        _open(other, f"{dashboard_server}/volcplume?radii=%5B%5D")
        without = _map_pixels(other)
        other.screenshot(path=str(shots / "volcplume-no-circles.png"), full_page=True)
    finally:
        other.close()
    assert with_circles.shape == without.shape
    # the same data, so what differs is the circles: hundreds of pixels, darker where the dashed lines are
    changed = np.abs(with_circles - without).sum(axis=-1) > 150
    darker = with_circles.sum(axis=-1) < without.sum(axis=-1)
    # (a few hundred pixels also differ elsewhere: labels and antialiasing of the two renders)
    assert (changed & darker).sum() > 1000, int((changed & darker).sum())
    assert (changed & darker).sum() > 2 * (changed & ~darker).sum()


def _magenta(rgb: np.ndarray) -> int:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return int(((r > 180) & (g < 80) & (b > 80) & (b < 180)).sum())


def test_hovering_the_curtain_marks_the_place_on_the_map(dashboard_server, page, shots):
    page.set_viewport_size({"width": 1400, "height": 1500})  # map and curtain on screen together
    _open(page, f"{dashboard_server}/volcplume")
    page.locator("select").nth(1).select_option(label="CALIOP 532 nm total backscatter")
    map_box = _biggest_canvas_box(page)

    def curtain_box():
        boxes = [c.bounding_box() for c in page.locator("canvas").all()]
        below = [b for b in boxes if b and b["height"] > 150 and b["width"] > 300 and b["y"] > map_box["y"] + 300]
        return below[0] if below else None

    box = _wait_until(curtain_box, page=page)
    page.mouse.move(map_box["x"] + 5, map_box["y"] + 5)
    before = _magenta(np.asarray(Image.open(io.BytesIO(page.screenshot(clip=map_box))).convert("RGB")).astype(int))
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    # the marker (a magenta disc on the selected track) appears on the map
    _wait_until(lambda: _magenta(np.asarray(Image.open(io.BytesIO(page.screenshot(clip=map_box))).convert(
        "RGB")).astype(int)) > before + 40 or None, page=page)
    page.screenshot(path=str(shots / "volcplume-curtain-hover.png"))
