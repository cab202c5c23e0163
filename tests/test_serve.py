"""`fumarole serve` exposes what the operator chooses: loopback by default, own websocket origins, signed sessions,
an optional login; its flags are checked (one line, exit 2) before any server starts."""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from conftest import _free_port, wait_for_http
from hypothesis import given, settings
from hypothesis import strategies as st

from app.cli import build_parser, main, serve_plan
from app.data.errors import UserInputError
from app.paths import REPO

SECRET = base64.urlsafe_b64encode(b"k" * 32).decode().rstrip("=")


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def _flag_values(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, c in enumerate(cmd) if c == flag]


# --- the plan: flags -> panel serve command and environment, no server ------------------------------------------


def test_default_plan_binds_loopback_with_its_own_origins_and_signed_sessions(tmp_path, monkeypatch):
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("FUMAROLE_SECRET", raising=False)
    cmd, env = serve_plan(_args("--port", "5123"), environ={"FUMAROLE_STATE_DIR": str(tmp_path)})
    assert _flag_values(cmd, "--address") == ["127.0.0.1"]
    assert _flag_values(cmd, "--port") == ["5123"]
    assert _flag_values(cmd, "--allow-websocket-origin") == ["127.0.0.1:5123", "localhost:5123"]
    assert "*" not in " ".join(_flag_values(cmd, "--allow-websocket-origin"))
    assert _flag_values(cmd, "--session-ids") == ["signed"]
    assert env["BOKEH_SIGN_SESSIONS"] == "true"
    # the keys are this installation's, kept in the state folder, and never on the command line
    key = base64.urlsafe_b64decode(env["BOKEH_SECRET_KEY"] + "=")
    assert key == (tmp_path / "bokeh.key").read_bytes()
    assert len(key) == 32 and env["PANEL_COOKIE_SECRET"] != env["BOKEH_SECRET_KEY"]
    assert env["BOKEH_SECRET_KEY"] not in " ".join(cmd) and env["PANEL_COOKIE_SECRET"] not in " ".join(cmd)
    assert "--basic-auth" not in cmd and "--auth-module" not in cmd and "FUMAROLE_ADMIN" not in env


def test_operator_settings_win_over_the_defaults(tmp_path):
    environ = {"FUMAROLE_STATE_DIR": str(tmp_path), "BOKEH_SECRET_KEY": SECRET, "PANEL_COOKIE_SECRET": "c" * 40,
               "FUMAROLE_ALLOW_ORIGIN": "dash.example.org, dash.example.org:443",
               "FUMAROLE_CLUSTERS": "big=tcp://10.1.2.3:8786"}
    cmd, env = serve_plan(_args("--address", "0.0.0.0", "--cluster", "gpu=tls://dask.example.org:8786", "--admin",
                                "--num-procs", "3"), environ=environ)
    assert _flag_values(cmd, "--address") == ["0.0.0.0"]
    assert _flag_values(cmd, "--allow-websocket-origin") == ["dash.example.org", "dash.example.org:443"]
    assert env["BOKEH_SECRET_KEY"] == SECRET and env["PANEL_COOKIE_SECRET"] == "c" * 40
    assert env["FUMAROLE_CLUSTERS"] == "big=tcp://10.1.2.3:8786,gpu=tls://dask.example.org:8786"
    assert env["FUMAROLE_ADMIN"] == "1"
    assert _flag_values(cmd, "--num-procs") == ["3"]
    # flags replace the environment's origins
    cmd, _ = serve_plan(_args("--allow-origin", "ops.local:8080"), environ=environ)
    assert _flag_values(cmd, "--allow-websocket-origin") == ["ops.local:8080"]


