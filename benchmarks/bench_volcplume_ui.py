"""VolcPlume in a real browser on a running server: first paint, and a control change to a settled map.

    python -m benchmarks.bench_volcplume_ui [--catalog catalogs/tiny.yaml] [--repeat 5] [--profile]

Starts ``fumarole serve`` on the catalogue (default: the tiny archive) and, for the baseline, ``panel serve`` of a
static page with one empty Bokeh figure and a select that retitles it; drives Debian's chromium (Playwright) and
measures, each time after one warm-up, the median of ``--repeat``:

- **first paint**: from ``page.goto('/volcplume')`` until the map's canvas shows SO2 colours (a condition on the
  canvas's pixels, read in the page, not a sleep); baseline: ``page.goto`` of the static page until its figure's
  canvas is drawn and the Bokeh document idle;
- **level change** (7 km ↔ PBL) and **zone change** (Caribbean ↔ Mediterranean) on a settled map (documents idle,
  canvas unchanged over three looks): from the click until the map's title (level) or x range (zone) is the new
  one AND the canvas differs from the settled one; baseline: the static page's select until its new title is drawn
  (one server round trip and a redraw).

``--profile`` also runs, without a browser, cProfile around what the server does for a first paint (the view's
construction, the permalink, the map's Bokeh model) and prints the 20 costliest calls (cumulative).

Prints a markdown table (with the machine and its load) and writes it to ``benchmarks/out/bench_volcplume_ui.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import OUT, load_average, machine_line

REPO = Path(__file__).resolve().parent.parent

#: The static baseline page: one empty Bokeh figure and a select that sets its title (a server round trip).
BASELINE_APP = '''
import panel as pn
from bokeh.plotting import figure

fig = figure(width=900, height=520, title="baseline A", name="baseline-map")
select = pn.widgets.Select(name="Title", options=["baseline A", "baseline B"])
select.param.watch(lambda e: setattr(fig.title, "text", e.new), "value")
pn.Column(select, pn.pane.Bokeh(fig)).servable()
'''

#: A checksum of the named figure's canvas (sum of a sparse sample of its pixels) and its title and x range; null
#: while the figure is not there. The canvas is the biggest one in the page (inside the widgets' shadow roots).
CANVAS_JS = """(name) => {
  if (!window.Bokeh || !Bokeh.documents.length) return null;
  let fig = null;
  const num = m => parseInt(String(m.id).replace(/\\D/g, '')) || 0;
  for (const d of Bokeh.documents) for (const m of d._all_models.values())
    if (m.name === name && (!fig || num(m) > num(fig))) fig = m;
  if (!fig) return null;
  const canvases = [];
  const walk = root => { for (const e of root.querySelectorAll('*')) {
    if (e.shadowRoot) walk(e.shadowRoot);
    if (e.tagName === 'CANVAS' && e.width > 300 && e.height > 200) canvases.push(e); } };
  walk(document);
  if (!canvases.length) return null;
  const c = canvases.reduce((a, b) => a.width * a.height >= b.width * b.height ? a : b);
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0, so2 = 0;
  for (let i = 0; i < data.length; i += 4 * 7) {
    const r = data[i], g = data[i + 1], b = data[i + 2];
    sum = (sum * 31 + r * 3 + g * 5 + b * 7) % 1000000007;
    if (r > 120 && g < 140 && b < 90 && r - g > 60) so2++;
  }
  return {sum, so2, title: fig.title.text, x: [fig.x_range.start, fig.x_range.end],
          idle: Bokeh.documents.every(d => d.is_idle)};
}"""


def _serve(cmd: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _look(page, name: str):
    return page.evaluate(CANVAS_JS, name)


def _wait(page, name: str, test, timeout_ms: int = 60_000) -> None:
    """Wait, polling in the page every 20 ms, until the figure's look passes ``test`` (a JS predicate on it)."""
    page.wait_for_function(f"(name) => {{ const s = ({CANVAS_JS})(name); return !!s && ({test})(s); }}", arg=name,
                           timeout=timeout_ms, polling=20)


def settle(page, name: str) -> dict:
    """The figure's look once the documents are idle and three looks in a row agree (a settled map)."""
    seen: list[dict] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        look = _look(page, name)
        if not look or not look["idle"] or (seen and look["sum"] != seen[-1]["sum"]):
            seen.clear()
        if look and look["idle"]:
            seen.append(look)
        if len(seen) >= 3:
            return seen[-1]
        page.wait_for_function("() => new Promise(r => setTimeout(() => r(true), 100))")  # the page's own clock
    raise TimeoutError(f"the figure {name} did not settle")


