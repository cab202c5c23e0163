"""Soak: one real server under mixed concurrent use, bounded in count and in time (issue 12, "never crash").

One ``fumarole serve`` on the tiny archive (its own, fresh: own port, own state folder, faulthandler on) takes,
all at once:

- from several threads: page GETs of ``/volcplume`` and ``/georing`` permalinks (other dates, zones, levels,
  filters, ``caliop_granule=`` so a curtain is drawn; each GET answers the page's shell: title bar and a loading
  spinner); whole dashboard sessions of the same permalinks opened as a browser opens them
  (``benchmarks.bench_load.open_session``: the page, its websocket session, ``document_ready``, then the patches
  until the server has built the dashboard, which ``app.views.shell.deferred_page`` does only then), checking the
  zone, satellite, product and CALIOP granule asked for are the ones shown and the curtain asked for is drawn;
  ``/api/geo/image.png`` over satellites, products, boxes and widths; ``/api/geo/value``; ``/api/geo/slots``; a
  few requests that must be refused (400/404 JSON);
- from the main thread: a time series computed through a real browser session (Playwright driving Debian's
  chromium): VolcPlume's "Satellite time series around a volcano" card, "Compute time series", then the mass
  CSV downloaded and read.

It asserts: the server is alive at the end; no 5xx; no connection error or timeout; every status is the expected
one; every PNG decodes with the width asked (and the height, when asked) and is not blank; every JSON parses and
holds the values asked for; the server's output has no "Traceback", "Segmentation fault" or "Fatal Python
error"; the time series finished with masses. The p50/p95 of each kind are printed (``-s``), never asserted.

A quicker test first shows the session client is what builds the dashboards: without ``document_ready`` (what a
plain ``bokeh.client`` session sends) the page keeps its spinner and the checks fail; with it they pass.

The load stops by itself after ``FUMAROLE_SOAK_SECONDS`` (default 100 s) or ``FUMAROLE_SOAK_REQUESTS`` requests
(default 900), whichever comes first, or at once if the server dies. Waits are on events and conditions only.
"""

from __future__ import annotations

import io
import json
import math
import os
import queue
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import wait_for_http
from PIL import Image

from app.paths import REPO
from benchmarks.bench_load import Session, open_session  # benchmarks/: on pytest's pythonpath (pyproject.toml)

pytest.register_assert_rewrite("tests.remote_servers")
from tests.remote_servers import KEY_ENV, SECRET_ENV, write_remote_catalog  # noqa: E402

pytestmark = [pytest.mark.slow]
pytest_plugins = ["tests.remote_servers"]

LOAD_SECONDS = float(os.environ.get("FUMAROLE_SOAK_SECONDS", "100"))
#: the same soak over the archive on a local S3 server (moto, read-only credentials): shorter, the load is the same
LOAD_SECONDS_S3 = float(os.environ.get("FUMAROLE_SOAK_SECONDS_S3", "60"))
MAX_REQUESTS = int(os.environ.get("FUMAROLE_SOAK_REQUESTS", "900"))
HTTP_THREADS = 6
REQUEST_TIMEOUT_S = 90.0
DAY = "2021-04-12"
CARD_TITLE = "Satellite time series around a volcano"
SERVER_FAILURE_MARKS = ("Traceback", "Segmentation fault", "Fatal Python error")

# Where each ring satellite sees something (lon_min, lat_min, lon_max, lat_max), and a point on its disk.
BOXES = {
    "G16": [(-70, 5, -50, 20), (-100, -30, -30, 40), (-62, 12, -60.5, 14)],
    "G17": [(-160, 0, -120, 40), (-150, -20, -140, -10)],
    "MSG4": [(-10, 30, 30, 60), (0, -10, 20, 10)],
    "MSG1": [(30, -10, 60, 20)],
    "H08": [(120, -10, 160, 30), (170, -20, -170, 0)],  # the last crosses the antimeridian
}
POINTS = {"G16": (13.33, -61.18), "G17": (20.0, -150.0), "MSG4": (45.0, 5.0), "MSG1": (10.0, 45.0),
          "H08": (0.0, 140.0)}
RGB_ALL = ["ash", "dust", "natural_color", "day_microphysics"]
RGB_NOT_SEVIRI = ["true_color", "so2"]  # SEVIRI has no recipe for these: 400
CLOUD_TOP = ["cloud_top_height", "cloud_top_temperature", "cloud_top_pressure"]
WIDTHS = [64, 200, 333, 512, 800]
DISK_WIDTHS = [48, 100, 150, 200]


