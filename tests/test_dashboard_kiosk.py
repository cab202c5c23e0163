"""The kiosk in a browser: it plays the playlist by itself in both orientations, with a QR code to each view.

A server of its own, on the tiny archive, with the default playlist's events at 6 s each (a copy in the state
folder, named by FUMAROLE_KIOSK_PLAYLIST). Screenshots of each event go to screenshots/kiosk-<w>x<h>-<n>-<id>.png.
"""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import yaml
from playwright.sync_api import expect

from app.paths import REPO
from tests.conftest import stop_process, wait_for_http

pytestmark = pytest.mark.browser

SECONDS = 6


@pytest.fixture(scope="module")
def kiosk_server(tiny_archive_path):
    """`fumarole serve` with a fast copy of the default playlist; yields (base URL, the playlist's events)."""
    doc = yaml.safe_load((REPO / "catalogs" / "kiosk.playlist.yaml").read_text())
    for event in doc["events"]:
        event["seconds"] = SECONDS * (2 if event["product"] == "geo" else 1)  # the animation: 2 slots of 6 s
    state = Path(os.environ["FUMAROLE_STATE_DIR"])
    playlist = state / "kiosk-test.yaml"
    playlist.write_text(yaml.safe_dump(doc))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, FUMAROLE_CATALOG=str(REPO / "catalogs" / "tiny.yaml"), BOKEH_LOG_LEVEL="warn",
               FUMAROLE_KIOSK_PLAYLIST=str(playlist))
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--address",
                             "127.0.0.1"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/", proc)
        yield url, doc["events"]
    finally:
        stop_process(proc)


def _frame_png(page) -> bytes:
    src = page.locator(".kiosk-frame").get_attribute("src")
    assert src.startswith("data:image/png;base64,")
    return base64.b64decode(src.split(",", 1)[1])


def _qr_matches(png: bytes) -> str:
    """The URL the frame's QR code encodes: its modules, read from the pixels, equal segno's code of that URL."""
    import segno
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    url = image.text["URL"]
    x0, y0, module, n = (int(v) for v in image.text["QR box"].split(","))
    grey = np.asarray(image.convert("L"))
    centres = (np.arange(n) * module + module // 2)
    seen = grey[y0 + centres[:, None], x0 + centres[None, :]] < 128
    expected = np.array([list(row) for row in segno.make(url, error="m", micro=False).matrix], dtype=bool)
    assert seen.shape == expected.shape == (n, n) and n >= 21 and (n - 17) % 4 == 0  # a QR version's size
    assert (seen == expected).all(), f"{int((seen != expected).sum())} modules differ from the code of {url}"
    return url


@pytest.mark.parametrize("width,height", [(1920, 1080), (1080, 1920)])
def test_kiosk_plays_each_event(browser, kiosk_server, shots, width, height):
    base, events = kiosk_server
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(base + "/kiosk")
        page.wait_for_selector(".kiosk.has-frame", timeout=120_000)
        assert page.evaluate("document.body.scrollHeight <= window.innerHeight + 1")
        # nothing a passer-by can use: no control, no link, no context menu
        assert page.locator("input, button, select, textarea, a[href]").count() == 0
        assert page.evaluate("""() => { const e = new MouseEvent('contextmenu', {bubbles: true, cancelable: true});
                                        document.body.dispatchEvent(e); return e.defaultPrevented; }""")
        seen_order = []
        for n, event in enumerate(events):
            ident = event["id"]
            # the page advances by itself: wait on the DOM's event changing to this one
            expect(page.locator(".kiosk")).to_have_attribute("data-event", ident, timeout=90_000)
            img = page.locator(".kiosk-frame").element_handle()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img)
            png = _frame_png(page)
            page.screenshot(path=str(shots / f"kiosk-{width}x{height}-{n + 1}-{ident}.png"))
            # the screenshot and the frame read are of this event (it was still on screen after them)
            assert page.locator(".kiosk").get_attribute("data-event") == ident
            seen_order.append(ident)
            assert page.locator(".kiosk-title").text_content() == event["title"]
            from PIL import Image

            image = Image.open(io.BytesIO(png))
            assert image.size == (width, height)  # drawn at the window's size class
            assert image.text["Title"] == event["title"]
            url = urllib.parse.urlparse(_qr_matches(png))
            query = urllib.parse.parse_qs(url.query)
            assert url.netloc == urllib.parse.urlparse(base).netloc
            if event["product"] in ("geo", "mosaic"):
                assert url.path == "/georing" and query["date"] == ["2021-04-12"] and "time" in query
                assert query["product"] == [event["geo_product"]]
            else:
                assert url.path == "/volcplume" and query["zone"] == [event["zone"]]
                assert query["date"] == ["2021-04-12"] and query["level"] == [event.get("level", "7km")]
            shown = page.locator(".kiosk-frame").bounding_box()
            assert shown["width"] == pytest.approx(width, abs=1) and shown["height"] == pytest.approx(height, abs=1)
        assert seen_order == [e["id"] for e in events]
        # and it loops: the first event comes back by itself
        expect(page.locator(".kiosk")).to_have_attribute("data-event", events[0]["id"], timeout=90_000)
        assert not page.locator(".kiosk-note").is_visible()
    finally:
        context.close()
    assert not errors, errors


def test_damaged_data_keep_the_last_good_frame_with_its_age_on_the_page(browser, tiny_copy, tmp_path, shots):
    """The curtain's granules are damaged after the server started: the plume's frame stays, with a note of its
    age and why, in the page (not only in the log)."""
    from tests.conftest import archive_over, served

    archive_over(tiny_copy, tmp_path)  # writes tmp_path/catalogs/tiny.yaml over the copy (and indexes it)
    doc = yaml.safe_load((REPO / "catalogs" / "kiosk.playlist.yaml").read_text())
    events = [dict(e, seconds=SECONDS) for e in doc["events"] if e["id"] in ("plume", "curtain")]
    playlist = Path(os.environ["FUMAROLE_STATE_DIR"]) / "kiosk-damaged.yaml"  # a playlist must be in the state folder
    playlist.write_text(yaml.safe_dump({**doc, "events": events}))
    with served(tmp_path / "catalogs" / "tiny.yaml", env={"FUMAROLE_KIOSK_PLAYLIST": str(playlist)},
                args=("--no-warm",), ready="/liveness") as base:
        damaged = sorted((tiny_copy / "caliop").rglob("CAL_LID_*2021-04-12*.hdf"))
        assert damaged
        for path in damaged:
            path.write_bytes(b"\x0e\x03\x13\x01" + b"not an HDF4 file" * 64)
        context = browser.new_context(viewport={"width": 1920, "height": 1080})
        page = context.new_page()
        try:
            page.goto(base + "/kiosk")
            expect(page.locator(".kiosk")).to_have_attribute("data-event", "plume", timeout=120_000)
            page.wait_for_selector(".kiosk.has-frame", timeout=120_000)
            plume = _frame_png(page)
            note = page.locator(".kiosk-note")
            expect(note).to_be_visible(timeout=90_000)
            text = note.text_content()
            page.screenshot(path=str(shots / "kiosk-damaged-curtain.png"))
            assert text.startswith("Shown since ") and " UTC — the data for “" in text and "could not be read" in text
            # the damaged granules are named, or (once the index has dropped them) the day has none left to show
            assert any(p.name in text for p in damaged) or "no CALIOP granule crosses Caribbean" in text, text
            assert "Traceback" not in text
            assert page.locator(".kiosk").get_attribute("data-event") == "plume" and _frame_png(page) == plume
        finally:
            context.close()
