"""Benchmark: the granule index against opening every file, for a zone/day query over 1,000 TROPOMI granules.

Writes N small TROPOMI-like granules (netCDF4, PRODUCT/latitude and longitude of a sun-synchronous daylit
half-orbit; tiny shapes, real geometry) into a temporary folder, then times, in this one process:

- the naive way: open every file, read its whole latitude/longitude, keep it if its time overlaps the day and a
  pixel falls in the zone;
- the index: build (thread pool), refresh with nothing new, load from Parquet, and the same zone/day query.

Prints a markdown table with each time and its ratio to the naive query. Usage::

    .venv/bin/python benchmarks/bench_index.py [--granules 1000] [--scanlines 200] [--pixels 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import netCDF4
import numpy as np

from app.data import index as gi
from app.data.catalog import ProductInfo
from app.data.filenames import PATTERNS, tropomi_filename

PERIOD_S = 100.9 * 60  # Sentinel-5P nodal period
INCLINATION = np.radians(98.74)
FIRST_ORBIT = 18000
T0 = dt.datetime(2021, 3, 1, 0, 12, 0)
CARIBBEAN = (-90.0, 5.0, -55.0, 30.0)


def _destination(lat, lon, bearing, dist_km):
    r = 6371.0
    la, lo, b, d = np.radians(lat), np.radians(lon), np.radians(bearing), dist_km / r
    la2 = np.arcsin(np.sin(la) * np.cos(d) + np.cos(la) * np.sin(d) * np.cos(b))
    lo2 = lo + np.arctan2(np.sin(b) * np.sin(d) * np.cos(la), np.cos(d) - np.sin(la) * np.sin(la2))
    return np.degrees(la2), (np.degrees(lo2) + 180.0) % 360.0 - 180.0


def swath(node_lon: float, n_scan: int, n_pix: int, half_width_km: float = 1300.0):
    """Daylit half of a sun-synchronous orbit (argument of latitude -85° … 85°) with pixels across track."""
    u = np.radians(np.linspace(-85.0, 85.0, n_scan))
    lat_c = np.degrees(np.arcsin(np.sin(INCLINATION) * np.sin(u)))
    drift = np.degrees(u) / 360.0 * PERIOD_S / 86400.0 * 360.0
    lon_c = node_lon + np.degrees(np.arctan2(np.cos(INCLINATION) * np.sin(u), np.cos(u))) - drift
    la1, lo1, la2, lo2 = (np.radians(a) for a in (lat_c[:-1], lon_c[:-1], lat_c[1:], lon_c[1:]))
    y = np.sin(lo2 - lo1) * np.cos(la2)
    x = np.cos(la1) * np.sin(la2) - np.sin(la1) * np.cos(la2) * np.cos(lo2 - lo1)
    bearing = np.append(np.degrees(np.arctan2(y, x)), 0.0)
    bearing[-1] = bearing[-2]
    lat = np.empty((n_scan, n_pix))
    lon = np.empty((n_scan, n_pix))
    for j, off in enumerate(np.linspace(-half_width_km, half_width_km, n_pix)):
        lat[:, j], lon[:, j] = _destination(lat_c, lon_c, bearing + 90.0, off)
    return lat, lon


def write_archive(root: Path, n: int, n_scan: int, n_pix: int) -> list[Path]:
    """N consecutive orbits; each orbit's node is 25.3° west of the previous one, as the Earth turns under it."""
    paths = []
    half = dt.timedelta(seconds=PERIOD_S * 170.0 / 360.0)
    for k in range(n):
        centre = T0 + dt.timedelta(seconds=k * PERIOD_S)
        node_lon = (-170.0 - k * PERIOD_S / 86400.0 * 360.0 + 180.0) % 360.0 - 180.0
        lat, lon = swath(node_lon, n_scan, n_pix)
        start, end = centre - half / 2, centre + half / 2
        folder = root / "tropomi" / f"{start:%Y/%m/%d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / tropomi_filename(start, end, FIRST_ORBIT + k)
        with netCDF4.Dataset(path, "w") as ds:
            ds.orbit = np.int32(FIRST_ORBIT + k)
            ds.time_coverage_start = f"{start:%Y-%m-%dT%H:%M:%SZ}"
            ds.time_coverage_end = f"{end:%Y-%m-%dT%H:%M:%SZ}"
            g = ds.createGroup("PRODUCT")
            g.createDimension("time", 1)
            g.createDimension("scanline", n_scan)
            g.createDimension("ground_pixel", n_pix)
            for name, values in (("latitude", lat), ("longitude", lon)):
                v = g.createVariable(name, "f4", ("time", "scanline", "ground_pixel"), zlib=True)
                v[:] = values[None].astype("f4")
        paths.append(path)
    return paths


