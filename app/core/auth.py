"""Credentials and API tokens of ``fumarole serve``: hashed, kept in small text files, re-read when they change.

Two files, each written only by the ``fumarole users`` / ``fumarole tokens`` commands (atomically, mode 0600) and
read by the server (:mod:`app.serve_auth`):

- the **users file**: one ``NAME:scrypt$N$r$p$SALT$HASH`` line per user (``#`` lines are comments). Passwords are
  hashed with scrypt (standard library, :func:`hashlib.scrypt`) at OWASP's recommended cost (N=2^15, r=8, p=3:
  32 MiB and some tens of milliseconds per check), with a random 16-byte salt each: a stolen file gives no password
  and costs an attacker that much per guess. The cost is stored in each line, so it can be raised later.
- the **tokens file**: one ``NAME:sha256:HEX:CREATED`` line per API token. A token is 32 random bytes
  (``fmr_`` + URL-safe base64, 256 bits): no one guesses it, so a fast hash (SHA-256) is enough and keeps the check
  of every API request cheap; the token itself is printed once by ``fumarole tokens create`` and stored nowhere.

Comparisons are constant-time (:func:`hmac.compare_digest`). :class:`WatchedFile` re-reads a file when its size,
modification time or inode change (one ``stat`` per check), so a revoked token or a removed user is refused on the
next request, in every server process, without a restart. :class:`Backoff` slows down repeated failed sign-ins
from one address, in bounded memory.

This module imports nothing else of Fumarole (``app.core``).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

__all__ = ["ALWAYS_PUBLIC", "AuthFileError", "PlainTextCredentials", "MIN_PASSWORD_CHARS", "NAME", "hash_password",
           "verify_password", "check_password_rules", "check_name", "parse_users", "format_users", "read_users",
           "add_user", "remove_user", "import_plain_users", "TokenEntry", "new_token", "token_digest",
           "parse_tokens", "format_tokens", "read_tokens", "create_token", "revoke_token", "match_token",
           "write_private", "WatchedFile", "Backoff"]

#: Routes open without a login whatever the flags: the kiosk (public outreach) and the health check.
ALWAYS_PUBLIC = ("/kiosk", "/liveness", "/favicon.ico")
#: Fewest characters a password may have (NIST SP 800-63B asks for at least 8; we ask a little more).
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
#: A user or token name: letters, digits and ``_ . @ -``, 1 … 64 characters, starting with a letter or digit.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")

_SCRYPT = {"n": 2 ** 15, "r": 8, "p": 3}
_SCRYPT_MAXMEM = 256 * 1024 * 1024
_USER_LINE = re.compile(r"scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=_-]+)\$([A-Za-z0-9+/=_-]+)")
_TOKEN_PREFIX = "fmr_"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class AuthFileError(ValueError):
    """A users or tokens file that cannot be used: the message names the file and the line or user at fault."""


class PlainTextCredentials(AuthFileError):
    """A file of plain-text passwords (the JSON of the old ``--basic-auth``): refused, with how to convert it."""


# --------------------------------------------------------------------------------------------- passwords


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None, n: int | None = None, r: int | None = None,
                  p: int | None = None) -> str:
    """The stored form of ``password``: ``scrypt$N$r$p$SALT$HASH`` (a random 16-byte salt unless one is given)."""
    n, r, p = n or _SCRYPT["n"], r or _SCRYPT["r"], p or _SCRYPT["p"]
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


#: Checked against when the user does not exist, so an unknown name takes as long as a wrong password.
_DUMMY_HASH = hash_password("no such user", salt=b"\0" * 16)


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches the stored hash (``None``: an unknown user, checked against a dummy hash)."""
    m = _USER_LINE.fullmatch(stored or _DUMMY_HASH)
    if m is None or len(password) > MAX_PASSWORD_CHARS:
        return False
    n, r, p = (int(m.group(i)) for i in (1, 2, 3))
    try:
        digest = hashlib.scrypt(password.encode("utf-8"), salt=_unb64(m.group(4)), n=n, r=r, p=p,
                                maxmem=_SCRYPT_MAXMEM, dklen=32)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(digest, _unb64(m.group(5))) and stored is not None


