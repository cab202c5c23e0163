"""The access control of ``fumarole serve``: a Bokeh auth module (``panel serve --auth-module <this file>``).

``fumarole serve --users FILE`` / ``--oidc-issuer URL`` / ``--tokens FILE`` / ``--public ROUTE`` check their values
(:func:`app.cli.serve_plan`) and pass them to the server in its environment (``FUMAROLE_AUTH_*``); Bokeh loads this
file and asks it, for every page, websocket, static folder and API request, who the visitor is (:func:`get_user`):

- a route named public (``/kiosk`` and ``/liveness`` always; ``--public`` adds more): ``"guest"``, no login;
- ``Authorization: Bearer <token>``: the token's name if the tokens file holds its hash (re-read when it changes:
  a revoked token is refused on the next request, in every process);
- the login cookie (signed with the installation's cookie secret, ``PANEL_COOKIE_SECRET``): the user, if the users
  file still holds them (with ``--users``) — or whoever the OIDC provider signed in (with ``--oidc-issuer``);
- else nobody: Bokeh sends a page to ``/login?next=…``, refuses a websocket (403), and the API answers 401 JSON with
  ``WWW-Authenticate: Bearer`` and the reason (``app.api.geo._GeoHandler.prepare`` reads :data:`REFUSAL_ATTR`).

``/login`` is our own form (hashed passwords, :mod:`app.core.auth`; failed attempts slowed down per address), or,
with ``--oidc-issuer``, Panel's generic OAuth handler (:class:`panel.auth.GenericLoginHandler`) pointed at the
issuer's endpoints and coming back to ``/login``. Bokeh's static files (``/static``) are never behind the login.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import urllib.parse

import tornado.web

from app.core import auth

log = logging.getLogger("fumarole.auth")

ALWAYS_PUBLIC = auth.ALWAYS_PUBLIC
#: The attribute of a refused request handler that says why (read by the API's 401 answer).
REFUSAL_ATTR = "fumarole_refusal"
LOGIN_URL = "/login"
LOGOUT_URL = "/logout"
COOKIE_DAYS = float(os.environ.get("FUMAROLE_LOGIN_DAYS", "1") or 1)


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip().rstrip("/") for p in text.split(",") if p.strip().rstrip("/"))


USERS_FILE = os.environ.get("FUMAROLE_AUTH_USERS_FILE") or None
TOKENS_FILE = os.environ.get("FUMAROLE_AUTH_TOKENS_FILE") or None
PUBLIC = ALWAYS_PUBLIC + _split(os.environ.get("FUMAROLE_AUTH_PUBLIC", ""))
OIDC = json.loads(os.environ["FUMAROLE_AUTH_OIDC"]) if os.environ.get("FUMAROLE_AUTH_OIDC") else None

_USERS = auth.WatchedFile(USERS_FILE, auth.parse_users, "users file") if USERS_FILE else None
_TOKENS = auth.WatchedFile(TOKENS_FILE, auth.parse_tokens, "tokens file") if TOKENS_FILE else None
BACKOFF = auth.Backoff()


def is_public(path: str) -> bool:
    """Whether ``path`` is a public route or under one (``/kiosk`` covers ``/kiosk/ws``, ``/kiosk/autoload.js``)."""
    return any(path == p or path.startswith(p + "/") for p in PUBLIC)


def _refuse(handler, reason: str, error: str | None = None) -> None:
    setattr(handler, REFUSAL_ATTR, (reason, error))


def _token_user(handler, token: str) -> str | None:
    if _TOKENS is None:
        _refuse(handler, "this server takes no API tokens: sign in at /login (the API shares the pages' login)",
                "invalid_token")
        return None
    try:
        tokens = _TOKENS.get()
    except auth.AuthFileError as exc:
        log.error("refusing every API token: %s", exc)
        _refuse(handler, "the server cannot read its tokens file: every token is refused until it is repaired "
                         "(its log says why)", "invalid_token")
        return None
    name = auth.match_token(token, tokens)
    if name is None:
        _refuse(handler, "the bearer token is not valid: it is unknown or was revoked", "invalid_token")
        return None
    return f"token:{name}"


def _cookie_user(handler) -> str | None:
    value = handler.get_secure_cookie("user", max_age_days=COOKIE_DAYS)
    if not value:
        return None
    user = value.decode("utf-8", "replace")
    if OIDC is not None:
        return user  # whoever the provider signed in (the cookie is signed: only our /login sets it)
    try:
        known = _USERS.get() if _USERS is not None else {}
    except auth.AuthFileError as exc:
        log.error("refusing every login: %s", exc)
        return None
    if user not in known:
        _refuse(handler, f"the login of {user!r} is no longer valid: sign in again at {LOGIN_URL}")
        return None
    return user


def get_user(handler) -> str | None:
    """Who is asking (Bokeh's hook for every page, websocket, static folder and API request), or None."""
    if is_public(handler.request.path):
        return "guest"
    header = handler.request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            _refuse(handler, "the Authorization header must be 'Bearer <token>'", "invalid_request")
            return None
        return _token_user(handler, value.strip())
    user = _cookie_user(handler)
    if user is None and getattr(handler, REFUSAL_ATTR, None) is None:
        _refuse(handler, f"this server requires a login: send 'Authorization: Bearer <token>' (fumarole tokens "
                         f"create) or sign in at {LOGIN_URL} (the API takes the pages' login cookie)")
    return user


# --------------------------------------------------------------------------------------------- pages

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Fumarole</title>
<style>
body {{ margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212529;
       background: #f8f9fa; }}
header {{ background: #6b1f2a; color: #fff; padding: 0.8rem 1.5rem; font-size: 1.4rem; font-weight: 600; }}
main {{ max-width: 24rem; margin: 3rem auto; background: #fff; border: 1px solid #dee2e6; border-radius: 0.5rem;
       padding: 1.5rem 2rem; }}
h1 {{ font-size: 1.4rem; margin-top: 0; }}
label {{ display: block; margin: 1rem 0 0.3rem; font-weight: 600; }}
input {{ width: 100%; box-sizing: border-box; padding: 0.5rem; font-size: 1rem; border: 1px solid #6c757d;
        border-radius: 0.3rem; }}
button, .button {{ margin-top: 1.4rem; padding: 0.55rem 1.2rem; font-size: 1rem; background: #6b1f2a; color: #fff;
          border: 0; border-radius: 0.3rem; cursor: pointer; text-decoration: none; display: inline-block; }}
.error {{ color: #842029; background: #f8d7da; border: 1px solid #f5c2c7; border-radius: 0.3rem; padding: 0.6rem; }}
:focus-visible, input:focus, button:focus, a:focus {{ outline: 3px solid #1a73e8; outline-offset: 2px; }}
</style></head>
<body><header>Fumarole</header><main>{body}</main></body></html>
"""


def page(title: str, body: str) -> str:
    """A page of our design (the shell's colours, no external resource) around ``body`` (HTML)."""
    return _PAGE.format(title=html.escape(title), body=body)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this server only (no scheme, host or backslash), else ``/``."""
    if not target:
        return "/"
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def login_form(next_url: str, error: str = "", user: str = "", xsrf: str = "") -> str:
    """The sign-in page: user name, password, and the message of a refused attempt.

    ``xsrf``: Tornado's hidden ``_xsrf`` field (``xsrf_form_html()``), so that another site cannot post a sign-in
    (login CSRF: signing a visitor in as someone else).
    """
    alert = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return page("Sign in", f"""<h1>Sign in</h1>{alert}
<form method="post" action="{LOGIN_URL}">{xsrf}
<input type="hidden" name="next" value="{html.escape(next_url)}">
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" required value="{html.escape(user)}" autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>""")


class PasswordLoginHandler(tornado.web.RequestHandler):
    """``/login``: the form (GET) and its check (POST) against the hashed users file, slowed down per address."""

    def get(self) -> None:
        """The sign-in form."""
        self.set_header("Cache-Control", "no-store")
        if _USERS is None:
            self.write(page("Sign in", "<h1>No sign-in here</h1><p>This server has no page login: its API "
                                       "answers requests that carry an API token.</p>"))
            return
        self.write(login_form(safe_next(self.get_argument("next", "/")), xsrf=self.xsrf_form_html()))

    def _answer(self, status: int, next_url: str, message: str, user: str) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish(login_form(next_url, message, user, xsrf=self.xsrf_form_html()))

    async def post(self) -> None:
        """Check the form's origin, the user name and password; sign in (a signed cookie) or say why not."""
        name = self.get_body_argument("username", "")[:64]
        password = self.get_body_argument("password", "")
        next_url = safe_next(self.get_body_argument("next", "/"))
        try:
            self.check_xsrf_cookie()  # the form this server gave, not one posted from another site
        except tornado.web.HTTPError:
            log.warning("refused a sign-in without this server's form token from %s", self.request.remote_ip)
            self._answer(403, next_url, "This sign-in did not come from this server's form (or the form is too "
                                        "old): sign in again here.", name)
            return
        client = self.request.remote_ip or "?"
        wait = BACKOFF.wait_s(client)
        if wait > 0:
            self.set_header("Retry-After", str(int(wait) + 1))
            self._answer(429, next_url, f"Too many failed sign-ins from your address: try again in {int(wait) + 1} s.",
                         name)
            return
        try:
            users = _USERS.get() if _USERS is not None else {}
        except auth.AuthFileError as exc:
            log.error("refusing a sign-in: %s", exc)
            self._answer(503, next_url, "Sign-in is not possible now: the server cannot read its users file.", name)
            return
        ok = await asyncio.get_running_loop().run_in_executor(None, auth.verify_password, password, users.get(name))
        if not ok:
            BACKOFF.failed(client)
            log.warning("failed sign-in for %r from %s", name, client)
            self._answer(200, next_url, "Wrong user name or password.", name)  # a page, not an error: no cookie
            return
        BACKOFF.succeeded(client)
        self.set_secure_cookie("user", name, expires_days=COOKIE_DAYS, httponly=True, samesite="Lax",
                               secure=self.request.protocol == "https")
        self.redirect(next_url)


class LogoutHandler(tornado.web.RequestHandler):
    """``/logout``: forget the login cookie (and the OIDC tokens Panel's handler kept) and say so."""

    def get(self) -> None:
        """Sign out."""
        for name in ("user", "id_token", "access_token", "refresh_token", "oauth_expiry", "is_guest"):
            self.clear_cookie(name)
        self.set_header("Cache-Control", "no-store")
        self.write(page("Signed out", f'<h1>Signed out</h1><p>You are signed out of Fumarole.</p>'
                                      f'<a class="button" href="{LOGIN_URL}">Sign in again</a>'))


def _oidc_handler():
    """Panel's generic OAuth handler, pointed at the issuer's endpoints, coming back to ``/login``."""
    from panel.auth import GenericLoginHandler
    from panel.config import config

    config.oauth_key = OIDC["client_id"]
    config.oauth_secret = os.environ.get("FUMAROLE_OIDC_CLIENT_SECRET", "")
    config.oauth_extra_params = {
        "AUTHORIZE_URL": OIDC["authorization_endpoint"], "TOKEN_URL": OIDC["token_endpoint"],
        "USER_URL": OIDC.get("userinfo_endpoint") or "", "USER_KEY": OIDC.get("user_claim", "sub"),
        "scope": ["openid", "email", "profile"],
    }

    class OidcLoginHandler(GenericLoginHandler):
        """``/login`` with an OpenID Connect provider: to the provider, and back here with a code."""

        _login_endpoint = LOGIN_URL

        @property
        def _redirect_uri(self) -> str:
            return OIDC.get("redirect_uri") or f"{self.request.protocol}://{self.request.host}{LOGIN_URL}"

    return OidcLoginHandler


login_url = LOGIN_URL
logout_url = LOGOUT_URL
LoginHandler = _oidc_handler() if OIDC is not None else PasswordLoginHandler
