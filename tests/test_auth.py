"""Access control (issue 10, item 5): hashed users, API tokens, public routes, the login page, OIDC.

Unit tests of app/core/auth.py and of the ``fumarole users`` / ``fumarole tokens`` commands, then real servers
(``fumarole serve --users/--tokens/--public``, conftest's ``served``) asked over HTTP and, for the login and for OIDC
(``oidc-provider-mock``, a real provider in a thread), with Debian's chromium.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
from conftest import served

from app.cli import main
from app.core import auth
from app.paths import REPO

TINY = REPO / "catalogs" / "tiny.yaml"
PASSWORD = "correct horse battery"
FAST = {"n": 2 ** 10, "r": 8, "p": 1}  # unit tests: the format, not the cost


# --------------------------------------------------------------------------------------------- app.core.auth


def test_a_password_hash_verifies_the_password_only():
    stored = auth.hash_password(PASSWORD, **FAST)
    assert stored.startswith("scrypt$1024$8$1$") and PASSWORD not in stored
    assert auth.verify_password(PASSWORD, stored)
    assert not auth.verify_password(PASSWORD + " ", stored)
    assert not auth.verify_password("", stored)
    # a random salt each time: the same password never gives the same line
    assert auth.hash_password(PASSWORD, **FAST) != stored
    # an unknown user (no hash) is refused, after the same work as a wrong password
    assert not auth.verify_password(PASSWORD, None)
    tampered = stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB")
    assert not auth.verify_password(PASSWORD, tampered)
    assert not auth.verify_password(PASSWORD, "plain-text")
    # the default cost is OWASP's for scrypt
    assert auth.hash_password("x" * 12).startswith("scrypt$32768$8$3$")


def test_passwords_and_tokens_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    stored = auth.hash_password(PASSWORD, **FAST)
    assert auth.verify_password(PASSWORD, stored) and len(calls) == 1
    token = auth.new_token()
    tokens = {n: auth.TokenEntry(n, auth.token_digest(t), "2026-01-01T00:00:00Z")
              for n, t in [("a", auth.new_token()), ("b", token), ("c", auth.new_token())]}
    calls.clear()
    assert auth.match_token(token, tokens) == "b"
    assert len(calls) == 3  # every entry compared, the match found or not
    calls.clear()
    assert auth.match_token(auth.new_token(), tokens) is None and len(calls) == 3
    assert auth.match_token("not-a-token", tokens) is None


@pytest.mark.parametrize(("text", "says"), [
    ("ops:s3cret-in-clear\n", "line 1 (user 'ops'): the password is not a scrypt hash"),
    ("# comment\n\nops\n", "line 3: expected NAME:HASH"),
    ("bad name:scrypt$1024$8$1$AA$AA\n", "line 1: user name 'bad name' is not valid"),
    ("ops:scrypt$1024$8$1$AA$AA\nops:scrypt$1024$8$1$AA$AA\n", "line 2: user 'ops' is given twice"),
    ('{"ops": "s3cret"}', "holds plain-text passwords (the JSON of the old --basic-auth): convert it with "
                          "`fumarole users import users.txt --file NEW_FILE`"),
])
def test_users_file_errors_name_the_file_and_the_line(text, says):
    with pytest.raises(auth.AuthFileError) as exc:
        auth.parse_users(text, "users.txt")
    assert says in str(exc.value) and str(exc.value).startswith("users.txt")


def test_tokens_file_errors_name_the_line():
    good = f"ci:sha256:{'a' * 64}:2026-01-01T00:00:00Z\n"
    assert auth.parse_tokens(good)["ci"].created == "2026-01-01T00:00:00Z"
    for text, says in [("ci:fmr_abc\n", "tokens line 1: expected NAME:sha256:HEX:CREATED"),
                       (good + good, "tokens line 2: token 'ci' is given twice"),
                       (f"ci:sha256:{'A' * 64}:x\n", "line 1: expected")]:
        with pytest.raises(auth.AuthFileError, match=says):
            auth.parse_tokens(text, "tokens")


def test_files_are_written_atomically_mode_0600(tmp_path):
    path = tmp_path / "users"
    path.write_text("old")
    os.chmod(path, 0o644)
    auth.write_private(path, "new\n")
    assert path.read_text() == "new\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["users"]  # no temporary file left


def test_a_watched_file_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "tokens"
    auth.write_private(path, "")
    watched = auth.WatchedFile(path, auth.parse_tokens, "tokens file")
    assert watched.get() == {}
    token = auth.create_token(path, "ci")
    assert auth.match_token(token, watched.get()) == "ci"
    auth.revoke_token(path, "ci")
    assert auth.match_token(token, watched.get()) is None
    path.write_text("garbage\n")
    with pytest.raises(auth.AuthFileError, match="line 1"):
        watched.get()  # a damaged file refuses every token rather than keeping the last good copy
    path.unlink()
    with pytest.raises(auth.AuthFileError, match="cannot be read"):
        watched.get()


def test_backoff_doubles_after_three_failures_and_forgets_in_bounded_memory():
    now = [1000.0]
    backoff = auth.Backoff(free=3, max_wait_s=8, max_clients=50, forget_s=600, clock=lambda: now[0])
    for _ in range(3):
        assert backoff.wait_s("10.0.0.1") == 0
        backoff.failed("10.0.0.1")
    assert backoff.wait_s("10.0.0.1") == 1.0
    waits = []
    for _ in range(5):
        backoff.failed("10.0.0.1")
        waits.append(backoff.wait_s("10.0.0.1"))
    assert waits == [2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff.wait_s("10.0.0.2") == 0  # another address is not slowed down
    now[0] += 8.0
    assert backoff.wait_s("10.0.0.1") == 0
    backoff.succeeded("10.0.0.1")
    assert len(backoff) == 0
    for i in range(500):
        backoff.failed(f"10.1.{i // 256}.{i % 256}")
    assert len(backoff) == 50
    for _ in range(5):
        backoff.failed("10.0.0.3")
    assert backoff.wait_s("10.0.0.3") == 4.0 and len(backoff) == 50
    now[0] += 601
    assert backoff.wait_s("10.0.0.3") == 0 and len(backoff) == 49  # forgotten after a quiet spell


# --------------------------------------------------------------------------------------------- commands


def _run(capsys, monkeypatch, argv, stdin=""):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_users_commands_store_hashes_only(tmp_path, capsys, monkeypatch):
    users = tmp_path / "users"
    rc, _, err = _run(capsys, monkeypatch, ["users", "add", "ops", "--file", str(users)], PASSWORD + "\n")
    assert rc == 0 and f"added user 'ops' in {users}" in err
    rc, _, err = _run(capsys, monkeypatch, ["users", "add", "ana", "--file", str(users)], "short\n")
    assert rc == 2 and "the password has 5 characters: give at least 12" in err
    rc, _, err = _run(capsys, monkeypatch, ["users", "add", "ana", "--file", str(users)], "another long secret\n")
    assert rc == 0
    rc, _, err = _run(capsys, monkeypatch, ["users", "add", "ops", "--file", str(users)], "a new long password\n")
    assert rc == 0 and "changed the password of 'ops'" in err
    rc, out, _ = _run(capsys, monkeypatch, ["users", "list", "--file", str(users)])
    assert rc == 0 and out.split() == ["ana", "ops"]
    data = users.read_bytes()
    assert b"correct horse" not in data and b"another long secret" not in data and b"a new long password" not in data
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    stored = auth.read_users(users)
    assert auth.verify_password("a new long password", stored["ops"])
    assert not auth.verify_password(PASSWORD, stored["ops"])
    rc, _, err = _run(capsys, monkeypatch, ["users", "remove", "ana", "--file", str(users)])
    assert rc == 0 and "removed user 'ana'" in err and list(auth.read_users(users)) == ["ops"]
    rc, _, err = _run(capsys, monkeypatch, ["users", "remove", "ana", "--file", str(users)])
    assert rc == 2 and f"{users} has no user 'ana'" in err and err.count("\n") == 1
    rc, _, err = _run(capsys, monkeypatch, ["users", "add", "--file", str(users)])
    assert rc == 2 and "`fumarole users add` needs NAME" in err
    rc, _, err = _run(capsys, monkeypatch, ["users", "add", "no way", "--file", str(users)], PASSWORD + "\n")
    assert rc == 2 and "user name 'no way' must be 1-64 letters" in err


def test_an_old_plain_text_file_is_refused_and_can_be_imported(tmp_path, capsys, monkeypatch):
    old = tmp_path / "users.json"
    old.write_text(json.dumps({"ops": "s3cret", "ana": "hunter2hunter2"}))
    rc, _, err = _run(capsys, monkeypatch, ["users", "add", "x", "--file", str(old)], PASSWORD + "\n")
    assert rc == 2 and "holds plain-text passwords" in err and f"fumarole users import {old}" in err
    new = tmp_path / "users"
    rc, _, err = _run(capsys, monkeypatch, ["users", "import", str(old), "--file", str(new)])
    assert rc == 0 and "hashed the passwords of 2 users (ana, ops)" in err and f"delete {old}" in err
    assert b"s3cret" not in new.read_bytes() and b"hunter2" not in new.read_bytes()
    assert auth.verify_password("s3cret", auth.read_users(new)["ops"])


def test_tokens_commands_print_the_token_once_and_store_its_hash(tmp_path, capsys, monkeypatch):
    tokens = tmp_path / "tokens"
    rc, out, err = _run(capsys, monkeypatch, ["tokens", "create", "ci", "--file", str(tokens)])
    token = out.strip()
    assert rc == 0 and token.startswith("fmr_") and len(token) == 4 + 43 and "shown this once" in err
    data = tokens.read_bytes()
    assert token.encode() not in data and token[4:].encode() not in data
    assert auth.token_digest(token).encode() in data
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    rc, _, err = _run(capsys, monkeypatch, ["tokens", "create", "ci", "--file", str(tokens)])
    assert rc == 2 and "already has a token 'ci'" in err
    rc, out, _ = _run(capsys, monkeypatch, ["tokens", "create", "grafana", "--file", str(tokens)])
    assert out.strip() != token
    rc, out, _ = _run(capsys, monkeypatch, ["tokens", "list", "--file", str(tokens)])
    assert [line.split("\t")[0] for line in out.splitlines()] == ["ci", "grafana"] and "created 20" in out
    assert "fmr_" not in out
    rc, _, err = _run(capsys, monkeypatch, ["tokens", "revoke", "ci", "--file", str(tokens)])
    assert rc == 0 and "revoked token 'ci'" in err and list(auth.read_tokens(tokens)) == ["grafana"]
    rc, _, err = _run(capsys, monkeypatch, ["tokens", "revoke", "ci", "--file", str(tokens)])
    assert rc == 2 and "has no token 'ci'" in err
    rc, _, err = _run(capsys, monkeypatch, ["tokens", "list", "--file", str(tmp_path / "no" / "tokens")])
    assert rc == 2 and "the folder" in err and "does not exist" in err


# --------------------------------------------------------------------------------------------- a real server


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def _get(url: str, data: bytes | None = None, headers: dict | None = None):
    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    folder = tmp_path_factory.mktemp("auth")
    users, tokens = folder / "users", folder / "tokens"
    auth.add_user(users, "ops", PASSWORD)
    token = auth.create_token(tokens, "ci")
    other = auth.create_token(tokens, "grafana")
    return {"users": users, "tokens": tokens, "token": token, "other": other}


@pytest.fixture(scope="module")
def guarded(tiny_archive_path, credentials):
    """`fumarole serve` with a login, API tokens and one public API route."""
    with served(TINY, ready="/liveness", args=("--no-warm", "--users", str(credentials["users"]),
                                               "--tokens", str(credentials["tokens"]),
                                               "--public", "/api/geo/slots,/guide")) as url:
        yield url


def _form_token(base: str) -> tuple[str, str]:
    """The login form's ``_xsrf`` value and its cookie, as a browser gets them by opening the form."""
    _, headers, body = _get(base + "/login")
    value = re.search(r'name="_xsrf" value="([^"]+)"', body.decode()).group(1)
    cookie = next(c.split(";")[0] for c in headers.get_all("Set-Cookie") if c.startswith("_xsrf="))
    return value, cookie


