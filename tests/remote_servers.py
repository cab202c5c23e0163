"""Real remote archives for the tests: a local S3 server (moto) and a read-only HTTP server with range requests.

Use from a test file with ``pytest_plugins = ["tests.remote_servers"]`` at its top. Fixtures:

- ``s3_server`` (session): moto's ``ThreadedMotoServer`` on a free loopback port, with IAM authorisation on: an
  ``admin`` user (uploads) and a ``reader`` user whose policy allows only ``s3:GetObject`` and ``s3:ListBucket``,
  so that anything Fumarole tried to write into the archive would be refused.
- ``s3_tiny_archive`` (session): ``data/tiny`` uploaded to ``s3://fumarole-tiny/archive``; gives the root URL, the
  reader's ``storage_options`` (endpoint_url, key, secret) and :meth:`RemoteArchive.listing` (key -> ETag, size).
- ``http_tiny_archive`` (session): ``data/tiny`` served read-only over HTTP (GET/HEAD only, ``Range`` answered with
  206, HTML directory index pages), counting the bytes it sends per path (``bytes_served``).

:func:`write_remote_catalog` writes the catalogue a user would write for such a root: ``catalogs/tiny.yaml`` with
the archive root swapped and the storage options set on every data entry; credentials are written as
``{env(NAME)}`` templates (:data:`KEY_ENV`, :data:`SECRET_ENV`), never as values.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.server
import json
import os
import re
import socket
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "data" / "tiny"
TINY_CATALOG = REPO / "catalogs" / "tiny.yaml"
BUCKET = "fumarole-tiny"
PREFIX = "archive"
#: Environment variables the written catalogues read the S3 credentials from (``{env(NAME)}``).
KEY_ENV = "FUMAROLE_TEST_S3_KEY"
SECRET_ENV = "FUMAROLE_TEST_S3_SECRET"

_ADMIN = {"key": "admin-bootstrap", "secret": "admin-bootstrap"}


def free_port() -> int:
    """A free TCP port on the loopback interface (closed again: a 'closed port' for unreachable endpoints)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    """A running moto S3 server: its endpoint and the options of its two users."""

    endpoint_url: str
    admin_options: dict
    reader_options: dict

    def filesystem(self, options: Mapping | None = None):
        """An s3fs file system on this server (default: the admin's)."""
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True, **dict(options or self.admin_options))


def _iam_user(iam, name: str, policy: dict) -> dict:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def _set_auth(endpoint: str, free_actions: str) -> None:
    req = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=free_actions.encode(), method="POST",
                                 headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port, with IAM authorisation: an admin and a read-only reader."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id=_ADMIN["key"], aws_secret_access_key=_ADMIN["secret"])
        admin = _iam_user(iam, "admin", {"Version": "2012-10-17",
                                         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        reader = _iam_user(iam, "reader", {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
             "Resource": "*"}]})
        _set_auth(endpoint, "0")  # from now on every request is authenticated and authorised
        yield S3Server(endpoint, {"endpoint_url": endpoint, **admin}, {"endpoint_url": endpoint, **reader})
    finally:
        with contextlib.suppress(OSError):
            _set_auth(endpoint, "inf")
        server.stop()


@dataclass
class RemoteArchive:
    """A copy of ``data/tiny`` behind a URL: ``root`` (no trailing slash) and the options to read it."""

    root: str
    storage_options: dict
    server: S3Server | None = None
    bytes_served: dict[str, int] = field(default_factory=dict)
    #: HTTP: requests received per path, and the paths whose answers the server cuts short (a dropped connection)
    requests: dict[str, int] = field(default_factory=dict)
    cut_short: set[str] = field(default_factory=set)

    def url(self, relative: str | Path) -> str:
        """The URL of a file of the archive, from its path relative to ``data/tiny``."""
        return f"{self.root}/{Path(relative).as_posix()}"

    def listing(self) -> dict[str, tuple[str, int]]:
        """S3: every key under the root -> (ETag, size), read with the admin's credentials."""
        fs = self.server.filesystem()
        fs.invalidate_cache()
        found = fs.find(self.root[len("s3://"):], detail=True)
        return {k: (str(v.get("ETag")), int(v["size"])) for k, v in found.items()}


