"""GEO ring speed on a full-resolution GOES-16 ABI full disk (5424 × 5424 at 2 km), against satpy in the same run.

    python -m benchmarks.bench_georing [--out benchmarks/out/georing-full] [--width 1000] [--no-satpy]

Writes two full-resolution slots (15:00 and 15:10 UTC, the four Ash RGB bands C11, C13, C14, C15) first if they
are missing (``app.sample.geo.abi.write_abi_slot(..., resolution_km=None)``, about a minute and 120 MB each).
Measures, in this process:

- the first (cold) read of the slot's four bands through the catalogue, the index and ``app.data.geo.read_scene``;
- the Ash RGB of the whole disk shown ``--width`` pixels wide from the scene already read
  (``app.render.geo.frame``: block-average the four bands to the screen grid, then compose), with its two parts;
- the same picture through satpy: ``Scene(reader="abi_l1b")``, ``load(["ash"])``, ``resample`` (nearest) to a
  ``--width`` × ``--width`` geostationary area of the same extent, ``get_enhanced_image``, computed — the baseline,
  and the ratio; the two pictures are compared (mean difference in 1/255 steps);
- an animation step with its frames cached: ``GeoRing.play_step`` plus the plot's redraw (HoloViews updates the
  Bokeh model from the cached frame), as the dashboard does on each tick.

Prints a markdown table; writes it with the figures to ``<out>/bench_georing.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks import OUT, fmt_s, machine_line

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = OUT / "georing-full"
SLOTS = ("2021-04-12T15:00", "2021-04-12T15:10")
ASH_CHANNELS = ("ir_87", "ir_105", "ir_112", "ir_120")  # C11, C13, C14, C15
ASH_BANDS = ("C11", "C13", "C14", "C15")


def ensure_slots(root: Path) -> list[tuple[str, float]]:
    """Write the full-resolution slots that are missing; return (slot, seconds) of those written."""
    from app.sample.geo.abi import write_abi_slot
    from app.sample.scenario import get_scenario

    written = []
    for slot in SLOTS:
        stamp = slot.replace("-", "").replace("T", "").replace(":", "")  # 202104121500
        day_of_year = "2021102"
        pattern = f"abi/G16/2021/04/12/OR_ABI-L1b-RadF-M6C*_G16_s{day_of_year}{stamp[8:]}*.nc"
        if len(list(root.glob(pattern))) >= len(ASH_BANDS):
            continue
        t0 = time.perf_counter()
        write_abi_slot(get_scenario("soufriere"), "G16", slot, root, resolution_km=None, channels=ASH_CHANNELS)
        written.append((slot, time.perf_counter() - t0))
    return written


def write_catalog(root: Path) -> Path:
    """catalogs/tiny.yaml pointed at ``root``."""
    text = (REPO / "catalogs" / "tiny.yaml").read_text().replace("{CATALOG_DIR}/../data/tiny", str(root.resolve()))
    path = root / "catalog.yaml"
    path.write_text(text)
    return path


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """(best, median) seconds of ``repeat`` calls and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), result


def satpy_ash(paths: list[str], width: int) -> tuple[np.ndarray, float]:
    """satpy's Ash RGB of the slot resampled (nearest) to ``width`` × ``width``: RGBA uint8 and the seconds taken."""
    from pyresample.geometry import AreaDefinition
    from satpy import Scene

    try:
        from satpy.enhancements.enhancer import get_enhanced_image
    except ImportError:  # satpy before 0.60
        from satpy.writers import get_enhanced_image

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scn = Scene(reader="abi_l1b", filenames=paths)
        scn.load(["ash"])
        area = scn["ash"].attrs["area"]
        screen = AreaDefinition("screen", "screen", "geos", area.crs, width, width, area.area_extent)
        resampled = scn.resample(screen, resampler="nearest")
        image = get_enhanced_image(resampled["ash"])
        data = np.asarray(image.data.clip(0, 1).values, dtype=np.float32)
    seconds = time.perf_counter() - t0
    from app.science.rgb import to_rgba_uint8

    return to_rgba_uint8(data), seconds


def animation_step(archive, width: int, repeat: int) -> dict:
    """Seconds of one animation step once both slots' frames are cached: play_step + the plot's redraw."""
    import holoviews as hv

    from app.views import georing
    from app.views.georing import GeoRing
    from app.views.log_console import LogConsole

    georing.MAP_SIZE = width  # the plot (and so the frames) ``width`` pixels wide, as on a large screen
    app = GeoRing(archive=archive, log=LogConsole(), mode="satellite", satellite="G16", product="ash",
                  date=np.datetime64(SLOTS[0], "D").astype(object), time=SLOTS[0][11:])
    pane = app.satellite_plot()
    plot = hv.renderer("bokeh").get_plot(pane.object)  # the Bokeh figure the browser would show
    for _ in SLOTS:  # fill the frame cache: one loop of the animation
        app.play_step()
    image = next(r for r in plot.state.renderers if type(r.glyph).__name__ == "ImageRGBA").data_source
    shown = image.data["image"][0].shape
    steps, lookups = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        app.play_step()  # the next frame (found in the cache) and the time param: the DynamicMap redraws
        steps.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        app.frame_at(app.slot_time, None, None, width, width)
        lookups.append(time.perf_counter() - t0)
    del plot
    assert image.data["image"][0].shape == shown and app._last_view[2] == width
    return {"step_best": min(steps), "step_median": statistics.median(steps), "lookup_best": min(lookups),
            "shown": shown, "skipped": list(app.skipped)}