def _login(base: str, password: str = PASSWORD, next_url: str = "/volcplume", form_token: bool = True):
    body = f"username=ops&password={urllib.request.quote(password)}&next={urllib.request.quote(next_url)}"
    headers = {}
    if form_token:
        value, cookie = _form_token(base)
        body += f"&_xsrf={urllib.request.quote(value)}"
        headers["Cookie"] = cookie
    return _get(base + "/login", data=body.encode(), headers=headers)


def _cookie(headers) -> str:
    return next(c.split(";")[0] for c in headers.get_all("Set-Cookie") if c.startswith("user="))


IMAGE = "/api/geo/image.png?satellite=G16&time=2021-04-12T15:00&bbox=-70,5,-50,20&width=200"


def test_pages_redirect_to_the_login_page_without_showing_a_dashboard(guarded):
    for path in ("/", "/volcplume", "/georing", "/archive", "/volcplume/autoload.js?bokeh-autoload-element=x"):
        status, headers, body = _get(guarded + path)
        assert status == 302, path
        assert headers["Location"].lstrip(".").startswith("/login?next=" + urllib.request.quote(path, safe=""))
        assert b"bokeh" not in body.lower() and b"VolcPlume" not in body
    status, _, body = _get(guarded + "/login?next=/georing")
    page = body.decode()
    assert status == 200 and 'type="password"' in page and 'name="next" value="/georing"' in page
    assert 'autocomplete="current-password"' in page and "<label for=\"username\">" in page
    # the next address stays on this server
    status, _, body = _get(guarded + "/login?next=//evil.example/x")
    assert 'name="next" value="/"' in body.decode()