def first_paint(browser, url: str, name: str, test: str) -> float:
    """Seconds from ``page.goto(url)`` until the figure ``name`` passes ``test``, in a new page."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        t0 = time.perf_counter()
        page.goto(url)
        _wait(page, name, test, timeout_ms=120_000)
        return time.perf_counter() - t0
    finally:
        page.close()


def changes(page, name: str, act, want, n: int) -> list[float]:
    """Seconds of ``n + 1`` changes (the first a warm-up, dropped): ``act(i)`` on a settled figure, until
    ``want(i)`` (a JS predicate) holds and the canvas differs from the settled one."""
    out = []
    for i in range(n + 1):
        before = settle(page, name)
        t0 = time.perf_counter()
        act(i)
        _wait(page, name, f"s => s.sum !== {before['sum']} && ({want(i)})(s)")
        out.append(time.perf_counter() - t0)
    return out[1:]


def profile_first_paint(top: int = 20) -> str:
    """cProfile of the server's work for a first paint, without a browser: the 20 costliest calls (cumulative)."""
    import cProfile
    import io
    import pstats

    import panel as pn
    from bokeh.document import Document

    from app.data.archive import Archive
    from app.views.volcplume import VolcPlume

    def build():
        app = VolcPlume(archive=archive)
        app.apply_query({})
        pn.Column(app, app.controls()).get_root(Document())

    archive = Archive("tiny")
    build()  # as on a running server: caches filled (granule index, swaths read), numba's kernels compiled
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    build()
    prof.disable()
    elapsed = time.perf_counter() - t0
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    return f"server side of a first paint (warm caches): {elapsed:.2f} s\n" + out.getvalue()


def main(argv=None) -> int:
    """Run the measurements and print the table."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS, _free_port, stop_process, wait_for_http

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--catalog", default=str(REPO / "catalogs" / "tiny.yaml"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    if args.profile:
        os.environ.setdefault("FUMAROLE_CATALOG", args.catalog)
        print(profile_first_paint())
    env = dict(os.environ, FUMAROLE_CATALOG=str(args.catalog), BOKEH_LOG_LEVEL="warn")
    port, base_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "baseline.py"
        script.write_text(BASELINE_APP)
        proc = _serve([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--address", "127.0.0.1"], env)
        base_proc = _serve([sys.executable, "-m", "panel", "serve", str(script), "--port", str(base_port),
                            "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{base_port}"], env)
        url, base_url = f"http://127.0.0.1:{port}/volcplume", f"http://127.0.0.1:{base_port}/baseline"
        try:
            wait_for_http(f"http://127.0.0.1:{port}/", proc)
            wait_for_http(base_url, base_proc)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                load = load_average()
                figures = measure(browser, url, base_url, args.repeat)
                browser.close()
        finally:
            stop_process(proc)
            stop_process(base_proc)
    table = report(figures, load)
    print(machine_line())
    print("\n".join(table))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_volcplume_ui.json").write_text(json.dumps(
        {"machine": machine_line(), "load": load, **figures, "table": table}, indent=1))
    return 0


def measure(browser, url: str, base_url: str, repeat: int) -> dict[str, list[float]]:
    """Every timing (seconds), the first of each series a warm-up that is dropped."""
    painted = "s => s.so2 > 50"
    drawn = "s => s.idle && s.title.length > 0"
    figures = {
        "paint": [first_paint(browser, url, "volcplume-map", painted) for _ in range(repeat + 1)][1:],
        "paint_baseline": [first_paint(browser, base_url, "baseline-map", drawn) for _ in range(repeat + 1)][1:],
    }
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(url)
        _wait(page, "volcplume-map", painted, timeout_ms=120_000)
        levels = ["PBL", "7 km"]
        figures["level"] = changes(
            page, "volcplume-map", lambda i: page.get_by_role("button", name=levels[i % 2], exact=True).click(),
            lambda i: f"s => s.title.includes('SO2 {levels[i % 2]} ')", repeat)
        zones = [("Mediterranean", -8), ("Caribbean", -90)]
        figures["zone"] = changes(
            page, "volcplume-map", lambda i: page.locator("select").first.select_option(zones[i % 2][0]),
            lambda i: f"s => Math.abs(s.x[0] - ({zones[i % 2][1]})) < 8", repeat)
    finally:
        page.close()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(base_url)
        _wait(page, "baseline-map", drawn)
        titles = ["baseline B", "baseline A"]
        figures["change_baseline"] = changes(
            page, "baseline-map", lambda i: page.locator("select").first.select_option(titles[i % 2]),
            lambda i: f"s => s.title === '{titles[i % 2]}'", repeat)
    finally:
        page.close()
    return figures


def report(figures: dict[str, list[float]], load: str) -> list[str]:
    """The markdown table: medians, their ratio to the baseline, the issue's targets."""
    med = {k: statistics.median(v) for k, v in figures.items()}
    n = len(figures["paint"])
    rows = [
        (f"first paint, static page with one empty Bokeh figure (baseline, median of {n})",
         med["paint_baseline"], "1", ""),
        (f"first paint of VolcPlume, map painted with SO2 (median of {n})", med["paint"],
         f"{med['paint'] / med['paint_baseline']:.1f}", "< 3 s"),
        (f"select → new title on the static page (baseline, median of {n})", med["change_baseline"], "1", ""),
        (f"level change 7 km ↔ PBL → new title and canvas (median of {n})", med["level"],
         f"{med['level'] / med['change_baseline']:.1f}", "< 1 s"),
        (f"zone change Caribbean ↔ Mediterranean → new extent and canvas (median of {n})", med["zone"],
         f"{med['zone'] / med['change_baseline']:.1f}", "< 1 s"),
    ]
    table = [f"load average at the start: {load}", "", "| measure | median | ratio to baseline | target |",
             "|---|---|---|---|"]
    table += [f"| {a} | {b:.2f} s | {c} | {d} |" for a, b, c, d in rows]
    return table


if __name__ == "__main__":
    raise SystemExit(main())
