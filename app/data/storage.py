"""One way to reach a granule, local or remote: fsspec with the catalogue's ``storage_options``.

Every reader opens its files through this module (``docs/architecture.md``, "Remote archives"):

- :func:`open_binary` gives a seekable binary file: the file itself when local, else an fsspec file that fetches
  byte ranges on demand into a bounded cache of small blocks (:data:`BLOCK_SIZE`), so that an HDF5 library reading
  a few variables of a 400 MB granule fetches only their chunks, and its metadata (object headers, B-tree nodes,
  attributes: reads of a few KB each) costs a few small blocks, not large ones; a large read (a chunk) is fetched
  as one request of the blocks it spans;
- :func:`local_copy` gives a local path, for libraries that need one (pyhdf for CALIOP's HDF4, netCDF-C): the
  path itself when local, else a copy kept in the per-user cache (:func:`cache_dir`), keyed on the object's
  :func:`stamp` (a changed object is fetched again) and bounded in bytes (``FUMAROLE_CACHE_MAX_BYTES``, default
  5 GB, least recently used first out);
- :func:`stamp` is the cache key of everything read from a file: ``(url, version, size)`` with the object's ETag
  (else its modification time) as the version; it replaces ``os.stat``.

Storage options are registered per archive root (:func:`register`, done by :mod:`app.data.catalog` for every
product and wind source); a URL gets those of the longest registered root it lies under, on top of bounded
defaults: timeouts and a few retries (:data:`CONNECT_TIMEOUT_S`, :data:`READ_TIMEOUT_S`, :data:`RETRIES`), so that
nothing waits or retries forever. Credentials are not stored by Fumarole: a catalogue names them with
``{env(NAME)}`` templates, or leaves them to the fsspec/AWS configuration of the user.

Every failure — wrong credentials, a missing bucket or object, an unreachable endpoint, a timeout, a transfer
cut short — is a :class:`~app.data.errors.GranuleError` naming the URL and the reason. Nothing is ever written to
the source: files are opened for reading only.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
from fsspec.caching import BaseCache, register_cache
from fsspec.utils import get_protocol

from app.core.cache import ByteBoundedCache, bounded_cache
from app.data.errors import GranuleError

__all__ = [
    "BLOCK_SIZE",
    "CONNECT_TIMEOUT_S",
    "MAX_BLOCKS",
    "PREFETCH_GAP",
    "READAHEAD_BLOCKS",
    "READ_TIMEOUT_S",
    "RETRIES",
    "cache_dir",
    "cache_max_bytes",
    "clear_block_cache",
    "failure_reason",
    "filesystem",
    "forget_stamps",
    "is_remote",
    "local_copy",
    "open_binary",
    "options_for",
    "prefetch",
    "register",
    "registered_options",
    "reset_transfer_stats",
    "stamp",
    "transfer_stats",
]

#: Granularity of the ranged reads of a remote file, in bytes. HDF5 reads its metadata (superblock, object
#: headers, heaps, B-tree nodes, attributes such as a granule's GML outline) a few KB at a time, scattered over the
#: file: a read of that kind costs one small block, and the blocks around it come with it (much of a file's
#: metadata lies close together). A large read (a compressed chunk, 10–700 KB in TROPOMI files) fetches what it
#: needs of the blocks it spans that are not held yet in **one** request, and no more than its own bytes of the
#: blocks at its ends: array reads cost their chunks, in as many requests as before. With 32 KB, the outline and
#: global attributes of a 39 MB orbit cost 7 blocks (0.6 %, against 2.4 % with 256 KB blocks); 16 KB would cost
#: 10 blocks (0.4 %) in more requests. Blocks are kept in one process-wide cache
#: bounded in bytes (a share :data:`BLOCKS_CACHE_SHARE` of the memory budget, :mod:`app.core.cache`), keyed on the
#: object's :func:`stamp`: a granule opened again (its attributes, then its geolocation, then a variable) is not
#: fetched again, and a changed object never reuses old blocks. ``MAX_BLOCKS`` bounds the cache (in blocks)
#: used when that shared cache cannot be had.
BLOCK_SIZE = 32 * 1024
MAX_BLOCKS = 512
#: Most blocks one small read may fetch ahead: small reads that follow each other through a file (small chunks of
#: one variable, read in order) fetch 2, 4, then up to this many blocks at a time (256 KB), in fewer requests.
READAHEAD_BLOCKS = 8
#: Largest gap (bytes) between two ranges of :func:`prefetch` that one request still spans (the gap is thrown away).
PREFETCH_GAP = 4096
BLOCKS_CACHE_SHARE = 0.04
#: Default bounds on a remote request (the catalogue's storage_options may set others).
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
#: Attempts of a request that failed in a way worth trying again (throttling, a dropped connection).
RETRIES = 2
#: Remote stamps are remembered this long, so that a page drawing twenty granules does not ask twenty times a second.
STAMP_TTL_S = 10.0
#: Default bound of the local copies (``FUMAROLE_CACHE_MAX_BYTES`` overrides it).
DEFAULT_CACHE_MAX_BYTES = 5 * 10**9

_LOCK = threading.RLock()
_ROOTS: dict[str, dict[str, Any]] = {}
_STAMPS: dict[str, tuple[float, tuple[str, str, int]]] = {}
_STATS: dict[str, int] = {}
_IN_USE: dict[str, int] = {}
_FETCHING: dict[str, threading.Lock] = {}


# --- where a URL is, and with which options ----------------------------------------------------------------------


def is_remote(url: str | os.PathLike) -> bool:
    """Whether ``url`` is anything but a plain local path or a ``file://`` URL."""
    text = os.fspath(url)
    if text.startswith("file://"):
        return False
    return "://" in text or "::" in text


