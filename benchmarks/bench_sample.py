"""Benchmark: sample archive generation — the demo default, and one TROPOMI orbit at demo and full resolution.

Times, in this one process:

- the demo sample archive, ``write_archive(out, scenario='soufriere', resolution='demo', workers=2)`` into
  ``benchmarks/out/sample-demo`` (emptied before each run): wall time, CPU time of the worker processes, files and
  MB per product (TROPOMI, CALIOP), against the issue's target of under 3 minutes on 2 cores and under 500 MB;
- one TROPOMI orbit (18120, over the Caribbean) written at demo resolution (every 4th scanline, every 3rd ground
  pixel) and at full resolution (``scanline_step=1, pixel_step=1``: 3,624 × 450 pixels): time and size of each,
  and the ratio full ÷ demo. The full-resolution file stays in ``benchmarks/out/tropomi-full/`` for
  ``bench_tropomi_read``.

Each timing is the best of ``--repeat`` runs (3 by default); the machine and its load average are printed. Usage::

    .venv/bin/python -m benchmarks.bench_sample [--repeat 3] [--archive-repeat 3] [--workers 2] [--skip-archive]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from pathlib import Path

from app.sample.archive import DEMO, write_archive
from app.sample.tropomi import write_tropomi_orbit
from benchmarks import OUT, fmt_s, load_average, machine_line, timed
from benchmarks.bench_tropomi_read import FULL_ROOT, ORBIT, SCENARIO

DEMO_ROOT = OUT / "sample-demo"
DEMO_ORBIT_ROOT = OUT / "tropomi-demo-orbit"
TARGET_SECONDS = 180.0
TARGET_MB = 500.0


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


#: the archive's top folders of each product written by write_archive (GEO: one per imager format, and CTTH)
FOLDERS = {"tropomi": ("tropomi",), "caliop": ("caliop",), "geo": ("abi", "ahi", "seviri", "nwcsaf_ctth")}
#: the issues' budgets: the foundation's TROPOMI + CALIOP demo, and the GEO part of the demo
TARGETS = {("tropomi", "caliop"): (TARGET_SECONDS, TARGET_MB), ("geo",): (240.0, 600.0)}


def per_product(root: Path, products=("tropomi", "caliop")) -> dict[str, dict[str, float]]:
    """Files and MB under each product's folders of an archive."""
    out = {}
    for product in products:
        for folder in FOLDERS[product]:
            files = [p for p in (root / folder).rglob("*") if p.is_file()]
            out[folder] = {"files": len(files), "mb": sum(p.stat().st_size for p in files) / 1e6}
    return out


def run_archive(root: Path = DEMO_ROOT, workers: int = 2, repeat: int = 3, products=("tropomi", "caliop")) -> dict:
    """Write the demo archive ``repeat`` times (emptied first each time); best wall time, CPU time and sizes."""
    runs = []
    summary: dict = {}
    for _ in range(repeat):
        shutil.rmtree(root, ignore_errors=True)
        load = load_average()
        cpu0, self0 = _children_cpu(), _self_cpu()
        t = time.perf_counter()
        summary = write_archive(root, scenario=SCENARIO, resolution="demo", workers=workers, products=products)
        wall = time.perf_counter() - t
        cpu = _children_cpu() - cpu0 + _self_cpu() - self0
        runs.append({"wall": wall, "cpu": cpu, "load_before": load, "load_after": load_average()})
    best = min(runs, key=lambda r: r["wall"])
    target_s, target_mb = TARGETS[tuple(products)]
    sizes = per_product(root, products)
    mb = summary["bytes"] / 1e6
    return {
        "root": str(root),
        "workers": workers,
        "repeat": repeat,
        "runs": runs,
        "wall": best["wall"],
        "cpu": best["cpu"],
        "files": summary["files"],
        "mb": mb,
        "days": summary["days"],
        "products": sizes,
        "target_s": target_s,
        "target_mb": target_mb,
        "met_time": best["wall"] < target_s,
        "met_size": mb < target_mb,
    }


