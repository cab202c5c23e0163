"""The archive page in a real browser: it loads with no error and lists the tiny archive's granules."""

import re

import panel as pn
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


# --- no server paths on the page; rescan is an admin action, rate-limited, off the event loop -------------------

import threading  # noqa: E402

from app.paths import REPO  # noqa: E402
from app.views import archive_overview as overview_mod  # noqa: E402


@pytest.fixture
def copy_archive(tiny_copy, tmp_path):
    """An Archive over a private copy of the tiny archive (its own catalogue), with one badly named granule."""
    text = (REPO / "catalogs" / "tiny.yaml").read_text().replace("{CATALOG_DIR}/../data/tiny", str(tiny_copy))
    cat = tmp_path / "copy.yaml"
    cat.write_text(text)
    bad = tiny_copy / "tropomi" / "2021" / "04" / "12" / "S5P_OFFL_L2__SO2____month13.nc"
    bad.write_bytes(b"not a granule")
    return Archive(str(cat))


@pytest.fixture
def gate(monkeypatch):
    overview_mod.RESCAN_GATE.reset()
    monkeypatch.setenv("FUMAROLE_RESCAN_INTERVAL_S", "3600")
    yield overview_mod.RESCAN_GATE
    overview_mod.RESCAN_GATE.reset()


def _markdown_texts(view) -> str:
    return "\n".join(str(m.object) for m in view.__panel__().select(pn.pane.Markdown))


def test_the_page_names_files_relative_to_the_archive_root(copy_archive, tiny_copy):
    view = ArchiveOverview(archive=copy_archive)
    df = view.summary_table()
    assert int(df.loc[df["product"] == "tropomi_so2", "granules"].iloc[0]) == 15
    lines = view.skipped_lines()
    assert len(lines) == 1
    assert lines[0].startswith("tropomi/2021/04/12/S5P_OFFL_L2__SO2____month13.nc: ")
    shown = _markdown_texts(view) + "\n" + str(view._skipped().object)
    assert "S5P_OFFL_L2__SO2____month13.nc" in shown and "Catalogue: `copy.yaml`" in shown
    assert str(tiny_copy) not in shown and str(tiny_copy.parent) not in shown
    assert "Catalogue: `tiny`" in _markdown_texts(ArchiveOverview(archive=Archive("tiny")))


def test_rescan_is_refused_without_the_admin_setting(copy_archive, gate, monkeypatch):
    monkeypatch.delenv("FUMAROLE_ADMIN", raising=False)
    calls = []
    monkeypatch.setattr(copy_archive, "refresh", lambda *a, **k: calls.append(1))
    view = ArchiveOverview(archive=copy_archive)
    assert view._refresh_button.disabled
    view._on_refresh()
    assert calls == [] and view.refreshes == 0 and not view.rescanning
    assert view.status == "Rescanning the archive is an admin action; the operator allows it with " \
                          "`fumarole serve --admin`."


def test_rescan_runs_in_a_thread_and_is_rate_limited(copy_archive, gate, monkeypatch):
    monkeypatch.setenv("FUMAROLE_ADMIN", "1")
    view = ArchiveOverview(archive=copy_archive)
    view.summary_table()  # the index is built on first use
    assert not view._refresh_button.disabled
    started, release = threading.Event(), threading.Event()
    seen = {}
    real_refresh = copy_archive.refresh

    def slow_refresh(*a, **k):
        seen["thread"] = threading.current_thread()
        started.set()
        assert release.wait(30)
        return real_refresh(*a, **k)

    monkeypatch.setattr(copy_archive, "refresh", slow_refresh)
    view._on_refresh()
    # the press returned while the rescan is still running: it runs in another thread
    assert started.wait(30)
    assert seen["thread"] is not threading.current_thread() and seen["thread"].name == "archive-rescan"
    assert view.rescanning and view._refresh_button.disabled and view.status.startswith("Rescanning the archive")
    # a second press (this page or another session of the process) while it runs is refused
    other = ArchiveOverview(archive=copy_archive)
    other._on_refresh()
    assert other.status == "A rescan is running already; its result will show here."
    release.set()
    assert view.wait_rescan(30)
    assert not view.rescanning and view.refreshes == 1
    assert view.status.startswith("Rescanned in ") and f": {len(copy_archive.index)} granules (0 new" in view.status
    assert "1 file(s) skipped." in view.status
    # and within the interval, once done, refused with the time to wait
    view._on_refresh()
    assert view.refreshes == 1 and "rescans are allowed once every 3600 s: try again in" in view.status


def test_rescan_gate_allows_one_rescan_per_interval():
    g = overview_mod.RescanGate()
    assert g.acquire(60, now=100.0) is None
    assert "running already" in g.acquire(60, now=101.0)
    g.release()
    assert g.acquire(60, now=130.0) == ("The archive was rescanned 30 s ago; rescans are allowed once every 60 s: "
                                        "try again in 30 s.")
    assert g.acquire(60, now=160.0) is None


def test_a_failed_rescan_is_said_without_the_server_path(copy_archive, gate, monkeypatch, tiny_copy):
    monkeypatch.setenv("FUMAROLE_ADMIN", "1")

    def broken(*a, **k):
        raise OSError(f"cannot list {tiny_copy}/tropomi")

    monkeypatch.setattr(copy_archive, "refresh", broken)
    view = ArchiveOverview(archive=copy_archive)
    view._on_refresh()
    assert view.wait_rescan(30)
    assert view.status == "The rescan failed: cannot list tropomi" and not view.rescanning
