"""One server under load: concurrent mixed clients (page loads, API images, values, slots) against ``fumarole serve``.

    python -m benchmarks.bench_load --seconds 60 --clients 20            # the tiny archive (default)
    python -m benchmarks.bench_load --catalog demo                       # the demo archive (data/sample)

Starts one server (``python -m app.cli serve --address 127.0.0.1`` on a free port, its own state folder, output in
``benchmarks/out/bench_load-server.log``), warms it with one request of each kind, then, in this same process:

1. **baseline**: the API clients alone (no page load) for ``--baseline-seconds``;
2. **mixed**: all ``--clients`` at once for ``--seconds``: ``--page-clients`` of them load pages as a browser
   does (:func:`open_session`, timed end to end: the GET of a ``/volcplume`` permalink — other zones, levels,
   days, curtains of indexed CALIOP granules — or of a ``/georing`` one, which answers the page's shell; its
   websocket session; ``document_ready``, on which the server builds the dashboard on its session thread; the
   patches until the dashboard has replaced the loading spinner), the others call the API
   (``/api/geo/image.png`` over satellites, products, random boxes and widths, so most PNGs are drawn, not
   cached; ``/api/geo/value``; ``/api/geo/slots``) and now and then fetch a small static file (no work: its time
   tells whether the server's event loop itself is free);

and prints p50/p95/max per kind and phase, the ratio "API p50 under page load ÷ API p50 alone", the server's
resident memory (VmRSS from ``/proc/<pid>/status``) before and after the load and once closed sessions have been
discarded, its peak (VmHWM), and the errors: connection errors and timeouts, 5xx, any other unexpected status, a
PNG that does not decode with the width asked, a JSON that does not parse, a dashboard not built within the
timeout or showing its build's error, and "Traceback" / "Segmentation fault" in the server's output. Every
request asked is valid: the expected status is 200. A summary goes to
``benchmarks/out/bench_load.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import html as html_lib
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks import OUT, fmt_s, load_average, machine_line

REPO = Path(__file__).resolve().parent.parent
CATALOGS = {"tiny": REPO / "catalogs" / "tiny.yaml", "demo": REPO / "catalogs" / "sample.yaml"}
REQUEST_TIMEOUT_S = 120.0
API_KINDS = ("api image", "api value", "api slots")

# Where each ring satellite sees something (lon_min, lat_min, lon_max, lat_max) and a point on its disk.
VIEWS = {
    "G16": ((-100, -30, -30, 40), (13.33, -61.18)),
    "G17": ((-170, -30, -110, 40), (20.0, -150.0)),
    "MSG4": ((-30, -30, 40, 60), (45.0, 5.0)),
    "MSG1": ((10, -30, 70, 30), (10.0, 45.0)),
    "H08": ((110, -30, 170, 40), (0.0, 140.0)),
}
RGB = ("ash", "dust", "natural_color", "day_microphysics")
RGB_ABI_AHI = ("true_color", "so2")  # SEVIRI has no recipe for these
CLOUD_TOP = ("cloud_top_height", "cloud_top_temperature", "cloud_top_pressure")
WIDTHS = (128, 256, 400, 640, 800)
#: A small file the server sends from its event loop, with no work: its time is the loop's own availability.
STATIC_FILE = "/static/extensions/panel/css/notifications.css"


# --------------------------------------------------------------------------------------------- the server


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int, field_name: str) -> float | None:
    """A memory line of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) in MB; None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Server:
    """``fumarole serve`` started by this benchmark."""

    catalog: Path
    log: Path
    num_procs: int = 1
    url: str = ""
    proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 180.0) -> None:
        """Start the server and return once it answers (its output goes to ``log``)."""
        port = free_port()
        env = dict(os.environ, FUMAROLE_CATALOG=str(self.catalog), BOKEH_LOG_LEVEL="warn", PYTHONFAULTHANDLER="1")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w", encoding="utf-8") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--address", "127.0.0.1",
                 "--num-procs", str(self.num_procs)],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                start_new_session=True)  # its own process group: --num-procs children are stopped with it
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                # not listening yet: wait on the process for a moment (it may exit), then look again
                try:
                    self.proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
        raise TimeoutError(f"the server did not answer within {timeout_s:.0f} s; see {self.log}")

    def stop(self) -> None:
        """Terminate the server (kill it if it does not stop)."""
        if self.proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the server, then any --num-procs child that outlived it
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass

    def memory(self) -> dict[str, float | None]:
        """Resident memory now and its peak so far (MB)."""
        return {"rss_mb": proc_status(self.proc.pid, "VmRSS"), "peak_mb": proc_status(self.proc.pid, "VmHWM")}

    def output(self) -> str:
        """What the server wrote so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")


# --------------------------------------------------------------------------------------------- the requests


@dataclass(frozen=True)
class Request:
    """One request: its kind, path and, for a PNG, the width asked."""

    kind: str
    path: str
    width: int | None = None


def _query(path: str, **params) -> str:
    return f"{path}?{urllib.parse.urlencode(params)}" if params else path


def caliop_labels(catalog: Path, day, zone: str) -> list[str]:
    """The CALIOP granules of ``day`` crossing ``zone`` from the archive's index, labelled as VolcPlume does."""
    import pandas as pd

    from app.core.zones import ZONES
    from app.data.archive import CALIOP, Archive

    t0 = pd.Timestamp(day)
    rows = Archive(str(catalog)).granules(CALIOP, t0, t0 + pd.Timedelta(days=1), ZONES[zone].bbox())
    return [f"{pd.Timestamp(r.start):%H:%M} UTC {str(r.path).rsplit('Z', 1)[-1][:1]}" for r in rows.itertuples()]