# --------------------------------------------------------------------------------------------- the server


@dataclass
class Server:
    """A running ``fumarole serve``: its URL, process and output file."""

    url: str
    proc: subprocess.Popen
    log: Path
    source: str = "local"  # where the archive is: "local" or "s3"
    remote: object = None  # the S3 archive (tests.remote_servers.RemoteArchive) when on S3

    def output(self) -> str:
        """Everything the server wrote so far (stdout and stderr)."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def rss_mb(self) -> float | None:
        """Resident memory of the server process (VmRSS, MB), None once it is gone."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=["local", "s3"])
def soak_server(request, tiny_archive_path, tmp_path_factory):
    """A ``fumarole serve`` of the tiny catalogue for this module: a free port, its own state folder, faulthandler
    on; the archive in a local folder, or on a local S3 server read with a read-only user's credentials (the
    catalogue a user would write, its key and secret from the environment)."""
    port = _free_port()
    folder = tmp_path_factory.mktemp("soak")
    log = folder / "server.log"
    catalogue, extra, remote = REPO / "catalogs" / "tiny.yaml", {}, None
    if request.param == "s3":
        remote = request.getfixturevalue("s3_tiny_archive")
        catalogue = write_remote_catalog(folder, remote.root, remote.storage_options)
        extra = {KEY_ENV: remote.storage_options["key"], SECRET_ENV: remote.storage_options["secret"]}
    env = dict(os.environ, FUMAROLE_CATALOG=str(catalogue), BOKEH_LOG_LEVEL="warn",
               FUMAROLE_STATE_DIR=str(folder / "state"), PYTHONFAULTHANDLER="1", **extra)
    with open(log, "w", encoding="utf-8") as out:  # a file, not a pipe: a full pipe would block the server
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--address", "127.0.0.1"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log, request.param, remote)
    try:
        wait_for_http(server.url + "/", proc)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)


# --------------------------------------------------------------------------------------------- the requests


@dataclass
class Job:
    """One request of the plan: its kind (for the timings), path, expected status and check of the body."""

    kind: str
    path: str
    status: int = 200
    check: object = None  # callable(body: bytes, headers) -> problem sentence or None
    session: dict | None = None  # for the kinds "session …": the permalink's arguments of a dashboard session


@dataclass
class Outcome:
    """What one request gave."""

    job: Job
    seconds: float
    status: int | None = None
    problem: str | None = None


@dataclass
class Results:
    """Outcomes gathered from every thread."""

    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome) -> None:
        """Record one outcome."""
        with self.lock:
            self.outcomes.append(outcome)


def _query(path: str, **params) -> str:
    return f"{path}?{urllib.parse.urlencode(params)}" if params else path


def _check_png(width: int, height: int | None, opaque: bool = True):
    """The PNG decodes, has the size asked and (``opaque``) some pixel that is not transparent."""
    def check(body: bytes, _headers) -> str | None:
        try:
            img = Image.open(io.BytesIO(body))
            img.load()
        except Exception as exc:  # noqa: BLE001 - any decoding failure is the finding
            return f"the PNG does not decode ({type(exc).__name__}: {exc})"
        if img.width != width or (height is not None and img.height != height):
            asked = f"width {width}" + (f", height {height}" if height else "")
            return f"the PNG is {img.width}×{img.height}, asked {asked}"
        alpha = np.asarray(img.convert("RGBA"))[..., 3]
        if opaque and not (alpha > 0).any():
            return "the PNG is fully transparent"
        return None
    return check


def _check_value(platform: str):
    def check(body: bytes, _headers) -> str | None:
        data = json.loads(body)
        if data.get("platform") != platform:
            return f"asked {platform}, answered {data.get('platform')!r}"
        kelvins = [c["value"] for c in data.get("channels", {}).values() if c.get("units") == "K"]
        if not kelvins or not all(v is not None and 150 < v < 350 for v in kelvins):
            return f"brightness temperatures are not plausible: {kelvins}"
        return None
    return check


def _check_slots(times: list[str]):
    def check(body: bytes, _headers) -> str | None:
        got = [s["time"] for s in json.loads(body)]
        return None if got == times else f"slots {got}, expected {times}"
    return check


def _check_error(word: str):
    def check(body: bytes, _headers) -> str | None:
        message = json.loads(body).get("error", "")
        return None if word in message else f"the error {message!r} does not name {word!r}"
    return check


