"""Benchmark: read one full-resolution TROPOMI orbit and filter one column, against plain xarray of every group.

On one full-resolution sample orbit (3,624 scanlines × 450 ground pixels; written once into
``benchmarks/out/tropomi-full/`` when missing), times in this one process, alternating the two so that both see
the same machine load and the same (warm) page cache:

- ours: ``read_swath(path, variables=('so2_7km', 'qa_value', 'solar_zenith_angle'), with_bounds=False)`` then
  ``apply_filters`` (qa_value ≥ 0.5, solar zenith angle ≤ 70°, 10 edge pixels on each side);
- the plain way: ``xarray.open_dataset(path, group=g).load()`` of every group (PRODUCT, GEOLOCATIONS,
  DETAILED_RESULTS, INPUT_DATA), then the same masking done by hand in xarray.

Asserts that both keep the same number of valid pixels, and prints a markdown table with both times and the ratio
plain ÷ ours. Usage::

    .venv/bin/python -m benchmarks.bench_tropomi_read [--repeat 5] [--path FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr

from app.data.tropomi import DETAILED_RESULTS, GEOLOCATIONS, INPUT_DATA, PRODUCT, read_swath
from app.sample.tropomi import tropomi_path, write_tropomi_orbit
from app.science.filters import apply_filters
from benchmarks import OUT, fmt_s, load_average, machine_line, timed

#: 2021-04-12, daylit over the Caribbean: sees the La Soufrière plume (as in tests/test_tropomi.py).
ORBIT = 18120
SCENARIO = "soufriere"
FULL_ROOT = OUT / "tropomi-full"
GROUPS = (PRODUCT, GEOLOCATIONS, DETAILED_RESULTS, INPUT_DATA)
VARIABLES = ("so2_7km", "qa_value", "solar_zenith_angle")
FILTERS = {"qa_min": 0.5, "sza_max": 70.0, "edge_pixels": 10}
COLUMN_7KM = "sulfurdioxide_total_vertical_column_7km"


def full_orbit_path(root: Path = FULL_ROOT) -> Path:
    """Where the full-resolution benchmark orbit lives."""
    return tropomi_path(root, ORBIT)


def write_full_orbit(root: Path = FULL_ROOT) -> Path:
    """Write the full-resolution benchmark orbit (scanline_step=1, pixel_step=1); returns its path."""
    return write_tropomi_orbit(SCENARIO, ORBIT, root, scanline_step=1, pixel_step=1)


def ensure_full_orbit(root: Path = FULL_ROOT) -> Path:
    """The full-resolution orbit, written first if missing (files are renamed into place only when complete)."""
    path = full_orbit_path(root)
    return path if path.exists() else write_full_orbit(root)


def ours(path: Path) -> xr.DataArray:
    """Our reader (only three variables, no corners) and our filters."""
    swath = read_swath(path, variables=VARIABLES, with_bounds=False)
    return apply_filters(swath, "so2_7km", **FILTERS)


def plain(path: Path) -> xr.DataArray:
    """What one does without the reader: open and load every group, then mask by hand."""
    groups = {g: xr.open_dataset(path, group=g).load() for g in GROUPS}
    column = groups[DETAILED_RESULTS][COLUMN_7KM].isel(time=0)
    column = column * column.attrs["multiplication_factor_to_convert_to_DU"]
    qa = groups[PRODUCT]["qa_value"].isel(time=0)
    sza = groups[GEOLOCATIONS]["solar_zenith_angle"].isel(time=0)
    n = column.sizes["ground_pixel"]
    edge = FILTERS["edge_pixels"]
    position = xr.DataArray(np.arange(n), dims="ground_pixel")
    mask = (
        np.isfinite(column)
        & (qa >= FILTERS["qa_min"])
        & (sza <= FILTERS["sza_max"])
        & (position >= edge)
        & (position < n - edge)
    )
    for ds in groups.values():
        ds.close()
    return column.where(mask)


def run(path: Path | None = None, repeat: int = 5) -> dict:
    """Time both ways ``repeat`` times each, alternating; return the figures (medians) as a dict."""
    path = Path(path) if path is not None else ensure_full_orbit()
    load_before = load_average()
    ours(path), plain(path)  # warm up imports, the page cache and xarray's backend discovery
    t_ours, t_plain = [], []
    a = b = None
    for _ in range(repeat):
        _, _, [t], a = timed(lambda: ours(path), repeat=1)
        t_ours.append(t)
        _, _, [t], b = timed(lambda: plain(path), repeat=1)
        t_plain.append(t)
    n_ours = int(np.isfinite(a.values).sum())
    n_plain = int(np.isfinite(b.values).sum())
    assert n_ours == n_plain, f"valid pixels differ: ours {n_ours}, plain xarray {n_plain}"
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-6, equal_nan=True)
    med_ours, med_plain = float(np.median(t_ours)), float(np.median(t_plain))
    return {
        "path": str(path),
        "mb": path.stat().st_size / 1e6,
        "shape": tuple(a.shape),
        "valid": n_ours,
        "repeat": repeat,
        "ours": med_ours,
        "plain": med_plain,
        "ours_all": t_ours,
        "plain_all": t_plain,
        "ratio": med_plain / med_ours,
        "load_before": load_before,
        "load_after": load_average(),
    }


def print_report(r: dict) -> None:
    """Print the figures as a markdown table."""
    print(
        f"TROPOMI read benchmark: {Path(r['path']).name} ({r['mb']:.1f} MB, {r['shape'][0]} scanlines × "
        f"{r['shape'][1]} ground pixels); filters {FILTERS}; {r['valid']:,} valid pixels both ways; "
        f"median of {r['repeat']} alternating runs; load average {r['load_before']} before, "
        f"{r['load_after']} after.\n"
    )
    print("| way | median | all runs | plain ÷ this |")
    print("|---|---:|---|---:|")
    rows = (
        ("ours: read_swath (3 variables, no corners) + apply_filters", r["ours"], r["ours_all"]),
        ("plain: xarray.open_dataset(group=…).load() of 4 groups + masking by hand", r["plain"], r["plain_all"]),
    )
    for name, t, runs in rows:
        print(f"| {name} | {fmt_s(t)} | {', '.join(f'{x:.2f}' for x in runs)} s | {r['plain'] / t:.1f}× |")


def main(argv=None) -> dict:
    """Run the benchmark, print the table and return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--path", type=Path, default=None, help="a TROPOMI L2 SO2 file (default: the sample orbit)")
    args = parser.parse_args(argv)
    print(machine_line() + "\n")
    result = run(args.path, args.repeat)
    print_report(result)
    return result


if __name__ == "__main__":
    main()