def test_a_sign_in_posted_without_the_form_s_token_is_refused(guarded):
    status, headers, body = _login(guarded, form_token=False)  # the right password, from another site's form
    assert status == 403 and "did not come from this server" in body.decode()
    assert not any(c.startswith("user=") for c in headers.get_all("Set-Cookie") or [])
    value, _cookie_ = _form_token(guarded)
    status, headers, _ = _get(guarded + "/login", data=f"username=ops&password={PASSWORD}&_xsrf={value}".encode())
    assert status == 403  # the token without its cookie is not enough either


def test_wrong_password_is_refused_and_the_right_one_opens_the_dashboard(guarded):
    status, headers, body = _login(guarded, "wrong password!")
    assert status == 200 and '<p class="error" role="alert">Wrong user name or password.</p>' in body.decode()
    assert not any(c.startswith("user=") for c in headers.get_all("Set-Cookie") or [])
    status, headers, _ = _login(guarded)
    assert status == 302 and headers["Location"] == "/volcplume"
    cookie = _cookie(headers)
    assert "HttpOnly" in next(c for c in headers.get_all("Set-Cookie") if c.startswith("user="))
    status, _, body = _get(guarded + "/volcplume", headers={"Cookie": cookie})
    assert status == 200 and b"<html" in body.lower() and b"bokeh" in body.lower()
    # a forged cookie is nobody
    status, _, _ = _get(guarded + "/volcplume", headers={"Cookie": "user=ops"})
    assert status == 302
    # signed out: the cookie is cleared
    status, headers, body = _get(guarded + "/logout", headers={"Cookie": cookie})
    assert status == 200 and b"Signed out" in body
    assert any(c.startswith("user=;") or c.startswith('user="";') for c in headers.get_all("Set-Cookie"))


