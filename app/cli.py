"""The ``fumarole`` command: make the sample archive, index an archive, serve the dashboards, time series."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import socket
import sys
from pathlib import Path

from app.core.settings import SettingsError
from app.data.errors import FumaroleError, UserInputError
from app.paths import ASSETS, DASHBOARDS, RESOURCES


def cmd_sample(args: argparse.Namespace) -> int:
    """Write the sample archive: :func:`app.sample.cli.cmd_sample`.

    The one import of :mod:`app.sample` by the CLI, lazy and named in the layer contracts (``.importlinter``:
    ``app.cli -> app.sample.cli``): the other commands, and every view and API module, never import it.
    """
    from app.sample.cli import cmd_sample as write_sample

    return write_sample(args)


def cmd_index(args: argparse.Namespace) -> int:
    """Build or refresh the granule index of an archive and print what it holds."""
    from app.data.catalog import open_catalog
    from app.data.index import GranuleIndex

    cat = open_catalog(args.catalog)
    index = GranuleIndex.for_catalog(cat)
    report = index.refresh()
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    for path, reason in report.empty:
        print(f"empty {path}: {reason}", file=sys.stderr)
    print(index.summary())
    return 0


_HOST = re.compile(r"(?=.{1,253}\Z)(\*|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                   r"(?:\.(\*|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?))*")
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CLUSTER_ADDRESS = re.compile(r"(tcp|tls|ucx|ws|wss)://[^\s,;=]+")
_WILDCARD = {"0.0.0.0", "::"}


def _check_host(text: str, what: str) -> str:
    """An IP address or a host name (``*`` labels allowed in origins), else a UserInputError naming ``what``."""
    host = text.strip()
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
        return bare if what == "--address" else host
    except ValueError:
        pass
    if not _HOST.fullmatch(host) or ("*" in host and what == "--address"):
        raise UserInputError(f"{what} {text!r} is not an IP address or a host name")
    return host


def _check_port(value: int | str, what: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{what} {value!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise UserInputError(f"{what} {port} is not a port number (1-65535)")
    return port


def _check_origin(text: str, source: str) -> str:
    """``HOST[:PORT]`` as Bokeh's ``--allow-websocket-origin`` takes it."""
    item = text.strip()
    if not item:
        raise UserInputError(f"{source} has an empty origin")
    if "://" in item or "/" in item:
        raise UserInputError(f"{source} origin {text!r} must be HOST[:PORT], without a scheme or a path")
    m = re.fullmatch(r"(\[[^\]]+\]|[^:\[\]]+)(?::([^:]*))?", item)
    if not m:
        raise UserInputError(f"{source} origin {text!r} must be HOST[:PORT]")
    host, port = m.group(1), m.group(2)
    if host == "*":
        raise UserInputError(f"{source} origin {text!r} would let any web page drive this server: name the hosts "
                             "(a wildcard within a name, *.example.org, is allowed)")
    _check_host(host, f"{source} origin")
    if port is not None:
        _check_port(port, f"{source} origin {text!r}: port")
    return item


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return address == "localhost"


def _default_origins(address: str, port: int) -> list[str]:
    """The served address and port; on loopback also localhost and 127.0.0.1; on every interface this host's names."""
    if address in _WILDCARD:
        names = ["localhost", "127.0.0.1", socket.gethostname(), socket.getfqdn()]
    elif _loopback(address):
        names = [address, "localhost", "127.0.0.1"]
    else:
        names = [address]
    return list(dict.fromkeys(f"{n}:{port}" for n in names if n))


_ROUTE = re.compile(r"/[A-Za-z0-9._~/-]*")


def _check_users_file(path: str, flag: str) -> str:
    """The absolute path of a users file of hashed passwords with at least one user (``fumarole users add``)."""
    from app.core import auth

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserInputError(f"{flag} {path}: no such file (make it with `fumarole users add NAME --file {path}`)")
    try:
        users = auth.read_users(file)
    except auth.AuthFileError as exc:
        raise UserInputError(f"{flag}: {exc}") from None
    if not users:
        raise UserInputError(f"{flag} {path}: holds no user (add one with `fumarole users add NAME --file {path}`)")
    return str(file.resolve())


def _check_tokens_file(path: str) -> str:
    """The absolute path of a tokens file (``fumarole tokens create``): it must exist and parse."""
    from app.core import auth

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserInputError(f"--tokens {path}: no such file (make it with `fumarole tokens create NAME --file "
                             f"{path}`)")
    try:
        auth.read_tokens(file)
    except auth.AuthFileError as exc:
        raise UserInputError(f"--tokens: {exc}") from None
    return str(file.resolve())


