"""One archive as the views see it: a catalogue, its granule index, and reads that report what they skip.

Everything above ``app/data`` asks this module for granules; it never opens a catalogue or a file itself.
Archives are shared by the sessions of one server process (:func:`get_archive`); the index is refreshed on first
use and on demand, and kept in the user's state folder (the archive may be read-only: nothing is written in it).

Decoded granules are cached per process in caches bounded in bytes (:mod:`app.core.cache`): TROPOMI swaths in
"swath granules" (a quarter of the memory budget), CALIOP tracks and curtains in "caliop"; keys are the file's
:func:`app.data.storage.stamp` ``(path or URL, ETag or mtime, size)``, so a changed file is read again. Granules may
be local or remote (any fsspec URL with the catalogue's storage options).

A product marked ``live`` in the catalogue (a near-real-time source) is polled: every query re-lists only its
newest ``partition`` folders (the last ``live.days`` days), at most every ``live.poll_seconds``, and adds what
landed, without a restart (:meth:`Archive.poll_live`). Messages to users name files relative to the archive
root (:meth:`Archive.name_of`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
import xarray as xr

from app.core.cache import cached
from app.data import catalog as catalogs
from app.data import storage
from app.data.errors import FumaroleError, GranuleError
from app.data.index import GranuleIndex, IndexReport, is_slot_listed, relative_name, without_root
from app.data.readers import reader_for
from app.data.tropomi import LevelUnavailable

log = logging.getLogger(__name__)

TROPOMI = "tropomi_so2"
CALIOP = "caliop_l1b"

#: a callback the views give to hear what was read and skipped: (level, message)
Reporter = Callable[[str, str], None]


def _log_reporter(level: str, message: str) -> None:
    getattr(log, level if level in ("info", "warning", "error") else "info")(message)


@dataclass
class ReadResult:
    """Datasets read, granules skipped, and granules without an optional field asked for.

    ``skipped``: ``(name, sentence naming the file and the reason)``; ``unavailable``: ``(name, level, reason)`` for
    a granule that lacks the box-profile level or the layer height asked for.
    """

    datasets: list[xr.Dataset] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unavailable: list[tuple[str, str, str]] = field(default_factory=list)


class Archive:
    """A catalogue's archive: product metadata, the granule index and canonical reads."""

    def __init__(self, catalog: str | None = None):
        self.catalog_source = catalogs.catalog_path(catalog)
        self.catalog = catalogs.open_catalog(catalog)
        self.index = GranuleIndex.for_catalog(self.catalog)
        #: the archive's root folder or URL: files are named relative to it in every message to users
        self.root: str = catalogs.archive_root(self.catalog)
        self._lock = threading.Lock()
        self._refreshed = False
        self._polled: dict[str, float] = {}  # live product -> when its newest folders were last listed
        self.last_report: IndexReport | None = None

    @property
    def title(self) -> str:
        """The catalogue's title."""
        meta = getattr(self.catalog, "metadata", {}) or {}
        return str(meta.get("title") or meta.get("name") or self.catalog_source)

    def name_of(self, path: str | os.PathLike) -> str:
        """A file's name relative to the archive root, as users see it (never an absolute server path)."""
        return relative_name(path, self.root)

    def describe(self, exc: BaseException) -> str:
        """A sentence on a failed read that names the file relative to the archive root."""
        if isinstance(exc, GranuleError):
            return f"{self.name_of(exc.path)}: {without_root(exc.problem, self.root)}"
        return without_root(str(exc), self.root)

    def products(self) -> list[str]:
        """Product ids of the catalogue."""
        return catalogs.products(self.catalog)

    def product_info(self, product: str) -> catalogs.ProductInfo:
        """Labels, units and plot defaults of a product."""
        return catalogs.product_info(self.catalog, product)

    def reader_key(self, product: str) -> str:
        """The key of the reader the catalogue names for ``product`` (:mod:`app.data.readers`), checked."""
        key = self.product_info(product).reader
        reader_for(key)  # an unknown key is said here, naming the registered ones
        return key

    def refresh(self, report: Reporter = _log_reporter, full: bool = True) -> IndexReport:
        """Bring the index up to date with the files; reports what was added and skipped.

        ``full=False`` re-lists only the newest folders of the live products whose poll is due
        (:meth:`poll_live`); a first refresh is always full.
        """
        if not full and self._refreshed:
            return self.poll_live(report, force=True) or IndexReport(root=self.index.root)
        with self._lock:
            rep = self.index.refresh()
            self._refreshed = True
            self._polled = {p: time.monotonic() for p in self._live_products()}
            self.last_report = rep
        n_new = len(rep.added) + len(rep.updated)
        report("info", f"granule index: {len(self.index)} granules ({n_new} new or changed, {rep.unchanged} unchanged)")
        for name, reason in rep.skipped:  # named relative to the archive root already
            report("warning", f"skipped {name}: {reason}")
        return rep

    def _live_products(self) -> dict[str, catalogs.ProductInfo]:
        infos = {p: self.product_info(p) for p in self.products()}
        # the GEO products' live folders are polled by app.data.geo_slots, not indexed
        return {p: info for p, info in infos.items() if info.live and info.partition and not is_slot_listed(info)}

    def poll_live(self, report: Reporter = _log_reporter, force: bool = False) -> IndexReport | None:
        """Re-list the newest partition folders of the live products whose poll is due; None when none is.

        Each live product is polled at most every ``live.poll_seconds`` (``force`` skips the wait): only the folders
        of its last ``live.days`` days (UTC) are listed, new granules are indexed, the rest of the index is kept.
        """
        now = time.monotonic()
        with self._lock:
            due = [info for p, info in self._live_products().items()
                   if force or now - self._polled.get(p, -1e18) >= float(info.live.get("poll_seconds", 300))]
            if not due:
                return None
            for info in due:
                self._polled[info.product] = now
            rep = self.index.refresh_recent(due)
        if rep.added or rep.removed or rep.skipped:
            report("info", f"granule index: {len(rep.added)} new granules of "
                           f"{', '.join(i.product for i in due)} (live)")
        for name, reason in rep.skipped:
            report("warning", f"skipped {name}: {reason}")
        return rep

    def _ensure_index(self) -> None:
        if not self._refreshed:
            self.refresh()
        else:
            self.poll_live()

    def granules(self, product: str, start=None, end=None, bbox=None) -> pd.DataFrame:
        """Index rows of the granules of a product in a time range that touch a zone."""
        self._ensure_index()
        return self.index.query(product, start=start, end=end, bbox=bbox)

    def days(self, product: str) -> list[np.datetime64]:
        """Days (UTC) on which the product has granules."""
        self._ensure_index()
        t = self.index.table
        t = t[t["product"] == product]
        if t.empty:
            return []
        return sorted({np.datetime64(d, "D") for d in t["start"].dt.floor("D")})

    def read_many(
        self,
        paths: Iterable[str],
        reader: Callable[[str], xr.Dataset],
        report: Reporter = _log_reporter,
    ) -> ReadResult:
        """Read each granule with ``reader``; a granule that fails is skipped and reported, the rest go on.

        Any exception out of the reader skips that granule, not only a GranuleError: a reader's bug on an
        unexpected file must not blank a page. ``skipped`` holds ``(name, sentence)`` with the file named relative
        to the archive root. A granule without an optional field asked for (``LevelUnavailable``: a box level its
        processor predates, or no layer height) is not damaged: it goes to ``unavailable`` as ``(name, level,
        reason)``, not reported here: the caller says it once (the VolcPlume level selector, for a whole day).
        """
        out = ReadResult()
        for path in paths:
            try:
                out.datasets.append(reader(path))
            except LevelUnavailable as exc:  # not damaged: the caller says it once for the day, not per granule
                out.unavailable.append((self.name_of(path), exc.level, without_root(exc.reason, self.root)))
            except FumaroleError as exc:
                msg = self.describe(exc)
                out.skipped.append((self.name_of(path), msg))
                report("warning", f"skipped {msg}")
            except Exception as exc:  # noqa: BLE001 - any reader failure skips one granule; the rest is drawn
                why = without_root(str(exc), self.root) or type(exc).__name__
                msg = f"{self.name_of(path)}: cannot be read ({type(exc).__name__}: {why})"
                out.skipped.append((self.name_of(path), msg))
                log.warning("reader failed on %s", path, exc_info=True)  # the traceback for us, in the server log
                report("error", f"skipped {msg}")
        return out

    def unavailable_fields(self, path: str) -> dict[str, str]:
        """The optional TROPOMI fields a granule lacks -> the reason (box levels, ``layer_height``).

        From the file's attributes only, cached per file. A granule that cannot be read says nothing here (it is
        skipped, with its reason, when read).
        """
        try:
            return dict(_unavailable_cached(_stamp(path)))
        except FumaroleError:
            return {}


