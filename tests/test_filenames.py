"""File names: the real public granule names parse, and the formatters give them back."""

from __future__ import annotations

import datetime as dt
import fnmatch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.data import filenames as fn
from app.data.errors import GranuleError
from app.data.filenames import PATTERNS, parse_filename

PUBLIC_S5P = [
    "S5P_NRTI_L2__SO2____20200430T125948_20200430T130448_13196_01_010108_20200430T134425.nc",
    "S5P_NRTI_L2__SO2____20250705T064145_20250705T064645_40035_03_020701_20250705T071829.nc",
]


def test_public_s5p_name_parses():
    f = fn.parse_filename("/archive/tropomi/2020/04/30/" + PUBLIC_S5P[0])
    assert f == {
        "product": "tropomi_so2",
        "platform": "S5P",
        "instrument": "TROPOMI",
        "mode": "NRTI",
        "start": dt.datetime(2020, 4, 30, 12, 59, 48),
        "end": dt.datetime(2020, 4, 30, 13, 4, 48),
        "orbit": 13196,
        "collection": 1,
        "processor": 10108,
        "created": dt.datetime(2020, 4, 30, 13, 44, 25),
    }
    g = fn.parse_filename(PUBLIC_S5P[1], product="tropomi_so2")
    assert (g["orbit"], g["collection"], g["processor"]) == (40035, 3, 20701)


@pytest.mark.parametrize("name", PUBLIC_S5P)
def test_public_s5p_name_round_trips(name):
    f = fn.parse_filename(name)
    again = fn.tropomi_filename(
        f["start"], f["end"], f["orbit"], f["collection"], f["processor"], f["created"], mode=f["mode"]
    )
    assert again == name
    assert fnmatch.fnmatch(name, fn.PATTERNS["tropomi_so2"].glob)


def test_tropomi_filename_defaults_and_inputs():
    start = dt.datetime(2021, 4, 12, 16, 59, 31)
    end = dt.datetime(2021, 4, 12, 18, 41, 1)
    assert (
        fn.tropomi_filename(start, end, 18112)
        == "S5P_OFFL_L2__SO2____20210412T165931_20210412T184101_18112_02_020104_20210412T194101.nc"
    )
    # aware times are converted to UTC; ISO strings and numpy times are accepted
    paris = dt.timezone(dt.timedelta(hours=2))
    name = fn.tropomi_filename(
        start.replace(hour=18, tzinfo=paris), "2021-04-12T18:41:01Z", 18112, processor=20104, created=end
    )
    assert name.startswith("S5P_OFFL_L2__SO2____20210412T165931_20210412T184101_18112_02_020104_20210412T184101")
    with pytest.raises(ValueError, match="does not parse back"):
        fn.tropomi_filename(start, end, 123456)
    with pytest.raises(ValueError, match="four letters"):
        fn.tropomi_filename(start, end, 1, mode="OFFLINE")


@pytest.mark.parametrize(("letter", "daytime"), [("D", True), ("N", False)])
def test_caliop_name_day_night(letter, daytime):
    name = f"CAL_LID_L1-Standard-V4-51.2021-04-12T05-36-44Z{letter}.hdf"
    f = fn.parse_filename(name)
    assert f["product"] == "caliop_l1b" and f["platform"] == "CALIPSO"
    assert f["start"] == dt.datetime(2021, 4, 12, 5, 36, 44)
    assert f["day_night"] == letter and f["daytime"] is daytime
    assert f["version"] == "4.51"
    assert fn.caliop_filename(f["start"], letter) == name
    assert fn.caliop_filename(f["start"], letter, minor="10") == name.replace("V4-51", "V4-10")


def test_caliop_day_night_is_checked():
    with pytest.raises(ValueError, match="'D' .*'N'"):
        fn.caliop_filename(dt.datetime(2021, 4, 12), "X")
    with pytest.raises(GranuleError, match=r"CAL_LID.*ZX\.hdf: file name: the letter after Z must be D .* or N"):
        fn.parse_filename("CAL_LID_L1-Standard-V4-51.2021-04-12T05-36-44ZX.hdf")


def test_name_that_does_not_parse_names_file_and_pattern():
    path = "/data/tropomi/S5P_OFFL_L2__SO2____20210412T165931_garbled.nc"
    with pytest.raises(GranuleError) as e:
        fn.parse_filename(path, product="tropomi_so2")
    assert e.value.path == path
    assert str(e.value) == f"{path}: file name does not match the S5P L2 pattern " + fn.PATTERNS["tropomi_so2"].pattern
    assert "S5P_{mode}_L2__SO2____" in str(e.value)
    # without a product, every pattern tried is listed
    with pytest.raises(GranuleError, match=r"README\.txt: .*any known product.*tropomi_so2: S5P_.*caliop_l1b: CAL_"):
        fn.parse_filename("README.txt")
    with pytest.raises(GranuleError, match="unknown product 'modis'"):
        fn.parse_filename(path, product="modis")