def _check_page(title: str):
    def check(body: bytes, _headers) -> str | None:
        text = body.decode("utf-8", errors="replace")
        return None if f"<title>{title}" in text else f"the page's title is not {title!r}"
    return check


def caliop_labels(zone: str) -> list[str]:
    """The CALIOP granules of the day crossing ``zone``, from the tiny archive's index, as VolcPlume labels them."""
    from app.core.zones import ZONES
    from app.data.archive import CALIOP, Archive

    archive = Archive(str(REPO / "catalogs" / "tiny.yaml"))
    t0 = pd.Timestamp(DAY)
    rows = archive.granules(CALIOP, t0, t0 + pd.Timedelta(days=1), ZONES[zone].bbox())
    return [f"{pd.Timestamp(r.start):%H:%M} UTC {str(r.path).rsplit('Z', 1)[-1][:1]}" for r in rows.itertuples()]


def volcplume_permalinks() -> list[dict]:
    """Page states: default, other zones/levels/filters, empty days, and curtains of indexed CALIOP granules."""
    caribbean, central, med = caliop_labels("Caribbean"), caliop_labels("Central America"), caliop_labels(
        "Mediterranean")
    assert caribbean and central and med, "the tiny archive's index lists no CALIOP granule in a test zone"
    return [
        {},
        {"zone": "World", "level": "15km"},
        {"zone": "World (Pacific-centred)", "level": "1km", "qa_min": "0.75", "edge_pixels": "20", "sza_max": "60"},
        {"date": "2021-04-11"},
        {"date": "2021-04-13", "zone": "Andes"},
        {"zone": "Caribbean", "level": "PBL", "secondary": "CALIOP 532 nm total backscatter",
         "caliop_granule": caribbean[-1]},
        {"zone": "Caribbean", "secondary": "CALIOP 532 nm depolarisation ratio", "caliop_granule": caribbean[0]},
        {"zone": "Central America", "secondary": "CALIOP 1064 nm backscatter", "caliop_granule": central[0],
         "radii": "[50, 500]"},
        {"zone": "Mediterranean", "volcano": "Etna", "secondary": "CALIOP 532 nm total backscatter",
         "caliop_granule": med[0]},
    ]


GEORING_PERMALINKS = [
    {},
    {"mode": "satellite", "satellite": "H08", "product": "dust", "time": "12:00"},
    {"mode": "satellite", "satellite": "MSG4", "product": "cloud_top_height"},
    {"mode": "satellite", "satellite": "G17", "coastlines": "false", "date": DAY, "time": "15:00"},
    {"mode": "mosaic"},
]


def image_jobs(rng: random.Random) -> list[Job]:
    """Every satellite × product that has a picture, with random boxes and widths (some full disks, some heights).

    A full disk is drawn at most at the grid's own resolution (220–232 pixels on the tiny archive), so full disks
    are asked narrower than that. Day Microphysics is undefined at night (Himawari's disk at 12 UTC): it may be
    wholly transparent; every other product must show something in the boxes, which each satellite sees.
    """
    jobs = []
    for platform, boxes in BOXES.items():
        products = RGB_ALL + CLOUD_TOP + ([] if platform.startswith("MSG") else RGB_NOT_SEVIRI)
        times = ["12:00"] if platform == "MSG1" else ["12:00", "15:00"]
        for product in products:
            params = {"satellite": platform, "product": product, "time": f"{DAY}T{rng.choice(times)}"}
            height = None
            if rng.random() < 0.8:
                params["width"] = width = rng.choice(WIDTHS)
                params["bbox"] = ",".join(f"{v:g}" for v in rng.choice(boxes))
                if rng.random() < 0.3:
                    height = params["height"] = rng.choice([100, 256])
            else:
                params["width"] = width = rng.choice(DISK_WIDTHS)
            check = _check_png(width, height, opaque=product != "day_microphysics")
            jobs.append(Job("api image", _query("/api/geo/image.png", **params), 200, check))
    return jobs


def refused_jobs() -> list[Job]:
    """Requests that must be answered 400 or 404 with a JSON sentence, never 500."""
    return [
        Job("api refused", _query("/api/geo/image.png", satellite="MSG1", time=f"{DAY}T15:00"), 404,
            _check_error("15:00")),
        Job("api refused", _query("/api/geo/image.png", satellite="MSG4", product="true_color"), 400,
            _check_error("SEVIRI")),
        Job("api refused", _query("/api/geo/image.png", satellite="G16", bbox="1,2,3"), 400, _check_error("bbox")),
        Job("api refused", _query("/api/geo/value", satellite="G16", lat="95", lon="0"), 400, _check_error("lat")),
        Job("api refused", _query("/api/geo/slots", satellite="NOPE"), 400, _check_error("NOPE")),
    ]


