"""Run every benchmark and print one markdown table: benchmark, our time, baseline time, ratio, target, met?

Each benchmark times our way and its baseline in this same process (so both see the same machine and load):

- granule index (``bench_index``, 1,000 granules): index load + zone/day query, and index build, against opening
  every file;
- TROPOMI read (``bench_tropomi_read``): ``read_swath`` + ``apply_filters`` on one full-resolution orbit against
  plain ``xarray.open_dataset`` of every group;
- sample generation (``bench_sample``): the demo archive against the issue's target (3 min on 2 cores, 500 MB),
  and one orbit at demo against full resolution;
- GEO read (``bench_geo_read``, full run only: about 4 minutes): a cold Ash RGB frame of a full-resolution ABI full
  disk through the satpy-backed read against the old hand-written read, and satpy's own path against ours.

Usage::

    .venv/bin/python -m benchmarks.run [--quick]

``--quick`` skips the demo archive generation (a few minutes) and the GEO read. Each benchmark's own tables are
printed as it goes; the summary table comes last.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import re
import sys
import time

from benchmarks import (
    bench_geo_read,
    bench_index,
    bench_sample,
    bench_tropomi_read,
    fmt_s,
    load_average,
    machine_line,
)

_ROW = re.compile(r"^\|\s*(?P<name>[^|]+?)\s*\|\s*(?P<value>[\d.,]+)\s*(?P<unit>ms|s)\s*\|")


def _parse_index_table(text: str) -> dict[str, float]:
    """The operation -> seconds rows of bench_index's markdown table."""
    rows = {}
    for line in text.splitlines():
        m = _ROW.match(line)
        if m:
            value = float(m["value"].replace(",", ""))
            rows[m["name"]] = value / 1e3 if m["unit"] == "ms" else value
    return rows


def _find(rows: dict[str, float], prefix: str) -> float:
    for name, seconds in rows.items():
        if name.startswith(prefix):
            return seconds
    raise KeyError(f"bench_index printed no row starting with {prefix!r}; rows: {list(rows)}")


def index_rows(granules: int = 1000) -> list[tuple]:
    """Run bench_index's main (its output echoed) and return the summary rows."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        bench_index.main(["--granules", str(granules)])
    text = buffer.getvalue()
    print(text)
    rows = _parse_index_table(text)
    naive = _find(rows, "naive zone/day query")
    query = _find(rows, "index load + zone/day query")
    build = _find(rows, "index build and save")
    return [
        (
            f"Index: load + zone/day query, {granules:,} granules (baseline: open every file)",
            query,
            naive,
            naive / query,
            "faster than opening every file",
            naive / query > 1,
        ),
        (
            f"Index: build and save, {granules:,} granules, 2 threads (baseline: one naive query)",
            build,
            naive,
            naive / build,
            "— (once, then incremental)",
            None,
        ),
    ]


def tropomi_rows() -> list[tuple]:
    """Run bench_tropomi_read and return its summary row."""
    r = bench_tropomi_read.main([])
    print()
    return [
        (
            "TROPOMI read: full orbit, read_swath + QA/SZA/edge filters (baseline: xarray, every group)",
            r["ours"],
            r["plain"],
            r["ratio"],
            "faster than plain xarray",
            r["ratio"] > 1,
        )
    ]


def sample_rows(quick: bool) -> list[tuple]:
    """Run bench_sample and return its summary rows."""
    r = bench_sample.main(["--skip-archive"] if quick else [])
    print()
    rows = []
    a = r["archive"]
    if a is not None:
        rows.append(
            (
                f"Sample: demo archive, {a['files']} files, {a['mb']:.0f} MB, {a['workers']} processes "
                f"(CPU {a['cpu']:.0f} s)",
                a["wall"],
                None,
                None,
                f"< {bench_sample.TARGET_SECONDS:.0f} s and < {bench_sample.TARGET_MB:.0f} MB",
                a["met_time"] and a["met_size"],
            )
        )
    o = r["orbit"]
    rows.append(
        (
            f"Sample: one TROPOMI orbit at demo resolution, {o['demo_mb']:.1f} MB (baseline: full resolution, "
            f"{o['full_mb']:.1f} MB)",
            o["demo"],
            o["full"],
            o["ratio"],
            "—",
            None,
        )
    )
    return rows


def geo_read_rows() -> list[tuple]:
    """Run bench_geo_read (repeat 3) and return its summary rows."""
    r = bench_geo_read.main(["--repeat", "3"])
    print()
    res = r["results"]
    ours, old, nearest = (res[v]["median"] for v in ("satpy-read", "handwritten", "satpy-own-nearest"))
    return [
        ("GEO read: Ash RGB frame of a 5424² ABI full disk, satpy-backed read (baseline: old hand-written read)",
         ours, old, old / ours, "ours ≤ 1.5 × baseline", ours <= 1.5 * old),
        ("GEO read: the same frame (baseline: satpy load → ash → nearest resample → enhance)",
         ours, nearest, nearest / ours, "≥ 5×", nearest / ours >= 5),
    ]


def print_table(rows: list[tuple]) -> None:
    """The summary table; the ratio is baseline ÷ ours (above 1: ours is faster)."""
    print("| benchmark | our time | baseline time | ratio (baseline ÷ ours) | target | met? |")
    print("|---|---:|---:|---:|---|---|")
    for name, ours, base, ratio, target, met in rows:
        ratio_s = "—" if ratio is None else f"{ratio:,.1f}×"
        met_s = "—" if met is None else ("yes" if met else "**no**")
        print(f"| {name} | {fmt_s(ours)} | {fmt_s(base)} | {ratio_s} | {target} | {met_s} |")


def main(argv=None) -> int:
    """Run the benchmarks and print the summary table; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the demo archive generation")
    args = parser.parse_args(argv)
    started = dt.datetime.now().astimezone()
    t0 = time.perf_counter()
    print(f"# Fumarole benchmarks, {started:%Y-%m-%d %H:%M %Z}\n")
    print(machine_line() + "\n")
    loads = [load_average()]
    rows = []
    print("## Granule index\n")
    rows += index_rows(1000)
    loads.append(load_average())
    print("## Sample generation\n")
    rows += sample_rows(args.quick)
    loads.append(load_average())
    print("## TROPOMI read\n")
    rows += tropomi_rows()
    loads.append(load_average())
    if not args.quick:
        print("## GEO read\n")
        rows += geo_read_rows()
        loads.append(load_average())
    print("## Summary\n")
    print(
        f"{'Quick run (demo archive skipped)' if args.quick else 'Full run'}, {time.perf_counter() - t0:.0f} s "
        f"in all; load average (1/5/15 min) at start and after each benchmark: {' | '.join(loads)}.\n"
    )
    print_table(rows)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
