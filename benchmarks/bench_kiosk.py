"""Benchmark: the kiosk runs for hours without growing, and a transition is a swap.

In one process, on the tiny sample archive and the default playlist (catalogs/kiosk.playlist.yaml) with short durations:
a :class:`app.views.kiosk.KioskView` whose screen is attached to a Bokeh document (as in a served session, so each
swap serialises the frame into the document's model) is driven by an injected clock through N transitions (both
screen orientations in turn, so both size classes are drawn and cached). Measured:

- resident memory (psutil) after every transition: after a warm-up of two loops, the range must stay within 10 %
  of its value at the end of the warm-up (the frame cache is bounded, the document keeps one frame);
- the time of a switch (the tick that puts a ready frame on screen: base64 of the PNG and the model update),
  median and p95, against the baseline of drawing that frame from the data (a cold render, the cache emptied):
  the ratio says what the ahead-of-time rendering saves.

Usage::

    .venv/bin/python -m benchmarks.bench_kiosk [--transitions 240]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time

import psutil
import yaml

from app.paths import REPO


class Clock:
    """Seconds that move only when told."""

    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _settle(view, source) -> float:
    """Wait for the wanted frame's render (its future), then time the tick that shows it; seconds."""
    source.future(view.loop.at(), view.size_class()).exception(timeout=300)
    t = time.perf_counter()
    view.tick()
    return time.perf_counter() - t


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def run(transitions: int = 240) -> dict:
    """Drive the kiosk through ``transitions`` frame changes; returns the figures."""
    from bokeh.document import Document

    from app.data.archive import get_archive
    from app.services import kiosk
    from app.views.kiosk import KioskView

    archive = get_archive(str(REPO / "catalogs" / "tiny.yaml"))
    archive.refresh(lambda *_: None)
    doc = yaml.safe_load((REPO / "catalogs" / "kiosk.playlist.yaml").read_text())
    for event in doc["events"]:
        event["seconds"] = 1
    playlist = kiosk.parse_playlist(yaml.safe_dump(doc))
    clock = Clock()
    source = kiosk.FrameSource(archive, playlist, "http://kiosk.bench", clock)
    view = KioskView(source, clock, lambda: dt.datetime.now(dt.UTC))
    view.screen.get_root(Document())  # the Bokeh model of a session's page: each swap updates it
    frames = [(e, f) for e, d in enumerate(source.durations()) for f in range(len(d))]

    # baseline: each frame drawn from the data (cold), in both size classes
    kiosk.FRAMES.clear()
    cold = []
    for size in ("landscape", "portrait"):
        for pos in frames:
            t = time.perf_counter()
            source.future(pos, size).exception(timeout=300)
            cold.append(time.perf_counter() - t)

    proc = psutil.Process()
    rss, switch = [], []
    warmup = 2 * len(frames) * 2
    for k in range(transitions + warmup):
        if k % len(frames) == 0:
            view.screen.portrait = (k // len(frames)) % 2 == 1
        clock.t = sum(sum(d) for d in source.durations()) * (k // len(frames)) + _start_of(source, frames[k % len(
            frames)])
        before = view.swaps
        seconds = _settle(view, source)
        if view.swaps != before + 1:
            raise RuntimeError(f"transition {k} did not swap (note: {view.screen.note!r})")
        if k >= warmup:
            switch.append(seconds)
            rss.append(proc.memory_info().rss)
    base = rss[0]
    return {"transitions": len(switch), "frames": len(frames), "rss_start_mb": base / 2**20,
            "rss_max_mb": max(rss) / 2**20, "rss_end_mb": rss[-1] / 2**20,
            "growth_pct": 100.0 * (max(rss) - base) / base, "spread_pct": 100.0 * (max(rss) - min(rss)) / base,
            "switch_median_ms": 1e3 * statistics.median(switch), "switch_p95_ms": 1e3 * _p95(switch),
            "render_median_ms": 1e3 * statistics.median(cold), "render_p95_ms": 1e3 * _p95(cold),
            "cache": repr(kiosk.FRAMES)}


def _start_of(source, pos) -> float:
    """Seconds from the loop's start to the beginning of frame ``pos``."""
    durations = source.durations()
    e, f = pos
    return sum(sum(d) for d in durations[:e]) + sum(durations[e][:f]) + 1e-6


def main(argv: list[str] | None = None) -> int:
    """Print the figures as a markdown table; exit 1 when memory grew by more than 10 %."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=240)
    args = parser.parse_args(argv)
    r = run(args.transitions)
    print(f"Kiosk: {r['transitions']} transitions over {r['frames']} frames (both orientations), {r['cache']}\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| resident memory after warm-up | {r['rss_start_mb']:.1f} MB |")
    print(f"| resident memory, max / at the end | {r['rss_max_mb']:.1f} / {r['rss_end_mb']:.1f} MB |")
    print(f"| growth over the run (max vs after warm-up) | {r['growth_pct']:+.1f} % (limit 10 %) |")
    print(f"| switch to a ready frame, median / p95 | {r['switch_median_ms']:.1f} / {r['switch_p95_ms']:.1f} ms |")
    print(f"| baseline: draw a frame from the data, median / p95 | {r['render_median_ms']:.0f} / "
          f"{r['render_p95_ms']:.0f} ms |")
    print(f"| ratio switch / draw (medians) | {r['switch_median_ms'] / r['render_median_ms']:.3f} |")
    return 0 if r["growth_pct"] <= 10.0 else 1


if __name__ == "__main__":
    sys.exit(main())
