"""VolcPlume in a real browser (Debian's chromium): loads cleanly, paints SO2, reacts, restores from the URL."""

import io
import time

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser


def _biggest_canvas_box(page):
    boxes = [c.bounding_box() for c in page.locator("canvas").all()]
    boxes = [b for b in boxes if b and b["width"] > 300 and b["height"] > 150]  # a phone's map: 360 × 180
    return max(boxes, key=lambda b: b["width"] * b["height"]) if boxes else None


def _map_pixels(page) -> np.ndarray:
    box = _biggest_canvas_box(page)
    assert box is not None, "no map canvas on the page"
    if box["y"] < 0 or box["y"] + box["height"] > page.viewport_size["height"]:  # below the controls on a phone
        canvases = [c for c in page.locator("canvas").all() if c.bounding_box() == box]
        canvases[0].scroll_into_view_if_needed()
        box = _biggest_canvas_box(page)
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


# --- issue 11: the page true to its controls ----------------------------------------------------------------------

from test_journeys_volcplume import ZONES, map_state  # noqa: E402 - the journeys' readers of the page's map


def _state_when(page, predicate, what):
    try:
        return _wait_until(lambda: (lambda s: s if s and predicate(s) else None)(map_state(page)), page=page)
    except AssertionError as exc:
        raise AssertionError(f"{what}: last map state {map_state(page)}") from exc


def _dark(rgb: np.ndarray) -> int:
    return int((rgb.sum(axis=-1) < 120).sum())


def test_a_zone_change_moves_the_map_and_keeps_everything_drawn(dashboard_server, page, shots):
    _open(page, f"{dashboard_server}/volcplume")
    for zone in ("Iceland", "Mediterranean", "World", "World (Pacific-centred)"):
        page.locator("select").first.select_option(zone)
        (x0, x1), (y0, y1) = ZONES[zone]
        s = _state_when(page, lambda s, x0=x0, x1=x1, y0=y0, y1=y1: s["x"][0] <= x0 and s["x"][1] >= x1
                        and s["y"][0] <= y0 + 0.5 and s["y"][1] >= y1 - 0.5, f"the {zone} extent")
        assert s["x"][1] - s["x"][0] < 1.3 * (x1 - x0) + 1 or s["y"][1] - s["y"][0] < 1.3 * (y1 - y0) + 1
        # coastlines and volcano outlines (black) are drawn in every zone, the Pacific-centred World included
        _wait_until(lambda: _dark(_map_pixels(page)) > 300, page=page)
        assert "x_range" in page.url and f"x_range=%5B{float(x0)}%2C+{float(x1)}%5D" in page.url
    page.screenshot(path=str(shots / "volcplume-pacific-world.png"), full_page=True)
    # the SO2 of every orbit is drawn in the Pacific frame too, and the CALIOP tracks (blue)
    rgb = _map_pixels(page)
    assert _so2_pixels(rgb) > 50
    assert int(((rgb[..., 2] > 120) & (rgb[..., 0] < 80) & (rgb[..., 1] < 120)).sum()) > 100


def test_a_zone_without_caliop_track_keeps_the_map(dashboard_server, page):
    _open(page, f"{dashboard_server}/volcplume")
    page.locator("select").first.select_option("Iceland")  # no CALIOP granule crosses Iceland on 2021-04-12
    _state_when(page, lambda s: s["x"][0] <= -32 and s["x"][1] >= -4, "the Iceland extent")
    _wait_until(lambda: _dark(_map_pixels(page)) > 300, page=page)  # coastlines and volcanoes: not blank
    assert page.locator(".alert-danger").count() == 0
    assert page.get_by_label("CALIOP granule").input_value() == ""  # the CALIOP granule select is empty


def test_title_and_colour_bar_follow_level_and_quantity(dashboard_server, page):
    _open(page, f"{dashboard_server}/volcplume")
    s = map_state(page)
    assert s["title"] == "TROPOMI SO2 7 km — 2021-04-12" and s["colorbar"] == "SO2 7 km, 2021-04-12 (DU)"
    page.get_by_role("button", name="PBL", exact=True).click()
    _state_when(page, lambda s: s["title"] == "TROPOMI SO2 PBL — 2021-04-12"
                and s["colorbar"] == "SO2 PBL, 2021-04-12 (DU)", "the PBL title and colour bar")
    page.get_by_role("button", name="15 km", exact=True).click()
    _state_when(page, lambda s: s["title"] == "TROPOMI SO2 15 km — 2021-04-12"
                and s["colorbar"] == "SO2 15 km, 2021-04-12 (DU)", "the 15 km title and colour bar")


def test_a_zoomed_permalink_reopens_zoomed_with_its_data(dashboard_server, page):
    url = f"{dashboard_server}/volcplume?zone=World&x_range=%5B-70.0%2C+-50.0%5D&y_range=%5B5.0%2C+20.0%5D"
    _open(page, url)
    s = map_state(page)
    assert s["x"][0] <= -70 and s["x"][1] >= -50 and s["y"][0] <= 5 and s["y"][1] >= 20
    assert s["x"][1] - s["x"][0] < 40  # the zoomed view, not the World
    assert page.locator("select").first.input_value() == "World"
    assert _so2_pixels(_map_pixels(page)) > 200  # the plume, drawn over the whole zoomed view


