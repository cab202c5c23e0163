"""HTTP API v1 speed on loopback: warm PNGs, 20 concurrent requests, against a trivial route of the same server.

    python -m benchmarks.bench_api [--repeat 15] [--url http://127.0.0.1:5006]

Starts a Tornado server in this process (a thread, as the tests do) with the v1 and GEO routes over the tiny
archive and a trivial ``/liveness`` route (the baseline: what any answer of this server costs on this machine, under
this load), unless ``--url`` names a running ``fumarole serve`` (whose own ``/liveness`` is then the baseline).
Measures, with ``urllib`` on one connection per request:

- ``/liveness``: p50 (the baseline);
- the SO2 map at 1,024 px (``/api/v1/so2/map.png``, the tiny archive's 2021-04-12 over the Caribbean), warm (the
  swaths in the process's cache): a new colour range each time (moved by 0.001 DU: the PNG cache misses, the
  screen grid is reused and the map drawn again), a new grid each time (width 1,023, 1,022, …: the swaths are
  aggregated again too), and the same URL again (a PNG cache hit) — p50, p95, and the ratio to the baseline;
- a GEO frame at 1,024 px (``/api/v1/geo/image.png``, GOES-16 Ash RGB of a lat/lon box, the channels cached), a new
  picture each time (the box moves by 0.0001°), and a cache hit;
- 20 requests at once, 20 different pictures (10 SO2 maps, 10 GEO frames, all warm data): every answer's status,
  p50/p95/max latency and the wall time of the burst.

Prints a markdown table; writes the figures to ``benchmarks/out/bench_api.json``. Targets (issue 10): warm PNG p50
< 300 ms for a 1,024 px map; 20 concurrent requests all answered without error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from benchmarks import OUT, fmt_s, load_average, machine_line

SO2 = "/api/v1/so2/map.png?date=2021-04-12&zone=Caribbean&level=7km&width={width}&vmax={vmax:.3f}"
GEO = "/api/v1/geo/image.png?satellite=G16&product=ash&time=2021-04-12T15:00&bbox=-100,-10,{lon:.4f},40&width=1024"


def fetch(url: str) -> tuple[int, float, int]:
    """(status, seconds, bytes) of one GET."""
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as err:
        body, status = err.read(), err.code
    return status, time.perf_counter() - t, len(body)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


@contextmanager
def local_server(modules: tuple[str, ...] = ("geo", "v1")):
    """Base URL of an in-process Tornado server: the routes of ``modules`` (of app.api) over the tiny archive, and
    /liveness."""
    import importlib
    import socket

    import tornado.httpserver
    import tornado.web

    from app.data.archive import Archive

    class Liveness(tornado.web.RequestHandler):
        def get(self):
            self.finish({"ok": True})

    archive = Archive("tiny")
    archive.refresh(lambda *_: None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started, state = threading.Event(), {}

    def run():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        routes = [r for m in modules for r in importlib.import_module(f"app.api.{m}").routes(archive=archive)]
        app = tornado.web.Application([(r"/liveness", Liveness), *routes])
        server = tornado.httpserver.HTTPServer(app)
        server.listen(port, "127.0.0.1")
        state["loop"] = loop
        started.set()
        loop.run_forever()
        server.stop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        state["loop"].call_soon_threadsafe(state["loop"].stop)
        thread.join(10)


def series(urls: list[str]) -> dict:
    """Fetch each URL in turn: p50, p95 and the statuses."""
    results = [fetch(u) for u in urls]
    times = [t for _, t, _ in results]
    return {"p50": statistics.median(times), "p95": percentile(times, 95), "n": len(times),
            "statuses": sorted({s for s, _, _ in results}), "bytes": results[-1][2]}


def burst(urls: list[str]) -> dict:
    """All URLs at once (one thread each): statuses, p50/p95/max and the wall time."""
    t = time.perf_counter()
    with ThreadPoolExecutor(len(urls)) as pool:
        results = list(pool.map(fetch, urls))
    wall = time.perf_counter() - t
    times = [s for _, s, _ in results]
    return {"n": len(urls), "ok": sum(1 for s, _, _ in results if s == 200),
            "statuses": [s for s, _, _ in results], "p50": statistics.median(times), "p95": percentile(times, 95),
            "max": max(times), "wall": wall}


def measure(base: str, repeat: int) -> dict:
    """Every figure of the module docstring."""
    fetch(base + SO2.format(width=1024, vmax=20.0))  # first read of the swaths and the channels: not measured
    fetch(base + GEO.format(lon=-40.0))
    out = {"liveness": series([base + "/liveness"] * max(repeat, 30))}
    out["so2_new"] = series([base + SO2.format(width=1024, vmax=20.0 + 0.001 * (i + 1)) for i in range(repeat)])
    out["so2_grid"] = series([base + SO2.format(width=1023 - i, vmax=20.0) for i in range(repeat)])
    out["so2_hit"] = series([base + SO2.format(width=1024, vmax=20.0)] * repeat)
    out["geo_new"] = series([base + GEO.format(lon=-40.0 - 0.0001 * (i + 1)) for i in range(repeat)])
    out["geo_hit"] = series([base + GEO.format(lon=-40.0)] * repeat)
    urls = ([base + SO2.format(width=1000 - i, vmax=30.0) for i in range(10)]
            + [base + GEO.format(lon=-41.0 - 0.0001 * i) for i in range(10)])
    out["burst"] = burst(urls)
    return out


def table(figures: dict) -> str:
    """The figures as a markdown table."""
    base = figures["liveness"]["p50"]
    rows = ["| request | p50 | p95 | × /liveness p50 | statuses |", "|---|---|---|---|---|"]
    names = {"liveness": "`/liveness` (baseline)", "so2_new": "SO2 map 1,024 px, warm, new colour range",
             "so2_grid": "SO2 map ~1,024 px, warm, new grid (aggregated again)",
             "so2_hit": "SO2 map 1,024 px, PNG cache hit", "geo_new": "GEO frame 1,024 px, warm data, new picture",
             "geo_hit": "GEO frame 1,024 px, PNG cache hit"}
    for key, label in names.items():
        f = figures[key]
        rows.append(f"| {label} | {fmt_s(f['p50'])} | {fmt_s(f['p95'])} | {f['p50'] / base:.0f} | "
                    f"{', '.join(map(str, f['statuses']))} |")
    b = figures["burst"]
    rows.append(f"| 20 at once (10 SO2 maps + 10 GEO frames, all different) | {fmt_s(b['p50'])} | {fmt_s(b['p95'])} "
                f"| {b['p50'] / base:.0f} | {b['ok']}/{b['n']} answered 200; max {fmt_s(b['max'])}, burst "
                f"{fmt_s(b['wall'])} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="requests per series (default 15)")
    parser.add_argument("--url", help="a running fumarole serve (default: a server in this process)")
    args = parser.parse_args(argv)
    print(machine_line())
    print(f"load average before: {load_average()}")
    if args.url:
        figures = measure(args.url.rstrip("/"), args.repeat)
    else:
        with local_server() as base:
            figures = measure(base, args.repeat)
    print(table(figures))
    print(f"load average after: {load_average()}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_api.json").write_text(json.dumps(figures, indent=1))
    ok = figures["burst"]["ok"] == figures["burst"]["n"]
    print(f"targets: warm 1,024 px SO2 map p50 {fmt_s(figures['so2_new']['p50'])} (< 300 ms: "
          f"{'met' if figures['so2_new']['p50'] < 0.3 else 'not met'}); 20 concurrent "
          f"{'all answered' if ok else 'NOT all answered'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