def check_password_rules(password: str) -> None:
    """Raise :class:`ValueError` with a sentence when ``password`` is too short, too long or not printable."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"the password has {len(password)} characters: give at least {MIN_PASSWORD_CHARS}")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"the password has {len(password)} characters: give at most {MAX_PASSWORD_CHARS}")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise ValueError("the password holds a control character (a pasted line end?)")


def check_name(name: str, what: str = "user") -> str:
    """``name`` if it is a valid user or token name, else a :class:`ValueError` saying what a name may hold."""
    if not NAME.fullmatch(name or ""):
        raise ValueError(f"{what} name {name!r} must be 1-64 letters, digits, '_', '.', '@' or '-', starting with a "
                         "letter or digit")
    return name


# --------------------------------------------------------------------------------------------- files


def write_private(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file in the same folder, renamed), mode 0600."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _lines(text: str):
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def _refuse_json(text: str, source: str) -> None:
    """A JSON object is the old ``--basic-auth`` file of plain-text passwords: refused with how to convert it."""
    if not text.lstrip().startswith("{"):
        return
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        raise PlainTextCredentials(
            f"{source} holds plain-text passwords (the JSON of the old --basic-auth): convert it with "
            f"`fumarole users import {source} --file NEW_FILE`, give --users NEW_FILE, and delete {source}")


def parse_users(text: str, source: str = "users file") -> dict[str, str]:
    """User name -> stored hash, from the text of a users file; :class:`AuthFileError` naming the line at fault."""
    _refuse_json(text, source)
    users: dict[str, str] = {}
    for number, line in _lines(text):
        name, sep, stored = line.partition(":")
        if not sep:
            raise AuthFileError(f"{source} line {number}: expected NAME:HASH (made by `fumarole users add`)")
        if not NAME.fullmatch(name):
            raise AuthFileError(f"{source} line {number}: user name {name[:40]!r} is not valid")
        if not _USER_LINE.fullmatch(stored):
            raise AuthFileError(f"{source} line {number} (user {name!r}): the password is not a scrypt hash made by "
                                "`fumarole users add` (a plain-text password is refused)")
        if name in users:
            raise AuthFileError(f"{source} line {number}: user {name!r} is given twice")
        users[name] = stored
    return users


def format_users(users: dict[str, str]) -> str:
    """The text of a users file."""
    head = "# fumarole users: NAME:scrypt hash (made by `fumarole users add`; never a password)\n"
    return head + "".join(f"{name}:{stored}\n" for name, stored in sorted(users.items()))


def _read(path: str | os.PathLike, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthFileError(f"{what} {path} cannot be read ({getattr(exc, 'strerror', None) or exc})") from None


def read_users(path: str | os.PathLike) -> dict[str, str]:
    """The users of a users file (none when it does not exist yet)."""
    return parse_users(_read(path, "users file"), str(path))


def add_user(path: str | os.PathLike, name: str, password: str) -> bool:
    """Add ``name`` (or set a new password); True when the user is new. The password is checked, then hashed."""
    check_name(name)
    check_password_rules(password)
    users = read_users(path)
    new = name not in users
    users[name] = hash_password(password)
    write_private(path, format_users(users))
    return new


def remove_user(path: str | os.PathLike, name: str) -> None:
    """Remove ``name`` from the users file (a :class:`KeyError` naming it when it is not there)."""
    users = read_users(path)
    if name not in users:
        raise KeyError(f"{path} has no user {name!r}")
    del users[name]
    write_private(path, format_users(users))


def import_plain_users(source: str | os.PathLike, dest: str | os.PathLike) -> list[str]:
    """Hash every password of an old ``--basic-auth`` JSON file into the users file ``dest``; the names added.

    Passwords shorter than :data:`MIN_PASSWORD_CHARS` are imported too (they were in use) — ``fumarole users list``
    does not show them, so the caller says which to change.
    """
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AuthFileError(f"{source} cannot be read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise AuthFileError(f"{source} is not JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in data.items()):
        raise AuthFileError(f"{source} must hold a JSON object of user names to passwords")
    users = read_users(dest)
    for name, password in data.items():
        try:
            check_name(name)
        except ValueError as exc:
            raise AuthFileError(f"{source}: {exc}") from None
        users[name] = hash_password(password)
    write_private(dest, format_users(users))
    return sorted(data)


# --------------------------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class TokenEntry:
    """One API token of the tokens file: its name, the SHA-256 of the token (hex) and when it was made."""

    name: str
    digest: str
    created: str


def new_token() -> str:
    """A new API token: ``fmr_`` and 32 random bytes, URL-safe base64."""
    return _TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The SHA-256 (hex) a token is stored and looked up by."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_tokens(text: str, source: str = "tokens file") -> dict[str, TokenEntry]:
    """Token name -> entry, from the text of a tokens file; :class:`AuthFileError` naming the line at fault."""
    tokens: dict[str, TokenEntry] = {}
    for number, line in _lines(text):
        parts = line.split(":", 3)
        if len(parts) != 4 or parts[1] != "sha256" or not _HEX64.fullmatch(parts[2]):
            raise AuthFileError(f"{source} line {number}: expected NAME:sha256:HEX:CREATED (made by `fumarole "
                                "tokens create`; a token itself is never stored)")
        name = parts[0]
        if not NAME.fullmatch(name):
            raise AuthFileError(f"{source} line {number}: token name {name[:40]!r} is not valid")
        if name in tokens:
            raise AuthFileError(f"{source} line {number}: token {name!r} is given twice")
        tokens[name] = TokenEntry(name, parts[2], parts[3])
    return tokens


def format_tokens(tokens: dict[str, TokenEntry]) -> str:
    """The text of a tokens file."""
    head = "# fumarole API tokens: NAME:sha256:HEX:CREATED (made by `fumarole tokens create`; never a token)\n"
    return head + "".join(f"{t.name}:sha256:{t.digest}:{t.created}\n" for _, t in sorted(tokens.items()))


def read_tokens(path: str | os.PathLike) -> dict[str, TokenEntry]:
    """The tokens of a tokens file (none when it does not exist yet)."""
    return parse_tokens(_read(path, "tokens file"), str(path))


def create_token(path: str | os.PathLike, name: str) -> str:
    """Make a token named ``name``, store its hash and return it (the one time it is seen)."""
    check_name(name, "token")
    tokens = read_tokens(path)
    if name in tokens:
        raise ValueError(f"{path} already has a token {name!r}: revoke it first, or choose another name")
    token = new_token()
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tokens[name] = TokenEntry(name, token_digest(token), created)
    write_private(path, format_tokens(tokens))
    return token


def revoke_token(path: str | os.PathLike, name: str) -> None:
    """Remove the token ``name`` (a :class:`KeyError` naming it when it is not there)."""
    tokens = read_tokens(path)
    if name not in tokens:
        raise KeyError(f"{path} has no token {name!r}")
    del tokens[name]
    write_private(path, format_tokens(tokens))


def match_token(token: str, tokens: dict[str, TokenEntry]) -> str | None:
    """The name of the token ``token`` is, or None; every entry is compared, in constant time each."""
    if not token.startswith(_TOKEN_PREFIX) or len(token) > 256:
        return None
    digest = token_digest(token)
    found = None
    for entry in tokens.values():
        if hmac.compare_digest(digest, entry.digest):
            found = entry.name
    return found


# --------------------------------------------------------------------------------------------- serving

T = TypeVar("T")


class WatchedFile(Generic[T]):
    """A file parsed once and again whenever it changes (size, modification time, inode): one ``stat`` per call.

    ``get()`` returns the parsed content, or raises :class:`AuthFileError` when the file is missing, unreadable or
    malformed *now* — the server then refuses rather than serving the last good copy (a revoked token must not
    survive a half-written edit; the commands write atomically, so that does not happen with them).
    """

    def __init__(self, path: str | os.PathLike, parse: Callable[[str, str], T], what: str) -> None:
        self.path = str(path)
        self._parse = parse
        self._what = what
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._value: T | None = None
        self._error: AuthFileError | None = None

    def get(self) -> T:
        """The file's current content, parsed."""
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
        except OSError as exc:
            raise AuthFileError(f"{self._what} {self.path} cannot be read ({exc.strerror or exc})") from None
        with self._lock:
            if stamp != self._stamp:
                try:
                    text = Path(self.path).read_text(encoding="utf-8")
                    self._value, self._error = self._parse(text, self.path), None
                except AuthFileError as exc:
                    self._value, self._error = None, exc
                except (OSError, UnicodeDecodeError) as exc:
                    self._value = None
                    self._error = AuthFileError(f"{self._what} {self.path} cannot be read "
                                                f"({getattr(exc, 'strerror', None) or exc})")
                self._stamp = stamp
            if self._error is not None:
                raise self._error
            return self._value