def page_requests(catalog: Path) -> list[Request]:
    """VolcPlume permalinks (zones, levels, filters, days, curtains) and GEO ring permalinks."""
    import pandas as pd

    from app.data.archive import TROPOMI, Archive

    days = [pd.Timestamp(d) for d in Archive(str(catalog)).days(TROPOMI)]
    day = days[len(days) // 2] if days else pd.Timestamp("2021-04-12")
    states = [
        {}, {"zone": "World", "level": "15km"}, {"zone": "World (Pacific-centred)", "level": "1km", "qa_min": "0.75"},
        {"date": f"{day - pd.Timedelta(days=1):%Y-%m-%d}", "zone": "Andes", "level": "PBL"},
        {"date": f"{day:%Y-%m-%d}", "edge_pixels": "20", "sza_max": "60"},
    ]
    for zone, secondary in (("Caribbean", "CALIOP 532 nm total backscatter"),
                            ("Central America", "CALIOP 1064 nm backscatter")):
        for label in caliop_labels(catalog, day, zone)[:2]:
            states.append({"date": f"{day:%Y-%m-%d}", "zone": zone, "secondary": secondary, "caliop_granule": label})
    pages = [Request("page volcplume", _query("/volcplume", **s)) for s in states]
    pages += [Request("page georing", _query("/georing", **s)) for s in (
        {}, {"mode": "satellite", "satellite": "H08", "product": "dust"},
        {"mode": "satellite", "satellite": "MSG4", "product": "cloud_top_height"}, {"mode": "mosaic"})]
    return pages


def geo_slots(base: str) -> dict[str, list[dict]]:
    """Each satellite's slots in the archive (``/api/geo/slots`` without a date)."""
    out = {}
    for platform in VIEWS:
        with urllib.request.urlopen(base + _query("/api/geo/slots", satellite=platform), timeout=60) as r:
            out[platform] = [s for s in json.loads(r.read()) if s["complete"]]
    return out


class ApiRequests:
    """An endless, seeded stream of valid API requests: images (random boxes, mostly new PNGs), values, slots."""

    def __init__(self, slots: dict[str, list[dict]], seed: int):
        self.slots = {p: s for p, s in slots.items() if s}
        self.rng = random.Random(seed)

    def image(self) -> Request:
        """A PNG of a random product in a random box the satellite sees (a full disk one time in five)."""
        rng = self.rng
        platform = rng.choice(sorted(self.slots))
        slot = rng.choice(self.slots[platform])
        products = RGB + (() if platform.startswith("MSG") else RGB_ABI_AHI) + (CLOUD_TOP if slot["cloud_top"] else ())
        params = {"satellite": platform, "product": rng.choice(products), "time": slot["time"][:16]}
        if rng.random() < 0.2:
            params["width"] = width = 128
        else:
            (x0, y0, x1, y1), _ = VIEWS[platform]
            # at most 3 times taller than wide, so the height the box's shape gives stays under the API's 4096
            # pixels and the picture keeps the width asked
            w = rng.uniform(2, (x1 - x0) / 2)
            h = min(rng.uniform(2, (y1 - y0) / 2), 3 * w)
            lon, lat = rng.uniform(x0, x1 - w), rng.uniform(y0, y1 - h)
            params["bbox"] = f"{lon:.2f},{lat:.2f},{lon + w:.2f},{lat + h:.2f}"
            params["width"] = width = rng.choice(WIDTHS)
        return Request("api image", _query("/api/geo/image.png", **params), width)

    def value(self) -> Request:
        """The values under a point near the satellite's reference point."""
        platform = self.rng.choice(sorted(self.slots))
        lat, lon = VIEWS[platform][1]
        return Request("api value", _query("/api/geo/value", satellite=platform,
                                           time=self.rng.choice(self.slots[platform])["time"][:16],
                                           lat=f"{lat + self.rng.uniform(-5, 5):.2f}",
                                           lon=f"{lon + self.rng.uniform(-5, 5):.2f}"))

    def slots_of_day(self) -> Request:
        """The slots of one day."""
        platform = self.rng.choice(sorted(self.slots))
        day = self.rng.choice(self.slots[platform])["time"][:10]
        return Request("api slots", _query("/api/geo/slots", satellite=platform, date=day))

    def next(self) -> Request:
        """Images 45 % of the time, values 30 %, slots 15 %, a small static file 10 % (the event loop's own time)."""
        x = self.rng.random()
        if x < 0.45:
            return self.image()
        if x < 0.75:
            return self.value()
        return self.slots_of_day() if x < 0.9 else Request("static file", STATIC_FILE)


# --------------------------------------------------------------------------------------------- a dashboard session


@dataclass
class Session:
    """What one dashboard session showed when the wait ended: built or not, its widgets, titles and any failure."""

    seconds: float = 0.0
    built: bool = False
    selects: dict[str, str] = field(default_factory=dict)
    titles: list[str] = field(default_factory=list)
    patches: int = 0
    error: str | None = None


def _run_coroutine(coro) -> None:
    """Run ``coro`` to its end: here, or on a thread of its own when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    with ThreadPoolExecutor(1) as one:
        one.submit(asyncio.run, coro).result()


def open_session(base: str, path: str, arguments: dict | None = None, *, ready: bool = True,
                 timeout_s: float = REQUEST_TIMEOUT_S) -> Session:
    """Load a dashboard as a browser does, timed end to end, and say what the session held once built.

    GET the page (the shell: title bar and a loading spinner); open its websocket session with the page's signed
    token and the page's arguments; pull the document; send ``document_ready`` as BokehJS does once the page is
    rendered (a PATCH-DOC whose ``MessageSent`` event carries the ``bokeh_event``), which makes Panel run the
    page's ``onload`` build; then wait, on the patches the server sends, until the spinner has been replaced by the
    dashboard, or for ``timeout_s`` at most. ``ready=False`` leaves the event out, as a plain ``bokeh.client``
    session does: the dashboard is then never built. ``error`` says what went wrong (the page, the websocket, the
    build's own error shown on the page, or the deadline), None when the dashboard was built.
    """
    import panel  # noqa: F401 - registers Panel's Bokeh models, needed to decode the document

    import app.views.georing  # noqa: F401 - registers the GEO ring's own Bokeh model (its frame player), likewise

    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    out = Session()
    query = f"?{urllib.parse.urlencode(arguments)}" if arguments else ""
    try:
        with urllib.request.urlopen(base + path + query, timeout=timeout_s) as r:
            token = re.search(r'"token":\s*"([^"]+)"', r.read().decode("utf-8", errors="replace"))
    except urllib.error.HTTPError as exc:
        out.error = f"the page {path} answered HTTP {exc.code}"
    except OSError as exc:
        out.error = f"the page {path} did not load: {type(exc).__name__}: {exc}"
    else:
        if token is None:
            out.error = f"the page {path} holds no session token"
        else:
            try:
                _run_coroutine(_session(base.replace("http", "ws", 1) + path + "/ws" + query, token.group(1), ready,
                                        deadline, out))
            except TimeoutError:
                out.error = (f"the dashboard {path} was not built within {timeout_s:.0f} s "
                             f"({out.patches} patches came)")
            except Exception as exc:  # noqa: BLE001 - any failure of the session is the finding
                out.error = f"the session of {path} failed: {type(exc).__name__}: {exc}"
    out.seconds = time.perf_counter() - t0
    return out


class _Wire:
    """Bokeh protocol messages (header, metadata, content and buffer frames) over one websocket, each wait bounded
    by one deadline."""

    def __init__(self, socket, deadline: float):
        from bokeh.client.websocket import WebSocketClientConnectionWrapper
        from bokeh.protocol import Protocol
        from bokeh.protocol.receiver import Receiver

        self.socket, self.deadline = socket, deadline
        self.protocol = Protocol()
        self.receiver = Receiver(self.protocol)
        self.connection = WebSocketClientConnectionWrapper(socket)

    async def send(self, msgtype: str, *args):
        """Send a new message of ``msgtype``; returns it (its header holds the id a reply names)."""
        message = self.protocol.create(msgtype, *args)
        await message.send(self.connection)
        return message

    async def _receive(self):
        while True:
            fragment = await self.socket.read_message()
            if fragment is None:
                raise ConnectionError(f"the server closed the websocket ({self.socket.close_reason or 'no reason'})")
            message = await self.receiver.consume(fragment)
            if message is not None:
                return message

    async def receive(self):
        """The next whole message; TimeoutError once the deadline has passed."""
        return await asyncio.wait_for(self._receive(), max(0.0, self.deadline - time.monotonic()))


async def _session(ws_url: str, token: str, ready: bool, deadline: float, out: Session) -> None:
    """The websocket half of :func:`open_session`."""
    from bokeh.document import Document
    from bokeh.document.events import MessageSentEvent
    from bokeh.events import DocumentReady
    from tornado.websocket import websocket_connect

    socket = await asyncio.wait_for(websocket_connect(ws_url, subprotocols=["bokeh", token],
                                                      max_message_size=64 * 1024 * 1024),
                                    max(0.0, deadline - time.monotonic()))
    try:
        wire = _Wire(socket, deadline)
        if (ack := await wire.receive()).msgtype != "ACK":
            raise ConnectionError(f"the server's first message is {ack.msgtype}, not ACK")
        request = await wire.send("PULL-DOC-REQ")
        while (reply := await wire.receive()).header.get("reqid") != request.header["msgid"]:
            pass  # nothing else is expected before the document, which supersedes anything else
        if reply.msgtype != "PULL-DOC-REPLY":
            raise ConnectionError(f"the server answered the document request with {reply.msgtype}: {reply.content}")
        doc = Document()
        reply.push_to_document(doc)
        column, spinner = _spinner(doc)
        if ready:
            await wire.send("PATCH-DOC", [MessageSentEvent(doc, "bokeh_event", DocumentReady())])
        while column is not None and spinner in column.children:
            message = await wire.receive()
            if message.msgtype == "PATCH-DOC":
                message.apply_to_document(doc)
                out.patches += 1
        out.built = True
        _describe(doc, column, out)
    finally:
        socket.close()


def _spinner(doc) -> tuple:
    """The page's loading spinner (Panel's LoadingSpinner) and the column holding it, (None, None) if none."""
    for model in list(doc.models):
        for child in getattr(model, "children", None) or []:
            if "spin" in (getattr(child, "css_classes", None) or []):
                return model, child
    return None, None


def _describe(doc, column, out: Session) -> None:
    """The built document's select widgets, plot titles and the build's error shown on the page, if any."""
    from bokeh.models import Select, Title

    out.selects = {m.title: m.value for m in doc.models if isinstance(m, Select)}
    out.titles = [m.text for m in doc.models if isinstance(m, Title)]
    for child in column.children if column is not None else ():
        if "alert-danger" in (getattr(child, "css_classes", None) or []):
            text = html_lib.unescape(re.sub(r"<[^>]+>", " ", html_lib.unescape(child.text)))
            out.error = "the page shows an error: " + " ".join(text.split())


# --------------------------------------------------------------------------------------------- the clients


@dataclass
class Sample:
    """One timed request."""

    phase: str
    kind: str
    seconds: float
    error: str | None


@dataclass
class Log:
    """Samples from every client thread."""

    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample) -> None:
        """Record one sample."""
        with self.lock:
            self.samples.append(sample)


def fetch(base: str, req: Request) -> tuple[float, str | None]:
    """Time one request; the error is None when the answer is a 200 whose body decodes as it should.

    A page is loaded whole, as a browser does (:func:`open_session`): its time runs until the dashboard is built.
    """
    if req.kind.startswith("page"):
        path, _, query = req.path.partition("?")
        session = open_session(base, path, dict(urllib.parse.parse_qsl(query)), timeout_s=REQUEST_TIMEOUT_S)
        return session.seconds, session.error
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(base + req.path, timeout=REQUEST_TIMEOUT_S) as r:
            body = r.read()
    except urllib.error.HTTPError as exc:
        return time.perf_counter() - t0, f"HTTP {exc.code}: {exc.read()[:200]!r}"
    except OSError as exc:
        return time.perf_counter() - t0, f"connection: {type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    try:
        if req.kind == "api image":
            from PIL import Image

            img = Image.open(io.BytesIO(body))
            img.load()
            if img.width != req.width:
                return seconds, f"PNG {img.width} px wide, asked {req.width}"
        elif req.kind.startswith("api"):
            json.loads(body)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is an error of the answer
        return seconds, f"undecodable answer: {type(exc).__name__}: {exc}"
    return seconds, None


def client(base: str, phase: str, next_request, log: Log, deadline: float, stop: threading.Event) -> None:
    """Send requests one after the other until the deadline (or the stop event: the server died)."""
    while not stop.is_set() and time.monotonic() < deadline:
        req = next_request()
        seconds, error = fetch(base, req)
        log.add(Sample(phase, req.kind, seconds, error))


def run_phase(server: Server, phase: str, streams: list, seconds: float, log: Log) -> float:
    """Run one client thread per request stream for ``seconds``; returns the wall time (the last answers included)."""
    stop = threading.Event()
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=client, args=(server.url, phase, s, log, deadline, stop), daemon=True)
               for s in streams]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        if server.proc.poll() is not None:
            stop.set()
        for t in threads:
            t.join(timeout=1.0)
    return time.monotonic() - t0


def page_stream(pages: list[Request], seed: int):
    """An endless shuffled cycle of the page requests."""
    rng = random.Random(seed)
    order: list[Request] = []

    def nxt() -> Request:
        if not order:
            order.extend(rng.sample(pages, len(pages)))
        return order.pop()
    return nxt


# --------------------------------------------------------------------------------------------- the report


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p95 and max of the values (seconds)."""
    return statistics.median(values), float(np.percentile(values, 95)), max(values)


def table(log: Log) -> tuple[list[str], dict]:
    """Markdown rows per phase and kind, and the figures as a dict."""
    groups: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for s in log.samples:
        groups[(s.phase, s.kind)].append(s)
    rows = ["| phase | kind | requests | errors | p50 | p95 | max |", "|---|---|---:|---:|---:|---:|---:|"]
    figures = {}
    for (phase, kind), items in sorted(groups.items()):
        p50, p95, top = percentiles([s.seconds for s in items])
        errors = sum(s.error is not None for s in items)
        rows.append(f"| {phase} | {kind} | {len(items)} | {errors} | {fmt_s(p50)} | {fmt_s(p95)} | {fmt_s(top)} |")
        figures[f"{phase}/{kind}"] = {"n": len(items), "errors": errors, "p50": p50, "p95": p95, "max": top}
    for phase in ("baseline", "mixed"):
        api = [s.seconds for s in log.samples if s.phase == phase and s.kind in API_KINDS]
        if api:
            p50, p95, top = percentiles(api)
            errors = sum(s.error is not None for s in log.samples if s.phase == phase and s.kind in API_KINDS)
            rows.append(f"| {phase} | **all API** | {len(api)} | {errors} | {fmt_s(p50)} | {fmt_s(p95)} | "
                        f"{fmt_s(top)} |")
            figures[f"{phase}/api"] = {"n": len(api), "errors": errors, "p50": p50, "p95": p95, "max": top}
    return rows, figures


def uptime() -> str:
    """``uptime``'s line (the machine's load), or the load average."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"load average {load_average()}"


def main(argv=None) -> dict:
    """Run the benchmark, print the report and return its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the mixed load (default 60)")
    ap.add_argument("--clients", type=int, default=20, help="concurrent clients in the mixed load (default 20)")
    ap.add_argument("--page-clients", type=int, default=None,
                    help="how many of them load pages (default: two in five); the others call the API")
    ap.add_argument("--baseline-seconds", type=float, default=30.0,
                    help="length of the baseline: the API clients alone (default 30)")
    ap.add_argument("--settle-seconds", type=float, default=40.0,
                    help="wait after the load before the last memory reading, for closed sessions to be discarded "
                         "(Bokeh: 15 s unused lifetime, checked every 17 s; default 40)")
    ap.add_argument("--num-procs", type=int, default=1,
                    help="server processes (fumarole serve --num-procs; memory figures are then the first one's)")
    ap.add_argument("--catalog", default="tiny",
                    help="catalogue: 'tiny' (data/tiny, default), 'demo' (data/sample) or a path")
    args = ap.parse_args(argv)
    catalog = CATALOGS.get(args.catalog, Path(args.catalog)).resolve()
    if not catalog.exists():
        ap.error(f"--catalog {args.catalog}: {catalog} does not exist")
    n_pages = args.page_clients if args.page_clients is not None else (args.clients * 2) // 5
    n_api = args.clients - n_pages
    if not (0 <= n_pages <= args.clients and n_api >= 1):
        ap.error(f"--page-clients {n_pages} must leave at least one of the {args.clients} clients for the API")

    started = dt.datetime.now().astimezone()
    print(f"# Server under load, {started:%Y-%m-%d %H:%M %Z}\n")
    print(machine_line())
    print(f"uptime at start: {uptime()}\n")
    shown = catalog.relative_to(REPO) if catalog.is_relative_to(REPO) else catalog
    print(f"{args.num_procs} server process(es); catalogue {shown}; {args.clients} "
          f"clients ({n_pages} page, {n_api} API) for {args.seconds:.0f} s; baseline: the {n_api} API clients "
          f"alone for {args.baseline_seconds:.0f} s.\n")
    # one state folder (index, caches, keys) for this run, shared by the server and the look-ups below
    state = tempfile.mkdtemp(prefix="fumarole-bench-load-state-")
    os.environ["FUMAROLE_STATE_DIR"] = state
    pages = page_requests(catalog)  # builds the index first, so the server finds it made
    server = Server(catalog, OUT / "bench_load-server.log", num_procs=args.num_procs)
    t_start = time.perf_counter()
    server.start()
    started_s = time.perf_counter() - t_start
    log = Log()
    try:
        slots = geo_slots(server.url)
        warm = ApiRequests(slots, seed=0)
        for req in pages + [warm.image(), warm.value(), warm.slots_of_day()]:  # one of each kind, not counted
            fetch(server.url, req)
        memory = {"start": server.memory()}
        baseline_wall = run_phase(server, "baseline", [ApiRequests(slots, seed=100 + i).next for i in range(n_api)],
                                  args.baseline_seconds, log)
        memory["before"] = server.memory()
        streams = ([page_stream(pages, seed=i) for i in range(n_pages)]
                   + [ApiRequests(slots, seed=200 + i).next for i in range(n_api)])
        mixed_wall = run_phase(server, "mixed", streams, args.seconds, log)
        memory["after"] = server.memory()
        uptime_end = uptime()
        if server.proc.poll() is None:
            threading.Event().wait(args.settle_seconds)  # let the server discard the sessions now closed
            memory["settled"] = server.memory()
        alive = server.proc.poll() is None
    finally:
        server.stop()
        shutil.rmtree(state, ignore_errors=True)
    output = server.output()
    rows, figures = table(log)
    print(f"Server ready in {started_s:.1f} s; baseline {baseline_wall:.0f} s, mixed load {mixed_wall:.0f} s "
          f"(wall, last answers included).\n")
    print("\n".join(rows) + "\n")
    base, mixed = figures.get("baseline/api"), figures.get("mixed/api")
    ratio = mixed["p50"] / base["p50"] if base and mixed and base["p50"] > 0 else None
    for kind in (*API_KINDS, "static file"):
        b, m = figures.get(f"baseline/{kind}"), figures.get(f"mixed/{kind}")
        if b and m:
            print(f"- {kind}: p50 {fmt_s(m['p50'])} under page load, {fmt_s(b['p50'])} alone: "
                  f"{m['p50'] / b['p50']:.1f}×")
    if ratio is not None:
        print(f"- **API p50 under page load ÷ API p50 alone: {ratio:.1f}×** "
              f"({fmt_s(mixed['p50'])} ÷ {fmt_s(base['p50'])})")
    mem_text = ", ".join(f"{k} {v['rss_mb']:.0f} MB" for k, v in memory.items() if v["rss_mb"] is not None)
    peak = max((v["peak_mb"] or 0) for v in memory.values())
    print(f"- server resident memory (VmRSS): {mem_text}; peak (VmHWM) {peak:.0f} MB")
    errors = [s for s in log.samples if s.error is not None]
    marks = {m: output.count(m) for m in ("Traceback", "Segmentation fault", "Fatal Python error")}
    print(f"- errors: {len(errors)} of {len(log.samples)} requests; server alive at the end: {alive}; "
          f"in its output: " + ", ".join(f"{k} ×{v}" for k, v in marks.items()))
    for s in errors[:10]:
        print(f"  - {s.phase} {s.kind}: {s.error}")
    print(f"- uptime at the end of the load: {uptime_end}")
    result = {"date": started.isoformat(timespec="minutes"), "machine": machine_line(), "uptime_end": uptime_end,
              "catalog": str(catalog), "clients": args.clients, "page_clients": n_pages, "seconds": args.seconds,
              "figures": figures, "api_ratio": ratio, "memory": memory, "errors": len(errors),
              "requests": len(log.samples), "alive": alive, "server_output_marks": marks}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_load.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    r = main()
    sys.exit(0 if r["alive"] and r["errors"] == 0 else 1)
