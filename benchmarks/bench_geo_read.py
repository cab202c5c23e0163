"""Benchmark: a cold Ash RGB frame of a full-resolution ABI full disk — satpy-backed read, the old hand-written
read, and satpy's own load → composite → resample → enhance.

Four ABI L1b files (C11, C13, C14, C15; 5424 × 5424 at 2 km) are written once into a temporary folder by a
synthetic writer *in this file* (the real packing: int16 ``_Unsigned`` counts with the GOES-16 ``scale_factor``/
``add_offset``, ``_FillValue`` off the disk, x/y scan angles, zlib level 1 in 226 × 226 chunks as NOAA's files; a
smooth brightness-temperature field with an ash-like split-window patch). The frame is the whole disk at 1/8 of
its resolution (678 × 678 pixels, a whole factor so that block means agree). Each variant runs in a fresh child
process (imports done before the clock starts, so "cold" means no in-process cache, not a cold interpreter):

- (a) ``satpy-read``: :func:`app.data.geo_abi.read_abi` (satpy's ``abi_l1b`` through
  :func:`app.data.geo_satpy.load_canonical`, dask's synchronous scheduler inside ``HDF_LOCK``) -> our frame path
  :func:`app.render.geo.frame` (8 × 8 block means of the channels, then :func:`app.science.rgb.compose`);
- (a') ``satpy-read-threads``: the same with dask's threaded scheduler (still inside the lock), to decide sync vs
  threads;
- (b) ``handwritten``: the hand-written netCDF4 decoding that ``read_abi`` used until issue 8 (kept below,
  :func:`handwritten_read_abi`, for this comparison only) -> the same frame path;
- (c) ``satpy-own-native``: ``Scene.load(["ash"])`` -> ``resample(area / 8, resampler="native")`` (block means)
  -> ``get_enhanced_image`` -> computed values; (c') ``satpy-own-nearest``: the same with satpy's default
  ``nearest`` resampler (a k-d tree over every pixel's longitude and latitude), the path for any screen area.

Each child runs ``--repeat`` times (the first is reported as cold) and reports its peak RSS. The parent compares
the pictures of (a) with the others: the fraction of pixels within 1/255 where both have a value, the largest
difference and the fraction with a value in one only; and prints the ratios (a)/(b) (target ≤ 1.5) and (c)/(a)
(target ≥ 5). Usage::

    .venv/bin/python -m benchmarks.bench_geo_read [--repeat 3] [--size 5424] [--keep DIR] [--variants …]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import fmt_s, load_average, machine_line

BANDS = (11, 13, 14, 15)
CHANNELS = ("ir_87", "ir_105", "ir_112", "ir_120")
FULL = 5424
VARIANTS = ("handwritten", "satpy-read", "satpy-read-threads", "satpy-own-native", "satpy-own-nearest")
#: The frame is the disk at 1/FACTOR of its resolution (678 × 678 pixels): a whole number, so block means agree.
FACTOR = 8


# ------------------------------------------------------------------------------------------------ the files


def _bt_rows(band: int, rows: np.ndarray, n: int) -> np.ndarray:
    """A smooth BT field (K) on rows of an n × n disk, with an ash-like patch (negative split window)."""
    v = (rows[:, None] + 0.5) / n * 2 - 1
    u = (np.arange(n)[None, :] + 0.5) / n * 2 - 1
    base = 285.0 - 60.0 * (u * u + v * v) + 8.0 * np.sin(9 * u) * np.cos(7 * v)
    ash = np.exp(-(((u - 0.2) / 0.1) ** 2 + ((v + 0.1) / 0.08) ** 2))
    offset = {11: -2.0 - 3.0 * ash, 13: 0.0, 14: -0.6, 15: -1.2 + 4.0 * ash}[band]
    return (base + offset).astype(np.float32)


def write_abi_disk(out: Path, n: int = FULL) -> list[Path]:
    """Write the four ABI L1b files of one full-disk slot (n × n pixels, real packing); return their paths."""
    import datetime as dt

    import netCDF4

    from app.data.geo_abi import abi_file_name, bt_to_radiance
    from app.data.geo_bands import ABI_BANDS

    start = dt.datetime(2021, 4, 12, 15, 0, 20, 400000)
    end, created = start + dt.timedelta(minutes=9, seconds=31), start + dt.timedelta(minutes=9, seconds=32)
    step = 5.6e-05 * FULL / n
    codes = np.arange(n)
    paths = []
    for band in BANDS:
        cal = ABI_BANDS[band].calibration
        fill = 2 ** cal["bit_depth"] - 1
        path = Path(out) / abi_file_name(band, "G16", start, end, created)
        with netCDF4.Dataset(path, "w") as nc:
            nc.createDimension("y", n)
            nc.createDimension("x", n)
            nc.setncatts({"platform_ID": "G16", "instrument_ID": "FM1", "orbital_slot": "GOES-East",
                          "scene_id": "Full Disk", "spatial_resolution": "2km at nadir",
                          "time_coverage_start": "2021-04-12T15:00:20.4Z",
                          "time_coverage_end": "2021-04-12T15:09:51.4Z", "production_site": "WCDAS"})
            rad = nc.createVariable("Rad", "i2", ("y", "x"), zlib=True, complevel=1, chunksizes=(226, 226),
                                    fill_value=np.int16(np.uint16(fill).view(np.int16)))
            rad.set_auto_maskandscale(False)
            rad.setncatts({"_Unsigned": "true", "scale_factor": np.float32(cal["scale_factor"]),
                           "add_offset": np.float32(cal["add_offset"]), "units": "mW m-2 sr-1 (cm-1)-1"})
            for axis, sign in (("x", 1.0), ("y", -1.0)):
                v = nc.createVariable(axis, "i2", (axis,))
                v.set_auto_maskandscale(False)
                v.setncatts({"scale_factor": np.float32(sign * step), "add_offset": np.float32(sign * -0.151844),
                             "units": "rad"})
                v[:] = codes.astype(np.int16)
            proj = nc.createVariable("goes_imager_projection", "i4")
            proj.setncatts({"perspective_point_height": 35786023.0, "semi_major_axis": 6378137.0,
                            "semi_minor_axis": 6356752.31414, "longitude_of_projection_origin": -75.0,
                            "latitude_of_projection_origin": 0.0, "sweep_angle_axis": "x"})
            scalars = {"band_id": ("i1", band), "yaw_flip_flag": ("i1", 0), "nominal_satellite_subpoint_lat":
                       ("f4", 0.0), "nominal_satellite_subpoint_lon": ("f4", -75.2),
                       "nominal_satellite_height": ("f4", 35786.023), "earth_sun_distance_anomaly_in_AU":
                       ("f4", 1.0), "esun": ("f4", np.nan), "kappa0": ("f4", np.nan)}
            scalars.update({k: ("f4", cal[k]) for k in ("planck_fk1", "planck_fk2", "planck_bc1", "planck_bc2")})
            for key, (dtype, value) in scalars.items():
                nc.createVariable(key, dtype)[...] = value
            x = -0.151844 + step * codes
            for r0 in range(0, n, 452):
                rows = np.arange(r0, min(r0 + 452, n))
                bt = _bt_rows(band, rows, n)
                radiance = bt_to_radiance(bt, cal["planck_fk1"], cal["planck_fk2"], cal["planck_bc1"],
                                          cal["planck_bc2"])
                counts = np.clip(np.rint((radiance - cal["add_offset"]) / cal["scale_factor"]), 0, fill - 1)
                y = 0.151844 - step * rows
                off = np.hypot(x[None, :] / 0.1517, y[:, None] / 0.1512) > 1.0
                counts = np.where(off, fill, counts).astype(np.uint16)
                rad[r0:r0 + rows.size] = counts.view(np.int16)
        paths.append(path)
    return paths


# ------------------------------------------------------------------- (b) the old hand-written ABI decoding path


def _handwritten_band(path: Path) -> dict:
    """One band as ``read_abi`` decoded it before issue 8: netCDF4, counts -> radiance -> BT, scan angles."""
    import netCDF4

    from app.core.locks import HDF_LOCK
    from app.data.geo_abi import radiance_to_bt

    with HDF_LOCK, netCDF4.Dataset(path) as nc:
        v = nc["Rad"]
        v.set_auto_maskandscale(False)
        counts = np.asarray(v[:]).view("u2")
        fill = np.asarray(v.getncattr("_FillValue")).astype("u2")
        rad = counts.astype(np.float32) * np.float32(v.getncattr("scale_factor")) + np.float32(
            v.getncattr("add_offset"))
        rad[counts == fill] = np.nan
        k = [float(np.asarray(nc[f"planck_{c}"][...])) for c in ("fk1", "fk2", "bc1", "bc2")]
        coords = {}
        for axis in ("x", "y"):
            a = nc[axis]
            a.set_auto_maskandscale(False)
            coords[axis] = np.asarray(a[:]).astype(np.float64) * round(float(a.scale_factor), 6) + round(
                float(a.add_offset), 6)
        h = float(nc["goes_imager_projection"].perspective_point_height)
    return {"data": radiance_to_bt(rad, *k).astype(np.float32), "x": coords["x"] * h, "y": coords["y"] * h}


def handwritten_read_abi(paths: list[Path], channels=CHANNELS):
    """The canonical GeoScene of the four bands, decoded by hand (what ``read_abi`` did before satpy)."""
    import xarray as xr

    bands = [_handwritten_band(p) for p in paths]
    ref = bands[0]
    return xr.Dataset({c: (("y", "x"), b["data"]) for c, b in zip(channels, bands, strict=True)},
                      coords={"x": ref["x"], "y": ref["y"]},
                      attrs={"sensor": "abi", "platform": "GOES-16", "start_time": "2021-04-12T15:00:00.000Z"})


# ------------------------------------------------------------------------------------------------ the variants


def _full_ranges(scene) -> tuple[tuple[float, float], tuple[float, float]]:
    x, y = scene["x"].values, scene["y"].values
    dx, dy = x[1] - x[0], y[1] - y[0]
    return (x[0] - dx / 2, x[-1] + dx / 2), (y[-1] + dy / 2, y[0] - dy / 2)


def _satpy_frame(paths: list[Path], resampler: str) -> np.ndarray:
    """Satpy's own path: load the ash composite, resample it to the frame's area, enhance, compute."""
    from satpy import Scene
    from satpy.writers import get_enhanced_image

    scn = Scene(reader="abi_l1b", filenames=[str(p) for p in paths])
    # native aggregation takes 2-D arrays only: the channels are resampled and the composite made after
    # (load(generate=False)); nearest resamples the full-resolution composite
    scn.load(["ash"], generate=resampler != "native")
    area = scn["C13"].attrs["area"].aggregate(x=FACTOR, y=FACTOR) if resampler == "native" else \
        scn["ash"].attrs["area"].aggregate(x=FACTOR, y=FACTOR)
    small = scn.resample(area, resampler=resampler)
    values = np.asarray(get_enhanced_image(small["ash"]).data.values, dtype=np.float32)
    return np.clip(values, 0.0, 1.0)  # as satpy's image writers do when they save the picture


def _frame(variant: str, paths: list[Path]) -> np.ndarray:
    """One Ash RGB frame of the disk at 1/FACTOR of its resolution, as (3, y, x) floats in 0–1 (NaN: no value)."""
    if variant.startswith("satpy-own"):
        return _satpy_frame(paths, "native" if variant == "satpy-own-native" else "nearest")
    from app.render.geo import frame

    if variant == "handwritten":
        scene = handwritten_read_abi(paths)
    else:
        from app.data import geo_satpy
        from app.data.geo_abi import read_abi

        geo_satpy.SCHEDULER = "threads" if variant == "satpy-read-threads" else "sync"
        scene = read_abi(paths, CHANNELS)
    x_range, y_range = _full_ranges(scene)
    rgba = frame(scene, "ash", x_range, y_range, width=scene.sizes["x"] // FACTOR, cache=False).values
    rgb = np.moveaxis(rgba[..., :3], -1, 0).astype(np.float32) / 255
    rgb[:, rgba[..., 3] == 0] = np.nan
    return rgb


def _child(variant: str, paths: list[str], repeat: int, picture: str, queue) -> None:
    import warnings

    warnings.simplefilter("ignore")
    import satpy  # noqa: F401  imports before the clock: a server has them loaded
    from satpy.writers import get_enhanced_image  # noqa: F401

    import app.data.geo_abi  # noqa: F401
    import app.render.geo  # noqa: F401

    files = [Path(p) for p in paths]
    times = []
    try:
        for i in range(repeat):
            t = time.perf_counter()
            rgb = _frame(variant, files)
            times.append(time.perf_counter() - t)
            if i == 0:
                np.save(picture, rgb.astype(np.float16))
            del rgb
    except Exception as exc:  # the parent waits on the queue: it must hear of a failure
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
        raise
    queue.put({"times": times, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def run_variant(variant: str, paths: list[Path], repeat: int, picture: Path) -> dict:
    """Run one variant in a fresh process; its times, peak RSS (MB) and the path of its first picture."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(variant, [str(p) for p in paths], repeat, str(picture), queue))
    proc.start()
    result = queue.get()
    proc.join()
    if "error" in result:
        raise RuntimeError(f"benchmark variant {variant} failed: {result['error']}")
    result["picture"] = picture
    result["cold"] = result["times"][0]
    result["median"] = statistics.median(result["times"])
    return result