class Backoff:
    """Failed sign-ins per client address, in bounded memory.

    After ``free`` failures, each further attempt waits twice as long as the last (1 s, 2 s, 4 s … at most
    ``max_wait_s``). At most ``max_clients`` addresses are remembered (the least recently seen is forgotten first);
    an address quiet for ``forget_s`` starts afresh.
    """

    def __init__(self, free: int = 3, max_wait_s: float = 60.0, max_clients: int = 4096,
                 forget_s: float = 900.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.max_wait_s, self.max_clients, self.forget_s = free, max_wait_s, max_clients, forget_s
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: collections.OrderedDict[str, tuple[int, float]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def wait_s(self, client: str) -> float:
        """Seconds ``client`` must still wait before its next attempt is checked (0: it may try now)."""
        now = self._clock()
        with self._lock:
            failures, last = self._clients.get(client, (0, now))
            if now - last > self.forget_s:
                self._clients.pop(client, None)
                return 0.0
            if failures < self.free:
                return 0.0
            delay = min(self.max_wait_s, 2.0 ** (failures - self.free))
            return max(0.0, last + delay - now)

    def failed(self, client: str) -> None:
        """Count a failed attempt of ``client``."""
        now = self._clock()
        with self._lock:
            failures, last = self._clients.pop(client, (0, now))
            if now - last > self.forget_s:
                failures = 0
            self._clients[client] = (failures + 1, now)
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s failures."""
        with self._lock:
            self._clients.pop(client, None)
