"""Fumarole benchmarks: each times our way against a baseline in the same process (see docs/benchmarks.md).

``python -m benchmarks.run [--quick]`` runs them all and prints one markdown table. Outputs go to the git-ignored
``benchmarks/out/``.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def timed(func, repeat: int = 3):
    """(best, median, all) seconds of ``repeat`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times), times, result


def fmt_s(seconds: float | None) -> str:
    """Seconds as text: ms below one second, one decimal above a minute."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s" if seconds < 60 else f"{seconds:.1f} s ({seconds / 60:.1f} min)"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages as text."""
    return "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())


def machine() -> dict[str, str]:
    """CPU model, cores, memory (``free -g``), Python and OS, for the record."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        cores = str(os.cpu_count())
    mem = "unknown"
    try:
        lines = subprocess.run(["free", "-g"], capture_output=True, text=True, check=True).stdout.splitlines()
        fields = next(line for line in lines if line.startswith("Mem:")).split()
        mem = f"{fields[1]} GB total, {fields[-1]} GB available"
    except (OSError, subprocess.CalledProcessError, StopIteration, IndexError):
        pass
    return {
        "cpu": model,
        "cores": cores,
        "memory": mem,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def machine_line() -> str:
    """One line describing the machine and its current load."""
    m = machine()
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores (nproc), {m['memory']} (free -g); Python {m['python']} on "
        f"{m['os']}; load average (1/5/15 min) {load_average()}"
    )
