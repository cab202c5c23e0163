"""The time-series panel of VolcPlume in a real browser: open the card, compute, see the plots and the progress."""

import time

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

CARD_TITLE = "Satellite time series around a volcano"


def _visible_plot_boxes(page) -> list[dict]:
    boxes = [c.bounding_box() for c in page.locator("canvas").all()]
    return [b for b in boxes if b and b["width"] > 200 and b["height"] > 150]


def _wait_until(predicate, page, timeout_s=60.0, what="condition"):
    """Poll ``predicate`` until it returns something truthy, letting the browser work between looks."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(250)
    raise AssertionError(f"{what} not met within {timeout_s} s")


def test_compute_shows_the_mass_plot_and_a_complete_progress(dashboard_server, page, shots):
    page.set_viewport_size({"width": 1400, "height": 2300})  # the page scrolls inside its main area: show it all
    page.goto(f"{dashboard_server}/volcplume")
    page.get_by_text("Orbits to display").wait_for(timeout=90_000)
    map_box = _wait_until(lambda: _visible_plot_boxes(page), page, what="the map is drawn")
    n_before = len(map_box)

    page.get_by_text(CARD_TITLE).click()
    compute = page.get_by_role("button", name="Compute time series")
    compute.wait_for(state="visible", timeout=30_000)
    # the volcano and filters come from the map; add the two largest disks so two orbits are in the table
    expect(page.get_by_text("Filters (from the map): QA > 0.5, SZA ≤ 80°")).to_be_visible(timeout=30_000)
    # where it runs is a configured cluster chosen by name: no field takes a scheduler address
    expect(page.get_by_text("Run on (cluster)")).to_be_visible(timeout=30_000)
    # the wind for the flux comes from the catalogue by default (no scenario of the sample archive)
    expect(page.get_by_text("Catalogue wind")).to_be_visible(timeout=30_000)
    assert page.locator("input[placeholder*='://']").count() == 0 and page.get_by_text("Dask scheduler").count() == 0
    assert page.locator("select", has=page.locator("option", has_text="local")).count() == 1
    # the card's own radii (the map has a row of circle checkboxes with the same numbers)
    radii = page.locator(".card").filter(has_text="Radii of the disks (km)").last
    for radius in ("1000", "2000"):
        radii.get_by_role("checkbox", name=radius, exact=True).check()
    compute.click()

    done = page.get_by_text("granules — done")
    _wait_until(lambda: done.count() > 0 and len(_visible_plot_boxes(page)) >= n_before + 3, page,
                what="the time-series plots are drawn and the progress is complete")
    progress = page.locator("progress").first
    assert progress.get_attribute("value") == progress.get_attribute("max") == "100"
    expect(page.locator(".alert", has_text="SO2 mass so2_7km: 2 orbits × 12 radii")).to_be_visible(timeout=30_000)
    assert page.get_by_role("button", name="Download CSV").is_enabled()

    plots = sorted(_visible_plot_boxes(page), key=lambda b: (b["y"], b["x"]))[n_before:]
    mass_time = plots[0]
    assert mass_time["width"] > 350 and mass_time["height"] > 250
    page.screenshot(path=str(shots / "volcplume-timeseries.png"), full_page=True)
    top = min(b["y"] for b in plots) - 60
    bottom = max(b["y"] + b["height"] for b in plots) + 10
    page.screenshot(path=str(shots / "volcplume-timeseries-plots.png"), full_page=True,
                    clip={"x": 0, "y": top, "width": page.viewport_size["width"], "height": bottom - top})
