"""Map services speed on loopback: XYZ tiles and WMS GetMap, against v1's PNGs and a trivial route of the same server.

    python -m benchmarks.bench_ogc [--repeat 12]

Starts a Tornado server in this process (a thread, as the tests do) with the OGC, v1 and GEO routes over the tiny
archive and a trivial ``/liveness`` route. After one request that reads the data (the swaths of the day, the
channels of the slot), measures with ``urllib`` (one connection per request):

- the baselines: ``/liveness`` p50, and v1's 256 px PNGs of the same data (``/api/v1/geo/image.png`` of a lat/lon
  box, a new box each time; ``/api/v1/so2/map.png?width=256``, a new colour range each time);
- **warm tiles**: each request a tile not drawn before (the data in the process's caches, the tile drawn): the SO2
  layer at z 5 around the Caribbean, GOES-East Ash at z 4, the Ash mosaic at z 3; and a tile asked again (a PNG
  cache hit) and revalidated (``If-None-Match``: 304);
- a WMS GetMap of 256 × 256 px in EPSG:3857 (a new box each time), GOES-East Ash;
- 20 tiles at once (a 5 × 4 map view of GOES-East Ash at z 5, new tiles): statuses, p50/p95/max, wall time.

Prints a markdown table (p50, p95, ratio to the v1 GEO PNG of the same size); writes
``benchmarks/out/bench_ogc.json``. Target (issue 10): a warm tile < 200 ms.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

from benchmarks import OUT, fmt_s, load_average, machine_line
from benchmarks.bench_api import burst, fetch, series
from benchmarks.bench_api import local_server as bench_api_server

DAY = "2021-04-12"
SLOT = "2021-04-12T15:00:00Z"


def local_server():
    """Base URL of an in-process Tornado server: the OGC, v1 and GEO routes over the tiny archive, and /liveness."""
    return bench_api_server(("geo", "v1", "ogc"))


def _tiles(layer: str, z: int, x0: int, y0: int, n: int, time: str) -> list[str]:
    """``n`` distinct tiles of a block starting at (x0, y0), row by row (4 wide)."""
    return [f"/api/v1/tiles/{layer}/{z}/{x0 + i % 4}/{y0 + i // 4}.png?time={time}" for i in range(n)]


def _wms(i: int) -> str:
    x0 = -8_900_000 + 1000 * i
    return ("/api/v1/wms?SERVICE=WMS&REQUEST=GetMap&LAYERS=geo.goes-east.ash&STYLES=&CRS=EPSG:3857&FORMAT=image/png"
            f"&TRANSPARENT=TRUE&WIDTH=256&HEIGHT=256&TIME={SLOT}&BBOX={x0},1000000,{x0 + 2_500_000},3500000")


def _revalidate(url: str, repeat: int) -> dict:
    with urllib.request.urlopen(url, timeout=120) as r:
        etag = r.headers["Etag"]
    results = []
    for _ in range(repeat):
        t = time.perf_counter()
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers={"If-None-Match": etag}), timeout=120)
            status = 200
        except urllib.error.HTTPError as err:
            status = err.code
        results.append((status, time.perf_counter() - t))
    times = sorted(t for _, t in results)
    return {"p50": times[len(times) // 2], "p95": times[min(len(times) - 1, round(0.95 * len(times)))],
            "n": repeat, "statuses": sorted({s for s, _ in results}), "bytes": 0}


def measure(base: str, repeat: int) -> dict:
    """Every figure of the module docstring."""
    # first reads (swaths, channels, the ring's scenes, the slot listings): not measured
    for url in (_tiles("so2", 5, 9, 14, 1, DAY)[0], _tiles("geo.goes-east.ash", 4, 4, 6, 1, SLOT)[0],
                _tiles("mosaic.ash", 3, 2, 3, 1, SLOT)[0], _wms(-1),
                f"/api/v1/so2/map.png?date={DAY}&zone=Caribbean&width=256",
                f"/api/v1/geo/image.png?satellite=G16&product=ash&time={SLOT[:16]}&bbox=-80,8,-57.5,30.5&width=256"):
        fetch(base + url)
    out = {"liveness": series([base + "/liveness"] * max(repeat, 30))}
    out["v1_geo_256"] = series([base + f"/api/v1/geo/image.png?satellite=G16&product=ash&time={SLOT[:16]}"
                                       f"&bbox={-80 + 0.001 * (i + 1):.3f},8,-57.5,30.5&width=256&height=256"
                                for i in range(repeat)])
    out["v1_so2_256"] = series([base + f"/api/v1/so2/map.png?date={DAY}&zone=Caribbean&width=256"
                                       f"&vmax={20 + 0.001 * (i + 1):.3f}" for i in range(repeat)])
    out["tile_so2"] = series([base + u for u in _tiles("so2", 5, 8, 13, repeat, DAY)[1:]])
    out["tile_geo"] = series([base + u for u in _tiles("geo.goes-east.ash", 4, 3, 5, repeat, SLOT)[1:]])
    out["tile_mosaic"] = series([base + u for u in _tiles("mosaic.ash", 3, 1, 2, min(repeat, 16), SLOT)[1:]])
    hit = base + _tiles("geo.goes-east.ash", 4, 3, 5, 1, SLOT)[0]
    out["tile_hit"] = series([hit] * repeat)
    out["tile_304"] = _revalidate(hit, repeat)
    out["wms_3857"] = series([base + _wms(i) for i in range(repeat)])
    out["burst"] = burst([base + u for u in _tiles("geo.goes-east.ash", 5, 8, 12, 20, SLOT)])
    return out


NAMES = {"liveness": "`/liveness` (floor)", "v1_geo_256": "v1 GEO PNG 256 px, new box (**baseline**)",
         "v1_so2_256": "v1 SO2 map 256 px, new colour range",
         "tile_so2": "tile `so2` z 5, new tile, warm swaths", "tile_geo": "tile `geo.goes-east.ash` z 4, new tile",
         "tile_mosaic": "tile `mosaic.ash` z 3, new tile", "tile_hit": "tile asked again (PNG cache hit)",
         "tile_304": "tile revalidated (`If-None-Match`: 304)", "wms_3857": "WMS GetMap 256 px EPSG:3857, new box"}


def table(figures: dict) -> str:
    """The figures as a markdown table (ratios to the v1 GEO PNG of the same size)."""
    base = figures["v1_geo_256"]["p50"]
    rows = ["| request | p50 | p95 | × v1 GEO 256 px p50 | statuses |", "|---|---|---|---|---|"]
    for key, label in NAMES.items():
        f = figures[key]
        rows.append(f"| {label} | {fmt_s(f['p50'])} | {fmt_s(f['p95'])} | {f['p50'] / base:.2f} | "
                    f"{', '.join(map(str, f['statuses']))} |")
    b = figures["burst"]
    rows.append(f"| 20 tiles at once (a 5 × 4 view, z 5, new) | {fmt_s(b['p50'])} | {fmt_s(b['p95'])} | "
                f"{b['p50'] / base:.2f} | {b['ok']}/{b['n']} answered 200; max {fmt_s(b['max'])}, burst "
                f"{fmt_s(b['wall'])} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=12, help="requests per series (default 12)")
    args = parser.parse_args(argv)
    print(machine_line())
    print(f"load average before: {load_average()}")
    with local_server() as base:
        figures = measure(base, args.repeat)
    print(table(figures))
    print(f"load average after: {load_average()}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_ogc.json").write_text(json.dumps(figures, indent=1))
    worst = max(figures[k]["p50"] for k in ("tile_so2", "tile_geo", "tile_mosaic"))
    ok = figures["burst"]["ok"] == figures["burst"]["n"]
    print(f"target: warm tile p50 < 200 ms: slowest layer {fmt_s(worst)} ({'met' if worst < 0.2 else 'not met'}); "
          f"20 tiles at once {'all answered' if ok else 'NOT all answered'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
