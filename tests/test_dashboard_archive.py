"""The archive page in a real browser: it loads with no error and lists the tiny archive's granules."""

import re

import pytest

from app.data.archive import Archive
from app.views.archive_overview import ArchiveOverview


def test_summary_table_counts_the_tiny_archive(tiny_archive_path):
    view = ArchiveOverview(archive=Archive("tiny"))
    df = view.summary_table()
    tropomi = df[df["product"] == "tropomi_so2"]
    assert list(tropomi["day"]) == ["2021-04-12"]
    # all S5P orbits starting on 2021-04-12: 18112 ... 18126
    assert int(tropomi["granules"].iloc[0]) == 15
    assert tropomi["orbits"].iloc[0] == "18112–18126"


@pytest.mark.browser
def test_archive_page_lists_granules(dashboard_server, page, shots):
    page.goto(f"{dashboard_server}/archive")
    page.get_by_text("tropomi_so2").first.wait_for(timeout=60_000)
    # Panel renders into shadow roots: Playwright's locators pierce them, inner_text("body") does not
    page.get_by_text("18112–18126").wait_for(timeout=30_000)
    assert page.get_by_text(re.compile("^caliop_l1b$")).count() >= 1
    page.screenshot(path=str(shots / "archive.png"), full_page=True)


@pytest.mark.browser
def test_user_guide_page_is_linked_and_explains_the_filters(dashboard_server, page):
    page.goto(f"{dashboard_server}/volcplume")
    page.get_by_role("link", name="User guide").click()
    page.get_by_text("Edge pixels filter").first.wait_for(timeout=60_000)
    assert page.url.endswith("/guide")