def naive_query(root: Path, day: dt.datetime, bbox) -> list[str]:
    """Open every granule, read its whole latitude/longitude, keep those with a pixel in the zone that day."""
    lon_min, lat_min, lon_max, lat_max = bbox
    day_end = day + dt.timedelta(days=1)
    hits = []
    for path in sorted((root / "tropomi").glob("*/*/*/S5P_*.nc")):
        with netCDF4.Dataset(path) as ds:
            start = dt.datetime.strptime(ds.time_coverage_start, "%Y-%m-%dT%H:%M:%SZ")
            end = dt.datetime.strptime(ds.time_coverage_end, "%Y-%m-%dT%H:%M:%SZ")
            if not (end > day and start < day_end):
                continue
            lat = ds["PRODUCT/latitude"][0]
            lon = ds["PRODUCT/longitude"][0]
        inside = (lat >= lat_min) & (lat <= lat_max) & (lon >= lon_min) & (lon <= lon_max)
        if inside.any():
            hits.append(str(path))
    return hits


def timed(func, repeat: int = 1):
    """(median seconds, last result) of ``repeat`` calls."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main(argv=None) -> None:
    """Run the benchmark and print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--granules", type=int, default=1000)
    parser.add_argument("--scanlines", type=int, default=200)
    parser.add_argument("--pixels", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="write the archive here and keep it")
    args = parser.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="fumarole-bench-index-"))
    try:
        t_write, paths = timed(lambda: write_archive(root, args.granules, args.scanlines, args.pixels))
        source = ProductInfo(
            product="tropomi_so2",
            title="TROPOMI SO2",
            platform="S5P",
            instrument="TROPOMI",
            root_url=str(root / "tropomi"),
            glob="*/*/*/S5P_*_L2__SO2____*.nc",
            pattern=PATTERNS["tropomi_so2"].pattern,
            reader="",
            entry="tropomi_so2",
        )
        day = (T0 + dt.timedelta(seconds=args.granules * PERIOD_S / 2)).replace(hour=0, minute=0, second=0)
        index_path = Path(tempfile.mkdtemp(prefix="fumarole-bench-state-")) / gi.INDEX_FILENAME  # never in the archive

        t_naive, naive = timed(lambda: naive_query(root, day, CARIBBEAN), repeat=3)

        def build():
            index = gi.GranuleIndex(path=index_path, sources=[source])
            return index, index.refresh(max_workers=args.workers)  # and saves it as Parquet

        t_build, (index, report) = timed(build)
        assert not report.skipped, report
        t_refresh, again = timed(lambda: index.refresh(max_workers=args.workers), repeat=3)
        assert again.unchanged == len(paths) and not again.added
        t_load, loaded = timed(lambda: gi.GranuleIndex.load(index_path), repeat=3)
        loaded.query("tropomi_so2", day, day + dt.timedelta(days=1), CARIBBEAN)  # builds the array cache
        t_query, hits = timed(
            lambda: loaded.query("tropomi_so2", day, day + dt.timedelta(days=1), CARIBBEAN), repeat=200
        )
        t_orbits, orbits = timed(lambda: loaded.orbits_for_day(day, CARIBBEAN), repeat=50)
        found = set(hits["path"])
        missed = set(naive) - found
        assert not missed, f"the index missed granules the naive scan found: {sorted(missed)}"
        whole_day = len(loaded.query("tropomi_so2", day, day + dt.timedelta(days=1)))

        rows = [
            ("naive zone/day query: open every file, read lat/lon", t_naive),
            (f"index build and save ({len(paths)} files, {args.workers} threads)", t_build),
            ("index refresh and save, nothing new", t_refresh),
            ("index load from Parquet", t_load),
            ("index zone/day query", t_query),
            ("index orbits_for_day (zone)", t_orbits),
            ("index load + zone/day query", t_load + t_query),
        ]
        print(
            f"Granule index benchmark: {len(paths)} granules of {args.scanlines} scanlines × {args.pixels} "
            f"ground pixels (written in {_fmt(t_write)}); zone {CARIBBEAN}, day {day:%Y-%m-%d}: "
            f"{len(naive)} granules touch the zone (naive), the index returns {len(found)} "
            f"({whole_day} granules that day); {len(orbits)} orbits listed.\n"
        )
        print("| operation | time | naive query ÷ this |")
        print("|---|---:|---:|")
        for name, seconds in rows:
            print(f"| {name} | {_fmt(seconds)} | {t_naive / seconds:,.1f}× |")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
