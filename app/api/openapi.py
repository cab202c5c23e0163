"""The OpenAPI 3.1 document of the HTTP API v1, generated from the routes' declarations, and its HTML page.

:func:`document` walks :data:`app.api.v1.ROUTE_SPECS`: each route's parameters come from the very
:class:`app.api.params.Param` objects its handler checks requests with (:meth:`Param.openapi`), so the document
cannot say one thing while the server does another. :func:`document_html` writes the same document as one plain
HTML page (``/api/v1/docs``): no script, no style sheet or font fetched from elsewhere, readable offline and by a
screen reader; each route with its parameters, answers and a ``curl`` line.
"""

from __future__ import annotations

import html
import json
from functools import lru_cache

__all__ = ["document", "document_json", "document_html", "ERROR_STATUSES"]

#: The error answers every route may give, each a JSON ``{"error": …, "parameter": …}``.
ERROR_STATUSES = {
    "400": "a parameter this route does not know, or a value of the wrong type or form (named in 'parameter')",
    "401": "the server requires access control (fumarole serve --users, --oidc-issuer or --tokens) and the request "
           "brought neither a valid bearer token (Authorization: Bearer TOKEN) nor the pages' login cookie",
    "404": "what was asked for is not in the archive or the lists (a slot, a granule, a volcano, a satellite)",
    "422": "a value out of range, a period over a year, a request over its work budget, or a damaged file the "
           "answer needs (named relative to the archive root)",
    "503": "the API is busy: too many requests wait (Retry-After says when to try again)",
    "504": "the answer took longer than its time bound",
}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("fumarole")
    except Exception:  # noqa: BLE001 - a source checkout without an installed distribution
        return "0"


def _responses(route) -> dict:
    error = {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    binary = route.media in ("image/png", "image/gif", "video/mp4")
    if binary:
        ok = {"description": "the picture or loop (ETag and Cache-Control set)",
              "headers": {"ETag": {"schema": {"type": "string"}, "description": "inputs and data stamp"}},
              "content": {route.media: {"schema": {"type": "string", "contentMediaType": route.media}}}}
    elif route.media == "text/csv":
        ok = {"description": "the table: CSV with its provenance header (format=csv), or JSON (format=json)",
              "content": {"text/csv": {"schema": {"type": "string"}},
                          "application/json": {"schema": {"type": "object", "required": ["rows"]}}}}
    else:
        ok = {"description": "the answer", "content": {route.media: {"schema": route.schema or {}}}}
    out = {"200": ok}
    if binary:
        out["304"] = {"description": "the client's copy (If-None-Match) is current"}
    for status, text in ERROR_STATUSES.items():
        out[status] = {**error, "description": text}
    out["500"] = {**error, "description": "an unexpected failure (a bug: it is logged)"}
    return out


@lru_cache(maxsize=1)
def document() -> dict:
    """The OpenAPI 3.1 document of every v1 route."""
    from app.api.v1 import _ERROR, ROUTE_SPECS

    paths = {}
    for route in ROUTE_SPECS:
        op = {"operationId": route.operation, "tags": [route.tag], "summary": route.summary,
              "description": route.description, "parameters": [p.openapi() for p in route.params],
              "responses": _responses(route)}
        for path in (route.path, *route.aliases):
            paths[path] = {"get": op}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Fumarole HTTP API", "version": _version(),
                 "description": "Maps, curtains and time series of the Fumarole archive (TROPOMI SO2, CALIOP, the "
                                "geostationary ring). Errors are JSON {error, parameter}. See docs/api.md."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": {"Error": _ERROR},
                       "securitySchemes": {"bearerAuth": {
                           "type": "http", "scheme": "bearer",
                           "description": "a token made by `fumarole tokens create NAME --file FILE`, needed only "
                                          "when the server runs with access control (docs/deploy.md)"}}},
        # open by default; with access control on, a bearer token (or the pages' login cookie)
        "security": [{}, {"bearerAuth": []}],
    }


@lru_cache(maxsize=1)
def document_json() -> str:
    """The document as JSON text."""
    return json.dumps(document(), ensure_ascii=False, indent=1)


def _param_rows(op: dict) -> str:
    rows = []
    for p in op["parameters"]:
        s = p["schema"]
        rules = []
        if "enum" in s:
            rules.append("one of " + ", ".join(f"<code>{html.escape(str(v))}</code>" for v in s["enum"]))
        if "minimum" in s or "maximum" in s:
            rules.append(f"{s.get('minimum', '−∞')} … {s.get('maximum', '∞')}")
        if "pattern" in s and "enum" not in s:
            rules.append(f"matches <code>{html.escape(s['pattern'])}</code>")
        if "default" in s:
            rules.append(f"default <code>{html.escape(str(s['default']))}</code>")
        rows.append(f"<tr><td><code>{html.escape(p['name'])}</code>{' (required)' if p['required'] else ''}</td>"
                    f"<td>{html.escape(s.get('type', ''))}</td><td>{html.escape(p['description'])}</td>"
                    f"<td>{'; '.join(rules)}</td></tr>")
    return "\n".join(rows)


_STYLE = """body{font:16px/1.5 system-ui,sans-serif;max-width:70em;margin:1em auto;padding:0 1em;color:#222}
code{background:#f3f3f3;padding:0 .2em}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;
padding:.2em .4em;text-align:left;vertical-align:top}h2{border-top:2px solid #ddd;padding-top:.6em}
pre{background:#f3f3f3;padding:.5em;overflow-x:auto}"""


@lru_cache(maxsize=1)
def document_html() -> str:
    """The document as one HTML page (nothing fetched from elsewhere)."""
    from app.api.v1 import ROUTE_SPECS

    doc = document()
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(doc['info']['title'])}"
             f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(doc['info']['title'])} v1</h1>"
             f"<p>{html.escape(doc['info']['description'])} The machine-readable document: "
             "<a href='/api/v1/openapi.json'>/api/v1/openapi.json</a> (OpenAPI 3.1).</p><ul>"]
    parts += [f"<li><a href='#{r.operation}'><code>{html.escape(r.path)}</code></a> — {html.escape(r.summary)}</li>"
              for r in ROUTE_SPECS]
    parts.append("</ul><h2>Errors</h2><p>Every error is JSON <code>{\"error\": \"…\", \"parameter\": \"…\"}</code>."
                 "</p><table><tr><th>status</th><th>meaning</th></tr>")
    parts += [f"<tr><td>{s}</td><td>{html.escape(t)}</td></tr>" for s, t in ERROR_STATUSES.items()]
    parts.append("</table>")
    for r in ROUTE_SPECS:
        op = doc["paths"][r.path]["get"]
        url = f"{r.path}?{r.example}" if r.example else r.path
        parts.append(f"<h2 id='{r.operation}'><code>GET {html.escape(r.path)}</code></h2>"
                     f"<p><strong>{html.escape(r.summary)}</strong>. {html.escape(r.description)}</p>"
                     f"<p>Answer: <code>{html.escape(r.media)}</code>. Example: <a href='{html.escape(url)}'>"
                     f"<code>{html.escape(url)}</code></a></p>"
                     f"<pre>curl -s 'http://localhost:5006{html.escape(url)}'</pre>"
                     "<table><tr><th>parameter</th><th>type</th><th>meaning</th><th>rules</th></tr>"
                     f"{_param_rows(op)}</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
