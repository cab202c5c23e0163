"""Where the HTTP API's work runs: its own small thread pool, with a bounded queue and a time bound per request.

Page loads (Bokeh sessions, Tornado's default executor) and API requests must not starve each other, so the API
never uses Tornado's default executor: its reads and renders run on :func:`pool`, a ``ThreadPoolExecutor`` of
:data:`WORKERS` threads made the first time it is needed (one per process). Its queue is bounded: when more than
:data:`MAX_WAITING` requests already wait for a worker, a new one is refused at once (:class:`Busy`: the handler
answers 503 with ``Retry-After``) instead of piling up. Each request waits at most :data:`REQUEST_TIMEOUT_S`
seconds (:class:`TimedOut`: 504); work that has not started by then is cancelled, work that has is left to finish
(a thread cannot be stopped) and its result dropped — it still counts against the queue until it ends, so the
bound stays true.

Identical requests in flight at the same time (same route, same parameters) share one piece of work and one place
in the queue (:func:`run`): twenty viewers of the same picture cost one render.

The bounds are module attributes read at each request, so an operator (or a test) may change them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["WORKERS", "MAX_WAITING", "REQUEST_TIMEOUT_S", "RETRY_AFTER_S", "Busy", "TimedOut", "ApiPool", "pool",
           "run"]

#: Threads doing the API's work (reads are serialised by the HDF lock anyway; rendering is numpy, mostly GIL-free).
WORKERS = 2
#: Requests that may wait for a worker; one more is answered 503.
MAX_WAITING = 32
#: Seconds a request may take before it is answered 504.
REQUEST_TIMEOUT_S = 60.0
#: What a 503 answer suggests in ``Retry-After`` (seconds).
RETRY_AFTER_S = 5


class Busy(Exception):
    """The API's queue is full: the request is refused (503) rather than queued."""


class TimedOut(Exception):
    """A request took longer than :data:`REQUEST_TIMEOUT_S` (504)."""


class ApiPool:
    """A thread pool that refuses work when :data:`MAX_WAITING` jobs already wait for one of its workers."""

    def __init__(self, workers: int = WORKERS):
        self.workers = int(workers)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending = 0  # submitted and not finished (running or waiting)

    @property
    def pending(self) -> int:
        """Jobs submitted and not finished."""
        return self._pending

    @property
    def waiting(self) -> int:
        """Jobs waiting for a worker."""
        return max(0, self._pending - self.workers)

    def submit(self, fn: Callable[[], Any]) -> Future:
        """Start ``fn()`` on a worker (or queue it); :class:`Busy` if the queue is full."""
        with self._lock:
            if self._pending - self.workers >= MAX_WAITING:
                raise Busy(f"the API is busy: {self._pending} requests are being answered or wait; "
                           f"try again in {RETRY_AFTER_S} s")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="fumarole-api")
            self._pending += 1
        try:
            future = self._executor.submit(fn)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return future

    def _done(self, _future) -> None:
        with self._lock:
            self._pending -= 1

    def shutdown(self) -> None:
        """Stop the workers once their jobs end (tests)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


_POOL: ApiPool | None = None
_POOL_LOCK = threading.Lock()


def pool() -> ApiPool:
    """The API's pool of this process (made on first use)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ApiPool(WORKERS)
        return _POOL


class _Shared:
    """One piece of work in flight and how many requests wait for it."""

    def __init__(self, future: Future):
        self.future = future
        self.waiters = 0


_IN_FLIGHT: dict[Hashable, _Shared] = {}
_IN_FLIGHT_LOCK = threading.RLock()  # a done callback may run at once, in the thread holding it


def _join(key: Hashable, fn: Callable[[], Any]) -> _Shared:
    with _IN_FLIGHT_LOCK:
        shared = _IN_FLIGHT.get(key)
        if shared is None or shared.future.done():
            shared = _Shared(pool().submit(fn))
            _IN_FLIGHT[key] = shared

            def forget(_f, key=key, shared=shared):
                with _IN_FLIGHT_LOCK:
                    if _IN_FLIGHT.get(key) is shared:
                        del _IN_FLIGHT[key]

            shared.future.add_done_callback(forget)
        shared.waiters += 1
        return shared


async def run(key: Hashable, fn: Callable[[], Any], timeout: float | None = None) -> Any:
    """``fn()``'s result, computed on the API's pool; requests with the same ``key`` in flight share one computation.

    Raises :class:`Busy` when the queue is full, :class:`TimedOut` after ``timeout`` seconds (default
    :data:`REQUEST_TIMEOUT_S`), or what ``fn`` raised.
    """
    shared = _join(key, fn)
    try:
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(shared.future)),
                                      REQUEST_TIMEOUT_S if timeout is None else timeout)
    except TimeoutError:
        raise TimedOut(f"the answer took longer than {REQUEST_TIMEOUT_S if timeout is None else timeout:g} s "
                       "and was given up") from None
    finally:
        with _IN_FLIGHT_LOCK:
            shared.waiters -= 1
            last = shared.waiters == 0
        if last and not shared.future.done():
            shared.future.cancel()  # nobody waits for it any more: drop it if it has not started
