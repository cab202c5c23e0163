"""GEO ring in a real browser on a running server: first paint of the ring, and a GEO step with prefetched frames.

    python -m benchmarks.bench_georing_ui [--catalog catalogs/tiny.yaml] [--steps 20]

Starts ``fumarole serve`` on the catalogue (default: the tiny archive), drives Debian's chromium (Playwright), and
measures, each against a baseline taken in the same run:

- **first paint of the ring**: from ``page.goto('/georing')`` until the five ring images are painted; the first
  page after the server started (cold: the slots are read) and the next ones (warm: the frames are cached); ratio
  warm / cold;
- **a GEO step**: one satellite at 10 fps asked; a click on ``>`` until the canvas shows the next slot (read from the
  stamp drawn in the frame, :func:`app.render.geo.read_stamp`) — the first step of a product never shown (cold:
  read, regrid, compose) and then the steps over frames already made (the animation prefetches them); ratio
  prefetched / cold, against the budget of 100 ms a frame at 10 fps (the issue's target: < 150 ms);
- **the rate played**: Play at 10 fps for a few seconds, then the rate the page says it shows.

Prints a markdown table and writes it to ``benchmarks/out/bench_georing_ui.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import OUT, machine_line

REPO = Path(__file__).resolve().parent.parent


def _serve(catalog: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, FUMAROLE_CATALOG=str(catalog), BOKEH_LOG_LEVEL="warn")
    return subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--address", "127.0.0.1"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _until(predicate, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
    raise TimeoutError("condition not met")


def _code(page) -> int | None:
    from PIL import Image

    from app.render.geo import read_stamp

    boxes = [c.bounding_box() for c in page.locator(".georing-image canvas").all()]
    boxes = [b for b in boxes if b and b["width"] > 100]
    if not boxes:
        return None
    px = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=boxes[0]))).convert("RGB"))
    return read_stamp(px)


def _ring_painted(page) -> bool:
    from PIL import Image

    boxes = [c.bounding_box() for c in page.locator(".georing-card canvas").all()]
    boxes = {tuple(round(v) for v in b.values()): b for b in boxes if b and b["width"] > 100}
    painted = 0
    for b in boxes.values():
        px = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=b))).convert("RGB")).astype(int)
        painted += float((px.std(axis=-1) > 12).mean()) > 0.25
    return painted >= 5


def first_paint(browser, base: str) -> float:
    """Seconds from opening /georing to the five ring images painted (a new page)."""
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        t0 = time.perf_counter()
        page.goto(f"{base}/georing")
        _until(lambda: _ring_painted(page))
        return time.perf_counter() - t0
    finally:
        page.close()


def steps(browser, base: str, product: str, n: int) -> list[float]:
    """Seconds of ``n`` clicks on ``>`` (or ``<``, back and forth) until the canvas shows the next slot's stamp."""
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        page.goto(f"{base}/georing?mode=satellite&satellite=G16&time=12:00&product={product}&speed=10.0")
        before = _until(lambda: _code(page))
        out = []
        for i in range(n):
            t0 = time.perf_counter()
            page.get_by_role("button", name=">" if i % 2 == 0 else "<", exact=True).first.click()
            before = _until(lambda b=before: (lambda c: c if c not in (None, b) else None)(_code(page)))
            out.append(time.perf_counter() - t0)
        return out
    finally:
        page.close()


def played_rate(browser, base: str, seconds: float = 4.0) -> str:
    """The page's own words on the rate shown after playing ``seconds`` at 10 fps."""
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        page.goto(f"{base}/georing?mode=satellite&satellite=G16&time=12:00&speed=10.0")
        _until(lambda: _code(page))
        page.locator(".georing-play-toggle button").first.click()
        deadline = time.monotonic() + seconds
        text = ""
        while time.monotonic() < deadline:
            text = page.locator(".georing-play").inner_text()
        page.locator(".georing-play-toggle button").first.click()
        return text
    finally:
        page.close()


def main(argv=None) -> int:
    """Run the measurements and print the table."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS, _free_port, stop_process, wait_for_http

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--catalog", default=str(REPO / "catalogs" / "tiny.yaml"))
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    port = _free_port()
    proc = _serve(Path(args.catalog), port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/", proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            cold_paint = first_paint(browser, base)
            warm_paint = [first_paint(browser, base) for _ in range(3)]
            cold_step = steps(browser, base, "dust", 1)[0]
            warm_steps = steps(browser, base, "dust", args.steps)
            rate = played_rate(browser, base)
            browser.close()
    finally:
        stop_process(proc)
    warm = statistics.median(warm_paint)
    step = statistics.median(warm_steps)
    rows = [
        ("first paint of the ring, cold (first page after start)", f"{cold_paint:.2f} s", "baseline", "< 3 s"),
        ("first paint of the ring, warm (median of 3)", f"{warm:.2f} s", f"{warm / cold_paint:.2f}", "< 3 s"),
        ("GEO step, cold (a product never shown)", f"{cold_step * 1000:.0f} ms", "baseline", ""),
        (f"GEO step, prefetched frames (median of {len(warm_steps)}; p90 "
         f"{np.percentile(warm_steps, 90) * 1000:.0f} ms)", f"{step * 1000:.0f} ms", f"{step / cold_step:.2f}",
         "< 150 ms"),
        ("play at 10 fps asked: the page says", rate.replace("▶ ", ""), "", "≥ 10 fps or said"),
    ]
    table = ["| measure | value | ratio | target |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    print(machine_line())
    print("\n".join(table))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_georing_ui.json").write_text(json.dumps({
        "machine": machine_line(), "cold_paint_s": cold_paint, "warm_paint_s": warm_paint,
        "cold_step_s": cold_step, "steps_s": warm_steps, "rate_text": rate, "table": table}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