def _local_path(url: str | os.PathLike) -> str:
    text = os.fspath(url)
    return text[len("file://"):] if text.startswith("file://") else text


def _root_key(root_url: str) -> str:
    return os.fspath(root_url).rstrip("/")


def register(root_url: str, storage_options: Mapping | None) -> None:
    """Options for every URL under ``root_url`` (the catalogue registers each product's root); longest prefix wins.

    Registering a root again replaces its options. Local roots need none and may be registered all the same.
    """
    with _LOCK:
        _ROOTS[_root_key(root_url)] = copy.deepcopy(dict(storage_options or {}))


def registered_options(url: str) -> dict:
    """The options registered for the longest root ``url`` lies under (without the defaults); ``{}`` if none."""
    text = os.fspath(url)
    best, found = -1, {}
    with _LOCK:
        for root, options in _ROOTS.items():
            if (text == root or text.startswith(root + "/")) and len(root) > best:
                best, found = len(root), options
        return copy.deepcopy(found)


def _merged(defaults: dict, given: Mapping) -> dict:
    out = dict(defaults)
    for key, value in given.items():
        out[key] = _merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) else value
    return out


def _defaults(protocol: str) -> dict:
    """Bounded timeouts and retries for the remote protocols Fumarole knows (s3, http)."""
    if protocol in ("s3", "s3a"):
        return {"config_kwargs": {"connect_timeout": CONNECT_TIMEOUT_S, "read_timeout": READ_TIMEOUT_S,
                                  "retries": {"max_attempts": RETRIES, "mode": "standard"}}}
    if protocol in ("http", "https"):
        import aiohttp  # fsspec's HTTP file system needs it anyway

        return {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S,
                                                                   sock_connect=CONNECT_TIMEOUT_S,
                                                                   sock_read=READ_TIMEOUT_S)}}
    return {}