def plan(rng: random.Random) -> list[Job]:
    """The requests, interleaved at random, repeated up to MAX_REQUESTS: page GETs ~26 %, whole sessions ~13 %,
    API ~61 %."""
    vp = volcplume_permalinks()
    pages = [Job("page volcplume", _query("/volcplume", **p), 200, _check_page("VolcPlume")) for p in vp]
    pages += [Job("page georing", _query("/georing", **p), 200, _check_page("GEO ring")) for p in GEORING_PERMALINKS]
    sessions = [Job("session volcplume", "/volcplume", session=p) for p in vp]
    sessions += [Job("session georing", "/georing", session=p) for p in GEORING_PERMALINKS]
    values = [Job("api value", _query("/api/geo/value", satellite=s, time=f"{DAY}T12:00", lat=la, lon=lo), 200,
                  _check_value(s)) for s, (la, lo) in POINTS.items()]
    slots = [Job("api slots", _query("/api/geo/slots", satellite=s, date=DAY), 200,
                 _check_slots([f"{DAY}T12:00:00Z"] + ([] if s == "MSG1" else [f"{DAY}T15:00:00Z"])))
             for s in BOXES]
    cycle = []
    while len(cycle) < MAX_REQUESTS:
        batch = pages * 2 + sessions + image_jobs(rng) + values * 2 + slots * 2 + refused_jobs()
        rng.shuffle(batch)
        cycle += batch
    # one job of each kind first, so that even a slow run (the S3 archive on a busy machine) does every kind
    firsts = set({job.kind: k for k, job in reversed(list(enumerate(cycle)))}.values())
    cycle = [cycle[k] for k in sorted(firsts)] + [job for k, job in enumerate(cycle) if k not in firsts]
    return cycle[:MAX_REQUESTS]


# --------------------------------------------------------------------------------------------- the load


