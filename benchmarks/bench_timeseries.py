"""Benchmark: the SO2 mass time-series engine against the naive way, on full-resolution TROPOMI orbits.

Writes (or reuses, under ``benchmarks/out/timeseries/``, which git ignores) every Sentinel-5P orbit of ``--days``
days of the La Soufrière scenario from 2021-04-10, at full resolution by default (3,624 scanlines × 450 ground
pixels, about 38 MB and 15-60 s of one core per orbit, ~14.2 orbits a day: 30 days are ~426 orbits, ~16 GB and
a couple of CPU-hours to write, so start with ``--days 2``), then times, in this one process, for 12 radii
(25 … 2000 km) around the volcano:

(a) the engine (granule index + scanline-window reads, one task per granule), cache off, on one thread
    (``scheduler="sync"``) and on the local thread pool, against
(b) the naive way: open every granule of the period whole (``read_swath`` of every variable), mask, compute;
    the ratio (b)/(a), after checking the two tables are equal;
(c) a cached re-run of the period (the cache filled by a first run);
(d) the engine's time against the number of granules: periods of 1, 2, 4, 8, … days (linearity);
(e) the engine on a ``distributed.LocalCluster`` of 1 and then 2 single-threaded worker processes.

The granule index is built once before (its time is shown apart). Files stay in the OS page cache when they fit
in memory (a few days do; 30 days at full resolution mostly do not), which favours the naive way.

Usage::

    .venv/bin/python benchmarks/bench_timeseries.py --days 2           # a smoke run: ~29 orbits, ~1.1 GB
    .venv/bin/python benchmarks/bench_timeseries.py                    # the 30-day figures
    .venv/bin/python benchmarks/bench_timeseries.py --days 4 --scanline-step 4 --pixel-step 3   # demo sampling
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd

from app.data.catalog import open_catalog
from app.data.index import open_index
from app.data.tropomi import VARIABLES, read_swath
from app.paths import REPO
from app.sample.orbit import SENTINEL_5P
from app.sample.tropomi import tropomi_path, write_tropomi_orbit
from app.science.filters import Filters
from app.science.mass import DEFAULT_RADII_KM, so2_mass_within_radii
from app.services.timeseries import compute_mass_timeseries, resolve_volcano

SCENARIO = "soufriere"
VOLCANO = "Soufriere St Vincent"
FIRST_DAY = np.datetime64("2021-04-10", "D")
VARIABLE = "so2_7km"
FILTERS = Filters(qa_min=0.5)
OUT = REPO / "benchmarks" / "out" / "timeseries"


def _orbits(days: int) -> list[int]:
    orbits: list[int] = []
    for k in range(days):
        d0 = FIRST_DAY + np.timedelta64(k, "D")
        orbits += [int(o) for o in SENTINEL_5P.orbits_between(d0, d0 + np.timedelta64(1, "D"))]
    return sorted(set(orbits))


def _write_one(orbit: int, root: str, scanline_step: int, pixel_step: int) -> tuple[int, float]:
    t = time.perf_counter()
    write_tropomi_orbit(SCENARIO, orbit, root, scanline_step=scanline_step, pixel_step=pixel_step)
    return orbit, time.perf_counter() - t


def ensure_archive(root: Path, days: int, scanline_step: int, pixel_step: int, workers: int) -> list[Path]:
    """Write the orbits of the period that are not there yet (in processes); return every file's path."""
    orbits = _orbits(days)
    missing = [o for o in orbits if not tropomi_path(root, o).exists()]
    if missing:
        print(f"writing {len(missing)} of {len(orbits)} orbits into {root} with {workers} processes …", flush=True)
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_write_one, o, str(root), scanline_step, pixel_step) for o in missing]
            for i, future in enumerate(as_completed(futures), 1):
                orbit, seconds = future.result()
                print(f"  [{i}/{len(missing)}] orbit {orbit} in {seconds:.1f} s", flush=True)
        print(f"written in {time.perf_counter() - t0:.0f} s", flush=True)
    return [tropomi_path(root, o) for o in orbits]


def write_catalog(root: Path) -> Path:
    """A catalogue of the benchmark archive: catalogs/tiny.yaml pointed at ``root``."""
    text = (REPO / "catalogs" / "tiny.yaml").read_text().replace("{CATALOG_DIR}/../data/tiny", str(root))
    path = root / "catalog.yaml"
    path.write_text(text)
    return path