def _check_public(items: list[str] | None) -> list[str]:
    """The ``--public`` routes (repeatable, or comma lists): paths such as ``/guide`` or ``/api/v1/volcanoes``."""
    routes: list[str] = []
    for item in items or []:
        for part in (p.strip() for p in item.split(",")):
            if not part:
                continue
            route = part.rstrip("/")
            if not route:
                raise UserInputError("--public '/' would open every page and the API: leave access control off "
                                     "instead")
            if not _ROUTE.fullmatch(route) or "/../" in route + "/" or "//" in route:
                raise UserInputError(f"--public {part!r} is not a route of this server: a path such as /guide or "
                                     "/api/v1/volcanoes (letters, digits, '/', '.', '_', '~', '-')")
            routes.append(route)
    return list(dict.fromkeys(routes))


def _loopback_url(url: str) -> bool:
    import urllib.parse

    host = urllib.parse.urlsplit(url).hostname or ""
    return _loopback(host)


def _check_oidc(args: argparse.Namespace, environ: dict) -> dict | None:
    """The OIDC provider's endpoints, read from the issuer's ``/.well-known/openid-configuration``; None without."""
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    issuer, client_id = args.oidc_issuer, args.oidc_client_id
    if not issuer and not client_id:
        return None
    if not (issuer and client_id):
        raise UserInputError("give both --oidc-issuer URL and --oidc-client-id ID (the client secret goes in "
                             "FUMAROLE_OIDC_CLIENT_SECRET)")
    parts = urllib.parse.urlsplit(issuer)
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback_url(issuer)):
        raise UserInputError(f"--oidc-issuer {issuer!r} must be an https:// URL (http:// only on this machine)")
    if not environ.get("FUMAROLE_OIDC_CLIENT_SECRET"):
        raise UserInputError("--oidc-issuer needs the client secret in the environment variable "
                             "FUMAROLE_OIDC_CLIENT_SECRET (never on the command line)")
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=15) as r:
            found = json.loads(r.read(1 << 20).decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise UserInputError(f"--oidc-issuer: {url} could not be read ({getattr(exc, 'reason', None) or exc})"
                             ) from None
    named = found.get("issuer") if isinstance(found, dict) else None
    if str(named or "").rstrip("/") != issuer.rstrip("/"):
        raise UserInputError(f"--oidc-issuer: {url} names the issuer {named!r}, not {issuer!r}")
    config = {"issuer": issuer, "client_id": client_id}
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "end_session_endpoint"):
        value = found.get(key)
        if value and urllib.parse.urlsplit(str(value)).scheme in ("http", "https"):
            config[key] = str(value)
    missing = [k for k in ("authorization_endpoint", "token_endpoint") if k not in config]
    if missing:
        raise UserInputError(f"--oidc-issuer: {url} gives no {' or '.join(missing)}")
    if args.oidc_redirect_uri:
        config["redirect_uri"] = args.oidc_redirect_uri
    return config


def _access_control(args: argparse.Namespace, environ: dict, env: dict) -> list[str]:
    """Check the access-control flags, put them in the server's environment and return the auth-module flags."""
    import json

    from app.paths import PACKAGE

    for name in [k for k in env if k.startswith("FUMAROLE_AUTH_")]:
        del env[name]  # only this command's flags decide who may come in
    if args.oidc_client_secret is not None:
        raise UserInputError("--oidc-client-secret is not taken on the command line (every user of the machine can "
                             "read it): set FUMAROLE_OIDC_CLIENT_SECRET in the environment")
    if args.users and args.oidc_issuer:
        raise UserInputError("give --users FILE or --oidc-issuer URL for the pages' login, not both")
    users = _check_users_file(args.users, "--users") if args.users else None
    tokens = _check_tokens_file(args.tokens) if args.tokens else None
    public = _check_public(args.public)
    oidc = _check_oidc(args, environ)
    if not (users or tokens or oidc):
        if public:
            raise UserInputError("--public names routes open without a login, but no login is required: give "
                                 "--users, --oidc-issuer or --tokens")
        return []
    if users:
        env["FUMAROLE_AUTH_USERS_FILE"] = users
    if tokens:
        env["FUMAROLE_AUTH_TOKENS_FILE"] = tokens
    if public:
        env["FUMAROLE_AUTH_PUBLIC"] = ",".join(public)
    if oidc:
        env["FUMAROLE_AUTH_OIDC"] = json.dumps(oidc)
    return ["--auth-module", str(PACKAGE / "serve_auth.py")]