def compare(a: Path, b: Path) -> dict:
    """How two pictures (3, y, x) agree: fraction within 1/255 where both have values, largest difference, and
    the fraction of pixels with a value in one and not the other."""
    x, y = np.load(a).astype(np.float32), np.load(b).astype(np.float32)
    both = np.isfinite(x) & np.isfinite(y)
    diff = np.abs(x - y)[both]
    return {"within": float((diff <= 1 / 255 + 1e-3).mean()) if diff.size else 0.0,
            "max": float(diff.max()) if diff.size else float("nan"),
            "mask_mismatch": float((np.isfinite(x) != np.isfinite(y)).mean())}


def main(argv=None) -> dict:
    """Write the disk, run every variant, compare the pictures, print the table; return the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=FULL, help="pixels across (5424 = full resolution)")
    ap.add_argument("--keep", type=Path, help="write (or reuse) the files in this folder instead of a temp one")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-geo-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        existing = sorted(folder.glob("OR_ABI-L1b-RadF-M6C1[1345]_G16_*.nc"))
        t = time.perf_counter()
        paths = existing if len(existing) == 4 else write_abi_disk(folder, args.size)
        written = time.perf_counter() - t
        results = {v: run_variant(v, paths, args.repeat, Path(tmp) / f"{v}.npy") for v in args.variants}
        agreement = {}
        for other in ("handwritten", "satpy-read-threads", "satpy-own-native", "satpy-own-nearest"):
            if "satpy-read" in results and other in results:
                agreement[other] = compare(results["satpy-read"]["picture"], results[other]["picture"])
    print(f"\n{machine_line()}")
    print(f"{args.size} × {args.size} pixels, 4 bands; files written in {fmt_s(written)}; repeat {args.repeat}; "
          f"load average now {load_average()}\n")
    print("| variant | cold (1st run) | median | peak RSS |")
    print("|---|---|---|---|")
    for v, r in results.items():
        print(f"| {v} | {fmt_s(r['cold'])} | {fmt_s(r['median'])} | {r['rss_mb']:.0f} MB |")
    ratios = {}
    if {"satpy-read", "handwritten"} <= results.keys():
        ratios["a/b"] = results["satpy-read"]["median"] / results["handwritten"]["median"]
    for own in ("satpy-own-native", "satpy-own-nearest"):
        if {"satpy-read", own} <= results.keys():
            ratios[f"c/a ({own})"] = results[own]["median"] / results["satpy-read"]["median"]
    print()
    for name, value in ratios.items():
        target = "≤ 1.5" if name == "a/b" else "≥ 5"  # noqa: RUF001
        met = value <= 1.5 if name == "a/b" else value >= 5
        print(f"ratio {name}: {value:.2f} (target {target}: {'met' if met else 'NOT met'})")
    for other, c in agreement.items():
        print(f"picture satpy-read vs {other}: {100 * c['within']:.3f} % of pixels within 1/255, largest difference "
              f"{c['max'] * 255:.2f}/255, value/no-value mismatch {100 * c['mask_mismatch']:.3f} %")
    return {"results": results, "ratios": ratios, "agreement": agreement, "written": written}


if __name__ == "__main__":
    main()