@lru_cache(maxsize=8)  # a handful of catalogues per process; an Archive holds its index, not granules
def _archive(source: str) -> Archive:
    return Archive(source)


def get_archive(catalog: str | None = None) -> Archive:
    """The process-wide :class:`Archive` of a catalogue (default: ``FUMAROLE_CATALOG`` or the sample)."""
    return _archive(catalogs.catalog_path(catalog))


def _stamp(path: str) -> tuple[str, str, int]:
    """The cache key of a file: ``(path or URL, version, size)`` (:func:`app.data.storage.stamp`).

    The version is the ETag or the modification time; a file that is gone, not a file or unreachable is a
    GranuleError.
    """
    return storage.stamp(str(path))


#: Shares of the process's memory budget (app.core.cache): decoded TROPOMI swaths, CALIOP tracks and curtains.
SWATH_CACHE_SHARE = 0.25
CALIOP_CACHE_SHARE = 0.08


@cached("swath granules", SWATH_CACHE_SHARE)
def _swath_cached(stamp: tuple[str, str, int], variables: tuple[str, ...], with_bounds: bool,
                  reader: str) -> xr.Dataset:
    return reader_for(reader)(stamp[0], variables=variables, with_bounds=with_bounds).load()


def read_swath_cached(path: str, variables: Iterable[str], with_bounds: bool = False,
                      reader: str = "tropomi_l2_so2") -> xr.Dataset:
    """A TROPOMI granule as a canonical Swath, shared by the sessions of this process (keyed by path and mtime).

    ``reader``: the catalogue's reader key (:meth:`Archive.reader_key`). Kept in the byte-bounded cache "swath
    granules"; identical concurrent reads are merged into one.
    """
    return _swath_cached(_stamp(path), tuple(variables), with_bounds, reader)