def access_summary(env: dict) -> str:
    """One sentence on who may use the server, from the environment :func:`serve_plan` made."""
    import json

    from app.core.auth import ALWAYS_PUBLIC

    ways = []
    if env.get("FUMAROLE_AUTH_USERS_FILE"):
        ways.append(f"a password of {env['FUMAROLE_AUTH_USERS_FILE']}")
    if env.get("FUMAROLE_AUTH_OIDC"):
        ways.append(f"a sign-in at {json.loads(env['FUMAROLE_AUTH_OIDC'])['issuer']}")
    if env.get("FUMAROLE_AUTH_TOKENS_FILE"):
        ways.append(f"an API token of {env['FUMAROLE_AUTH_TOKENS_FILE']}")
    if not ways:
        return "no login required: whoever reaches the server may use every page and the API"
    public = [*ALWAYS_PUBLIC, *[p for p in env.get("FUMAROLE_AUTH_PUBLIC", "").split(",") if p]]
    return (f"login required for the pages and the API ({' or '.join(ways)}); open without login: "
            f"{', '.join(public)}")


def _check_clusters(items: list[str], environ: dict) -> str:
    """``FUMAROLE_CLUSTERS``: the operator's environment value, then each ``--cluster NAME=ADDRESS``."""
    parts = [p.strip() for p in environ.get("FUMAROLE_CLUSTERS", "").replace(";", ",").split(",") if p.strip()]
    for source, item in [("FUMAROLE_CLUSTERS", p) for p in parts] + [("--cluster", i) for i in items]:
        name, sep, address = item.partition("=")
        if not sep or not _CLUSTER_NAME.fullmatch(name.strip()):
            raise UserInputError(f"{source} {item!r} is not NAME=ADDRESS (a name of letters, digits, '_', '.', '-')")
        if not _CLUSTER_ADDRESS.fullmatch(address.strip()):
            raise UserInputError(
                f"{source} {item!r}: the address must be a Dask scheduler address such as tcp://10.1.2.3:8786"
            )
    return ",".join(parts + [i.strip() for i in items])


def _check_catalog(catalog: str | None) -> str | None:
    """The catalogue as an absolute path (the server runs in another folder), a URL or a name; it must exist."""
    if not catalog:
        return None
    from app.data.catalog import catalog_path

    path = catalog_path(catalog)
    if "://" not in path and "::" not in path and not Path(path).is_file():
        raise UserInputError(f"--catalog {catalog}: no catalogue file at {path}")
    return path


def _origins(given: list[str] | None, environ: dict, address: str, port: int) -> list[str]:
    """The websocket origins: the ``--allow-origin`` flags, else ``FUMAROLE_ALLOW_ORIGIN``, else the defaults."""
    if given:
        return [_check_origin(o, "--allow-origin") for o in given]
    from_env = [o for o in environ.get("FUMAROLE_ALLOW_ORIGIN", "").split(",") if o.strip()]
    if from_env:
        return [_check_origin(o, "FUMAROLE_ALLOW_ORIGIN") for o in from_env]
    return _default_origins(address, port)


def _add_secrets(env: dict) -> None:
    """The session-signing key and the cookie secret of this installation, unless the operator set them."""
    import base64

    from app.core.state import secret_key

    def encoded(name: str) -> str:
        return base64.urlsafe_b64encode(secret_key(name)).decode("ascii").rstrip("=")

    # signed session ids: a page cannot be opened with a session id it did not get from this server
    if not env.get("BOKEH_SECRET_KEY"):
        env["BOKEH_SECRET_KEY"] = encoded("bokeh")
    env["BOKEH_SIGN_SESSIONS"] = "true"
    # the cookie secret goes by the environment (a command line is visible to every user of the machine)
    if not (env.get("PANEL_COOKIE_SECRET") or env.get("BOKEH_COOKIE_SECRET")):
        env["PANEL_COOKIE_SECRET"] = encoded("cookie")