def naive(paths: list[Path], start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Open every granule of the period whole (every variable), mask, compute; keep the orbits in the disk."""
    v = resolve_volcano(VOLCANO)
    tables = []
    for path in paths:
        swath = read_swath(path, variables=list(VARIABLES))
        table = so2_mass_within_radii(swath, VARIABLE, v.latitude, v.longitude, DEFAULT_RADII_KM, FILTERS)
        when = table["time"].iloc[0]
        if table["n_pixels"].iloc[-1] > 0 and start <= when < end:
            tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def engine(catalog: Path, days: int, **kw):
    last = FIRST_DAY + np.timedelta64(days - 1, "D")
    kw.setdefault("cache_dir", False)
    return compute_mass_timeseries(str(catalog), VOLCANO, str(FIRST_DAY), str(last), DEFAULT_RADII_KM, VARIABLE,
                                   FILTERS, **kw)


def timed(func, repeat: int = 1):
    """(median seconds, last result) of ``repeat`` calls."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _same(table: pd.DataFrame, reference: pd.DataFrame) -> None:
    got = table.sort_values(["time", "radius_km"]).reset_index(drop=True)
    ref = reference.sort_values(["time", "radius_km"]).reset_index(drop=True)
    assert len(got) == len(ref), (len(got), len(ref))
    for column in ("radius_km", "mass_t", "coverage", "n_valid", "n_pixels"):
        np.testing.assert_array_equal(got[column].to_numpy(dtype=float), ref[column].to_numpy(dtype=float), column)


def _cluster_runs(catalog: Path, days: int) -> list[tuple[int, float]]:
    import distributed

    out = []
    for n in (1, 2):
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:
            engine(catalog, 1, scheduler=cluster.scheduler_address)  # warm up: workers import Fumarole
            seconds, _ = timed(lambda c=cluster: engine(catalog, days, scheduler=c.scheduler_address))
        out.append((n, seconds))
    return out


def main(argv=None) -> None:
    """Run the benchmark and print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days of orbits (default 30; 2 for a smoke run)")
    parser.add_argument("--scanline-step", type=int, default=1, help="1 = full resolution (default)")
    parser.add_argument("--pixel-step", type=int, default=1, help="1 = full resolution (default)")
    parser.add_argument("--workers", type=int, default=2, help="processes writing the archive (default 2)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"archive folder parent (default {OUT})")
    parser.add_argument("--no-cluster", action="store_true", help="skip (e): the LocalCluster runs")
    args = parser.parse_args(argv)

    root = args.out / f"s5p-{args.scanline_step}x{args.pixel_step}"
    paths = ensure_archive(root, args.days, args.scanline_step, args.pixel_step, args.workers)
    size_gb = sum(p.stat().st_size for p in paths) / 1e9
    catalog = write_catalog(root)
    t_index, index = timed(lambda: open_index(open_catalog(catalog), products=["tropomi_so2"]))

    engine(catalog, 1, scheduler="sync")  # warm up: imports and first reads, outside the timings
    t_sync, (table, report) = timed(lambda: engine(catalog, args.days, scheduler="sync"))
    t_threads, _ = timed(lambda: engine(catalog, args.days))
    in_period = sorted(index.query("tropomi_so2", report.start, report.end)["path"])
    t_naive, reference = timed(lambda: naive([Path(p) for p in in_period], report.start, report.end))
    _same(table, reference)

    with tempfile.TemporaryDirectory() as cache:
        engine(catalog, args.days, cache_dir=cache)
        t_cached, (_, cached) = timed(lambda: engine(catalog, args.days, cache_dir=cache), repeat=3)
    assert cached.computed == 0, cached

    scaling = []
    for days in sorted({d for d in (1, 2, 4, 8, 16, 32) if d <= args.days} | {args.days}):
        seconds, (_, rep) = timed(lambda d=days: engine(catalog, d, scheduler="sync"))
        scaling.append((days, rep.n_in_period, rep.computed, seconds))
    clusters = [] if args.no_cluster else _cluster_runs(catalog, args.days)

    read = sum(stop - first for first, stop, _ in report.windows.values())
    total_rows = sum(n for _, _, n in report.windows.values())
    print(
        f"\nSO2 mass time series benchmark: {args.days} days from {FIRST_DAY}, {len(paths)} TROPOMI orbits of "
        f"{args.scanline_step}×{args.pixel_step} sampling ({size_gb:.2f} GB), {VOLCANO}, "
        f"{len(DEFAULT_RADII_KM)} radii up to {max(DEFAULT_RADII_KM):g} km, {VARIABLE}, {FILTERS.key()}; "
        f"{os.cpu_count()} CPUs. Index built or refreshed in {_fmt(t_index)}. The engine read {report.computed} "
        f"of {report.n_in_period} granules ({report.skipped_by_index} skipped by the index), {read} of "
        f"{total_rows} scanlines of those; {report.n_granules} orbits reach the disk; tables equal.\n"
    )
    print("| measurement | granules read | time | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| (b) naive: every granule whole, every variable | {len(in_period)} | {_fmt(t_naive)} | 1× |")
    print(f"| (a) engine, one thread (sync) | {report.computed} | {_fmt(t_sync)} | "
          f"{t_naive / t_sync:,.1f}× faster than (b) |")
    print(f"| (a) engine, local threads | {report.computed} | {_fmt(t_threads)} | "
          f"{t_naive / t_threads:,.1f}× faster than (b) |")
    print(f"| (c) cached re-run | 0 | {_fmt(t_cached)} | {t_naive / t_cached:,.0f}× faster than (b) |")
    base = scaling[0]
    for days, n_period, n_read, seconds in scaling:
        per = seconds / max(n_read, 1)
        print(f"| (d) engine (sync), {days} day(s), {n_period} granules in the period | {n_read} | {_fmt(seconds)} | "
              f"{per * 1e3:.0f} ms per granule read, {seconds / base[3]:.2f}× the 1-day time |")
    for n, seconds in clusters:
        ratio = clusters[0][1] / seconds
        print(f"| (e) LocalCluster, {n} worker process(es) × 1 thread | {report.computed} | {_fmt(seconds)} | "
              f"{ratio:.2f}× the 1-worker speed |")


if __name__ == "__main__":
    main()