def main(argv=None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-satpy", action="store_true")
    args = parser.parse_args(argv)

    from app.data import geo
    from app.data.archive import Archive
    from app.render import geo as render

    args.out.mkdir(parents=True, exist_ok=True)
    written = ensure_slots(args.out)
    catalog = write_catalog(args.out)
    t0 = time.perf_counter()
    archive = Archive(str(catalog))
    archive.refresh(lambda *_: None)
    t_index = time.perf_counter() - t0

    geo.clear_cache()
    t0 = time.perf_counter()
    scene = geo.read_scene(archive, "G16", SLOTS[0], ASH_CHANNELS)
    t_cold = time.perf_counter() - t0
    shape = scene["ir_105"].shape
    render.frame(scene, "ash", width=args.width, cache=False)  # warm-up: imports, thread pool
    best, median, frame = timed(lambda: render.frame(scene, "ash", width=args.width, cache=False), args.repeat)
    view_best, _, small = timed(lambda: render.view_of(scene, width=args.width, channels=ASH_CHANNELS), args.repeat)
    from app.science.rgb import compose, to_rgba_uint8

    compose_best, _, _ = timed(lambda: to_rgba_uint8(compose(small, "ash")), args.repeat)

    rows = [
        ("Index of the slot's files (refresh)", fmt_s(t_index), "—", "—"),
        (f"Cold read of C11, C13, C14, C15 ({shape[1]} × {shape[0]}), `read_scene`", fmt_s(t_cold), "reported", "—"),
        (f"Ash RGB at {frame.shape[1]} px wide from the read scene (best / median of {args.repeat})",
         f"{fmt_s(best)} / {fmt_s(median)}", "< 0.5 s", "yes" if best < 0.5 else "no"),
        ("  of which: block-average the 4 bands to the screen (`view_of`)", fmt_s(view_best), "", ""),
        ("  of which: compose + RGBA on the screen grid", fmt_s(compose_best), "", ""),
    ]
    result = {"shape": shape, "width": args.width, "frame_shape": list(frame.shape), "index_s": t_index,
              "cold_read_s": t_cold, "ash_best_s": best, "ash_median_s": median, "view_of_s": view_best,
              "compose_s": compose_best, "written": written}

    if not args.no_satpy:
        paths = [p for p in geo.slots(archive, "G16", SLOTS[0], SLOTS[1])["paths"].iloc[0]]
        sat_rgba, t_satpy = satpy_ash(paths, args.width)
        ours = np.asarray(frame.values)
        same = sat_rgba.shape == ours.shape
        both = (sat_rgba[..., 3] == 255) & (ours[..., 3] == 255) if same else None
        diff = float(np.abs(sat_rgba[both][:, :3].astype(int) - ours[both][:, :3].astype(int)).mean()) if same \
            else float("nan")
        within = float((np.abs(sat_rgba[both][:, :3].astype(int) - ours[both][:, :3].astype(int)).max(axis=1)
                        <= 8).mean()) if same else float("nan")
        rows += [
            (f"satpy: load + `ash` composite + resample (nearest) to {args.width} px + enhance", fmt_s(t_satpy),
             "baseline", ""),
            ("Ratio satpy / ours (scene already read)", f"{t_satpy / best:.1f}×", "≥ 5×",
             "yes" if t_satpy / best >= 5 else "no"),
            ("Ratio satpy / ours from cold (read + picture)", f"{t_satpy / (t_cold + best):.1f}×", "—", ""),
            ("Pictures compared (ours: block mean then compose; satpy: nearest): mean abs. difference per channel "
             "(0–255); pixels within 8/255", f"{diff:.2f}; {within:.1%}",
             "—", ""),
        ]
        result.update(satpy_s=t_satpy, ratio=t_satpy / best, ratio_cold=t_satpy / (t_cold + best),
                      mean_abs_diff_255=diff, within_8_of_255=within)

    step = animation_step(archive, args.width, max(args.repeat, 6))
    rows.append((f"Animation step with cached frames (`play_step` + plot redraw, {step['shown'][1]} × "
                 f"{step['shown'][0]} px; best / median)",
                 f"{fmt_s(step['step_best'])} / {fmt_s(step['step_median'])}", "< 300 ms",
                 "yes" if step["step_best"] < 0.3 else "no"))
    rows.append(("  of which: the cached frame's lookup", fmt_s(step["lookup_best"]), "", ""))
    result.update(animation_step_best_s=step["step_best"], animation_step_median_s=step["step_median"],
                  frame_lookup_s=step["lookup_best"])

    lines = [machine_line(), "", "| Measure | Time | Target | Met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    if written:
        lines.append("")
        lines.append("Full-resolution slots written first: " + ", ".join(f"{s} in {fmt_s(t)}" for s, t in written))
    text = "\n".join(lines)
    print(text)
    result["table"] = text
    (args.out / "bench_georing.json").write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