def test_a_bad_permalink_is_said_and_the_url_corrected(dashboard_server, page):
    page.goto(f"{dashboard_server}/volcplume?zone=Atlantis&level=3km&so2_max=abc")
    alert = page.get_by_text("This link had values that cannot be used").first
    alert.wait_for(timeout=90_000)
    zone = page.get_by_text("zone=Atlantis: zone:").first.inner_text()
    assert "does not accept 'Atlantis'" in zone and zone.endswith("used Caribbean")
    so2 = page.get_by_text("so2_max=abc:").first.inner_text()
    assert "'abc' cannot be read" in so2 and so2.endswith("used 20.0")
    _wait_until(lambda: "zone=Caribbean" in page.url and "so2_max=20.0" in page.url, page=page)
    assert "level=3km" in page.url and "Atlantis" not in page.url


def test_colour_range_min_above_max_is_refused_beside_it(dashboard_server, page):
    _open(page, f"{dashboard_server}/volcplume")
    box = page.get_by_label("SO2 min (DU)")
    box.fill("50")
    box.press("Enter")
    page.get_by_text("SO2 min (50) must be less than SO2 max (20).").wait_for(timeout=20_000)
    _wait_until(lambda: box.input_value() == "0.2", page=page)  # back to the value in use
    assert "so2_min=0.2" in page.url
    box = page.get_by_label("SO2 max (DU)")
    box.fill("-5")
    box.press("Enter")
    page.get_by_text("SO2 max must not be negative; got -5.").wait_for(timeout=20_000)
    assert "so2_max=20.0" in page.url


def test_every_control_is_reachable_by_keyboard_with_a_visible_ring(dashboard_server, page):
    _open(page, f"{dashboard_server}/volcplume")
    page.locator("select").first.focus()
    reached, outlines = [], set()
    for _ in range(80):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("""() => { let e = document.activeElement;
            while (e && e.shadowRoot && e.shadowRoot.activeElement) e = e.shadowRoot.activeElement;
            const st = getComputedStyle(e);
            return [e.tagName, (e.innerText || e.value || e.getAttribute('aria-label') || '').slice(0, 40),
                    st.outlineStyle + ' ' + st.outlineWidth]; }"""))
    texts = " | ".join(f"{t} {v}" for t, v, _ in reached)
    for wanted in ("Soufriere St. Vincent", "04:35 UTC N", "Export PNG", "Export netCDF", "Remove item"):
        assert wanted in texts, f"{wanted!r} not reached by Tab: {texts}"
    outlines = {o for t, _, o in reached if t in ("BUTTON", "SELECT", "INPUT")}
    assert any(o.startswith("solid 3px") for o in outlines), outlines
    # no trap: Tab leaves the radii and reaches the CALIOP select after them
    kinds = [t for t, _, _ in reached]
    assert kinds.count("SELECT") >= 2


def test_the_wheel_zooms_only_after_a_click_on_the_map(dashboard_server, page):
    _open(page, f"{dashboard_server}/volcplume")
    js = """() => { for (const d of Bokeh.documents) for (const m of d._all_models.values())
        if (m.name === 'volcplume-map') return m.toolbar.active_scroll ? m.toolbar.active_scroll.type : null; }"""
    assert page.evaluate(js) is None
    before = map_state(page)
    box = _biggest_canvas_box(page)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 300)  # scrolls the page, not the map
    assert map_state(page)["x"] == before["x"]
    page.mouse.click(box["x"] + box["width"] / 3, box["y"] + box["height"] / 2)
    _wait_until(lambda: page.evaluate(js) == "WheelZoomTool", page=page)


#: Every visible button, input and select (inside the widgets' shadow roots too) that sticks out of the window:
#: "label: left–right" of each.
CONTROLS_OUTSIDE_JS = """() => {
  const found = [];
  const walk = root => {
    for (const e of root.querySelectorAll('*')) {
      if (e.shadowRoot) walk(e.shadowRoot);
      if (!['BUTTON', 'INPUT', 'SELECT'].includes(e.tagName)) continue;
      const r = e.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || getComputedStyle(e).visibility === 'hidden') continue;
      if (r.left < -1 || r.right > window.innerWidth + 1)
        found.push(`${e.getAttribute('aria-label') || e.innerText || e.type}: `
                   + `${r.left.toFixed(0)}–${r.right.toFixed(0)}`);
    }
  };
  walk(document);
  return found;
}"""


def test_viewport_meta_and_screenshots_at_three_sizes(dashboard_server, page, shots):
    """The page fits 1920×1080, 1080×1920 and a 390×844 phone: no sideways scrolling, the map the phone's width,
    the time-series card's rows wrapped inside it (screenshots of the whole page, the card open)."""
    for name, (w, h) in {"1920x1080": (1920, 1080), "1080x1920": (1080, 1920), "390x844": (390, 844)}.items():
        page.set_viewport_size({"width": w, "height": h})
        _open(page, f"{dashboard_server}/volcplume")
        assert page.evaluate("() => document.querySelector('meta[name=viewport]').content") == \
            "width=device-width, initial-scale=1"
        page.get_by_text("Satellite time series around a volcano").click()
        page.get_by_role("button", name="Compute time series").wait_for(timeout=30_000)
        overflow = "() => document.documentElement.scrollWidth - window.innerWidth"
        assert page.evaluate(overflow) <= 1, f"{name}: the page is wider than the window"
        # no control of the time-series card sticks out of the window (its rows wrap)
        outside = page.evaluate(CONTROLS_OUTSIDE_JS)
        assert not outside, f"{name}: controls out of the {w} px window: {outside}"
        box = _biggest_canvas_box(page)
        if w < 500:  # a phone: the map takes the window's width
            assert box["width"] >= 0.9 * w, f"the map is {box['width']:.0f} px wide on a {w} px phone"
        page.screenshot(path=str(shots / f"volcplume-{name}.png"), full_page=True)
