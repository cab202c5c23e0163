"""Fuzz the GEO HTTP API (Hypothesis): random and hostile values for every parameter of ``image.png``, ``value`` and
``slots`` — huge numbers, NaN, infinities, negatives, unicode, very long strings, repeated, unknown and empty
parameters — always give a 2xx/4xx answer (JSON, or a PNG within the size bounds), never a 5xx, never a hang.

Two passes: the answer functions called directly (many examples, fast), then the same values through a real
Tornado server with the API's routes (fewer examples, every request bounded in time).
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from conftest import serve_api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.api import geo as api_geo
from app.data.archive import Archive
from app.data.errors import UserInputError
from app.data.geo_bands import GENERIC_CHANNELS
from app.render import geo as render

HOSTILE = st.one_of(
    st.sampled_from(["", " ", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "NaT", "nat", "None", "null",
                     "latest", "now", "today", "1e308", "-1e308", "1e-320", "-0", "0x10", "1_000", "١٢٣", " 12 ",
                     "\x00", "%00", "../../etc/passwd", "/etc/passwd", "9" * 40, "-" * 10, ",,,", "1,2,3,4,5",
                     "2021-13-45", "2021-04-12T25:61", "3000-01-01", "1677-09-21", "2262-04-12", "1969-12-31",
                     "2101-01-01", "0000-00-00", "99999-01-01", "2021-04-12T15:00+14:00", "2021-W15-1",
                     "1618239600", "<script>alert(1)</script>", "'; DROP TABLE slots; --", "\u202e\u0645\u0631\u062d"]),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=20),
    st.text(min_size=240, max_size=300),
)

VALID = {
    "satellite": st.sampled_from(["G16", "GOES-17", "Meteosat", "Meteosat IODC", "H08", "himawari-8"]),
    "product": st.sampled_from(render.products()),
    "time": st.sampled_from(["2021-04-12T15:00", "2021-04-12T12:00", "2021-04-12T12:00Z", "2021-04-12T13:00+01:00",
                             "2021-04-12T15:10", "2100-12-31T23:59", "1970-01-01T00:00", "latest"]),
    "bbox": st.one_of(
        st.tuples(st.floats(-180, 360), st.floats(-90, 90), st.floats(-180, 360), st.floats(-90, 90))
        .map(lambda b: ",".join(f"{v:.6g}" for v in b)),
        st.sampled_from(["-100,-10,-40,40", "170,-20,-170,20", "-61.3,-80,-61.2,80", "-180,-90,180,90",
                         "0,0,1e-9,1", "-70,5,-50,5.0001"]),
    ),
    "width": st.sampled_from(["16", "64", "300", "4096"]),
    "height": st.sampled_from(["16", "50", "4096"]),
    "lat": st.floats(-90, 90).map(repr),
    "lon": st.floats(-180, 360).map(repr),
    "channels": st.lists(st.sampled_from(sorted(GENERIC_CHANNELS)), max_size=4).map(",".join),
    "date": st.sampled_from(["2021-04-12", "2021-04-13", "2021-04-12T10:00", "2100-12-31", "1970-01-01"]),
}

TIMES = st.sampled_from(["NaT", "nat", "nan", "NaN", "inf", "3000-01-01", "3000-01-01T00:00", "1677-09-21T00:13",
                         "1677-01-01", "2262-04-12", "1969-12-31T23:59", "2101-01-01", "0001-01-01", "9999-12-31",
                         "2021-13-45", "2021-04-12T25:61", "2021-04-12T15:00+99:00", "1e30", "-1", "0", "now",
                         "2021-04-12T15:00:00.123456789", "2021-04-12 15:00 UTC", "12/04/2021"])
NUMBERS = st.one_of(st.sampled_from(["nan", "-nan", "inf", "-inf", "1e308", "-1e308", "1e-320", "-0", "0x10",
                                     "1_000", "١٢٣", "1e999", "  ", "+5", "5.", ".5", "1,5"]),
                    st.integers(-(10**30), 10**30).map(str), st.floats(allow_nan=True).map(repr))
SPECIFIC = {"time": TIMES, "date": TIMES, "width": NUMBERS, "height": NUMBERS, "lat": NUMBERS, "lon": NUMBERS,
            "bbox": st.lists(NUMBERS, min_size=3, max_size=5).map(",".join),
            "channels": st.lists(st.one_of(st.sampled_from(sorted(GENERIC_CHANNELS)), st.text(max_size=6)),
                                 max_size=5).map(",".join),
            "satellite": VALID["satellite"], "product": VALID["product"]}

ROUTE_PARAMS = {
    "image.png": ("satellite", "product", "time", "bbox", "width", "height"),
    "value": ("satellite", "time", "lat", "lon", "channels"),
    "slots": ("satellite", "date"),
}


REQUIRED = {"satellite", "lat", "lon"}


@st.composite
def _queries(draw, route: str) -> list[tuple[str, str]]:
    """A valid query with one or two of its values spoiled (or left out), sometimes an unknown or repeated one.

    Mostly valid, so that the hostile value reaches the code past the first check.
    """
    names = ROUTE_PARAMS[route]
    args = {n: draw(VALID[n]) for n in names if n in REQUIRED or draw(st.booleans())}
    for name in draw(st.lists(st.sampled_from(names), min_size=0, max_size=2, unique=True)):
        if draw(st.integers(0, 5)) == 0:
            args.pop(name, None)
        else:
            args[name] = draw(st.one_of(SPECIFIC[name], SPECIFIC[name], HOSTILE))
    pairs = list(args.items())
    if draw(st.integers(0, 9)) == 0:  # unknown
        pairs.append((draw(st.one_of(st.sampled_from(["colour", "callback", "x", ""]), st.text(max_size=8))),
                      draw(HOSTILE)))
    if draw(st.integers(0, 5)) == 0:  # repeated: the last one counts
        name = draw(st.sampled_from(names))
        pairs.append((name, draw(st.one_of(VALID[name], SPECIFIC[name], HOSTILE))))
    return pairs


def _small_enough(pairs: list) -> bool:
    """Leave out the valid requests for pictures over a million pixels (slow to draw, not what is fuzzed)."""
    args = dict(pairs)
    try:
        w = int(str(args.get("width", "800")).strip() or 800)
        h = int(str(args.get("height", "0")).strip() or 0)
    except ValueError:
        return True
    return not (args.get("bbox") and w * max(h, 1) > 1_000_000) and not (w > 1000 and h > 1000)


@pytest.fixture(scope="module")
def archive(tiny_archive_path) -> Archive:
    a = Archive("tiny")
    a.refresh(lambda *_: None)
    return a


def _check_png(png: bytes) -> None:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "RGBA"
    assert 1 <= image.width <= 4096 and 1 <= image.height <= 4096


ANSWERS = {"image.png": lambda a, args: api_geo.image_png(a, args).png, "value": api_geo.value_json,
           "slots": api_geo.slots_json}


@pytest.mark.parametrize("route", list(ROUTE_PARAMS))
def test_answer_functions_raise_only_user_input_errors(archive, route):
    @settings(max_examples=100 if route == "image.png" else 300, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(_queries(route).filter(_small_enough))
    def check(pairs):
        args = dict(pairs)  # the handler keeps the last value of a repeated parameter
        try:
            result = ANSWERS[route](archive, args)
        except UserInputError as exc:  # 400 or 404: a sentence
            assert str(exc) and len(str(exc)) < 2000
            return
        if route == "image.png":
            _check_png(result)
        else:
            json.dumps(result)

    check()


# --- one pass through a real server ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(archive):
    with serve_api(archive) as url:
        yield url


def _fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:  # a hang fails here
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


RAW_TAILS = st.sampled_from(["", "&%FF%FE=1", "&width=%FF", "&=", "&&&", "&satellite", "&bbox=%C0%AF",
                             "&time=%00", "&" + "a=1&" * 50])


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(list(ROUTE_PARAMS)), data=st.data(), tail=RAW_TAILS)
def test_the_server_answers_every_query_with_json_or_a_png_never_a_5xx(server, route, data, tail):
    pairs = data.draw(_queries(route).filter(_small_enough))
    query = urllib.parse.urlencode([(k, v) for k, v in pairs], encoding="utf-8", errors="surrogatepass")
    status, content_type, body = _fetch(f"{server}/api/geo/{route}?{query}{tail}")
    assert status < 500, (status, body[:300])
    if status == 200 and route == "image.png":
        assert content_type == "image/png"
        _check_png(body)
        return
    assert content_type.startswith("application/json"), (status, content_type)
    answer = json.loads(body)
    if status >= 400:
        assert status in (400, 404) and isinstance(answer["error"], str) and answer["error"]
        assert "Traceback" not in answer["error"]
