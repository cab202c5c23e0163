"""GEO files from time-partitioned folders: list only the folders around the times asked for.

Real geostationary archives are partitioned by time: NOAA's ``s3://noaa-goes16/ABI-L1b-RadF/2021/102/15/``
(year, day of year, hour), ``s3://noaa-himawari9/AHI-L1b-FLDK/2025/07/08/1500/``, the sample archive's
``abi/G16/2021/04/12/``. A product whose catalogue entry has ``partition:`` (:attr:`ProductInfo.partition`, e.g.
``{platform}/{time:%Y/%m/%d}/``) is read here instead of through the granule index: nothing holds one row per file
of the whole archive, and nothing lists the whole tree.

- :meth:`PartitionLister.rows` — the files of one platform whose start is in a time range: the template is expanded
  over the range at the partition's step (a day for ``%d``/``%j``, an hour for ``%H``, the repeat cycle for
  ``%M``), and only those folders are listed (when the range holds many of them, their parent folder is listed
  first, so folders that do not exist cost nothing). File names are parsed with the product's pattern.
- :meth:`PartitionLister.latest_start`, :meth:`PartitionLister.earliest_start` — walk the folder names (years,
  months, days …) newest first (oldest first) from a time and list the files of the first folders only.
- :meth:`PartitionLister.days` — the days that have a folder: folder names only, no file listing (a partition
  coarser than a day lists its files).
- :meth:`PartitionLister.platform_folders` — the platform folders under the root (``{platform}`` first).

``{platform}`` is the platform's folder id, which the caller gives (:func:`app.data.geo` uses the key of the
catalogue's ``platforms:`` map naming the platform, else the platform id; NWC SAF: its NWC SAF id, ``GOES16``).

**One bucket per platform.** NOAA keeps each satellite in a bucket of its own (``s3://noaa-goes18/ABI-L1b-RadF/``,
``s3://noaa-goes19/...``, ``s3://noaa-himawari9/AHI-L1b-FLDK/``). The root may then name the platform:
``s3://noaa-{platform}/ABI-L1b-RadF`` with the folder ids listed (the keys of the catalogue's ``platforms:`` map,
``goes18: {platform: G18}``). Each platform's root is a tree of its own, listed only around the times asked for
as above, with its own cache and state file; a folder id that is not listed reads nothing (no bucket name is ever
made from anything else).

**Caching.** Each folder's listing is kept in memory and, once the folder is *closed* (its time span ended more
than :data:`CLOSED_AFTER` ago), in a small JSON file of the archive's state folder (:mod:`app.core.state`), so a
restarted server does not list it again. A local folder's listing is checked against the folder's modification
time (one ``stat``), so a file added or removed is seen at once. A remote folder that is not closed is listed again
at most every ``live.poll_seconds`` when the product is live (:attr:`ProductInfo.live`), never otherwise (an
archive that is not live does not grow). The wall clock is a parameter of every query (``clock``, epoch seconds),
so tests drive it instead of sleeping.

Listings go through fsspec (:func:`app.data.storage.filesystem` when present, with the catalogue's storage
options); a folder that cannot be listed (missing bucket, bad credentials, network) raises
:class:`~app.data.errors.GranuleError` naming the folder's URL and the reason.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import logging
import re
import threading
import time as _time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd

from app.core.state import say_once, write_state
from app.data.errors import GranuleError

__all__ = [
    "CLOSED_AFTER",
    "PLATFORM_FIELD",
    "PartitionTemplate",
    "PartitionLister",
    "lister_for",
    "clear",
]

log = logging.getLogger(__name__)

#: A folder whose time span ended longer ago than this is closed: nothing more lands in it.
CLOSED_AFTER = pd.Timedelta(hours=2)
#: Above this many candidate folders, their parent folder is listed first (only existing ones are listed then).
_CHECK_PARENT_ABOVE = 6
#: The most folders a walk lists looking for a platform's files (a tree without them is not listed whole).
_MAX_WALK_LEAVES = 400
#: Closed folders kept in a product's state file (the newest are kept).
_MAX_STATE_FOLDERS = 20_000
_STATE_VERSION = 1

_FIELD = re.compile(r"\{(platform|time:(?P<fmt>[^}]*))\}")
#: The field of a root URL that names the platform's own bucket or folder (``s3://noaa-{platform}/ABI-L1b-RadF``).
PLATFORM_FIELD = "{platform}"
#: What a folder id put into a root URL may be (a bucket-name part: no ``/``, no ``..``).
FOLDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
#: strftime directives by the time unit they resolve, finest first.
_UNITS = (("minute", ("%M",)), ("hour", ("%H",)), ("day", ("%d", "%j")), ("month", ("%m", "%b", "%B")),
          ("year", ("%Y",)))
_RANK = {name: i for i, (name, _) in enumerate(_UNITS)}


def _unit_of(fmt: str) -> str | None:
    """The finest time unit a strftime format resolves (``%Y/%j/%H`` -> hour), None without directives."""
    for name, codes in _UNITS:
        if any(code in fmt for code in codes):
            return name
    return None


def _floor(t: pd.Timestamp, unit: str, step_minutes: int) -> pd.Timestamp:
    if unit == "minute":
        return t.floor(f"{step_minutes}min")
    if unit == "hour":
        return t.floor("h")
    if unit == "day":
        return t.normalize()
    if unit == "month":
        return t.normalize().replace(day=1)
    return t.normalize().replace(month=1, day=1)


def _advance(t: pd.Timestamp, unit: str, step_minutes: int) -> pd.Timestamp:
    if unit == "minute":
        return t + pd.Timedelta(minutes=step_minutes)
    if unit == "hour":
        return t + pd.Timedelta(hours=1)
    if unit == "day":
        return t + pd.Timedelta(days=1)
    if unit == "month":
        return t + pd.DateOffset(months=1)
    return t + pd.DateOffset(years=1)


@dataclass(frozen=True)
class PartitionTemplate:
    """A partition template with the platform's folder id filled in, as strftime formats per folder level.

    ``PartitionTemplate("{platform}/{time:%Y/%m/%d}/", "G16")`` has the levels ``G16``, ``%Y``, ``%m``, ``%d``.
    """

    partition: str
    folder_id: str = ""
    step_minutes: int = 10
    segments: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        if "{platform}" in self.partition and not self.folder_id:
            raise ValueError(f"partition {self.partition!r} names {{platform}}: give the platform's folder id")
        parts, pos = [], 0
        for m in _FIELD.finditer(self.partition):
            parts.append(self.partition[pos:m.start()].replace("%", "%%"))
            parts.append(self.folder_id.replace("%", "%%") if m["fmt"] is None else m["fmt"])
            pos = m.end()
        parts.append(self.partition[pos:].replace("%", "%%"))
        fmt = "".join(parts).strip("/")
        if _unit_of(fmt) is None:
            raise ValueError(f"partition {self.partition!r} has no {{time:...}} field with a date directive")
        object.__setattr__(self, "segments", tuple(fmt.split("/")))

    @property
    def depth(self) -> int:
        """The number of folder levels."""
        return len(self.segments)

    def prefix_format(self, level: int) -> str:
        """The strftime format of the relative path down to ``level`` (0-based, inclusive)."""
        return "/".join(self.segments[: level + 1])

    def unit(self, level: int) -> str | None:
        """The finest time unit resolved down to ``level`` (None: no time yet, e.g. the platform folder)."""
        return _unit_of(self.prefix_format(level))

    @property
    def leaf_unit(self) -> str:
        """The time unit of the deepest folders (the partition's step)."""
        return self.unit(self.depth - 1) or "year"

    def is_static(self, level: int) -> bool:
        """Whether a level is a fixed name (the platform folder, ``ABI-L1b-RadF``)."""
        return _unit_of(self.segments[level]) is None

    def literal(self, level: int) -> str:
        """The fixed name of a static level."""
        return self.segments[level].replace("%%", "%")

    def leaf(self, t: pd.Timestamp) -> str:
        """The relative folder holding the files that start at ``t``."""
        return t.strftime(self.prefix_format(self.depth - 1))

    def parse(self, level: int, rel: str) -> pd.Timestamp | None:
        """The start of the span of a relative folder path down to ``level``, None if the names do not fit."""
        try:
            return pd.Timestamp(dt.datetime.strptime(rel, self.prefix_format(level)))
        except ValueError:
            return None

    def span_end(self, level: int, start: pd.Timestamp) -> pd.Timestamp | None:
        """The end of the time span of a folder of ``level`` starting at ``start`` (None: no time yet)."""
        unit = self.unit(level)
        return None if unit is None else _advance(start, unit, self.step_minutes)

    def leaves(self, start: pd.Timestamp, end: pd.Timestamp) -> list[tuple[str, pd.Timestamp]]:
        """The deepest folders covering [start, end), with their start, in time order."""
        unit = self.leaf_unit
        t = _floor(start, unit, self.step_minutes)
        out: dict[str, pd.Timestamp] = {}
        while t < end:
            out.setdefault(self.leaf(t), t)
            t = _advance(t, unit, self.step_minutes)
        return list(out.items())


@dataclass
class _Listing:
    names: tuple[str, ...] | None  # None: the folder does not exist
    listed: float  # wall clock (epoch seconds) of the listing
    mtime: float | None = None  # local folders: their modification time when listed


class PartitionLister:
    """The folders of one product's time-partitioned tree, listed around the times asked for and cached.

    ``root_url``: the product's root (local folder or fsspec URL); ``partition``: the template below it;
    ``pattern``: a callable parsing a file name into fields (``platform``, ``start``, ``end`` when the name has
    one; a :class:`GranuleError` for a name that does not fit), ``name_glob`` the file names to consider;
    ``repeat_minutes``: the sensor's repeat cycle (the step of a ``%M`` partition, and a file's end when its name
    has none); ``platform_key``: maps a file's platform field to our platform id (``GOES16`` -> ``G16``);
    ``poll_seconds``: re-list open remote folders at most this often (None: never, an archive that does not grow);
    ``state_file``: where closed folders' listings are kept (None: memory only).

    A ``root_url`` naming ``{platform}`` (``s3://noaa-{platform}/ABI-L1b-RadF``) is one tree per platform:
    ``folder_ids`` lists the ids it may take (``goes18``, ``goes19``), each read by a lister of its own (its root
    filled in, its own cache and state file); the queries' ``folder_id`` picks it, and the partition must not name
    ``{platform}`` again. :attr:`listed` then holds the full URLs of the folders listed, in every tree.
    """

    def __init__(self, root_url: str, partition: str, parse: Callable[[str], dict], name_glob: str = "*",
                 repeat_minutes: int = 10, platform_key: Callable[[str], str] | None = None,
                 storage_options: Mapping[str, Any] | None = None, poll_seconds: float | None = None,
                 state_file: str | Path | None = None, folder_ids: Iterable[str] | None = None):
        self.root_url = root_url.rstrip("/")
        self.per_platform = PLATFORM_FIELD in self.root_url
        self.folder_ids = tuple(str(f) for f in (folder_ids or ()))
        if self.per_platform:
            _check_per_platform(self.root_url, partition, self.folder_ids)
        self._children: dict[str, PartitionLister] = {}
        self._listed_prefix = ""  # a tree of a per-platform root: its URL, before each folder in `listed`
        self.partition = partition
        self.parse = parse
        self.name_glob = name_glob or "*"
        self.repeat_minutes = int(repeat_minutes)
        self.platform_key = platform_key or (lambda s: s)
        self.storage_options = dict(storage_options or {})
        self.poll_seconds = poll_seconds
        self.state_file = Path(state_file) if state_file else None
        self.is_local = "://" not in self.root_url and "::" not in self.root_url
        self._fs = None
        self._base = ""
        self._lock = threading.RLock()
        self._cache: dict[str, _Listing] = {}
        self._closed: set[str] = set()
        self._state_loaded = False
        self._dirty = False
        #: every folder listed from storage by this lister (relative paths), for tests and benchmarks
        self.listed: list[str] = []

    # --- storage ---------------------------------------------------------------------------------------------

    def _filesystem(self):
        if self._fs is None:
            try:
                from app.data import storage  # helper C's module: the registered options of the root
            except ImportError:
                storage = None
            if storage is not None and hasattr(storage, "filesystem"):
                if self.storage_options and hasattr(storage, "register"):
                    storage.register(self.root_url, self.storage_options)
                self._fs, self._base = storage.filesystem(self.root_url)
            else:
                self._fs, self._base = fsspec.core.url_to_fs(self.root_url, **self.storage_options)
            self._base = str(self._base).rstrip("/")
        return self._fs

    def url(self, rel: str, name: str = "") -> str:
        """The URL (local: the path) of a folder or file below the root."""
        parts = [p for p in (self.root_url, rel.strip("/"), name) if p]
        return "/".join(parts)

    def _ls(self, rel: str) -> _Listing:
        fs = self._filesystem()
        path = "/".join(p for p in (self._base, rel.strip("/")) if p) or "/"
        mtime = None
        try:
            if self.is_local:
                info = fs.info(path)
                if info.get("type") != "directory":
                    return _Listing(None, _time.time())
                mtime = info.get("mtime")
            fs.invalidate_cache(path)
            entries = fs.ls(path, detail=False)
        except FileNotFoundError as exc:
            if _no_bucket(exc):  # s3fs: the whole source is missing, not one folder
                raise GranuleError(self.url(rel) or self.root_url,
                                   f"cannot be listed: the bucket does not exist ({exc})") from exc
            return _Listing(None, _time.time())
        except Exception as exc:  # noqa: BLE001 - botocore/aiohttp errors are not OSErrors; said with the folder
            raise GranuleError(self.url(rel) or self.root_url, f"cannot be listed: {listing_reason(exc)}") from exc
        with self._lock:
            self.listed.append(self._listed_prefix + rel if self._listed_prefix else rel)
        names = {str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries} - {""}
        if self.root_url.startswith(("http://", "https://")):  # links of an index page are URL-encoded
            names = {urllib.parse.unquote(n) for n in names}
        names = tuple(sorted(names))
        return _Listing(names, _time.time(), mtime)

    # --- the cache ---------------------------------------------------------------------------------------------

    def _load_state(self) -> None:
        if self._state_loaded:
            return
        self._state_loaded = True
        if self.state_file is None or not self.state_file.is_file():
            return
        try:
            data = json.loads(self.state_file.read_text())
            if data.get("version") != _STATE_VERSION or data.get("root") != self.root_url:
                return
            for rel, entry in data.get("folders", {}).items():
                names = entry.get("names")
                self._cache.setdefault(rel, _Listing(None if names is None else tuple(names), 0.0,
                                                     entry.get("mtime")))
                self._closed.add(rel)
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            say_once(str(self.state_file), f"the folder listings in {self.state_file} cannot be read ({exc}); "
                                           "listing the folders again", log)

    def _save_state(self) -> None:
        if self.state_file is None or not self._dirty:
            return
        with self._lock:
            closed = [rel for rel in self._cache if rel in self._closed][-_MAX_STATE_FOLDERS:]
            data = {"version": _STATE_VERSION, "root": self.root_url, "partition": self.partition,
                    "folders": {rel: {"names": None if self._cache[rel].names is None else list(self._cache[rel].names),
                                      "mtime": self._cache[rel].mtime} for rel in closed}}
            self._dirty = False

        def write(tmp: str) -> None:
            Path(tmp).write_text(json.dumps(data, separators=(",", ":")))

        write_state(self.state_file, write, "GEO folder listings")

    def _fresh(self, rel: str, entry: _Listing, closed: bool, wall: float) -> bool:
        if self.is_local:
            fs = self._filesystem()
            path = "/".join(p for p in (self._base, rel.strip("/")) if p) or "/"
            try:
                info = fs.info(path)
            except FileNotFoundError:
                return entry.names is None
            return entry.names is not None and info.get("mtime") == entry.mtime
        if closed:
            return True
        if self.poll_seconds is None:
            return True
        return wall - entry.listed < float(self.poll_seconds)

    def listing(self, rel: str, span_end: pd.Timestamp | None, clock: float | None = None) -> tuple[str, ...] | None:
        """The names in a folder (relative to the root), from the cache when it is still true; None if absent.

        ``span_end``: the end of the folder's time span (None: the root and platform folders, never closed).
        """
        wall = _time.time() if clock is None else float(clock)
        now = pd.Timestamp(wall, unit="s")
        closed = span_end is not None and span_end + CLOSED_AFTER <= now
        with self._lock:
            self._load_state()
            entry = self._cache.get(rel)
        if entry is not None and self._fresh(rel, entry, closed, wall):
            return entry.names
        entry = self._ls(rel)
        entry.listed = wall
        with self._lock:
            self._cache[rel] = entry
            if closed:
                self._closed.add(rel)
                self._dirty = True
            else:
                self._closed.discard(rel)
        return entry.names

    def clear(self) -> None:
        """Forget the listings held in memory (the state file stays)."""
        with self._lock:
            self._cache.clear()
            self._closed.clear()
            self._state_loaded = False
            children = list(self._children.values())
        for child in children:
            child.clear()

    # --- one tree per platform (a root naming {platform}) ---------------------------------------------------------

    def tree(self, folder_id: str) -> PartitionLister | None:
        """The lister of one platform's tree of a per-platform root; None for a folder id not listed.

        A root without ``{platform}`` is one tree: this lister, whatever the id.
        """
        if not self.per_platform:
            return self
        if folder_id not in self.folder_ids:
            return None
        with self._lock:
            found = self._children.get(folder_id)
            if found is None:
                state = None
                if self.state_file is not None:
                    state = self.state_file.with_name(f"{self.state_file.stem}.{folder_id}{self.state_file.suffix}")
                found = PartitionLister(self.root_url.replace(PLATFORM_FIELD, folder_id), self.partition,
                                        self.parse, self.name_glob, self.repeat_minutes, self.platform_key,
                                        self.storage_options, self.poll_seconds, state)
                found.listed = self.listed  # one record of what was listed, in every tree
                found._listed_prefix = found.root_url + "/"
                self._children[folder_id] = found
            return found

    # --- files -------------------------------------------------------------------------------------------------

    def _template(self, folder_id: str) -> PartitionTemplate:
        return PartitionTemplate(self.partition, folder_id, self.repeat_minutes)

    def _existing(self, tpl: PartitionTemplate, leaves: list[tuple[str, pd.Timestamp]], clock: float | None
                  ) -> list[tuple[str, pd.Timestamp]]:
        """The leaves whose folder exists, known from their parents' listings (many leaves only)."""
        if len(leaves) <= _CHECK_PARENT_ABOVE or tpl.depth < 2 or tpl.is_static(tpl.depth - 1):
            return leaves
        out = []
        parents: dict[str, set[str] | None] = {}
        for rel, start in leaves:
            parent, _, name = rel.rpartition("/")
            if parent not in parents:
                t = tpl.parse(tpl.depth - 2, parent)
                span_end = None if t is None else tpl.span_end(tpl.depth - 2, t)
                names = self.listing(parent, span_end, clock)
                parents[parent] = None if names is None else set(names)
            if parents[parent] is not None and name in parents[parent]:
                out.append((rel, start))
        return out

    def _files_in(self, tpl: PartitionTemplate, rel: str, start: pd.Timestamp, clock: float | None
                  ) -> list[tuple[str, dict]]:
        names = self.listing(rel, tpl.span_end(tpl.depth - 1, start), clock) or ()
        out = []
        for name in names:
            if not fnmatch.fnmatchcase(name, self.name_glob):
                continue
            url = self.url(rel, name)
            try:
                fields = self.parse(url)
            except GranuleError as exc:
                say_once(url, f"skipped {url}: {exc.problem}", log)
                continue
            out.append((url, fields))
        return out

    def _row(self, url: str, fields: dict) -> dict | None:
        try:
            platform = self.platform_key(str(fields.get("platform", "")))
        except (KeyError, ValueError) as exc:
            say_once(url, f"skipped {url}: file name: {exc}", log)
            return None
        start = pd.Timestamp(fields["start"])
        end = fields.get("end")
        if end is None:
            repeat = self.repeat_minutes if fields.get("area", "FLDK") == "FLDK" else 2
            end = start.floor(f"{repeat}min") + pd.Timedelta(minutes=repeat)
        return {"path": url, "platform": platform, "start": start, "end": pd.Timestamp(end)}

    def _rows_of(self, tpl: PartitionTemplate, leaves, platform: str | None, clock) -> list[dict]:
        rows = []
        for rel, start in leaves:
            for url, fields in self._files_in(tpl, rel, start, clock):
                row = self._row(url, fields)
                if row is not None and (platform is None or row["platform"] == platform):
                    rows.append(row)
        return rows

    def rows(self, folder_id: str, platform: str | None, start, end, clock: float | None = None) -> pd.DataFrame:
        """The files of ``platform`` (None: every platform) that overlap [start, end).

        Columns ``path``, ``platform``, ``start``, ``end``, sorted by start then path: the rows the granule index
        would give. Only the folders covering [start, end) are listed (their parent first when they are many).
        """
        if self.per_platform:
            tree = self.tree(folder_id)
            return _frame([]) if tree is None else tree.rows("", platform, start, end, clock)
        tpl = self._template(folder_id)
        t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
        leaves = self._existing(tpl, tpl.leaves(t0, t1), clock)
        rows = [r for r in self._rows_of(tpl, leaves, platform, clock) if r["end"] > t0 and r["start"] < t1]
        self._save_state()
        return _frame(rows)

    # --- walks over folder names ------------------------------------------------------------------------------

    def _walk(self, tpl: PartitionTemplate, level: int, prefix: str, lo, hi, newest_first: bool, stop: int,
              clock) -> Iterator[tuple[str, pd.Timestamp]]:
        """Existing folders of ``stop`` level whose span meets [lo, hi] (either may be None), in time order."""
        if tpl.is_static(level):
            rel = "/".join(p for p in (prefix, tpl.literal(level)) if p)
            if level == stop:
                yield rel, pd.Timestamp.min
            else:
                yield from self._walk(tpl, level + 1, rel, lo, hi, newest_first, stop, clock)
            return
        t_parent = tpl.parse(level - 1, prefix) if level > 0 and tpl.unit(level - 1) else None
        parent_end = None if t_parent is None else tpl.span_end(level - 1, t_parent)
        names = self.listing(prefix, parent_end, clock) or ()
        found = []
        for name in names:
            rel = "/".join(p for p in (prefix, name) if p)
            t = tpl.parse(level, rel)
            if t is None:
                continue
            span_end = tpl.span_end(level, t)
            if (hi is not None and t > hi) or (lo is not None and span_end <= lo):
                continue
            found.append((t, rel))
        found.sort(reverse=newest_first)
        for t, rel in found:
            if level == stop:
                yield rel, t
            else:
                yield from self._walk(tpl, level + 1, rel, lo, hi, newest_first, stop, clock)

    def _first_start(self, folder_id: str, platform: str | None, lo, hi, newest_first: bool, clock):
        if self.per_platform:
            tree = self.tree(folder_id)
            return None if tree is None else tree._first_start("", platform, lo, hi, newest_first, clock)
        tpl = self._template(folder_id)
        lo = None if lo is None else pd.Timestamp(lo)
        hi = None if hi is None else pd.Timestamp(hi)
        for n, (rel, start) in enumerate(self._walk(tpl, 0, "", lo, hi, newest_first, tpl.depth - 1, clock)):
            if n >= _MAX_WALK_LEAVES:
                say_once(f"walk {self.root_url} {folder_id}", f"gave up looking for {platform or 'any'} files "
                         f"under {self.url(folder_id)} after {_MAX_WALK_LEAVES} folders", log)
                break
            rows = self._rows_of(tpl, [(rel, start)], platform, clock)
            times = [r["start"] for r in rows if (lo is None or r["start"] >= lo) and (hi is None or r["start"] < hi)]
            if times:
                self._save_state()
                return max(times) if newest_first else min(times)
        self._save_state()
        return None

    def latest_start(self, folder_id: str, platform: str | None, before=None, since=None,
                     clock: float | None = None) -> pd.Timestamp | None:
        """The start of the newest file of ``platform`` that starts before ``before`` (and at or after ``since``).

        Walks the folder names newest first from ``before`` and lists the files of the first folders only.
        """
        return self._first_start(folder_id, platform, since, before, True, clock)

    def earliest_start(self, folder_id: str, platform: str | None, since, clock: float | None = None
                       ) -> pd.Timestamp | None:
        """The start of the oldest file of ``platform`` that starts at or after ``since``."""
        return self._first_start(folder_id, platform, since, None, False, clock)

    def days(self, folder_id: str, platform: str | None = None, clock: float | None = None) -> list[pd.Timestamp]:
        """The days (UTC midnights) that have a folder, from folder names alone (year, month, day …).

        A partition coarser than a day (``%Y/%m``) lists its files and keeps the days of ``platform``'s.
        """
        if self.per_platform:
            tree = self.tree(folder_id)
            return [] if tree is None else tree.days("", platform, clock)
        tpl = self._template(folder_id)
        level = next((i for i in range(tpl.depth) if tpl.unit(i) in ("day", "hour", "minute")), None)
        out: set[pd.Timestamp] = set()
        if level is None:
            leaves = list(self._walk(tpl, 0, "", None, None, True, tpl.depth - 1, clock))
            out = {r["start"].normalize() for r in self._rows_of(tpl, leaves, platform, clock)}
        else:
            out = {t.normalize() for _, t in self._walk(tpl, 0, "", None, None, True, level, clock)}
        self._save_state()
        return sorted(out)

    def platform_folders(self, clock: float | None = None) -> list[str] | None:
        """The folder ids under the root when the partition starts with ``{platform}``; None otherwise.

        A per-platform root: the folder ids it was given (each tree is listed when it is asked for).
        """
        if self.per_platform:
            return sorted(self.folder_ids)
        if not self.partition.lstrip("/").startswith("{platform}"):
            return None
        return sorted(self.listing("", None, clock) or ())


def _check_per_platform(root_url: str, partition: str, folder_ids: tuple[str, ...]) -> None:
    """A root naming ``{platform}``: once, a partition without it, and folder ids fit for a bucket name."""
    if root_url.count(PLATFORM_FIELD) != 1 or PLATFORM_FIELD in partition:
        raise ValueError(f"{root_url} with partition {partition!r}: name {PLATFORM_FIELD} once, in the root or in "
                         "the partition, not in both")
    if not folder_ids:
        raise ValueError(f"{root_url} names {PLATFORM_FIELD}: give the folder ids it takes (the keys of the "
                         "catalogue's platforms: map, e.g. goes18)")
    bad = [f for f in folder_ids if not FOLDER_ID.fullmatch(f)]
    if bad:
        raise ValueError(f"{root_url}: the folder ids {', '.join(map(repr, bad))} cannot be put in a URL (letters, "
                         "digits, '.', '_' and '-' only)")


def _no_bucket(exc: BaseException) -> bool:
    """Whether a FileNotFoundError of a listing says the bucket itself is missing (S3's NoSuchBucket)."""
    text = str(exc).lower()
    return "specified bucket does not exist" in text or "nosuchbucket" in text


def listing_reason(exc: BaseException) -> str:
    """Why a folder cannot be listed, in the words of :mod:`app.data.storage`'s errors.

    Wrong credentials read ``access denied: ...`` as a refused read of a file does, a network error or a timeout
    the same; anything else is named with its type and message.
    """
    if isinstance(exc, GranuleError):  # storage.filesystem: no package for the protocol, wrong options
        return exc.problem
    from app.data.storage import failure_reason  # the sentence every remote read says

    text = failure_reason(exc)
    if text.startswith("cannot be read from the storage"):  # nothing it knows: say what it is
        return f"{type(exc).__name__}: {str(exc).strip() or 'no message'}"
    return text


def _frame(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["path", "platform", "start", "end"])
    table["start"] = pd.to_datetime(table["start"]).astype("datetime64[ns]")
    table["end"] = pd.to_datetime(table["end"]).astype("datetime64[ns]")
    return table.sort_values(["start", "path"], kind="stable").reset_index(drop=True)


# --- one lister per product root --------------------------------------------------------------------------------

_LISTERS: dict[tuple, PartitionLister] = {}
_LISTERS_LOCK = threading.Lock()


def lister_for(info, repeat_minutes: int, platform_key: Callable[[str], str], state_file: str | Path | None = None
               ) -> PartitionLister:
    """The process's lister of a product (:class:`~app.data.catalog.ProductInfo` with a ``partition``)."""
    poll = (info.live or {}).get("poll_seconds")
    options = json.dumps(dict(info.storage_options), sort_keys=True, default=str)
    folder_ids = tuple(sorted(str(k) for k in info.platforms)) if PLATFORM_FIELD in info.root_url else ()
    key = (info.root_url, info.product, info.partition, options, poll, int(repeat_minutes), str(state_file),
           folder_ids)
    with _LISTERS_LOCK:
        found = _LISTERS.get(key)
        if found is None:
            pattern = info.filename_pattern()
            name_glob = info.glob.rsplit("/", 1)[-1] or pattern.glob
            found = PartitionLister(info.root_url, info.partition, pattern.parse, name_glob, repeat_minutes,
                                    platform_key, info.storage_options, None if poll is None else float(poll),
                                    state_file, folder_ids)
            if len(_LISTERS) > 64:
                _LISTERS.clear()
            _LISTERS[key] = found
        return found


def clear() -> None:
    """Forget every lister of this process (and their listings held in memory)."""
    with _LISTERS_LOCK:
        _LISTERS.clear()