def test_kiosk_and_public_routes_are_open_without_login(guarded):
    status, _, body = _get(guarded + "/kiosk")
    assert status == 200 and b"bokeh" in body.lower()
    status, _, body = _get(guarded + "/guide")
    assert status == 200 and b"bokeh" in body.lower()
    status, _, body = _get(guarded + "/liveness")
    assert status == 200 and json.loads(body) == {"/liveness": True}
    status, _, body = _get(guarded + "/static/js/bokeh.min.js")  # Bokeh's own static files
    assert status == 200 and len(body) > 100_000
    # a public prefix does not open what a dot-dot path names
    for path in ("/kiosk/../volcplume", "/guide/../api/geo/value?satellite=G16&lat=13&lon=-61",
                 "/kiosk%2F..%2Farchive"):
        status, _, body = _get(guarded + path)
        assert status in (302, 401, 404) and b"VolcPlume" not in body and b"channels" not in body, path
    status, _, body = _get(guarded + "/api/geo/slots?satellite=G16&date=2021-04-12")
    assert status == 200 and [s["time"] for s in json.loads(body)][:2] == ["2021-04-12T12:00:00Z",
                                                                             "2021-04-12T15:00:00Z"]


def _png_pixels(body: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"))


def test_api_needs_a_token_or_the_login_and_a_revoked_token_is_refused_at_once(guarded, credentials):
    status, headers, body = _get(guarded + IMAGE)
    assert status == 401 and headers["Content-Type"].startswith("application/json")
    assert headers["WWW-Authenticate"] == 'Bearer realm="fumarole"'
    assert "requires a login" in json.loads(body)["error"]
    status, headers, body = _get(guarded + IMAGE, headers={"Authorization": "Basic b3BzOng="})
    assert status == 401 and "must be 'Bearer <token>'" in json.loads(body)["error"]
    assert 'error="invalid_request"' in headers["WWW-Authenticate"]
    bearer = {"Authorization": f"Bearer {credentials['token']}"}
    status, headers, body = _get(guarded + IMAGE, headers=bearer)
    assert status == 200 and headers["Content-Type"] == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = _png_pixels(body)
    assert pixels.shape[1] == 200 and (pixels[..., 3] > 0).mean() > 0.5 and len(np.unique(pixels[..., 0])) > 20
    # the pages' login cookie opens the API too
    _, headers, _ = _login(guarded)
    status, _, body = _get(guarded + IMAGE, headers={"Cookie": _cookie(headers)})
    assert status == 200 and body[:4] == b"\x89PNG"
    # revoked with the command, refused on the next request, without a restart; the other token still works
    assert main(["tokens", "revoke", "ci", "--file", str(credentials["tokens"])]) == 0
    status, headers, body = _get(guarded + IMAGE, headers=bearer)
    assert status == 401 and json.loads(body)["error"] == "the bearer token is not valid: it is unknown or was revoked"
    assert headers["WWW-Authenticate"] == 'Bearer realm="fumarole", error="invalid_token"'
    status, _, body = _get(guarded + IMAGE, headers={"Authorization": f"Bearer {credentials['other']}"})
    assert status == 200 and body[:4] == b"\x89PNG"


def test_a_removed_user_is_signed_out_on_the_next_request(guarded, credentials):
    _, headers, _ = _login(guarded)
    cookie = _cookie(headers)
    assert _get(guarded + "/archive", headers={"Cookie": cookie})[0] == 200
    auth.remove_user(credentials["users"], "ops")
    try:
        status, _, body = _get(guarded + "/api/geo/value?satellite=G16&time=2021-04-12T15:00&lat=13&lon=-61",
                               headers={"Cookie": cookie})
        assert status == 401 and "the login of 'ops' is no longer valid" in json.loads(body)["error"]
        assert _get(guarded + "/archive", headers={"Cookie": cookie})[0] == 302
    finally:
        auth.add_user(credentials["users"], "ops", PASSWORD)


def test_repeated_failures_from_one_address_are_slowed_down(guarded):
    statuses = [_login(guarded, f"wrong password {i}")[0] for i in range(6)]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]  # three free tries, then the waits
    status, headers, body = _login(guarded)  # even the right password waits its turn
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins from your address: try again in" in body.decode()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the wait is a few seconds: the right password then signs in
        status, _, _ = _login(guarded)
        if status != 429:
            break
        time.sleep(0.5)  # polling a condition with a deadline, not a fixed wait
    assert status == 302


