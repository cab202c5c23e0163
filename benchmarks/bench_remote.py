"""Benchmark: bytes and times of reading the archive from object storage, against the local folder, in one run.

A local S3-compatible server (moto's server mode on loopback, started here) holds one full-resolution TROPOMI
orbit (3,624 scanlines × 450 ground pixels, the benchmark orbit of ``bench_tropomi_read``, written once into
``benchmarks/out/tropomi-full/``) and a year-sized tree of empty GEO objects named as NOAA's ABI files
(``ABI-L1b-RadF/YYYY/DDD/HH/``, one per hour). Measured, each time against the same work on the local file:

- indexing the granule (its GML outline and global attributes): bytes fetched ÷ the object's size (target < 1 %);
- a VolcPlume regional view of that orbit (45–15° W, 3–28° N, the three fields the map reads): bytes ÷ size
  (target ≤ 25 %);
- one time-series task (a 500 km disk on the plume at 15° N, 30° W): bytes ÷ size, the scanline window it read,
  and bytes ÷ the stored bytes of the chunks of the variables it reads that cover that window (read with h5py:
  what reading "only the window" costs at the least);
- the same task on an orbit the disk is not in (a 500 km disk on the Mascarene volcano Piton de la Fournaise):
  bytes ÷ size;
- a GEO slot query at one time on the year-sized tree: the folders listed (target: only around the asked time),
  against a listing of the whole tree.

Usage::

    .venv/bin/python -m benchmarks.bench_remote [--hours 8760] [--repeat 3]

Times are the best of ``--repeat`` cold runs (the block cache emptied before each); bytes are those of one cold run.

Prints a markdown table (bytes, share of the object, S3 time, local time, ratio) and the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import pandas as pd

from app.data import storage
from benchmarks import load_average, machine_line
from benchmarks.bench_tropomi_read import ensure_full_orbit

#: The benchmark orbit (18120) crosses 3–28° N between 35° W and 3° W: the zone east of the Caribbean where the
#: La Soufrière plume drifted, and a 500 km disk on it (a time-series task's geometry).
ZONE = (-45.0, 3.0, -15.0, 28.0)
CENTRE = (15.0, -30.0)
#: A volcano the 500 km disk of which the benchmark orbit does not reach (Piton de la Fournaise, La Réunion).
AWAY = (-21.244, 55.708)
MAP_FIELDS = ("so2_7km", "qa_value", "solar_zenith_angle")
#: The HDF5 datasets a time-series task on ``so2_7km`` with the default filters reads, window-wise.
TASK_DATASETS = ("PRODUCT/latitude", "PRODUCT/longitude", "PRODUCT/delta_time", "PRODUCT/qa_value",
                 "PRODUCT/SUPPORT_DATA/GEOLOCATIONS/latitude_bounds",
                 "PRODUCT/SUPPORT_DATA/GEOLOCATIONS/longitude_bounds",
                 "PRODUCT/SUPPORT_DATA/GEOLOCATIONS/solar_zenith_angle",
                 "PRODUCT/SUPPORT_DATA/DETAILED_RESULTS/sulfurdioxide_total_vertical_column_7km")
REPEAT = 3
_RUNS = {"repeat": REPEAT}


@contextlib.contextmanager
def s3_server():
    """moto's S3 server on a free loopback port (no authentication: the benchmark measures bytes, not access)."""
    from moto.server import ThreadedMotoServer

    from tests.remote_servers import free_port

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield {"endpoint_url": f"http://{host}:{port}", "key": "bench", "secret": "bench"}
    finally:
        server.stop()


def _timed(func, repeat: int = 1):
    """The last result and the best time of ``repeat`` calls, each from a cold block cache."""
    best, out = float("inf"), None
    for _ in range(repeat):
        storage.clear_block_cache()
        t0 = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - t0)
    return out, best


def _fetched(url: str, func) -> tuple[object, int, float]:
    """The result, the bytes fetched from ``url`` by one cold call, and the best time of ``--repeat`` calls."""
    storage.clear_block_cache()
    storage.forget_stamps()
    storage.reset_transfer_stats()
    out, _ = _timed(func)
    fetched = int(storage.transfer_stats().get(url, 0))
    _, seconds = _timed(func, _RUNS["repeat"])
    return out, fetched, seconds


def window_chunk_bytes(path: Path, datasets, first: int, stop: int) -> int:
    """Stored bytes of the chunks of ``datasets`` (scanline their second dimension) holding scanlines first..stop-1."""
    import h5py

    total = 0
    with h5py.File(path, "r") as f:
        for name in datasets:
            ds = f[name]
            rows = ds.chunks[1]
            for i in range(ds.id.get_num_chunks()):
                info = ds.id.get_chunk_info(i)
                a = info.chunk_offset[1]
                if a < stop and a + rows > first:
                    total += info.size
    return total


