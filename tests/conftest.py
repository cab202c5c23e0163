"""Shared fixtures: the tiny sample archive, a running dashboard server, and Debian's chromium via Playwright."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from app.paths import REPO, tiny_archive

# Every test process (and the servers they start) keeps its state (index, time-series cache, keys) in a folder of
# this run, never in the user's home or in the archive.
if "FUMAROLE_STATE_DIR" not in os.environ or not os.environ.get("FUMAROLE_TEST_KEEP_STATE"):
    import tempfile

    os.environ["FUMAROLE_STATE_DIR"] = tempfile.mkdtemp(prefix="fumarole-test-state-")

CHROMIUM = os.environ.get("FUMAROLE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def tiny_archive_path() -> Path:
    """The tiny sample archive (data/tiny), written once if a previous run did not complete it."""
    from app.sample.archive import is_complete, write_archive

    root = tiny_archive()
    if not is_complete(root):
        write_archive(root, scenario="soufriere-tiny", resolution="tiny", workers=2)
    return root


@pytest.fixture
def tiny_copy(tiny_archive_path, tmp_path) -> Path:
    """A private copy of the tiny archive, for tests that damage files."""
    dest = tmp_path / "archive"
    shutil.copytree(tiny_archive_path, dest)
    return dest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    """Return once ``url`` answers 200; fail with the server's output if it dies or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{out}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError as exc:  # not listening yet: poll again shortly (the condition, not the delay, decides)
            last = exc
            time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s (last error: {last})")


@contextlib.contextmanager
def served(catalog: Path, *, env: dict | None = None, quiet: bool = False, args: tuple = (), ready: str = "/"):
    """`fumarole serve` on ``catalog`` on a free loopback port; yields the base URL once ``ready`` answers; stops it.

    ``args``: more flags of ``fumarole serve`` (e.g. the access-control ones).

    ``quiet``: the server's output is dropped (a long journey would fill the pipe); else it is kept for the error
    message of a server that dies on start.
    """
    port = _free_port()
    full_env = dict(os.environ, FUMAROLE_CATALOG=str(catalog), BOKEH_LOG_LEVEL="warn", **(env or {}))
    out = subprocess.DEVNULL if quiet else subprocess.PIPE
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--address", "127.0.0.1", *args],
        cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + ready, proc)
        yield url
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def dashboard_server(tiny_archive_path):
    """`fumarole serve` on the tiny catalogue, on a free port; yields the base URL."""
    with served(REPO / "catalogs" / "tiny.yaml") as url:
        yield url


def stop_process(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """Terminate a server the tests started, and kill it if it does not stop in time."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh page that records console errors and uncaught exceptions; the test fails on any."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    pg.errors = errors
    yield pg
    context.close()
    assert not errors, "browser errors:\n" + "\n".join(errors)


@pytest.fixture(scope="session")
def shots() -> Path:
    """Folder for the screenshots browser tests take (git-ignored), to look at after a run."""
    d = REPO / "screenshots"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture(scope="module")
def archive(tiny_archive_path):
    """The tiny archive, indexed (a module that means another archive defines its own ``archive``)."""
    from app.data.archive import Archive

    a = Archive("tiny")
    a.refresh(lambda *_: None)
    return a


def http_get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a GET, error answers included."""
    import urllib.error

    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=120) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def png_rgba(body: bytes):
    """A PNG's pixels as an (rows, columns, 4) array of ints."""
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(body)).convert("RGBA")).astype(int)


def archive_over(root: Path, folder: Path):
    """An :class:`~app.data.archive.Archive` of the tiny catalogue pointed at ``root`` (a copy), indexed.

    The catalogue is written under ``folder``; tests damage or touch the copy's files.
    """
    from app.data.archive import Archive

    text = (REPO / "catalogs" / "tiny.yaml").read_text().replace("{CATALOG_DIR}/../data/tiny", str(root))
    path = Path(folder) / "catalogs" / "tiny.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    archive = Archive(str(path))
    archive.refresh(lambda *_: None)
    return archive


@contextlib.contextmanager
def serve_api(archive, modules=("geo",)):
    """Base URL of a Tornado server with the API routes of ``modules`` (of app.api: ``geo``, ``v1``) over ``archive``,
    in a thread (stopped on exit)."""
    import importlib

    import tornado.httpserver
    import tornado.web

    def routes(archive):
        return [r for m in modules for r in importlib.import_module(f"app.api.{m}").routes(archive=archive)]

    port = _free_port()
    started = threading.Event()
    state = {}

    def run():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = tornado.httpserver.HTTPServer(tornado.web.Application(routes(archive=archive)))
        server.listen(port, "127.0.0.1")
        state.update(loop=loop)
        started.set()
        loop.run_forever()
        server.stop()
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(30), "the API server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        state["loop"].call_soon_threadsafe(state["loop"].stop)
        thread.join(10)


@pytest.fixture(scope="module")
def satpy_one_thread():
    """satpy's arrays are lazy: computed by dask's threads they would read HDF5 chunks from several threads at once,
    and HDF5 is not thread-safe (a segfault on CI). A module that computes satpy's own arrays uses this fixture
    (``pytestmark = pytest.mark.usefixtures("satpy_one_thread")``): dask computes them in the calling thread. (Not
    HDF_LOCK for the whole module: an index refresh's worker threads take it and would wait for ever.)"""
    import dask

    with dask.config.set(scheduler="synchronous"):
        yield
