"""The one cache policy: least-recently-used caches bounded in bytes, sharing one memory budget per process.

Every in-memory cache of Fumarole (decoded granules, GEO channels, frames, PNGs, grids) is a
:class:`ByteBoundedCache` made by :func:`bounded_cache`, which gives it a share of the process's memory budget
(:func:`memory_budget`: ``FUMAROLE_MEMORY_BUDGET_MB``, default a third of the machine's memory, at most 8 GB).
The shares of all caches add up to at most the budget, so a busy server's caches cannot grow past it whatever
is asked. :func:`cached` is the decorator form (instead of ``functools.lru_cache``, which bounds entries, not
bytes), and merges identical concurrent calls: a second caller of the same key waits for the first one's result
instead of computing it again.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import wraps
from typing import Any

__all__ = ["ByteBoundedCache", "bounded_cache", "cached", "memory_budget", "nbytes_of", "caches", "clear_all",
           "SingleFlight"]

_MB = 1_000_000


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8_000 * _MB


def memory_budget() -> int:
    """Bytes all the caches of this process may hold together.

    ``FUMAROLE_MEMORY_BUDGET_MB`` sets it; the default is a third of the machine's memory, at most 8 GB (with
    ``--num-procs N`` each process has its own budget: divide accordingly).
    """
    text = os.environ.get("FUMAROLE_MEMORY_BUDGET_MB", "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"FUMAROLE_MEMORY_BUDGET_MB={text!r} is not a number of megabytes") from None
        if not value > 0:
            raise ValueError(f"FUMAROLE_MEMORY_BUDGET_MB={text!r} must be positive")
        return int(value * _MB)
    return int(min(_physical_memory() / 3, 8_000 * _MB))


def nbytes_of(value: Any) -> int:
    """The memory a cached value holds, as well as can be told (numpy/xarray/pandas objects, bytes, tuples)."""
    if value is None:
        return 0
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8", "ignore"))
    if isinstance(value, tuple | list):
        return sum(nbytes_of(v) for v in value) + 8 * len(value)
    if isinstance(value, dict):
        return sum(nbytes_of(v) for v in value.values()) + 64 * len(value)
    memory_usage = getattr(value, "memory_usage", None)
    if callable(memory_usage) and hasattr(value, "columns"):  # pandas DataFrame
        return int(memory_usage(deep=True).sum())
    n = getattr(value, "nbytes", None)
    if isinstance(n, int | float):
        return int(n)
    return 256


class ByteBoundedCache:
    """Keeps values until their sizes add up to ``max_bytes``, dropping the least recently used first.

    A value larger than the whole bound is not kept. Thread-safe; counts hits and misses.
    """

    def __init__(self, max_bytes: int, name: str = ""):
        self.max_bytes = int(max_bytes)
        self.name = name
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def get(self, key):
        """The value stored under ``key``, or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key, value, nbytes: int | None = None) -> None:
        """Store ``value`` (its size ``nbytes``, default :func:`nbytes_of`), dropping old entries past the bound."""
        nbytes = int(nbytes_of(value) if nbytes is None else nbytes)
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            if nbytes > self.max_bytes:
                return
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes and self._items:
                self._bytes -= self._items.popitem(last=False)[1][1]

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"ByteBoundedCache({self.name!r}, {len(self)} entries, {self._bytes / _MB:.1f} of " \
               f"{self.max_bytes / _MB:.1f} MB)"


_REGISTRY: dict[str, ByteBoundedCache] = {}
_SHARES: dict[str, float] = {}
_REGISTRY_LOCK = threading.Lock()


def bounded_cache(name: str, share: float) -> ByteBoundedCache:
    """The process's cache ``name``, bounded to ``share`` (0–1) of :func:`memory_budget`.

    Shares of all caches must add up to at most 1: a cache asking for more than is left is refused (a bug of
    ours, found at import). Asking again for the same name returns the same cache.
    """
    with _REGISTRY_LOCK:
        if name in _REGISTRY:
            return _REGISTRY[name]
        if not 0 < share <= 1 or sum(_SHARES.values()) + share > 1.0 + 1e-9:
            raise ValueError(f"cache {name!r} asks for {share:.0%} of the memory budget; "
                             f"{sum(_SHARES.values()):.0%} is taken by {sorted(_SHARES)}")
        cache = ByteBoundedCache(int(memory_budget() * share), name=name)
        _REGISTRY[name] = cache
        _SHARES[name] = share
        return cache


def caches() -> dict[str, ByteBoundedCache]:
    """Every cache of the process by name (for the archive page and the load test)."""
    return dict(_REGISTRY)


def clear_all() -> None:
    """Empty every cache (tests, and the rescan after the archive changed)."""
    for cache in list(_REGISTRY.values()):
        cache.clear()


class SingleFlight:
    """Merges identical concurrent calls: while one thread computes a key, others asking for it wait for it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: dict[Hashable, tuple[threading.Event, list]] = {}
        #: calls that waited for another's result instead of computing (for the load figures and tests)
        self.merged = 0

    def do(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``'s result, computed once for all the callers of ``key`` that overlap in time."""
        with self._lock:
            running = self._running.get(key)
            leader = running is None
            if not leader:
                self.merged += 1
            else:
                running = (threading.Event(), [])
                self._running[key] = running
        done, box = running
        if not leader:
            done.wait()
            ok, value = box[0]
            if ok:
                return value
            raise value
        try:
            value = compute()
            box.append((True, value))
            return value
        except BaseException as exc:
            box.append((False, exc))
            raise
        finally:
            with self._lock:
                self._running.pop(key, None)
            done.set()


def cached(name: str, share: float, key: Callable[..., Hashable] | None = None):
    """Decorator: memoise a function in the bounded cache ``name`` (a ``share`` of the budget).

    ``key(*args, **kwargs)`` makes the cache key (default: the arguments themselves, which must be hashable).
    Identical concurrent calls are merged. The wrapped function gains ``cache`` and ``cache_clear()``.
    """

    def wrap(func):
        cache = bounded_cache(name, share)
        flight = SingleFlight()

        @wraps(func)
        def wrapper(*args, **kwargs):
            k = key(*args, **kwargs) if key is not None else (args, tuple(sorted(kwargs.items())))
            hit = cache.get(k)
            if hit is not None:
                return hit

            def compute():
                again = cache.get(k)
                if again is not None:
                    return again
                value = func(*args, **kwargs)
                cache.put(k, value)
                return value

            return flight.do(k, compute)

        wrapper.cache = cache
        wrapper.cache_clear = cache.clear
        return wrapper

    return wrap
