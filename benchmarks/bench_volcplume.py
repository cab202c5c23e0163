"""VolcPlume map speed and memory on one full-resolution day of TROPOMI orbits.

    python -m benchmarks.bench_volcplume [--archive benchmarks/out/full-day] [--browser]

Writes the day first if the archive is missing (`fumarole sample --resolution full --products tropomi`).
Measures, in this process:

- re-render of the World view after a pan (warm), a regional zoom, a colour-range change (must not aggregate);
- the same day's largest orbit drawn as a plain HoloViews QuadMesh rendered to a Bokeh document (the baseline),
  against our aggregation of that orbit: the ratio;
- resident memory of a session showing the day;
- with --browser: the first visit to a painted map on a running server (Playwright, Debian's chromium).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ARCHIVE = REPO / "benchmarks" / "out" / "full-day"


def catalog_for(archive: Path) -> Path:
    """A copy of the sample catalogue pointing at another archive folder."""
    text = (REPO / "catalogs" / "sample.yaml").read_text()
    text = text.replace("{CATALOG_DIR}/../data/sample", str(archive.resolve()))
    out = Path(tempfile.mkdtemp()) / "bench.yaml"
    out.write_text(text)
    return out


def ensure_archive(archive: Path) -> None:
    """Write one full-resolution day of TROPOMI orbits unless it is there."""
    if (archive / ".complete").exists():
        return
    subprocess.check_call([sys.executable, "-m", "app.cli", "sample", "--resolution", "full", "--products",
                           "tropomi", "--days", "2021-04-12", "--out", str(archive)], cwd=REPO)


def best_of(fn, n: int = 3) -> float:
    """Best wall time of ``n`` calls (seconds)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def rss_mb() -> float:
    """Resident memory of this process (MB)."""
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def bench_map(cat: Path) -> dict:
    """Times of the map's steps and the QuadMesh baseline."""
    import holoviews as hv

    from app.data.archive import Archive
    from app.render import swath as swath_mod
    from app.views.volcplume import VolcPlume

    hv.extension("bokeh", logo=False)
    rss0 = rss_mb()
    t0 = time.perf_counter()
    vp = VolcPlume(archive=Archive(str(cat)), zone="World")
    cold = time.perf_counter() - t0
    n_pixels = sum(int(np.isfinite(lay.values).sum()) for lay in vp.layers)
    total = sum(lay.values.size for lay in vp.layers)

    def view(x_range, y_range):
        # the map's aggregation itself (the view memoises a repeated identical request, so call below it)
        return swath_mod.aggregate(vp.layers, x_range, y_range, 900, 520)

    def world(x0=-180.0):
        return view((x0, x0 + 360.0), (-90.0, 90.0))

    world()  # JIT and caches
    t_world = best_of(world)
    t_pan = best_of(lambda: world(-170.0 + np.random.uniform(-5, 5)))
    t_region = best_of(lambda: view((-90.0, -40.0), (3.0, 28.0)))
    t_zoom = best_of(lambda: view((-64.0, -58.0), (11.0, 16.0)))

    calls = {"n": 0}
    real = swath_mod.aggregate

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    swath_mod.aggregate = counting
    try:
        t0 = time.perf_counter()
        vp.param.update(so2_min=0.5, so2_max=10.0)
        t_clim = time.perf_counter() - t0
    finally:
        swath_mod.aggregate = real
    rss_session = rss_mb()

    # baseline: the largest orbit as a plain HoloViews QuadMesh, rendered to a Bokeh document and serialised
    lay = max(vp.layers, key=lambda la: la.values.size)
    qm = hv.QuadMesh((lay.lon, lay.lat, lay.values), kdims=["x", "y"]).opts(width=900, height=520)
    t0 = time.perf_counter()
    from bokeh.embed import json_item

    json.dumps(json_item(hv.render(qm, backend="bokeh")))
    t_quadmesh = time.perf_counter() - t0
    t_ours_orbit = best_of(lambda: swath_mod.aggregate([lay], (-180.0, 180.0), (-90.0, 90.0), 900, 520,
                                                         method="quadmesh"))
    return {
        "orbits": len(vp.layers), "pixels": total, "valid pixels": n_pixels, "cold load s": cold,
        "world s": t_world, "pan s": t_pan, "region s": t_region, "zoom s": t_zoom, "colour range s": t_clim,
        "aggregations on colour change": calls["n"], "quadmesh orbit pixels": lay.values.size,
        "plain QuadMesh s": t_quadmesh, "ours same orbit s": t_ours_orbit,
        "rss before MB": rss0, "rss session MB": rss_session,
    }


def bench_browser(cat: Path) -> dict:
    """First visit to a painted map on a running server (the server warmed by one earlier visit)."""
    import socket
    import urllib.request

    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, FUMAROLE_CATALOG=str(cat))
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--address",
                             "127.0.0.1"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/volcplume"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/archive", timeout=5)
                break
            except OSError:
                time.sleep(0.25)
        sys.path.insert(0, str(REPO / "tests"))
        from test_dashboard_volcplume import _map_pixels, _so2_pixels

        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                   args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            out = {}
            for visit in ("first visit (cold server) s", "new session (running server) s"):
                page = b.new_page(viewport={"width": 1400, "height": 900})
                t0 = time.perf_counter()
                page.goto(url)
                page.get_by_text("Orbits to display").wait_for(timeout=120_000)
                while True:
                    if _so2_pixels(_map_pixels(page)) > 50:
                        break
                    page.wait_for_timeout(100)
                out[visit] = time.perf_counter() - t0
                page.close()
            b.close()
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv=None) -> int:
    """Run and print a markdown table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    ap.add_argument("--browser", action="store_true")
    args = ap.parse_args(argv)
    ensure_archive(args.archive)
    cat = catalog_for(args.archive)
    res = bench_map(cat)
    if args.browser:
        res.update(bench_browser(cat))
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    print("| measure | value |\n|---|---|")
    for k, v in res.items():
        print(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v:,} |")
    ratio = res["plain QuadMesh s"] / res["ours same orbit s"]
    print(f"| plain QuadMesh / ours (one orbit) | {ratio:.0f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