def run_orbit(repeat: int = 3) -> dict:
    """Write orbit ORBIT at demo and at full resolution, alternating, ``repeat`` times each; best times, sizes."""
    t_demo, t_full = [], []
    demo_path = full_path = None
    load = load_average()
    for _ in range(repeat):
        _, _, [t], demo_path = timed(
            lambda: write_tropomi_orbit(
                SCENARIO,
                ORBIT,
                DEMO_ORBIT_ROOT,
                scanline_step=DEMO.tropomi_scanline_step,
                pixel_step=DEMO.tropomi_pixel_step,
            ),
            repeat=1,
        )
        t_demo.append(t)
        _, _, [t], full_path = timed(
            lambda: write_tropomi_orbit(SCENARIO, ORBIT, FULL_ROOT, scanline_step=1, pixel_step=1), repeat=1
        )
        t_full.append(t)
    return {
        "orbit": ORBIT,
        "repeat": repeat,
        "demo": min(t_demo),
        "full": min(t_full),
        "demo_all": t_demo,
        "full_all": t_full,
        "demo_mb": demo_path.stat().st_size / 1e6,
        "full_mb": full_path.stat().st_size / 1e6,
        "full_path": str(full_path),
        "ratio": min(t_full) / min(t_demo),
        "load_before": load,
        "load_after": load_average(),
    }


def print_report(archive: dict | None, orbit: dict) -> None:
    """Print the figures as markdown tables."""
    if archive is not None:
        runs = "; ".join(
            f"{r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU, load {r['load_before']} → {r['load_after']}"
            for r in archive["runs"]
        )
        print(
            f"Demo sample archive (scenario {SCENARIO}, days {archive['days'][0]} … {archive['days'][-1]}, "
            f"{archive['workers']} worker processes), best of {archive['repeat']}: {runs}.\n"
        )
        print("| product | files | MB |")
        print("|---|---:|---:|")
        for name, p in archive["products"].items():
            print(f"| {name} | {p['files']} | {p['mb']:.1f} |")
        print(f"| **total** | {archive['files']} | {archive['mb']:.1f} |\n")
        print("| measure | value | target | met? |")
        print("|---|---:|---:|---|")
        print(
            f"| wall time (best of {archive['repeat']}) | {fmt_s(archive['wall'])} | < {archive['target_s']:.0f} s | "
            f"{'yes' if archive['met_time'] else 'no'} |"
        )
        print(f"| CPU time, all processes (best run) | {fmt_s(archive['cpu'])} | — | — |")
        print(f"| size | {archive['mb']:.1f} MB | < {archive['target_mb']:.0f} MB | "
              f"{'yes' if archive['met_size'] else 'no'} |\n")
    print(
        f"One TROPOMI orbit ({orbit['orbit']}), best of {orbit['repeat']} alternating writes; load "
        f"{orbit['load_before']} → {orbit['load_after']}.\n"
    )
    print("| resolution | time | all runs | size | full ÷ this |")
    print("|---|---:|---|---:|---:|")
    for label, key in (("demo (every 4th scanline, every 3rd pixel)", "demo"), ("full (3,624 × 450)", "full")):
        runs = ", ".join(f"{x:.2f}" for x in orbit[f"{key}_all"])
        print(
            f"| {label} | {fmt_s(orbit[key])} | {runs} s | {orbit[f'{key}_mb']:.1f} MB | "
            f"{orbit['full'] / orbit[key]:.1f}× |"
        )


def main(argv=None) -> dict:
    """Run the benchmark, print the tables and return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each orbit write (best is kept)")
    parser.add_argument("--archive-repeat", type=int, default=3, help="runs of the demo archive (best is kept)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-archive", action="store_true", help="only the orbit writes")
    parser.add_argument("--products", default="tropomi,caliop",
                        help="'tropomi,caliop' (the foundation's budget) or 'geo' (the GEO part's budget)")
    args = parser.parse_args(argv)
    print(machine_line() + "\n")
    products = tuple(args.products.split(","))
    archive = None if args.skip_archive else run_archive(workers=args.workers, repeat=args.archive_repeat,
                                                         products=products)
    orbit = run_orbit(repeat=args.repeat)
    print_report(archive, orbit)
    return {"archive": archive, "orbit": orbit}


if __name__ == "__main__":
    main()
