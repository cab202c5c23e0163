"""The per-user state folder: where Fumarole keeps what it derives from an archive, never inside the archive.

Real archives are read-only and shared, so the granule index, the time-series results and the secrets of this
installation live in a folder of the user's (XDG): ``$FUMAROLE_STATE_DIR`` if set, else
``$XDG_STATE_HOME/fumarole``, else ``~/.local/state/fumarole``. Each archive has its own sub-folder, keyed by its
root (``archives/<slug>-<hash>``), so two archives never share an index and one archive served by several
processes shares one.

Writing state may fail (a read-only home, a full disk): :func:`write_state` says so once per folder in the log
and returns False, and the caller goes on with what it holds in memory.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["state_dir", "archive_state_dir", "write_state", "secret_key", "say_once", "said_once_reset"]

log = logging.getLogger(__name__)

_SAID: set[str] = set()
_SAID_LOCK = threading.Lock()


def state_dir() -> Path:
    """The user's Fumarole state folder (not created here)."""
    explicit = os.environ.get("FUMAROLE_STATE_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "fumarole"


def _normal_root(root: str | os.PathLike) -> str:
    text = os.fspath(root)
    if "://" in text or "::" in text:
        return text.rstrip("/")
    return os.path.realpath(text)


def archive_state_dir(root: str | os.PathLike) -> Path:
    """The state sub-folder of the archive whose root is ``root`` (a local folder or a URL)."""
    normal = _normal_root(root)
    digest = hashlib.sha256(normal.encode("utf-8")).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", normal.rstrip("/").rsplit("/", 1)[-1])[:40].strip("-.") or "archive"
    return state_dir() / "archives" / f"{slug}-{digest}"


def say_once(where: str, message: str, logger: logging.Logger | None = None) -> bool:
    """Log ``message`` as a warning the first time ``where`` (a file, a folder, a cache entry) comes up.

    Later calls for the same ``where`` in this process say nothing; returns whether it was said. The memory of
    what was said is bounded (forgotten past 10,000 places: a long-running server then says a lasting problem
    again, which is right).
    """
    with _SAID_LOCK:
        if where in _SAID:
            return False
        if len(_SAID) >= 10_000:
            _SAID.clear()
        _SAID.add(where)
    (logger or log).warning("%s", message)
    return True


def said_once_reset() -> None:
    """Forget which failures were said (tests)."""
    with _SAID_LOCK:
        _SAID.clear()


def write_state(path: str | os.PathLike, write: Callable[[str], None], what: str = "state") -> bool:
    """Write a state file atomically: ``write(tmp)`` writes a temporary file, renamed to ``path``.

    Returns False (and says once per folder, in the log) when the folder cannot be made or written: the caller
    keeps its data in memory and goes on.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(str(tmp))
        os.replace(tmp, path)
        return True
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        say_once(str(path.parent), f"cannot write the {what} in {path.parent} ({exc.strerror or exc}); "
                                    "going on in memory, nothing is lost but the time to derive it again")
        return False


_SECRET_LOCK = threading.Lock()


def secret_key(name: str = "secret") -> bytes:
    """A random key of this installation (32 bytes), made once and kept in the state folder (mode 0600).

    ``FUMAROLE_SECRET`` overrides it (several servers behind one proxy share it). When the state folder cannot be
    written, a key for this process only is made and said once.
    """
    env = os.environ.get("FUMAROLE_SECRET", "").strip()
    if env:
        return hashlib.sha256(f"{name}:{env}".encode()).digest()
    path = state_dir() / f"{name}.key"
    with _SECRET_LOCK:
        try:
            data = path.read_bytes()
            if len(data) >= 32:
                return data[:32]
        except OSError:
            pass
        key = secrets.token_bytes(32)

        def write(tmp: str) -> None:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key)

        if not write_state(path, write, what=f"{name} key"):
            _PROCESS_KEYS.setdefault(name, key)
            return _PROCESS_KEYS[name]
        return key


_PROCESS_KEYS: dict[str, bytes] = {}