def _split_memory_budget(env: dict, num_procs: int) -> None:
    """Check ``FUMAROLE_MEMORY_BUDGET_MB``; unset, each of several processes gets an equal part of the default."""
    text = env.get("FUMAROLE_MEMORY_BUDGET_MB", "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value > 0:
            raise UserInputError(f"FUMAROLE_MEMORY_BUDGET_MB={text!r} is not a positive number of megabytes")
        return
    procs = num_procs if num_procs > 0 else (os.cpu_count() or 1)
    if procs > 1:
        from app.core.cache import memory_budget

        env["FUMAROLE_MEMORY_BUDGET_MB"] = str(max(64, memory_budget() // procs // (1 << 20)))


def serve_plan(args: argparse.Namespace, environ: dict | None = None) -> tuple[list[str], dict[str, str]]:
    """Check the ``serve`` flags and return the ``panel serve`` command and its environment, without running it.

    Raises :class:`UserInputError` (one sentence naming the flag and the value) for a bad port, address, origin,
    users or tokens file, public route, OIDC issuer, cluster or catalogue.
    """
    environ = dict(os.environ if environ is None else environ)
    port = _check_port(args.port, "--port")
    address = _check_host(args.address, "--address")
    if args.num_procs < 0:
        raise UserInputError(f"--num-procs {args.num_procs}: give 1 or more processes (0: one per core)")
    origins = _origins(args.allow_origin, environ, address, port)
    env = dict(environ)
    catalog = _check_catalog(args.catalog)
    if catalog:
        env["FUMAROLE_CATALOG"] = catalog
    clusters = _check_clusters(args.cluster or [], environ)
    if clusters:
        env["FUMAROLE_CLUSTERS"] = clusters
    if args.admin:
        env["FUMAROLE_ADMIN"] = "1"
    _split_memory_budget(env, args.num_procs)
    _add_secrets(env)
    apps = sorted(str(p) for p in DASHBOARDS.glob("*.py") if not p.name.startswith("_"))
    if not apps:
        raise UserInputError(f"no dashboard found in {DASHBOARDS}: the installation is incomplete")
    index = DASHBOARDS / "_index.html"
    cmd = [
        sys.executable, "-m", "panel", "serve", *apps,
        "--port", str(port), "--address", address,
        *[a for origin in origins for a in ("--allow-websocket-origin", origin)],
        "--session-ids", "signed",
        "--index", str(index) if index.exists() else apps[0],
        "--static-dirs", f"assets={ASSETS}",
        # the HTTP API (/api/geo/... and /api/v1/...): Tornado handlers added to the same server (app/api/geo.py
        # and app/api/v1.py, ROUTES; the v1 document at /api/v1/openapi.json)
        "--plugins", "app.api.geo",
        "--plugins", "app.api.v1",
        # the map services for GIS clients: WMS 1.3.0, WMTS 1.0.0 and XYZ tiles (app/api/ogc.py, docs/gis.md)
        "--plugins", "app.api.ogc",
        # /liveness answers 200 while the server runs (the Docker HEALTHCHECK)
        "--liveness",
    ]
    if SESSION_THREADS:  # the dashboards' builds and events on these threads, off the event loop (see above)
        cmd += ["--num-threads", str(SESSION_THREADS)]
    cmd += _access_control(args, environ, env)
    if args.num_procs != 1:
        cmd += ["--num-procs", str(args.num_procs)]
    if not args.no_warm:
        # run each dashboard once at start-up: Numba's JIT (seconds per process) and the archive's index and
        # first reads are paid before the first visitor comes, not by them
        cmd += ["--warm"]
    return cmd, env


#: Threads of Panel's pool that would build the dashboards and run their callbacks off the event loop
#: (``FUMAROLE_SESSION_THREADS``; file reads inside are serialised by app.core.locks.HDF_LOCK). Off by default: with
#: Panel's threaded events, BokehJS received model references out of order ("reference … isn't known") in about
#: one page load in three in our browser tests, for both dashboards (docs/benchmarks.md, "Server under load").
SESSION_THREADS = int(os.environ.get("FUMAROLE_SESSION_THREADS", "0"))


def serve_banner(args: argparse.Namespace, cmd: list[str], env: dict) -> list[str]:
    """What ``fumarole serve`` says at start: where it listens, who may come in, and a warning when anyone may."""
    host = "localhost" if _loopback(args.address) else args.address
    n_apps = sum(1 for p in DASHBOARDS.glob("*.py") if not p.name.startswith("_"))
    where = ("this machine only" if _loopback(args.address)
             else "every interface" if args.address in _WILDCARD else "that address only")
    origins = ", ".join(cmd[i + 1] for i, c in enumerate(cmd) if c == "--allow-websocket-origin")
    lines = [f"serving {n_apps} dashboards at http://{host}:{args.port} (listening on {args.address}: {where}; "
             f"websocket origins: {origins})",
             f"access: {access_summary(env)}"]
    if "--auth-module" not in cmd and not _loopback(args.address):
        lines.append(f"WARNING: listening on {args.address} with no access control: anyone who reaches port "
                     f"{args.port} of this machine may use every page and the API. Give --users, --oidc-issuer or "
                     "--tokens (docs/deploy.md, \"Access control\"), or --address 127.0.0.1.")
    return lines


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the dashboards with ``panel serve`` (the flags checked first by :func:`serve_plan`)."""
    cmd, env = serve_plan(args)
    for line in serve_banner(args, cmd, env):
        print(line, file=sys.stderr, flush=True)
    # become the server (no child process left behind when this one is stopped)
    os.chdir(RESOURCES)
    os.execve(sys.executable, cmd, env)


def _credential_file(path: str) -> Path:
    file = Path(path).expanduser()
    if not file.parent.is_dir():
        raise UserInputError(f"--file {path}: the folder {file.parent} does not exist")
    return file


def _check_action_name(args: argparse.Namespace, command: str) -> None:
    if args.name is None and args.action in args.needs_name:
        what = "OLD.json (the old --basic-auth file)" if args.action == "import" else "NAME"
        raise UserInputError(f"`fumarole {command} {args.action}` needs {what}")
    if args.name is not None and args.action == "list":
        raise UserInputError(f"`fumarole {command} list` takes no name")


def _read_password(name: str) -> str:
    """The new password of ``name``: asked twice on a terminal, else one line of standard input."""
    import getpass

    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != first:
            raise UserInputError("the two passwords differ: nothing was changed")
        return first
    line = sys.stdin.readline() if sys.stdin is not None else ""
    return line[:-1] if line.endswith("\n") else line


def cmd_users(args: argparse.Namespace) -> int:
    """``fumarole users add|remove|list|import``: the users file of hashed passwords (``--users``)."""
    from app.core import auth

    file = _credential_file(args.file)
    _check_action_name(args, "users")
    try:
        if args.action == "list":
            for name in sorted(auth.read_users(file)):
                print(name)
            return 0
        if args.action == "import":
            names = auth.import_plain_users(args.name, file)
            print(f"hashed the passwords of {len(names)} users ({', '.join(names)}) of {args.name} into {file}; "
                  f"delete {args.name} now", file=sys.stderr)
            return 0
        auth.check_name(args.name)
        if args.action == "remove":
            auth.remove_user(file, args.name)
            print(f"removed user {args.name!r} from {file}", file=sys.stderr)
            return 0
        auth.read_users(file)  # a damaged or plain-text file is said before the password is asked
        new = auth.add_user(file, args.name, _read_password(args.name))
    except (auth.AuthFileError, ValueError) as exc:
        raise UserInputError(str(exc)) from None
    except KeyError as exc:
        raise UserInputError(str(exc.args[0])) from None
    verb = "added user" if new else "changed the password of"
    print(f"{verb} {args.name!r} in {file} (stored as a scrypt hash, mode 0600)", file=sys.stderr)
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    """``fumarole tokens create|revoke|list``: the API tokens file (``--tokens``)."""
    from app.core import auth

    file = _credential_file(args.file)
    _check_action_name(args, "tokens")
    try:
        if args.action == "list":
            for entry in sorted(auth.read_tokens(file).values(), key=lambda t: t.name):
                print(f"{entry.name}\tcreated {entry.created}")
            return 0
        if args.action == "revoke":
            auth.revoke_token(file, args.name)
            print(f"revoked token {args.name!r} in {file}: a running server refuses it from its next request",
                  file=sys.stderr)
            return 0
        token = auth.create_token(file, args.name)
    except (auth.AuthFileError, ValueError) as exc:
        raise UserInputError(str(exc)) from None
    except KeyError as exc:
        raise UserInputError(str(exc.args[0])) from None
    print(token)
    print(f"made token {args.name!r}: it is shown this once ({file} keeps only its SHA-256); send it as "
          "'Authorization: Bearer TOKEN'", file=sys.stderr)
    return 0


def _add_credential_commands(sub) -> None:
    p = sub.add_parser("users", help="the users file of hashed passwords for `fumarole serve --users`")
    p.add_argument("action", choices=["add", "remove", "list", "import"],
                   help="add NAME (or set a new password: read with getpass, or one line of standard input), "
                        "remove NAME, list, import OLD.json (hash the passwords of an old --basic-auth file)")
    p.add_argument("name", nargs="?", metavar="NAME|OLD.json")
    p.add_argument("--file", required=True, help="the users file (written atomically, mode 0600)")
    p.set_defaults(func=cmd_users, needs_name=("add", "remove", "import"))

    p = sub.add_parser("tokens", help="the API tokens file for `fumarole serve --tokens`")
    p.add_argument("action", choices=["create", "revoke", "list"],
                   help="create NAME (prints the token once), revoke NAME, list")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--file", required=True, help="the tokens file (written atomically, mode 0600)")
    p.set_defaults(func=cmd_tokens, needs_name=("create", "revoke"))


def _check_flux_flags(args: argparse.Namespace) -> None:
    import math

    if args.wind_ms is not None and args.wind_csv is not None:
        raise UserInputError("give the wind at plume height with --wind-ms SPEED or --wind-csv FILE, not both "
                             "(without either, the catalogue's wind entry is used)")
    if not (math.isfinite(args.min_coverage) and 0.0 <= args.min_coverage <= 1.0):
        raise UserInputError(f"--min-coverage must be a fraction between 0 and 1; got {args.min_coverage:g}")
    if args.plume_height_km is not None and not (math.isfinite(args.plume_height_km)
                                                  and 0.0 <= args.plume_height_km <= 32.0):
        raise UserInputError(f"--plume-height-km must be a height between 0 and 32 km; got {args.plume_height_km:g}")


def _flux_wind(args: argparse.Namespace, catalog) -> tuple[object, str]:
    """The wind source for the flux and, when there is none, why (checked before any work).

    ``--wind-ms`` (a constant) or ``--wind-csv`` (a table) when given: a bad one is an error. Else the catalogue's
    wind entry (``catalog()`` opens the catalogue): a catalogue without one, or whose wind file cannot be used, gives
    no wind and the reason, which the flux then says (stderr and the flux CSV's header) while the masses are
    computed as asked.
    """
    from app.data.errors import CatalogError
    from app.data.wind import ConstantWind, CsvWind, WindError, no_wind_reason, wind_from_catalog

    _check_flux_flags(args)
    if args.wind_ms is not None:
        from app.services.timeseries import check_wind_speed

        return ConstantWind("constant", check_wind_speed(args.wind_ms, "--wind-ms")), ""
    if args.wind_csv is not None:
        return CsvWind.from_file(args.wind_csv, args.wind_csv), ""
    cat = catalog()
    try:
        source = wind_from_catalog(cat)
    except (WindError, CatalogError) as exc:
        return None, f"the catalogue's wind cannot be used: {exc}"
    if source is None:
        return None, no_wind_reason(str((cat.metadata or {}).get("name") or args.catalog or "sample"))
    return source, ""


def cmd_timeseries(args: argparse.Namespace) -> int:
    """SO2 mass within each radius of a volcano for every orbit of a period (and the flux), as CSV.

    Every argument is checked before any work (one sentence on stderr and status 2 for a bad one): the volcano,
    the period, the radii, the variable, the filters, the scheduler, the wind, and the output files (their
    folder must exist and be writable).
    """
    import functools

    from tqdm import tqdm

    from app.data.catalog import open_catalog
    from app.data.wind import PLUME_HEIGHT_KM
    from app.science.filters import Filters
    from app.services.timeseries import (
        check_csv_output,
        check_scheduler,
        check_variable,
        compute_flux_timeseries,
        compute_mass_timeseries,
        parse_period,
        parse_radii,
        resolve_volcano,
        write_timeseries_csv,
    )

    filters = Filters(qa_min=args.qa_min, sza_max=args.sza_max, edge_pixels=args.edge_pixels, min_du=args.min_du)
    radii = parse_radii(args.radii)
    check_variable(args.variable)
    parse_period(args.start, args.end)
    volcano = resolve_volcano(args.volcano)
    check_scheduler(args.scheduler)
    output = check_csv_output(args.output, "-o")
    wants_flux = args.flux or any(getattr(args, n) is not None for n in ("wind_ms", "wind_csv", "plume_height_km"))
    flux_output = None
    if wants_flux:
        flux_output = check_csv_output(args.flux_output or output.with_suffix(".flux.csv"), "--flux-output")
        if flux_output.resolve() == output.resolve():
            raise UserInputError(f"--flux-output {flux_output} is the mass CSV of -o: give another file")
    catalog = functools.cache(lambda: open_catalog(args.catalog))
    wind, no_wind = _flux_wind(args, catalog) if wants_flux else (None, "")
    height = args.plume_height_km if args.plume_height_km is not None else PLUME_HEIGHT_KM.get(args.variable, 7.0)
    if wants_flux and wind is None:
        print(f"fumarole: no flux: {no_wind}", file=sys.stderr)  # said once, before the work; the CSV says it too
    cat = catalog()
    bars: list[tqdm] = []  # made at the first progress call: bad input fails with no bar drawn

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="granule", desc="SO2 mass", file=sys.stderr, leave=False))
        bars[0].total = total
        bars[0].n = done
        bars[0].refresh()

    try:
        table, report = compute_mass_timeseries(
            cat, volcano, args.start, args.end, radii, args.variable, filters,
            scheduler=args.scheduler, cache_dir=False if args.no_cache else args.cache_dir, progress=progress,
        )
    finally:
        for bar in bars:
            bar.close()
    for name, reason in report.skipped_granules():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    provenance = dict(
        volcano=report.volcano, start=report.start, end=report.end, variable=args.variable, filters=filters,
        radii=radii, n_granules=report.n_granules, scheduler=report.scheduler, skipped=report.skipped_granules(),
    )
    outputs = [(table, output, None)]
    flux = None
    if wants_flux:  # computed before anything is written: a flux that fails leaves no half result
        flux = compute_flux_timeseries(table, wind, plume_height_km=height, volcano=report.volcano,
                                       why_no_wind=no_wind or None, min_coverage=args.min_coverage)
        described = (wind.describe(height, report.volcano.latitude, report.volcano.longitude) if wind is not None
                     else f"none: {no_wind}")
        outputs.append((flux, flux_output, {"wind": described, "plume_height_km": height,
                                            "min_coverage": args.min_coverage}))
    for data, path, extra in outputs:
        try:
            write_timeseries_csv(data, path, **provenance, extra=extra)
        except OSError as exc:  # the disk filled up or the folder went away during the computation
            raise UserInputError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(
        f"wrote {len(table)} rows ({table['orbit'].nunique()} orbits x {len(radii)} radii) from "
        f"{report.n_granules} granules ({report.cache_hits} from the cache, {report.skipped_by_index} skipped by "
        f"the index, {len(report.corrupt)} unreadable) to {output}",
        file=sys.stderr,
    )
    if flux is not None:
        n_ok = int(flux["flux_t_day"].notna().sum())
        print(f"wrote the flux of {n_ok} of {len(flux)} orbits to {flux_output}", file=sys.stderr)
    return 0


def _number_or_none(text: str) -> float | None:
    """A flag value that is a number or ``none`` (no limit)."""
    if text.strip().lower() in ("none", ""):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or 'none'") from None


def _shown(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit status 2), not the usage and a line."""

    def error(self, message: str):
        """Say what is wrong in one line and exit with status 2."""
        one_line = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], message)
        self.exit(2, f"{self.prog}: {one_line} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    from app.science.filters import Filters

    parser = _Parser(prog="fumarole", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is read and skipped")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample", help="write the sample archive in the real public formats")
    p.add_argument("--out", help="archive folder (default: data/sample, or data/tiny with --resolution tiny)")
    p.add_argument("--scenario", default="soufriere", help="soufriere (default), hunga-tonga, etna")
    p.add_argument("--resolution", default="demo", choices=["demo", "tiny", "full"],
                   help="demo: reduced sampling (default); tiny: for tests; full: the instruments' own sampling")
    p.add_argument("--products", help="comma-separated subset of: tropomi, caliop")
    p.add_argument("--days", help="comma-separated days (YYYY-MM-DD); default: the scenario's days")
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--if-missing", action="store_true", help="do nothing when the archive is already complete")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("index", help="build or refresh the granule index of a catalogue's archive")
    p.add_argument("--catalog", help="catalogue YAML path or URL, or 'sample' / 'tiny' (default: sample)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "serve", help="serve the dashboards",
        description="Serve the dashboards and the HTTP API with panel serve. By default the server listens on this "
                    "machine only (127.0.0.1), accepts websockets only from the address it serves, signs its session "
                    "ids and requires no login; docs/deploy.md says how to expose it.",
    )
    p.add_argument("--port", type=int, default=5006, help="TCP port (default 5006)")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)")
    p.add_argument("--allow-origin", action="append", metavar="HOST[:PORT]",
                   help="a host (and port) whose pages may open the dashboards' websocket, as the browser names "
                        "the server (repeatable; default: FUMAROLE_ALLOW_ORIGIN, comma-separated, else the served "
                        "address and port, plus localhost:PORT and 127.0.0.1:PORT on loopback)")
    p.add_argument("--users", "--basic-auth", dest="users", metavar="FILE",
                   help="require a login for the pages and the API: a users file of hashed passwords made by "
                        "`fumarole users add` (--basic-auth is the old name; its plain-text JSON is refused)")
    p.add_argument("--tokens", metavar="FILE",
                   help="API clients may send 'Authorization: Bearer TOKEN' with a token of this file (made by "
                        "`fumarole tokens create`; re-read when it changes); without --users or --oidc-issuer only "
                        "token holders are served")
    p.add_argument("--public", action="append", metavar="ROUTE[,ROUTE]",
                   help="a page or API route open without a login (repeatable or comma-separated, e.g. /guide or "
                        "/api/v1/volcanoes: the route and everything under it); /kiosk and /liveness always are")
    p.add_argument("--oidc-issuer", metavar="URL",
                   help="sign visitors in with this OpenID Connect provider (its /.well-known/openid-configuration "
                        "is read at start); the client secret comes from FUMAROLE_OIDC_CLIENT_SECRET")
    p.add_argument("--oidc-client-id", metavar="ID", help="this server's client id at the OIDC provider")
    p.add_argument("--oidc-redirect-uri", metavar="URL",
                   help="where the provider sends visitors back (default: http(s)://HOST/login as the browser "
                        "named this server; give it behind a proxy)")
    p.add_argument("--oidc-client-secret", help=argparse.SUPPRESS)
    p.add_argument("--admin", action="store_true",
                   help="allow the admin actions of the pages (Rescan archive on /archive) to every visitor "
                        "(sets FUMAROLE_ADMIN=1); without it they are refused")
    p.add_argument("--cluster", action="append", metavar="NAME=ADDRESS",
                   help="a Dask scheduler the time series may run on, offered to pages by NAME only (repeatable; "
                        "added to FUMAROLE_CLUSTERS)")
    p.add_argument("--num-procs", type=int, default=1,
                   help="server processes (panel serve --num-procs; 0: one per core). Each process has its own "
                        "caches and memory budget (FUMAROLE_MEMORY_BUDGET_MB each; unset, the default is divided "
                        "among them)")
    p.add_argument("--catalog", help="catalogue to serve (default: FUMAROLE_CATALOG, else the sample archive)")
    p.add_argument("--no-warm", action="store_true", help="do not run the dashboards once at start-up")
    p.set_defaults(func=cmd_serve)

    _add_credential_commands(sub)

    p = sub.add_parser("timeseries", help="SO2 mass (and flux) around a volcano for every orbit of a period, as CSV")

    def one_line_error(message: str, prog: str = p.prog) -> None:
        # a bad flag is one sentence on stderr and status 2, like every other bad argument (not the usage text)
        print(f"fumarole: {prog}: {message} (see {prog} --help)", file=sys.stderr)
        raise SystemExit(2)

    p.error = one_line_error
    p.add_argument("--volcano", required=True, help="GVP name or number (e.g. 'Soufriere St Vincent', 360150)")
    p.add_argument("--start", required=True, help="first day or time, UTC (YYYY-MM-DD[THH:MM])")
    p.add_argument("--end", required=True, help="last day (included) or end time, UTC")
    p.add_argument("--radii", default="25,50,75,100,150,200,250,300,400,500,1000,2000",
                   help="disk radii in km, comma-separated (default: 25 ... 2000)")
    p.add_argument("--variable", default="so2_7km", help="so2_pbl, so2_1km, so2_7km (default) or so2_15km")
    default = Filters.default()  # the one default of the map, the panel, the API and this command
    p.add_argument("--qa-min", type=float, default=default.qa_min,
                   help=f"keep pixels with qa_value > this (default {default.qa_min:g})")
    p.add_argument("--sza-max", type=_number_or_none, default=default.sza_max,
                   help=f"keep pixels with solar zenith angle <= this, degrees, or 'none' (default "
                        f"{_shown(default.sza_max)})")
    p.add_argument("--edge-pixels", type=int, default=default.edge_pixels,
                   help=f"drop this many outermost ground pixels each side (default {default.edge_pixels})")
    p.add_argument("--min-du", type=_number_or_none, default=default.min_du,
                   help=f"truncate columns below this (DU), or 'none' (default {_shown(default.min_du)})")
    p.add_argument("--scheduler", help="where to compute: threads (default), processes, sync, a Dask scheduler "
                                       "address (tcp://host:8786) or the name of a cluster of the settings "
                                       "(FUMAROLE_CLUSTERS)")
    p.add_argument("--catalog", help="catalogue YAML path or URL, or 'sample' / 'tiny' (default: sample)")
    p.add_argument("--cache-dir", help="cache folder (default: the archive's folder in the per-user state folder, "
                                       "$FUMAROLE_STATE_DIR or $XDG_STATE_HOME/fumarole, never the archive)")
    p.add_argument("--no-cache", action="store_true", help="compute every granule again, store nothing")
    p.add_argument("--flux", action="store_true",
                   help="also the disk-method flux per orbit, with the catalogue's wind entry unless --wind-ms or "
                        "--wind-csv is given (a wind flag implies --flux)")
    p.add_argument("--wind-ms", type=float, help="flux: constant wind speed at plume height, m/s")
    p.add_argument("--wind-csv", help="flux: CSV of time, speed_ms[, direction_deg][, height_km]")
    p.add_argument("--plume-height-km", type=float,
                   help="flux: the height the wind is taken at, km (default: the column's box-profile height, "
                        "e.g. 7 for so2_7km)")
    p.add_argument("--min-coverage", type=float, default=0.5,
                   help="flux: fit only radii whose disk is covered at least this much (default 0.5)")
    p.add_argument("--flux-output", help="flux CSV (default: the output with the suffix .flux.csv)")
    p.add_argument("-o", "--output", required=True, help="the CSV to write")
    p.set_defaults(func=cmd_timeseries)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; errors are one sentence on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except (FumaroleError, SettingsError) as exc:
        print(f"fumarole: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fumarole: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