def _http(base: str, job: Job) -> Outcome:
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(base + job.path, timeout=REQUEST_TIMEOUT_S) as r:
            status, body, headers = r.status, r.read(), r.headers
    except urllib.error.HTTPError as exc:
        status, body, headers = exc.code, exc.read(), exc.headers
    except OSError as exc:  # refused, reset, timed out: the server fell over or hung
        return Outcome(job, time.perf_counter() - t0, None, f"connection error: {type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - t0
    if status != job.status:
        return Outcome(job, seconds, status, f"status {status}, expected {job.status}: {body[:300]!r}")
    try:
        problem = job.check(body, headers) if job.check else None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        problem = f"the answer does not parse ({type(exc).__name__}: {exc}): {body[:200]!r}"
    return Outcome(job, seconds, status, problem)


#: The select widget showing each permalink argument, by dashboard.
SHOWN_BY = {"/volcplume": {"zone": "Select zone", "caliop_granule": "CALIOP granule"},
            "/georing": {"satellite": "Satellite", "product": "Product", "time": "Slot (UTC)"}}


def session_problems(path: str, args: dict, session: Session) -> list[str]:
    """What the built session does not show as the permalink asked: not built, an error on the page, another zone,
    satellite, product, slot or CALIOP granule, no curtain titled with the granule and variable asked."""
    if not session.built or session.error:
        return [session.error or "the dashboard was not built"]
    problems = [f"{title} {session.selects.get(title)!r}, asked {args[name]!r}"
                for name, title in SHOWN_BY[path].items() if name in args and session.selects.get(title) != args[name]]
    if "caliop_granule" in args and not any(args["caliop_granule"] in t and args["secondary"] in t
                                            for t in session.titles):
        problems.append(f"no curtain titled with {args['secondary']!r} and {args['caliop_granule']!r} in "
                        f"{session.titles}")
    return problems


def _open_session(base: str, job: Job) -> Outcome:
    """A dashboard session of a permalink, opened as a browser does; what it shows must be what was asked."""
    session = open_session(base, job.path, job.session, timeout_s=REQUEST_TIMEOUT_S)
    status = None if session.error and "did not load" in session.error else 200
    return Outcome(job, session.seconds, status, "; ".join(session_problems(job.path, job.session, session)) or None)


def _worker(base: str, jobs: queue.Queue, results: Results, stop: threading.Event, deadline: float) -> None:
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            return
        results.add(_open_session(base, job) if job.session is not None else _http(base, job))


def _watch(server: Server, stop: threading.Event, died: threading.Event) -> None:
    """Wait for the server to exit (or for the end of the soak); a dead server stops the load at once."""
    while not stop.is_set():
        try:
            server.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            continue
        died.set()
        stop.set()


# --------------------------------------------------------------------------------------------- the time series


def _wait_visible(locator, died: threading.Event, timeout_s: float, what: str) -> None:
    """Wait for ``locator`` to be visible, looking every few seconds whether the server died meanwhile."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            locator.wait_for(state="visible", timeout=3_000)
            return
        except PlaywrightTimeout:
            if died.is_set():
                raise AssertionError(f"the server died while waiting for {what}") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not there after {timeout_s:.0f} s") from None


def run_timeseries_in_browser(page, url: str, died: threading.Event) -> pd.DataFrame:
    """Compute VolcPlume's time series in the browser (two more radii than the default) and return the mass CSV."""
    timeout_s = 240.0
    page.set_default_timeout(timeout_s * 1e3)
    page.set_viewport_size({"width": 1400, "height": 2300})
    page.goto(f"{url}/volcplume")
    _wait_visible(page.get_by_text("Orbits to display"), died, timeout_s, "the VolcPlume page")
    page.get_by_text(CARD_TITLE).click()
    compute = page.get_by_role("button", name="Compute time series")
    _wait_visible(compute, died, timeout_s, "the Compute time series button")
    # the card's own radii (the map has a row of circle checkboxes with the same numbers)
    radii = page.locator(".card").filter(has_text="Radii of the disks (km)").last
    for radius in ("1000", "2000"):
        radii.get_by_role("checkbox", name=radius, exact=True).check()
    compute.click()
    failure = page.locator(".alert-danger, .alert-warning")
    outcome = page.locator(".alert", has_text="SO2 mass so2_7km:").or_(failure).first
    _wait_visible(outcome, died, timeout_s, "the time series' outcome")
    assert failure.count() == 0, f"the time series did not end well: {failure.first.inner_text()}"
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV", exact=True).click()
    return pd.read_csv(download.value.path(), comment="#")


# --------------------------------------------------------------------------------------------- the test


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def _excerpt(output: str) -> str:
    """The server's output from a little before its first failure mark (a traceback, a fault), else its end."""
    marks = [output.index(m) for m in SERVER_FAILURE_MARKS if m in output]
    if not marks:
        return output[-4000:]
    start = max(0, min(marks) - 1500)
    return output[start:start + 6000]


def report(outcomes: list[Outcome], wall: float, rss: tuple) -> str:
    """p50/p95 per kind, counts and the server's memory, as a table to print."""
    by_kind = defaultdict(list)
    for o in outcomes:
        by_kind[o.job.kind].append(o)
    lines = [f"soak: {len(outcomes)} requests in {wall:.0f} s, {HTTP_THREADS} threads + a browser; "
             f"server RSS {rss[0]:.0f} MB before, {rss[1]:.0f} MB after; load average {os.getloadavg()[0]:.2f}",
             f"{'kind':<20} {'n':>5} {'bad':>4} {'p50 s':>8} {'p95 s':>8} {'max s':>8}"]
    for kind, items in sorted(by_kind.items()):
        secs = [o.seconds for o in items]
        bad = sum(o.problem is not None for o in items)
        lines.append(f"{kind:<20} {len(items):>5} {bad:>4} {statistics.median(secs):>8.3f} "
                     f"{_percentile(secs, 95):>8.3f} {max(secs):>8.3f}")
    return "\n".join(lines)


def test_a_session_builds_its_dashboard_once_it_says_document_ready(soak_server):
    """The session client of the soak and of the load benchmark builds the dashboards: without ``document_ready``
    (a plain ``bokeh.client`` session) the page keeps its spinner and the soak's checks fail; with it they pass."""
    args = volcplume_permalinks()[5]
    assert "caliop_granule" in args, args
    silent = open_session(soak_server.url, "/volcplume", args, ready=False, timeout_s=4.0)
    assert not silent.built and silent.patches == 0, silent
    assert silent.error == "the dashboard /volcplume was not built within 4 s (0 patches came)", silent.error
    assert session_problems("/volcplume", args, silent) == [silent.error]
    ready = open_session(soak_server.url, "/volcplume", args, timeout_s=REQUEST_TIMEOUT_S)
    assert ready.built and ready.error is None and ready.patches >= 1, ready
    assert session_problems("/volcplume", args, ready) == []
    assert ready.selects["Select zone"] == "Caribbean" and ready.selects["CALIOP granule"] == args["caliop_granule"]
    assert f"{args['secondary']} — {args['caliop_granule']}" in ready.titles, ready.titles
    georing = open_session(soak_server.url, "/georing", GEORING_PERMALINKS[1], timeout_s=REQUEST_TIMEOUT_S)
    assert georing.built and session_problems("/georing", GEORING_PERMALINKS[1], georing) == [], georing
    assert "Traceback" not in soak_server.output(), soak_server.output()[-3000:]


@pytest.mark.browser
def test_one_server_survives_mixed_concurrent_use(soak_server, page, capsys):
    rng = random.Random(12)
    jobs: queue.Queue = queue.Queue()
    for job in plan(rng):
        jobs.put(job)
    results, stop, died = Results(), threading.Event(), threading.Event()
    rss_before = soak_server.rss_mb()
    objects_before = soak_server.remote.listing() if soak_server.remote else None
    t0 = time.monotonic()
    deadline = t0 + (LOAD_SECONDS_S3 if soak_server.source == "s3" else LOAD_SECONDS)
    watcher = threading.Thread(target=_watch, args=(soak_server, stop, died), daemon=True)
    watcher.start()
    workers = [threading.Thread(target=_worker, args=(soak_server.url, jobs, results, stop, deadline), daemon=True,
                                name=f"soak-{i}") for i in range(HTTP_THREADS)]
    for w in workers:
        w.start()
    masses, ts_error, ts_seconds = None, None, math.nan
    try:
        masses = run_timeseries_in_browser(page, soak_server.url, died)
        ts_seconds = time.monotonic() - t0
    except Exception as exc:  # noqa: BLE001 - reported after the server's own state, which explains it first
        ts_error = exc
    finally:
        for w in workers:  # each stops by itself at the deadline; a request may still be out for its timeout
            w.join(timeout=max(0.0, deadline - time.monotonic()) + REQUEST_TIMEOUT_S + 30)
        hung = [w.name for w in workers if w.is_alive()]
        wall = time.monotonic() - t0
        rss_after = soak_server.rss_mb()
        alive = soak_server.proc.poll() is None
        stop.set()
        watcher.join(timeout=5)
        with capsys.disabled():  # the timings are for the reader of the run, never asserted
            rss = (rss_before or math.nan, rss_after or math.nan)
            print(f"\n[archive: {soak_server.source}]\n" + report(results.outcomes, wall, rss))
            print(f"time series (browser) done {ts_seconds:.1f} s after the load began", flush=True)

    output = soak_server.output()
    assert alive and not died.is_set(), (f"the server died (exit {soak_server.proc.returncode}) under load; "
                                         f"its output:\n{_excerpt(output)}")
    assert not hung, f"requests still unanswered {REQUEST_TIMEOUT_S:.0f} s after the load ended: {hung}"
    bad = [o for o in results.outcomes if o.problem is not None]
    server_errors = [o for o in results.outcomes if o.status is not None and o.status >= 500]
    assert not server_errors, "5xx answers:\n" + "\n".join(f"{o.status} {o.job.path}: {o.problem}"
                                                          for o in server_errors[:20])
    assert not bad, f"{len(bad)} of {len(results.outcomes)} requests went wrong:\n" + "\n".join(
        f"{o.job.kind} {o.job.path} {o.job.session or ''}: {o.problem}" for o in bad[:20])
    kinds = {o.job.kind for o in results.outcomes}
    assert {"page volcplume", "page georing", "session volcplume", "session georing", "api image", "api value",
            "api slots"} <= kinds, kinds
    for mark in SERVER_FAILURE_MARKS:
        assert mark not in output, f"the server wrote {mark!r}:\n{_excerpt(output)}"
    # the time series finished with masses: a row per orbit and radius, the largest disks holding SO2
    assert ts_error is None, f"the time series in the browser failed: {type(ts_error).__name__}: {ts_error}"
    assert {"orbit", "radius_km", "mass_t"} <= set(masses.columns), masses.columns
    assert masses["orbit"].nunique() >= 1 and set(masses["radius_km"]) >= {1000, 2000}
    largest = masses[masses["radius_km"] == 2000]["mass_t"]
    assert np.isfinite(largest).all() and (largest > 0).all(), largest.tolist()
    if soak_server.remote is not None:  # the bucket is as it was: every key, ETag and size
        assert soak_server.remote.listing() == objects_before
