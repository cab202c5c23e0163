"""File names from a hostile or careless archive: every name parses to fields or is a GranuleError naming it."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.data.errors import GranuleError
from app.data.filenames import PATTERNS, caliop_filename, parse_filename, tropomi_filename

#: Real names of each product (as the operators publish them), mutated below.
REAL_NAMES = [
    "S5P_OFFL_L2__SO2____20210412T151823_20210412T165953_18121_01_020104_20210414T175908.nc",
    "CAL_LID_L1-Standard-V4-51.2021-04-12T17-38-53ZD.hdf",
    "OR_ABI-L1b-RadF-M6C13_G16_s20211021500203_e20211021509523_c20211021509585.nc",
    "HS_H08_20210412_1500_B13_FLDK_R20_S0110.DAT",
    "HS_H09_20250101_0000_B03_FLDK_R05_S0510.DAT.bz2",
    "S_NWC_CTTH_GOES16_GLOBAL-NR_20210412T150000Z.nc",
]

names = st.sampled_from(REAL_NAMES)
digits = st.text("0123456789", min_size=1, max_size=3)


@st.composite
def mutated_names(draw) -> str:
    """A real name with one of: a digit run replaced, a character inserted/dropped, or a random tail."""
    name = draw(names)
    kind = draw(st.sampled_from(["digits", "insert", "drop", "tail", "text"]))
    i = draw(st.integers(0, len(name) - 1))
    if kind == "digits":
        return name[:i] + draw(digits) + name[i + 1:]
    if kind == "insert":
        return name[:i] + draw(st.characters()) + name[i:]
    if kind == "drop":
        return name[:i] + name[i + 1:]
    if kind == "tail":
        return name + draw(st.text(max_size=20))
    return draw(st.text(max_size=200))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=mutated_names(), folder=st.sampled_from(["", "/archive/2021/04/12/", "s3://bucket/x/"]))
def test_any_name_parses_or_is_a_named_granule_error(name, folder):
    path = folder + name
    for product in [None, *PATTERNS]:
        try:
            fields = parse_filename(path, product)
        except GranuleError as exc:
            assert exc.path == path
            assert exc.problem
            continue
        assert fields["product"] in PATTERNS
        for key in ("start", "end"):
            if key in fields:
                assert isinstance(fields[key], dt.datetime)


def test_month_13_is_named_with_the_field_at_fault():
    bad = "S5P_OFFL_L2__SO2____20211312T151823_20211312T165953_18121_01_020104_20210414T175908.nc"
    try:
        parse_filename(bad, "tropomi_so2")
    except GranuleError as exc:
        assert "start" in exc.problem and "20211312T151823" in exc.problem
    else:  # pragma: no cover - the assertion that makes this test fail
        raise AssertionError("a month-13 name was accepted")


def test_writers_names_parse_back():
    t = dt.datetime(2021, 4, 12, 15, 18, 23)
    name = tropomi_filename(t, t + dt.timedelta(minutes=101), 18121)
    assert parse_filename(name)["orbit"] == 18121
    assert parse_filename(caliop_filename(t, "D"))["start"] == t


def test_every_real_name_is_recognised():
    assert [parse_filename(n)["product"] for n in REAL_NAMES] == [
        "tropomi_so2", "caliop_l1b", "geo_abi_l1b", "geo_ahi_hsd", "geo_ahi_hsd", "nwcsaf_ctth"]
