"""A least-recently-used cache bounded in bytes, shared by the data layer and the renderers."""

from __future__ import annotations

import threading
from collections import OrderedDict


class ByteBoundedCache:
    """Keeps values until their sizes add up to ``max_bytes``, dropping the least recently used first.

    The newest entry is always kept, however large. Thread-safe; counts hits and misses.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

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
        """Store ``value`` (its size ``nbytes``, default ``value.nbytes``), dropping old entries past the bound."""
        nbytes = int(value.nbytes if nbytes is None else nbytes)
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                self._bytes -= self._items.popitem(last=False)[1][1]

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)