def test_num_procs_2_refuses_a_revoked_token_in_every_process(tiny_archive_path, tmp_path):
    users, tokens = tmp_path / "users", tmp_path / "tokens"
    auth.add_user(users, "ops", PASSWORD)
    token = auth.create_token(tokens, "ci")
    slots = "/api/geo/slots?satellite=G16&date=2021-04-12"
    with served(TINY, ready="/liveness", args=("--no-warm", "--num-procs", "2", "--users", str(users),
                                               "--tokens", str(tokens))) as base:
        bearer = {"Authorization": f"Bearer {token}"}
        assert {_get(base + slots, headers=bearer)[0] for _ in range(8)} == {200}
        _, headers, _ = _login(base)
        cookie = _cookie(headers)  # made by one process, taken by both (the same cookie secret)
        assert {_get(base + slots, headers={"Cookie": cookie})[0] for _ in range(8)} == {200}
        auth.revoke_token(tokens, "ci")
        assert {_get(base + slots, headers=bearer)[0] for _ in range(8)} == {401}


# --------------------------------------------------------------------------------------------- browsers


@pytest.mark.browser
def test_a_visitor_signs_in_in_a_browser_and_gets_the_dashboard(guarded, page, shots):
    page.goto(guarded + "/georing")
    page.get_by_label("User name").wait_for()
    assert "/login" in page.url and page.get_by_text("Latest image of each satellite").count() == 0
    page.screenshot(path=str(shots / "auth-login.png"))
    page.get_by_label("User name").fill("ops")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").wait_for()
    assert page.get_by_role("alert").inner_text() == "Wrong user name or password."
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Latest image of each satellite").wait_for(timeout=90_000)
    assert urllib.parse.urlsplit(page.url).path == "/georing"
    assert page.get_by_role("button", name="Open GOES-East").count() == 1
    page.screenshot(path=str(shots / "auth-signed-in-georing.png"))
    page.goto(guarded + "/logout")
    page.get_by_text("You are signed out of Fumarole.").wait_for()
    page.goto(guarded + "/volcplume")
    page.get_by_label("User name").wait_for()
    assert "/login?next=%2Fvolcplume" in page.url


