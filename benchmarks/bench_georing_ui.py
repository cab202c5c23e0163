"""GEO ring in a real browser on a running server: first paint of the ring, a GEO step, the rate played.

    python -m benchmarks.bench_georing_ui [--catalog catalogs/tiny.yaml] [--steps 20] [--frames 50]

Starts ``fumarole serve`` on the catalogue (default: the tiny archive) twice — with the page's frame player (frames
sent ahead to the browser and swapped there, :class:`app.views.georing.FramePlayer`) and without it
(``FUMAROLE_GEO_PLAYER=0``: every step drawn by the server; the baseline, in the same run) — drives Debian's
chromium (Playwright) and measures:

- **first paint of the ring**: from ``page.goto('/georing')`` until the five ring thumbnails are painted; cold (the
  first page after the start) and warm (median of 5);
- **a GEO step** (one satellite, G16 Dust, ``>`` then ``<`` alternately, over frames already made: one step forth
  and back first, not counted): in the page, from the click event to the animation frame in which the stamp's
  source in the page's Bokeh document changed (the new frame is painted in that animation frame); and end to end,
  from Playwright's click to the page's stamp seen equal (SHA-256) to the stamp rendered here for the next slot
  (:func:`app.render.geo.stamp_rgba`), which adds Playwright's own click and polling time. Medians and p90;
  ratio player / server;
- **the rate played** at 10 fps asked: the times of the frames the page showed (the stamp source's changes, seen
  at each animation frame), the rate over 50 consecutive frames after 5 of warm-up (20 without the player); and
  what the page says.

Every wait is on a condition. Prints a markdown table and writes ``benchmarks/out/bench_georing_ui.json``.
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


def _serve(catalog: Path, port: int, player: str = "1") -> subprocess.Popen:
    env = dict(os.environ, FUMAROLE_CATALOG=str(catalog), BOKEH_LOG_LEVEL="warn", FUMAROLE_GEO_PLAYER=player)
    return subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--address", "127.0.0.1"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _until(predicate, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
    raise TimeoutError("condition not met")


def _stamp(page) -> str | None:
    from tests.test_journeys_georing import shown_stamp

    return shown_stamp(page)


def _ring_painted(page) -> bool:
    from PIL import Image

    boxes = [i.bounding_box() for i in page.locator("img.georing-thumb").all()]
    boxes = {tuple(round(v) for v in b.values()): b for b in boxes if b and b["width"] > 100}
    painted = 0
    for b in boxes.values():
        px = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=b, full_page=True))).convert("RGB")).astype(int)
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


#: In the page: the click times, and the animation-frame times at which the stamp's source changed.
WATCH_JS = """() => {
  const w = window.__bench = {clicks: [], changes: []};
  document.addEventListener('click', () => w.clicks.push(performance.now()), true);
  let last = null;
  const newest = () => {
    let best = null;
    for (const d of Bokeh.documents) for (const m of d._all_models.values()) {
      if (m.name !== 'georing-stamp' || !m.data_source) continue;
      const n = parseInt(String(m.id).replace(/\\D/g, '')) || 0;
      if (!best || n > best.n) best = {n, m};
    }
    return best && best.m;
  };
  const poll = (now) => {
    const m = newest();
    const img = m && m.data_source.data.image[0];
    if (img && img !== last) { last = img; w.changes.push(now); }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
}"""


def _open_g16(browser, base: str, product: str):
    from tests.test_journeys_georing import stamp_digests, stamp_text

    state = {"mode": "satellite", "satellite": "G16", "date": "2021-04-12", "product": product}
    want = {hhmm: stamp_digests(stamp_text({**state, "time": hhmm})) for hhmm in ("12:00", "15:00")}
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(f"{base}/georing?mode=satellite&satellite=G16&date=2021-04-12&time=12:00&product={product}"
              f"&speed=10.0")
    _until(lambda: _stamp(page) in want["12:00"])
    page.evaluate(WATCH_JS)
    return page, want


def steps(browser, base: str, product: str, n: int) -> tuple[list[float], list[float]]:
    """(in the page, end to end) seconds of ``n`` clicks on ``>`` / ``<`` until the next slot's stamp is drawn."""
    page, want = _open_g16(browser, base, product)
    try:
        in_page, end_to_end = [], []
        for i in range(n + 2):
            t0 = time.perf_counter()
            page.get_by_role("button", name=">" if i % 2 == 0 else "<", exact=True).first.click()
            after = want["15:00" if i % 2 == 0 else "12:00"]
            _until(lambda a=after: _stamp(page) in a)
            wall = time.perf_counter() - t0
            w = page.evaluate("window.__bench")
            click = w["clicks"][-1]
            changed = [t for t in w["changes"] if t >= click - 17]  # (an animation frame's time is its start)
            if i >= 2:
                end_to_end.append(wall)
                in_page.append(max(changed[0] - click, 0) / 1000 if changed else wall)
        return in_page, end_to_end
    finally:
        page.close()


def played(browser, base: str, frames: int = 50) -> tuple[float, str, int]:
    """(rate over ``frames`` consecutive frames after 5 of warm-up, the page's words, frames seen) at 10 fps."""
    page, _ = _open_g16(browser, base, "dust")
    try:
        page.locator(".georing-play-toggle button").first.click()
        _until(lambda: len(page.evaluate("window.__bench.changes")) >= frames + 6, timeout_s=frames * 2.0)
        times = page.evaluate("window.__bench.changes")
        text = page.locator(".georing-play").inner_text()
        page.locator(".georing-play-toggle button").first.click()
        run = times[5:5 + frames + 1]
        return frames / ((run[-1] - run[0]) / 1000), text, len(times)
    finally:
        page.close()


def measure(browser, base: str, n: int, frames: int, paint: bool) -> dict:
    """Every measure on one server."""
    out = {}
    if paint:
        out["cold_paint_s"] = first_paint(browser, base)
        out["warm_paint_s"] = [first_paint(browser, base) for _ in range(5)]
    out["step_in_page_s"], out["step_end_to_end_s"] = steps(browser, base, "dust", n)
    out["rate_fps"], out["rate_text"], out["frames_seen"] = played(browser, base, frames)
    return out


def main(argv=None) -> int:
    """Run the measurements (with the page's player, then without it) and print the table."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS, _free_port, stop_process, wait_for_http

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--catalog", default=str(REPO / "catalogs" / "tiny.yaml"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--frames", type=int, default=50)
    args = ap.parse_args(argv)
    results = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for name, player in (("player", "1"), ("server", "0")):
            port = _free_port()
            proc = _serve(Path(args.catalog), port, player)
            base = f"http://127.0.0.1:{port}"
            try:
                wait_for_http(base + "/", proc)
                results[name] = measure(browser, base, args.steps, args.frames if player == "1" else 20,
                                        paint=player == "1")
            finally:
                stop_process(proc)
        browser.close()
    table = _table(results, args.frames)
    print(machine_line())
    print("\n".join(table))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_georing_ui.json").write_text(json.dumps({"machine": machine_line(), **results, "table": table},
                                                         indent=1))
    return 0


def _table(results: dict, frames: int) -> list[str]:
    p, s = results["player"], results["server"]
    med = statistics.median

    def ms(values):
        return f"{med(values) * 1000:.0f} ms (p90 {np.percentile(values, 90) * 1000:.0f})"

    rows = [
        ("first paint of the ring, cold (first page after start)", f"{p['cold_paint_s']:.2f} s", "", "< 3 s"),
        ("first paint of the ring, warm (median of 5)", f"{med(p['warm_paint_s']):.2f} s",
         f"{med(p['warm_paint_s']) / p['cold_paint_s']:.2f} of cold", "< 3 s"),
        (f"GEO step in the page, drawn by the server (baseline, {len(s['step_in_page_s'])} steps)",
         ms(s["step_in_page_s"]), "baseline", ""),
        (f"GEO step in the page, frames sent ahead ({len(p['step_in_page_s'])} steps)",
         ms(p["step_in_page_s"]), f"{med(p['step_in_page_s']) / med(s['step_in_page_s']):.3f}", "< 150 ms"),
        ("GEO step end to end (Playwright click to stamp seen), drawn by the server", ms(s["step_end_to_end_s"]),
         "baseline", ""),
        ("GEO step end to end, frames sent ahead", ms(p["step_end_to_end_s"]),
         f"{med(p['step_end_to_end_s']) / med(s['step_end_to_end_s']):.2f}", ""),
        ("rate at 10 fps asked, each frame drawn by the server (20 frames, in the page)",
         f"{s['rate_fps']:.2f} fps", "baseline", ""),
        (f"rate at 10 fps asked, frames sent ahead ({frames} frames, in the page)", f"{p['rate_fps']:.2f} fps",
         f"{p['rate_fps'] / s['rate_fps']:.2f}", "≥ 9.5 fps"),
        ("the page says, frames sent ahead", p["rate_text"].replace("▶ ", ""), "", ""),
    ]
    table = ["| measure | value | ratio | target |", "|---|---|---|---|"]
    return table + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]


if __name__ == "__main__":
    raise SystemExit(main())