def test_impossible_date_in_name():
    name = PUBLIC_S5P[0].replace("20200430T125948", "20201330T125948")
    with pytest.raises(GranuleError, match=r"field start = '20201330T125948' is not a valid time .*%Y%m%dT%H%M%S"):
        fn.parse_filename(name)


def test_nwcsaf_ctth_name():
    name = "S_NWC_CTTH_MSG4_MSG-N-BS_20210412T120000Z.nc"
    f = fn.parse_filename(name)
    assert f == {
        "product": "nwcsaf_ctth",
        "platform": "MSG4",
        "region": "MSG-N-BS",
        "start": dt.datetime(2021, 4, 12, 12),
    }
    assert fn.nwcsaf_ctth_filename(f["start"], "MSG4", "MSG-N-BS") == name


def test_a_new_product_is_one_declaration(monkeypatch):
    monkeypatch.setattr(fn, "PATTERNS", dict(fn.PATTERNS))
    fn.register_pattern(
        fn.FilenamePattern(
            product="abi_l1b",
            pattern="OR_ABI-L1b-{sector:4s}-M{mode:1d}C{channel:02d}_G{satellite:02d}_s{start:%Y%j%H%M%S}{tenth:1d}"
            "_e{end:%Y%j%H%M%S}{end_tenth:1d}_c{created:%Y%j%H%M%S}{created_tenth:1d}.nc",
            description="GOES ABI L1b",
            constants={"instrument": "ABI"},
        )
    )
    # (the registered geo_abi_l1b pattern matches this name too: name the product to use the new declaration)
    f = fn.parse_filename("OR_ABI-L1b-RadF-M6C13_G16_s20211021200203_e20211021209511_c20211021209577.nc",
                          product="abi_l1b")
    assert f["product"] == "abi_l1b" and f["channel"] == 13 and f["satellite"] == 16
    assert f["start"] == dt.datetime(2021, 4, 12, 12, 0, 20) and f["tenth"] == 3


def test_pattern_errors_are_caught_when_declared():
    with pytest.raises(ValueError, match="appears twice"):
        fn.FilenamePattern("x", "{a}_{a}.nc", "x")
    with pytest.raises(ValueError, match="unsupported format"):
        fn.FilenamePattern("x", "{a:>5}.nc", "x")
    with pytest.raises(ValueError, match="missing field"):
        fn.PATTERNS["tropomi_so2"].format(orbit=1)


# --- fuzz: any file name is a result or a GranuleError naming it, never another exception --------------------


@settings(max_examples=300, deadline=None)
@given(name=st.one_of(
    st.text(max_size=120),
    # names of the right shape whose digits are anything (month 13, day 00, hour 99, ...)
    st.builds(lambda a, b, c, o: f"S5P_OFFL_L2__SO2____{a}T000000_{b}T010000_{o:05d}_02_020104_{c}T020000.nc",
              st.from_regex(r"\A\d{8}\Z"), st.from_regex(r"\A\d{8}\Z"), st.from_regex(r"\A\d{8}\Z"),
              st.integers(0, 99999)),
    st.builds(lambda d, t, dn: f"CAL_LID_L1-Standard-V4-51.{d}T{t}Z{dn}.hdf",
              st.from_regex(r"\A\d{4}-\d{2}-\d{2}\Z"), st.from_regex(r"\A\d{2}-\d{2}-\d{2}\Z"),
              st.sampled_from(["D", "N", "X", "", "DD"])),
))
def test_any_name_parses_or_is_a_granule_error(name):
    for product in [None, *PATTERNS]:
        try:
            fields = parse_filename(f"archive/folder/{name}", product)
        except GranuleError as e:
            assert e.path == f"archive/folder/{name}" and e.problem
        else:
            assert fields["product"] in PATTERNS


def test_month_13_is_named():
    name = "S5P_OFFL_L2__SO2____20211312T165931_20211312T174931_18112_02_020104_20211312T184931.nc"
    with pytest.raises(GranuleError) as info:
        parse_filename(name, "tropomi_so2")
    assert info.value.problem == \
        "file name field start = '20211312T165931' is not a valid time in the format %Y%m%dT%H%M%S"