@pytest.mark.browser
def test_the_kiosk_plays_without_a_login(guarded, page, shots):
    page.goto(guarded + "/kiosk")
    page.wait_for_selector(".kiosk.has-frame", timeout=120_000)
    assert urllib.parse.urlsplit(page.url).path == "/kiosk"  # not sent to /login
    img = page.locator(".kiosk-frame").element_handle()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img)
    assert page.locator(".kiosk-title").text_content().strip() != ""
    page.screenshot(path=str(shots / "auth-kiosk-open.png"))


@pytest.mark.browser
def test_oidc_sign_in_goes_to_the_provider_and_back_and_keeps_the_kiosk_open(tiny_archive_path, page, shots):
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread() as provider:
        issuer = f"http://localhost:{provider.server_port}"
        with served(TINY, ready="/liveness", env={"FUMAROLE_OIDC_CLIENT_SECRET": "s3cret-of-the-client"},
                    args=("--no-warm", "--oidc-issuer", issuer, "--oidc-client-id", "fumarole-test")) as base:
            assert _get(base + "/kiosk")[0] == 200
            status, headers, _ = _get(base + "/georing")
            assert status == 302 and "login" in headers["Location"]
            # the mock provider's page loads a style sheet from a CDN and has no favicon: the machine is offline,
            # and those are the provider's, not ours (the page fixture fails on any console error)
            page.route(lambda url: not url.startswith((base, issuer)) or url == issuer + "/favicon.ico",
                       lambda route: route.fulfill(status=200, body=""))
            page.goto(base + "/georing")
            page.get_by_placeholder("sub").wait_for()
            assert page.url.startswith(issuer + "/oauth2/authorize") and "client_id=fumarole-test" in page.url
            page.screenshot(path=str(shots / "auth-oidc-provider.png"))
            page.get_by_placeholder("sub").fill("alice@example.org")
            page.get_by_role("button", name="Authorize").click()
            page.get_by_text("Latest image of each satellite").wait_for(timeout=90_000)
            assert page.url.split("?")[0] == base + "/georing"
            page.screenshot(path=str(shots / "auth-oidc-signed-in.png"))
            cookies = {c["name"]: c for c in page.context.cookies(base)}
            assert cookies["user"]["httpOnly"]
            # the provider's sign-in opens the API to the page too
            slots = page.evaluate("fetch('/api/geo/slots?satellite=G16&date=2021-04-12').then(r => r.json())")
            assert slots[0]["time"] == "2021-04-12T12:00:00Z"