def tropomi_rows(local: Path, url: str, size: int) -> list[dict]:
    """Index, regional view and time-series task on the S3 object and on the local file."""
    from app.data.index import tropomi_geolocation, tropomi_outline_geolocation
    from app.data.tropomi import read_swath
    from app.science.filters import DEFAULT_FILTERS
    from app.services.timeseries import mass_for_granule

    rows = []
    _, n, s3_s = _fetched(url, lambda: tropomi_outline_geolocation(url))
    _, local_s = _timed(lambda: tropomi_geolocation(str(local)), _RUNS["repeat"])
    rows.append(("index one granule (GML outline + global attributes)", n, s3_s, local_s, "< 1 %", ""))

    def view(path):
        ds = read_swath(path, variables=MAP_FIELDS, with_bounds=False)
        lon, lat = ds["longitude"].values, ds["latitude"].values
        inside = (lon >= ZONE[0]) & (lon <= ZONE[2]) & (lat >= ZONE[1]) & (lat <= ZONE[3])
        return int(inside.sum())

    pixels, n, s3_s = _fetched(url, lambda: view(url))
    _, local_s = _timed(lambda: view(str(local)), _RUNS["repeat"])
    rows.append((f"VolcPlume regional view (45–15° W, 3–28° N: {pixels:,} pixels; whole orbit read)", n, s3_s, local_s,
                 "≤ 25 %", ""))

    def task(path, centre=CENTRE):
        return mass_for_granule(path, "so2_7km", *centre, (100.0, 500.0), DEFAULT_FILTERS)

    result, n, s3_s = _fetched(url, lambda: task(url))
    _, local_s = _timed(lambda: task(str(local)), _RUNS["repeat"])
    first, stop = result["window"] or (0, 0)
    chunks = window_chunk_bytes(local, TASK_DATASETS, first, stop)
    rows.append((f"time-series task (500 km; scanlines {first}–{stop} of {result['n_scanlines']}; "
                 f"their chunks hold {chunks:,} bytes)", n, s3_s, local_s, "the window only",
                 f"{n / chunks:.2f} × the window's chunks"))
    away, n, s3_s = _fetched(url, lambda: task(url, AWAY))
    _, local_s = _timed(lambda: task(str(local), AWAY), _RUNS["repeat"])
    assert away["window"] is None and not away["records"]
    rows.append(("time-series task on an orbit the 500 km disk is not in (La Réunion)", n, s3_s, local_s,
                 "next to nothing", ""))
    return [{"what": w, "bytes": f"{b:,}", "share": f"{100 * b / size:.2f} %", "S3 (s)": f"{s:.2f}",
             "local (s)": f"{loc:.2f}", "ratio": f"{s / max(loc, 1e-6):.1f}", "target": t, "note": note}
            for w, b, s, loc, t, note in rows]


def geo_rows(options: dict, hours: int) -> list[dict]:
    """A slot query at one time on hourly ABI folders (a year by default), against listing the whole tree."""
    import s3fs

    from app.data.filenames import parse_filename
    from app.data.geo_slots import PartitionLister

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
    fs.mkdir("noaa-goes18")
    t0 = pd.Timestamp("2025-01-01")
    keys = {}
    for h in range(hours):
        t = t0 + pd.Timedelta(hours=h)
        hour = f"{t:%Y%j%H}"
        keys[f"noaa-goes18/ABI-L1b-RadF/{t:%Y/%j/%H}/OR_ABI-L1b-RadF-M6C13_G18_s{hour}00210_e{hour}09518_"
             f"c{hour}09564.nc"] = b""
    fs.pipe(keys)
    lister = PartitionLister("s3://noaa-goes18/ABI-L1b-RadF", "{time:%Y/%j/%H}/",
                             lambda name: parse_filename(name, "geo_abi_l1b"), "OR_ABI-L1b-RadF-*.nc",
                             repeat_minutes=10, storage_options=options)
    asked = t0 + pd.Timedelta(hours=hours // 2, minutes=5)
    found, query_s = _timed(lambda: lister.rows("", None, asked - pd.Timedelta(minutes=10), asked))
    listed = list(lister.listed)
    _, whole_s = _timed(lambda: fs.find("noaa-goes18/ABI-L1b-RadF"))
    return [
        {"what": f"GEO slot at {asked:%Y-%m-%d %H:%M} ({len(found)} file) on {hours:,} hour folders: "
                 f"{len(listed)} folder(s) listed ({', '.join(listed)})", "bytes": "—", "share": "—",
         "S3 (s)": f"{query_s:.2f}", "local (s)": "—", "ratio": f"{query_s / whole_s:.3f} of the whole listing",
         "target": "only around the time", "note": ""},
        {"what": f"baseline: list all {hours:,} hour folders", "bytes": "—", "share": "—",
         "S3 (s)": f"{whole_s:.2f}", "local (s)": "—", "ratio": "1", "target": "never done", "note": ""},
    ]


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=int, default=24 * 365, help="hour folders of the GEO tree (default a year)")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="timed runs of each measure (best kept)")
    args = parser.parse_args()
    _RUNS["repeat"] = max(1, args.repeat)
    local = ensure_full_orbit()
    size = local.stat().st_size
    with s3_server() as options:
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
        fs.mkdir("meeo-s5p")
        key = f"meeo-s5p/OFFL/L2__SO2___/2021/04/12/{local.name}"
        fs.put_file(str(local), key)
        storage.register("s3://meeo-s5p", options)
        url = f"s3://{key}"
        rows = tropomi_rows(local, url, size)
        rows += geo_rows(options, args.hours)
    print(f"\nRemote archive benchmark — {machine_line()}, load average {load_average()}")
    print(f"TROPOMI object: {local.name}, {size / 1e6:.0f} MB; block size {storage.BLOCK_SIZE // 1024} KB; "
          f"times: best of {_RUNS['repeat']} cold runs\n")
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