def options_for(url: str) -> dict:
    """The storage options ``url`` is opened with: the defaults of its protocol under the registered ones."""
    if not is_remote(url):
        return {}
    return _merged(_defaults(get_protocol(os.fspath(url))), registered_options(url))


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec file system of ``url`` (with :func:`options_for` it) and the path within it."""
    text = os.fspath(url)
    if not is_remote(text):
        return fsspec.filesystem("file"), _local_path(text)
    try:
        fs, path = fsspec.core.url_to_fs(text, **options_for(text))
    except ImportError as exc:
        raise GranuleError(text, f"cannot be reached: the package for its protocol is not installed ({exc}); "
                                 f"install fumarole[remote]") from None
    except (ValueError, TypeError) as exc:
        raise GranuleError(text, f"cannot be reached: its storage options are wrong ({exc})") from None
    if hasattr(fs, "retries"):
        fs.retries = RETRIES  # s3fs's own retry loop (default 5, with back-off) on top of botocore's
    return fs, path


# --- errors ------------------------------------------------------------------------------------------------------


def failure_reason(exc: BaseException) -> str:
    """A sentence on why a remote operation failed (no URL: the GranuleError names it)."""
    name = type(exc).__name__
    text = str(exc).strip() or name
    chain = [exc] + ([exc.__cause__] if exc.__cause__ else []) + ([exc.__context__] if exc.__context__ else [])
    names = " ".join(type(e).__name__ for e in chain)
    if "Timeout" in names or isinstance(exc, TimeoutError):
        return f"the storage did not answer in time (timed out: {text})"
    if isinstance(exc, PermissionError) or "AccessDenied" in text or "InvalidAccessKeyId" in text \
            or "SignatureDoesNotMatch" in text or "Forbidden" in text:
        return (f"access denied: the credentials (storage_options key/secret, or the environment) are wrong or "
                f"may not read it ({text})")
    if "Connect" in names or any(isinstance(e, ConnectionError) for e in chain):
        cause = next((e for e in chain if "Connect" in type(e).__name__ or isinstance(e, ConnectionError)), exc)
        return f"the storage cannot be reached (network error: {str(cause).strip() or type(cause).__name__})"
    if isinstance(exc, FileNotFoundError):
        if "bucket" in text.lower():
            return f"the bucket does not exist ({text})"
        return "no such object or file"
    return f"cannot be read from the storage ({name}: {text})"


def _error(url: str, exc: BaseException) -> GranuleError:
    if isinstance(exc, GranuleError):
        return exc
    return GranuleError(url, failure_reason(exc))


#: What fsspec, s3fs, aiohttp and botocore raise on a failed request (botocore's errors are Exceptions).
_REMOTE_ERRORS = (Exception,)


# --- stamps ------------------------------------------------------------------------------------------------------


def _version(info: Mapping) -> str:
    for key in ("ETag", "etag", "md5", "Content-MD5", "VersionId"):
        value = info.get(key)
        if value:
            return str(value).strip('"')
    for key in ("mtime", "LastModified", "last_modified", "Last-Modified", "updated", "modified", "created"):
        value = info.get(key)
        if value is not None:
            return value.isoformat() if hasattr(value, "isoformat") else str(value)
    return ""


def stamp(url: str | os.PathLike) -> tuple[str, str, int]:
    """``(url, version, size)`` of a file: the cache key of everything read from it (replaces ``os.stat``).

    ``version`` is the object's ETag (else its modification time) for a remote file, the modification time of a
    local one. A file that is missing, not a file, or cannot be reached is a :class:`GranuleError` naming it.
    """
    text = os.fspath(url)
    if not is_remote(text):
        path = _local_path(text)
        try:
            st = os.stat(path)
        except OSError as exc:
            raise GranuleError(text, "the file does not exist" if isinstance(exc, FileNotFoundError)
                               else f"cannot be examined ({exc.strerror or type(exc).__name__})") from None
        if not os.path.isfile(path):
            raise GranuleError(text, "is not a regular file")
        return (text, repr(st.st_mtime), int(st.st_size))
    now = time.monotonic()
    with _LOCK:
        known = _STAMPS.get(text)
    if known is not None and now - known[0] < STAMP_TTL_S:
        return known[1]
    fs, path = filesystem(text)
    try:
        info = fs.info(path)
    except _REMOTE_ERRORS as exc:
        raise _error(text, exc) from None
    if info.get("type", "file") != "file":
        raise GranuleError(text, "is not a file (a folder or prefix)")
    out = (text, _version(info), int(info.get("size") or 0))
    with _LOCK:
        if len(_STAMPS) > 10_000:
            _STAMPS.clear()
        _STAMPS[text] = (now, out)
    return out


def forget_stamps(prefix: str = "") -> None:
    """Forget the remembered stamps of the URLs starting with ``prefix`` (all by default)."""
    with _LOCK:
        for key in [k for k in _STAMPS if k.startswith(prefix)]:
            del _STAMPS[key]


# --- transfer statistics -----------------------------------------------------------------------------------------


def _count(url: str, n: int) -> None:
    with _LOCK:
        _STATS[url] = _STATS.get(url, 0) + int(n)


def transfer_stats() -> dict[str, int]:
    """Bytes fetched from each remote URL since :func:`reset_transfer_stats` (ranges read and copies made)."""
    with _LOCK:
        return dict(_STATS)


def reset_transfer_stats() -> None:
    """Start counting the bytes fetched afresh."""
    with _LOCK:
        _STATS.clear()


class _CountingFetcher:
    """Wraps a file's range fetcher: counts the bytes fetched and keeps the first failure (for its reason)."""

    def __init__(self, url: str, fetcher):
        self.url = url
        self.fetcher = fetcher
        self.error: BaseException | None = None

    def __call__(self, start, end):
        try:
            data = self.fetcher(start, end)
        except _REMOTE_ERRORS as exc:
            self.error = self.error or exc
            raise
        _count(self.url, len(data))
        return data


