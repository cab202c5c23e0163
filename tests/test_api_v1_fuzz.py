"""Fuzz the HTTP API v1 from its own OpenAPI document (schemathesis 4.32.5), then with hostile inputs by hand.

Schemathesis reads ``/api/v1/openapi.json`` from a live server over the tiny archive and, for every operation,
generates valid requests (positive) and requests that break the document's rules (negative), sends them, and checks:
no 5xx; the status, the content type and the JSON body are among those the document declares; a request that breaks
the document's rules is refused with a 4xx. Bounded: :data:`EXAMPLES` per operation and mode, and the valid
pictures' ``width``/``height`` capped at 512 pixels (a 4096 × 4096 mosaic is a legitimate request that takes seconds:
the bounds themselves are tested below and in tests/test_api_v1.py), so the file runs in well under 3 minutes on two
busy cores.

Then, by hand on every route: path traversal (``granule=../../etc/passwd``, ``%2e%2e``), oversized values
(``width=100000``, a 10 kB parameter), malformed queries (bad percent-encoding, NUL, empty names, repeated names).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from test_api_v1 import serve_v1

from app.api import v1
from app.data.archive import Archive

EXAMPLES = 12
CAP = 512
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api(tiny_archive_path):
    archive = Archive("tiny")
    archive.refresh(lambda *_: None)
    with serve_v1(archive) as url:
        yield url


@pytest.fixture(scope="module")
def schema(api):
    return schemathesis.openapi.from_url(f"{api}/api/v1/openapi.json")


def _capped(case):
    """A valid case with its picture no larger than CAP × CAP (the bounds are tested by hand)."""
    query = dict(case.query or {})
    for name in ("width", "height"):
        if isinstance(query.get(name), int) and query[name] > CAP:
            query[name] = CAP
    case.query = query
    return case


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("path", [r.path for r in v1.ROUTE_SPECS])
def test_schemathesis_finds_no_5xx_and_no_answer_outside_the_document(schema, api, path, mode):
    operation = schema[path]["GET"]
    checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])
    strategy = operation.as_strategy(generation_mode=mode)
    if mode == GenerationMode.POSITIVE:
        strategy = strategy.map(_capped)
    seen = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case):
        response = case.call_and_validate(base_url=api, checks=checks, timeout=120)
        seen.append(response.status_code)

    run()
    assert seen and all(s < 500 for s in seen)
    if mode == GenerationMode.NEGATIVE:
        assert all(400 <= s < 500 for s in seen), seen


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


HOSTILE = [
    ("granule=../../etc/passwd", 400),
    ("granule=%2e%2e%2f%2e%2e%2fetc%2fpasswd", 400),
    ("granule=%2e%2e", 404),
    ("granule=..%5c..%5cwindows", 400),
    ("granule=%2Fetc%2Fpasswd", 400),
    ("granule=file%3A%2F%2F%2Fetc%2Fpasswd", 400),
    ("width=100000", 422),
    ("q=" + "a" * 10_000, 400),
    ("%FF%FE=1", 400),
    ("width=%FF", 400),
    ("=1", 400),
    ("date=%00", 400),
    ("bbox=1,2,3", 400),
    ("bbox=nan,nan,nan,nan", 400),
    ("time=2021-04-12T15:00%00", 400),
    ("date=2021-04-12&date=2021-04-13&date=" + "9" * 300, 400),
]


@pytest.mark.parametrize(("tail", "expected"), HOSTILE)
def test_hostile_inputs_are_refused_on_every_route_with_json(api, tail, expected):
    name = tail.split("=", 1)[0]
    for route in v1.ROUTE_SPECS:
        status, content_type, body = _get(f"{api}{route.path}?{tail}")
        assert 400 <= status < 500, (route.path, tail, status, body[:200])
        assert content_type.startswith("application/json"), (route.path, tail)
        answer = json.loads(body)
        assert answer["error"] and "/work/" not in answer["error"] and "Traceback" not in answer["error"]
        if route.path == "/api/v1/caliop/curtain.png" and name == "granule":
            assert status == expected and answer["parameter"] == "granule", (tail, answer)
        assert answer["parameter"] is None or isinstance(answer["parameter"], str)
        if name in {p.name for p in route.params} and not any(p.required for p in route.params):
            assert status == expected and answer["parameter"] == name, (route.path, tail, answer)


def test_the_curtain_never_opens_a_path_it_is_given(api, tiny_archive_path):
    """A real file of the archive named by its path (not its name) is not found: names only, never paths."""
    path = next(tiny_archive_path.glob("caliop/2021/04/12/*.hdf"))
    status, _, body = _get(f"{api}/api/v1/caliop/curtain.png?granule={path.parent.name}%2F{path.name}")
    assert status == 400 and json.loads(body)["parameter"] == "granule"
    status, _, _ = _get(f"{api}/api/v1/caliop/curtain.png?granule={path.name}&width=4096&height=2048")
    assert status == 200  # the bounds themselves are served