def test_several_processes_share_the_default_memory_budget(tmp_path, monkeypatch):
    from app.core.cache import memory_budget

    monkeypatch.delenv("FUMAROLE_MEMORY_BUDGET_MB", raising=False)
    environ = {"FUMAROLE_STATE_DIR": str(tmp_path)}
    _, env = serve_plan(_args("--num-procs", "4"), environ=environ)
    assert int(env["FUMAROLE_MEMORY_BUDGET_MB"]) == max(64, memory_budget() // 4 // (1 << 20))
    _, env = serve_plan(_args(), environ=environ)
    assert "FUMAROLE_MEMORY_BUDGET_MB" not in env
    # the operator's value is each process's, as given
    _, env = serve_plan(_args("--num-procs", "4"), environ={**environ, "FUMAROLE_MEMORY_BUDGET_MB": "900"})
    assert env["FUMAROLE_MEMORY_BUDGET_MB"] == "900"
    with pytest.raises(UserInputError, match="FUMAROLE_MEMORY_BUDGET_MB='lots' is not a positive number"):
        serve_plan(_args(), environ={**environ, "FUMAROLE_MEMORY_BUDGET_MB": "lots"})


def _users_file(path, name="ops", password="correct horse battery"):
    from app.core import auth

    auth.add_user(path, name, password)
    return path


def test_users_file_is_checked_and_given_to_the_auth_module(tmp_path, monkeypatch):
    from app.paths import PACKAGE

    users = _users_file(tmp_path / "users")
    monkeypatch.chdir(tmp_path)
    environ = {"FUMAROLE_STATE_DIR": str(tmp_path), "FUMAROLE_AUTH_PUBLIC": "/volcplume"}
    for flag in ("--users", "--basic-auth"):  # --basic-auth: the old name of the same flag
        cmd, env = serve_plan(_args(flag, "users"), environ=environ)
        assert _flag_values(cmd, "--auth-module") == [str(PACKAGE / "serve_auth.py")]
        assert env["FUMAROLE_AUTH_USERS_FILE"] == str(users)
        assert "FUMAROLE_AUTH_PUBLIC" not in env  # only this command's flags decide what is open
        assert "--basic-auth" not in cmd  # Panel's plain-text check is not used
    cmd, env = serve_plan(_args("--users", "users", "--public", "/guide,/api/v1/volcanoes", "--public",
                                "/api/geo/slots/"), environ=environ)
    assert env["FUMAROLE_AUTH_PUBLIC"] == "/guide,/api/v1/volcanoes,/api/geo/slots"
    # Panel takes a --basic-auth value that is not a file as the password itself: a typo must not become one
    for content, says in [(None, "no such file (make it with `fumarole users add NAME --file"),
                          ('{"ops": "s3cret"}', "holds plain-text passwords (the JSON of the old --basic-auth): "
                                                "convert it with `fumarole users import"),
                          ("# nobody\n", "holds no user"),
                          ("ops:s3cret\n", "line 1 (user 'ops'): the password is not a scrypt hash")]:
        bad = tmp_path / "bad"
        bad.unlink(missing_ok=True)
        if content is not None:
            bad.write_text(content)
        with pytest.raises(UserInputError, match=re.escape(says)):
            serve_plan(_args("--basic-auth", str(bad)), environ=environ)


def test_the_start_lines_say_where_it_listens_and_who_may_come_in(tmp_path):
    from app.cli import serve_banner

    environ = {"FUMAROLE_STATE_DIR": str(tmp_path)}
    args = _args("--port", "5123")
    lines = serve_banner(args, *serve_plan(args, environ=environ))
    assert lines[0].startswith("serving 5 dashboards at http://localhost:5123 (listening on 127.0.0.1: this "
                               "machine only;")
    assert lines[1] == "access: no login required: whoever reaches the server may use every page and the API"
    assert len(lines) == 2
    args = _args("--address", "0.0.0.0")
    lines = serve_banner(args, *serve_plan(args, environ=environ))
    assert "(listening on 0.0.0.0: every interface;" in lines[0]
    assert lines[2].startswith("WARNING: listening on 0.0.0.0 with no access control: anyone who reaches port "
                               "5006 of this machine may use every page and the API.")
    users = _users_file(tmp_path / "users")
    args = _args("--address", "0.0.0.0", "--users", str(users), "--public", "/guide")
    lines = serve_banner(args, *serve_plan(args, environ=environ))
    assert len(lines) == 2 and lines[1] == (
        f"access: login required for the pages and the API (a password of {users}); open without login: "
        "/kiosk, /liveness, /favicon.ico, /guide")


@pytest.mark.parametrize(("argv", "says"), [
    (["--port", "70000"], "--port 70000 is not a port number"),
    (["--port", "0"], "--port 0 is not a port number"),
    (["--address", "junk junk"], "--address 'junk junk' is not an IP address or a host name"),
    (["--address", "*"], "--address '*'"),
    (["--allow-origin", "http://evil.example"], "without a scheme"),
    (["--allow-origin", "host:99999"], "port"),
    (["--allow-origin", "*"], "--allow-origin origin '*' would let any web page drive this server"),
    (["--cluster", "big"], "'big' is not NAME=ADDRESS"),
    (["--cluster", "big=http://x:1"], "Dask scheduler address"),
    (["--catalog", "/nope/none.yaml"], "--catalog /nope/none.yaml: no catalogue file"),
    (["--num-procs", "-1"], "--num-procs -1"),
    (["--port", "abc"], "argument --port: invalid int value"),
    (["--public", "/guide"], "--public names routes open without a login, but no login is required"),
    (["--users", "/nope/users"], "--users /nope/users: no such file"),
    (["--tokens", "/nope/tokens"], "--tokens /nope/tokens: no such file"),
    (["--oidc-issuer", "https://id.example.org"], "give both --oidc-issuer URL and --oidc-client-id ID"),
    (["--oidc-issuer", "http://id.example.org", "--oidc-client-id", "x"], "must be an https:// URL"),
    (["--oidc-issuer", "https://id.example.org", "--oidc-client-id", "x"], "FUMAROLE_OIDC_CLIENT_SECRET"),
    (["--oidc-client-secret", "s3cret"], "is not taken on the command line"),
])
def test_bad_serve_flags_are_one_line_and_exit_2(argv, says, capsys, monkeypatch):
    monkeypatch.setattr(os, "execve", lambda *a: pytest.fail("the server must not start"))
    try:
        rc = main(["serve", *argv])
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["--port", "--address", "--allow-origin", "--cluster", "--num-procs", "--admin",
                                 "--no-warm", "70000", "0", "5006", "-1", "::1", "[::1]", "0.0.0.0", "a b", "*",
                                 "x=tcp://h:1", "=", "h:", ":1", "é.example", "localhost:5006", ""])
                | st.text(max_size=12), max_size=6))