# --- the shared block cache --------------------------------------------------------------------------------------

_BLOCKS: list[ByteBoundedCache] = []


def _blocks() -> ByteBoundedCache:
    with _LOCK:
        if not _BLOCKS:
            try:
                _BLOCKS.append(bounded_cache("remote blocks", BLOCKS_CACHE_SHARE))
            except ValueError:  # the memory budget is all given to other caches: a small one of our own
                _BLOCKS.append(ByteBoundedCache(MAX_BLOCKS * BLOCK_SIZE, name="remote blocks"))
        return _BLOCKS[0]


class SharedBlockCache(BaseCache):
    """fsspec cache of a remote file's blocks in the process-wide bounded cache, keyed on the file's stamp.

    A small read (up to :data:`BLOCK_SIZE`) takes the blocks it spans from the cache and fetches the missing ones,
    each run of consecutive missing blocks in one request, and keeps them; when it starts at the block where the
    last small read's fetch ended (reading on through the file), it fetches more blocks ahead, doubling up to
    :data:`READAHEAD_BLOCKS`. A large read (an array's chunk) uses the
    blocks held, fetches only its own bytes of the others (one request per run) and is kept whole, as the range it
    is: HDF5 reads a chunk again by the same address and size.
    """

    name = "fumarole-shared-blocks"

    def __init__(self, blocksize: int, fetcher, size: int, key: tuple = ()):
        super().__init__(blocksize, fetcher, size)
        self.key = key
        self._next = -1  # the block after the last run fetched for a small read
        self._ahead = 1  # blocks the next sequential small read fetches

    def _read_ahead(self, first: int, last: int) -> int:
        """The last block a small read missing ``first``..``last`` fetches: more when it follows the last one."""
        self._ahead = min(2 * self._ahead, READAHEAD_BLOCKS) if first == self._next else 1
        end = min(max(last, first + self._ahead - 1), (self.size - 1) // self.blocksize)
        cache = _blocks()
        while last < end and cache.get((self.key, self.blocksize, last + 1)) is None:
            last += 1
        self._next = last + 1
        return last

    def _fetch_run(self, first: int, last: int, start: int, stop: int, large: bool) -> tuple[int, bytes]:
        """Fetch the missing blocks ``first``..``last`` in one request; ``(offset, bytes)``.

        A small read fetches whole blocks and keeps them; a large one (an array's chunk) fetches only its own bytes
        of them: the caller keeps the read whole.
        """
        bs = self.blocksize
        if not large:
            last = self._read_ahead(first, last)
        lo, hi = first * bs, min(self.size, (last + 1) * bs)
        if large:
            lo, hi = max(lo, start), min(hi, stop)
        data = self.fetcher(lo, hi)
        self.miss_count += 1
        if not large:
            cache = _blocks()
            for i in range(first, last + 1):
                a, b = i * bs, min(self.size, (i + 1) * bs)
                if b - lo <= len(data):
                    cache.put((self.key, bs, i), data[a - lo: b - lo], b - a)
        return lo, data

    def _fetch(self, start: int | None, stop: int | None) -> bytes:
        start = 0 if start is None else start
        stop = self.size if stop is None else min(stop, self.size)
        if start >= stop:
            return b""
        cache, bs = _blocks(), self.blocksize
        large = stop - start > bs
        data = cache.get((self.key, "range", start, stop))  # HDF5 reads a chunk whole, by its address and size
        if data is not None:
            self.hit_count += 1
            return data
        pieces: list[tuple[int, bytes]] = []  # consecutive (offset, bytes) covering start..stop
        run: list[int] = []
        for i in range(start // bs, (stop - 1) // bs + 1):
            data = cache.get((self.key, bs, i))
            if data is None:
                run.append(i)
                continue
            self.hit_count += 1
            if run:
                pieces.append(self._fetch_run(run[0], run[-1], start, stop, large))
                run = []
            pieces.append((i * bs, data))
        if run:
            pieces.append(self._fetch_run(run[0], run[-1], start, stop, large))
        out = b"".join(data[max(0, start - offset): max(0, stop - offset)] for offset, data in pieces)
        if large and len(out) == stop - start:
            cache.put((self.key, "range", start, stop), out, len(out))
        return out


    def prefetch(self, ranges) -> int:
        """Fetch the ``(start, stop)`` ranges not held yet, near ones together in one request; the requests made."""
        cache = _blocks()
        wanted = sorted({(int(a), int(min(b, self.size))) for a, b in ranges if 0 <= a < min(b, self.size)})
        wanted = [(a, b) for a, b in wanted if cache.get((self.key, "range", a, b)) is None]
        groups: list[list[tuple[int, int]]] = []
        for a, b in wanted:
            if groups and a - max(e for _, e in groups[-1]) <= PREFETCH_GAP:
                groups[-1].append((a, b))
            else:
                groups.append([(a, b)])
        for group in groups:
            lo, hi = group[0][0], max(b for _, b in group)
            data = self.fetcher(lo, hi)
            self.miss_count += 1
            for a, b in group:
                if b - lo <= len(data):
                    cache.put((self.key, "range", a, b), data[a - lo: b - lo], b - a)
        return len(groups)


register_cache(SharedBlockCache, clobber=True)


def prefetch(f: BinaryIO, ranges) -> int:
    """Fetch byte ranges of a file from :func:`open_binary` ahead of the reads that need them, in few requests.

    ``ranges`` are ``(start, stop)`` pairs: the compressed chunks an HDF5 read is about to read one request each
    (their addresses and sizes come from the file's chunk index, ``h5py``'s ``chunk_iter``). Ranges that touch
    or nearly touch (:data:`PREFETCH_GAP`) are fetched in one request and kept as the ranges they are, which the
    reads then find. A local file, or a range already held, needs nothing. Returns the number of requests made.
    """
    cache = getattr(f, "cache", None)
    return cache.prefetch(ranges) if isinstance(cache, SharedBlockCache) else 0


def clear_block_cache() -> None:
    """Forget the remote blocks this process keeps (benchmarks measure cold reads with it)."""
    _blocks().clear()


# --- opening -----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def open_binary(url: str | os.PathLike) -> Iterator[BinaryIO]:
    """A seekable binary file, read only.

    ``open(path, 'rb')`` when local; byte ranges through a bounded block cache when remote (the object is never
    downloaded whole unless it is read whole).

    Failing to open, or a failed range request while reading, is a :class:`GranuleError` naming the URL and the
    reason (a reader's own GranuleError about a file cut short by the network is replaced by the network's).
    """
    text = os.fspath(url)
    if not is_remote(text):
        path = _local_path(text)
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            why = "the file does not exist" if isinstance(exc, FileNotFoundError) else \
                f"cannot be opened ({exc.strerror or type(exc).__name__})"
            raise GranuleError(text, why) from None
        with f:
            yield f
        return
    key = stamp(text)
    fs, path = filesystem(text)
    try:
        f = fs.open(path, "rb", block_size=BLOCK_SIZE, cache_type=SharedBlockCache.name, cache_options={"key": key})
    except _REMOTE_ERRORS as exc:
        raise _error(text, exc) from None
    counter = None
    cache = getattr(f, "cache", None)
    if cache is not None and hasattr(cache, "fetcher"):
        counter = _CountingFetcher(text, cache.fetcher)
        cache.fetcher = counter
    try:
        yield f
    except Exception:
        if counter is not None and counter.error is not None:  # the network failed under the reader: say that
            raise _error(text, counter.error) from None
        raise
    finally:
        with contextlib.suppress(Exception):
            f.close()


# --- local copies ------------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """The per-user cache folder: ``$FUMAROLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/fumarole`` (``~/.cache/fumarole``)."""
    explicit = os.environ.get("FUMAROLE_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fumarole"


def cache_max_bytes() -> int:
    """The bound of the local copies: ``FUMAROLE_CACHE_MAX_BYTES`` (bytes), default 5 GB."""
    text = os.environ.get("FUMAROLE_CACHE_MAX_BYTES", "").strip()
    try:
        return max(0, int(float(text))) if text else DEFAULT_CACHE_MAX_BYTES
    except ValueError:
        return DEFAULT_CACHE_MAX_BYTES


def _copies_dir() -> Path:
    return cache_dir() / "files"


def _copy_name(key: tuple[str, str, int]) -> str:
    url = key[0]
    digest = hashlib.sha256("\0".join(map(str, key)).encode("utf-8")).hexdigest()[:32]
    suffix = "".join(Path(url.rsplit("/", 1)[-1]).suffixes[-2:])[:16]
    return digest + suffix


def _evict(keep: Path) -> None:
    """Delete the least recently used copies until they fit the bound (copies in use and ``keep`` stay)."""
    folder = _copies_dir()
    limit = cache_max_bytes()
    try:
        entries = [(e.stat().st_mtime, e.stat().st_size, Path(e.path)) for e in os.scandir(folder)
                   if e.is_file() and not e.name.endswith(".part")]
    except OSError:
        return
    total = sum(size for _, size, _ in entries)
    with _LOCK:
        busy = {p for p, n in _IN_USE.items() if n > 0}
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        if path == keep or str(path) in busy:
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            total -= size


def _fetch_copy(url: str, key: tuple[str, str, int], target: Path) -> None:
    """Download ``url`` into ``target`` (through a temporary file in the same folder, renamed when complete)."""
    fs, path = filesystem(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    os.close(fd)
    try:
        try:
            fs.get_file(path, tmp)
        except _REMOTE_ERRORS as exc:
            raise _error(url, exc) from None
        got = os.path.getsize(tmp)
        _count(url, got)
        if key[2] and got != key[2]:
            raise GranuleError(url, f"the transfer was cut short: {got} of its {key[2]} bytes arrived")
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


@contextlib.contextmanager
def local_copy(url: str | os.PathLike) -> Iterator[str]:
    """A local path of the file: the path itself when local; for a remote file, a copy in the per-user cache.

    The copy is keyed on :func:`stamp` (a changed object is fetched again), reused by later calls and other
    processes, and the cache is kept within ``FUMAROLE_CACHE_MAX_BYTES`` (least recently used copies go first; a
    copy in use is never deleted by this process). The copy must be treated as read-only.
    """
    text = os.fspath(url)
    if not is_remote(text):
        yield _local_path(text)
        return
    key = stamp(text)
    target = _copies_dir() / _copy_name(key)
    with _LOCK:
        fetching = _FETCHING.setdefault(str(target), threading.Lock())
    with fetching:  # one download of a file at a time in this process; others wait and reuse it
        if target.is_file() and (not key[2] or target.stat().st_size == key[2]):
            with contextlib.suppress(OSError):
                os.utime(target)  # recently used
        else:
            try:
                _fetch_copy(text, key, target)
            except OSError as exc:  # the cache folder cannot be written
                raise GranuleError(text, f"cannot be copied to the cache folder {_copies_dir()} "
                                         f"({exc.strerror or type(exc).__name__})") from None
        with _LOCK:
            _IN_USE[str(target)] = _IN_USE.get(str(target), 0) + 1
    try:
        _evict(keep=target)
        yield str(target)
    finally:
        with _LOCK:
            _IN_USE[str(target)] -= 1
            if not _IN_USE[str(target)]:
                del _IN_USE[str(target)]