@cached("swath granules", SWATH_CACHE_SHARE, key=lambda stamp: ("unavailable fields", stamp))
def _unavailable_cached(stamp: tuple[str, str, int]) -> tuple[tuple[str, str], ...]:
    from app.data.tropomi import read_attrs

    try:
        attrs = read_attrs(stamp[0])
    except Exception as exc:  # noqa: BLE001 - said when the granule is read; here only "nothing known"
        raise GranuleError(stamp[0], f"cannot be read ({type(exc).__name__})") from None
    return tuple({**attrs["unavailable_levels"], **attrs["unavailable_layers"]}.items())


@cached("caliop", CALIOP_CACHE_SHARE, key=lambda stamp: ("track", stamp))
def _track_cached(stamp: tuple[str, str, int]) -> xr.Dataset:
    from app.data.caliop import read_track

    return read_track(stamp[0]).load()


def read_track_cached(path: str) -> xr.Dataset:
    """A CALIOP granule's ground track (latitude, longitude, time), cached per process (byte-bounded)."""
    return _track_cached(_stamp(path))


@cached("caliop", CALIOP_CACHE_SHARE, key=lambda stamp, variables, reader: ("curtain", stamp, variables, reader))
def _curtain_cached(stamp: tuple[str, str, int], variables: tuple[str, ...], reader: str) -> xr.Dataset:
    return reader_for(reader)(stamp[0], variables=variables).load()


def read_curtain_cached(path: str, variables: Iterable[str], reader: str = "caliop_l1b") -> xr.Dataset:
    """A CALIOP granule's curtain (the variables asked for), cached per process (byte-bounded).

    ``reader``: the catalogue's reader key (:meth:`Archive.reader_key`).
    """
    return _curtain_cached(_stamp(path), tuple(variables), reader)