def test_any_serve_arguments_are_validated_without_a_traceback(argv):
    parser = build_parser()
    try:
        args = parser.parse_args(["serve", *argv])
    except SystemExit as exc:
        assert exc.code in (0, 2)
        return
    try:
        cmd, _ = serve_plan(args, environ={"FUMAROLE_STATE_DIR": os.environ["FUMAROLE_STATE_DIR"]})
    except UserInputError as exc:
        assert "\n" not in str(exc)
        return
    assert "*" not in _flag_values(cmd, "--allow-websocket-origin")
    assert _flag_values(cmd, "--session-ids") == ["signed"]


# --- a real server ----------------------------------------------------------------------------------------------


def _start(tiny_archive_path, tmp_path_factory, *flags):
    port = _free_port()
    env = dict(os.environ, FUMAROLE_CATALOG=str(REPO / "catalogs" / "tiny.yaml"), BOKEH_LOG_LEVEL="warn",
               BOKEH_SECRET_KEY=SECRET)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--no-warm", *flags],
        cwd=tmp_path_factory.mktemp("cwd"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/liveness", proc)
    except BaseException:
        proc.kill()
        raise
    return proc, port


def _stop(proc):
    proc.terminate()
    try:  # a server busy running a page's script handles SIGTERM only when the script ends: do not wait for that
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def default_server(tiny_archive_path, tmp_path_factory):
    """`fumarole serve` with no address, origin or auth flag: the defaults."""
    proc, port = _start(tiny_archive_path, tmp_path_factory)
    yield port
    _stop(proc)


def _non_loopback_ipv4() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.254", 9))
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


def _connects(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=3):
            return True
    except OSError:
        return False


def test_default_server_listens_on_loopback_only(default_server):
    port = default_server
    assert _connects("127.0.0.1", port)
    ip = _non_loopback_ipv4()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    # control: a socket bound to every interface is reachable on that address, so a refusal means "not bound"
    with socket.socket() as control:
        control.bind(("0.0.0.0", 0))
        control.listen(1)
        assert _connects(ip, control.getsockname()[1])
    assert not _connects(ip, port), f"the default server answers on {ip}:{port}"


def _upgrade(port: int, origin: str, app: str = "volcplume") -> str:
    """The status line of a websocket upgrade of /<app>/ws from a page of ``origin``, with a signed token."""
    from bokeh.util.token import generate_jwt_token, generate_session_id

    sid = generate_session_id(secret_key=SECRET.encode(), signed=True)
    token = generate_jwt_token(sid, secret_key=SECRET.encode(), signed=True)
    request = (
        f"GET /{app}/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: bokeh, {token}\r\nOrigin: {origin}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request.encode())
        return s.makefile("rb").readline().decode().strip()


def test_websocket_from_a_foreign_page_is_refused_and_from_the_served_origin_accepted(default_server):
    port = default_server
    assert _upgrade(port, "http://evil.example") == "HTTP/1.1 403 Forbidden"
    assert _upgrade(port, f"http://intranet-host:{port}") == "HTTP/1.1 403 Forbidden"
    assert _upgrade(port, "http://evil.example", app="guide") == "HTTP/1.1 403 Forbidden"
    # each accepted websocket opens a session, which runs the page's script on the server's loop: the light page
    # first, VolcPlume (seconds) last
    assert _upgrade(port, f"http://127.0.0.1:{port}", app="guide") == "HTTP/1.1 101 Switching Protocols"
    assert _upgrade(port, f"http://localhost:{port}") == "HTTP/1.1 101 Switching Protocols"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def _get(url: str, data: bytes | None = None, cookie: str | None = None):
    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(url, data=data, headers={"Cookie": cookie} if cookie else {})
    try:
        with opener.open(req, timeout=60) as r:
            return r.status, r.headers, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode("utf-8", "replace")


def test_basic_auth_asks_for_a_login_before_any_dashboard(tiny_archive_path, tmp_path_factory):
    users = _users_file(tmp_path_factory.mktemp("auth") / "users", password="s3cret-s3cret")
    proc, port = _start(tiny_archive_path, tmp_path_factory, "--basic-auth", str(users))
    base = f"http://127.0.0.1:{port}"
    try:
        for path in ("/", "/volcplume", "/archive"):
            status, headers, _ = _get(base + path)
            assert status == 302 and headers["Location"].startswith("./login?next="), (path, status)
        status, headers, body = _get(base + "/login")
        assert status == 200 and 'type="password"' in body
        # the form's token (login CSRF): posted back with its cookie, as the browser does
        token = re.search(r'name="_xsrf" value="([^"]+)"', body).group(1)
        form_cookie = next(c.split(";")[0] for c in headers.get_all("Set-Cookie") if c.startswith("_xsrf="))
        form = f"_xsrf={urllib.parse.quote(token)}&username=ops&password="
        status, headers, body = _get(base + "/login", data=(form + "wrong").encode(), cookie=form_cookie)
        assert status == 200 and "Wrong user name or password." in body
        assert not any(c.startswith("user=") for c in headers.get_all("Set-Cookie") or [])
        status, headers, _ = _get(base + "/login", data=(form + "s3cret-s3cret").encode(), cookie=form_cookie)
        assert status == 302 and headers["Location"] == "/"
        cookie = next(c.split(";")[0] for c in headers.get_all("Set-Cookie") if c.startswith("user="))
        status, _, body = _get(base + "/guide", cookie=cookie)
        assert status == 200 and "<html" in body.lower()
        # the API asks for the same login: no answer, not even an error about the parameters, without it
        slots = "/api/geo/slots?satellite=G16&date=2021-04-12"
        status, headers, body = _get(base + slots)
        assert status == 401 and "requires a login" in json.loads(body)["error"]
        assert headers["WWW-Authenticate"].startswith("Bearer")
        status, _, body = _get(base + slots, cookie="user=forged")
        assert status == 401
        status, _, body = _get(base + slots, cookie=cookie)
        assert status == 200 and json.loads(body)[0]["time"].startswith("2021-04-12T")
    finally:
        _stop(proc)