@pytest.fixture(scope="session")
def s3_tiny_archive(s3_server: S3Server) -> RemoteArchive:
    """``data/tiny`` uploaded to ``s3://fumarole-tiny/archive``, read with the read-only user's options."""
    fs = s3_server.filesystem()
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    files = [p for p in sorted(TINY.rglob("*")) if p.is_file()]
    fs.put([str(p) for p in files], [f"{BUCKET}/{PREFIX}/{p.relative_to(TINY).as_posix()}" for p in files])
    return RemoteArchive(f"s3://{BUCKET}/{PREFIX}", dict(s3_server.reader_options), server=s3_server)


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """GET and HEAD only, ``Range: bytes=a-b`` answered with 206, bytes sent counted per path (server.counts)."""

    protocol_version = "HTTP/1.1"
    _RANGE = re.compile(r"bytes=(\d*)-(\d*)$")

    def log_message(self, format, *args):  # noqa: A002 - quiet test output
        pass

    def _count(self, n: int) -> None:
        with self.server.lock:
            self.server.counts[self.path] = self.server.counts.get(self.path, 0) + n

    def send_head(self):
        with self.server.lock:
            self.server.requests[self.path] = self.server.requests.get(self.path, 0) + 1
        path = self.translate_path(self.path)
        if os.path.isdir(path) or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        first, last = 0, size - 1
        match = self._RANGE.match(self.headers.get("Range", "").strip())
        if match and (match[1] or match[2]):
            if match[1]:
                first, last = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1)
            else:
                first = max(0, size - int(match[2]))
            if first > last:
                self.send_error(416, "Requested Range Not Satisfiable")
                return None
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        else:
            self.send_response(200)
        f = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        f.seek(first)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", email.utils.formatdate(os.path.getmtime(path), usegmt=True))
        self.end_headers()
        self._left = last - first + 1
        if self.path in self.server.cut_short:  # a connection dropped half-way: half the body, then closed
            self._left = (last - first + 1) // 2
            self.close_connection = True
        return f

    def copyfile(self, source, outputfile):
        left = getattr(self, "_left", None)
        while left is None or left > 0:
            chunk = source.read(65536 if left is None else min(65536, left))
            if not chunk:
                break
            self._count(len(chunk))  # counted before it is sent: a client that has the bytes finds them counted
            outputfile.write(chunk)
            if left is not None:
                left -= len(chunk)
        self._left = None


@contextlib.contextmanager
def serve_http(folder: str | os.PathLike) -> Iterator[RemoteArchive]:
    """Serve ``folder`` read-only over HTTP on loopback (ranges, directory index pages), bytes counted."""
    counts: dict[str, int] = {}

    def handler(*args, **kwargs):
        return _RangeHandler(*args, directory=str(folder), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.counts = counts
    server.requests = {}
    server.cut_short = set()
    server.lock = threading.Lock()
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RemoteArchive(f"http://127.0.0.1:{server.server_address[1]}", {}, bytes_served=counts,
                            requests=server.requests, cut_short=server.cut_short)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def http_tiny_archive() -> Iterator[RemoteArchive]:
    """``data/tiny`` served read-only over HTTP on loopback (ranges, directory index pages), bytes counted."""
    with serve_http(TINY) as archive:
        yield archive


def write_remote_catalog(folder: str | os.PathLike, root: str, storage_options: Mapping | None,
                         name: str = "remote.yaml", credentials_from_env: bool = True) -> Path:
    """Write ``catalogs/tiny.yaml`` for an archive at ``root`` (a URL), as a user would, and return its path.

    Every data entry gets ``storage_options``; with ``credentials_from_env`` its ``key``/``secret`` are written as
    ``{env(FUMAROLE_TEST_S3_KEY)}``/``{env(FUMAROLE_TEST_S3_SECRET)}`` (the caller sets them with monkeypatch).
    """
    text = TINY_CATALOG.read_text().replace("{CATALOG_DIR}/../data/tiny", root.rstrip("/"))
    cat = yaml.safe_load(text)
    options = dict(storage_options or {})
    if credentials_from_env:
        if "key" in options:
            options["key"] = f"{{env({KEY_ENV})}}"
        if "secret" in options:
            options["secret"] = f"{{env({SECRET_ENV})}}"
    for entry in cat["data"].values():
        entry["kwargs"]["storage_options"] = dict(options) or None
    cat["metadata"]["name"] = "remote"
    cat["metadata"]["title"] = f"Fumarole tiny archive at {root}"
    path = Path(folder) / name
    path.write_text(yaml.safe_dump(cat, sort_keys=False, allow_unicode=True))
    return path
