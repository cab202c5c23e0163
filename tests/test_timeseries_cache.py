"""The time-series cache holds data, not code, and trusts an entry only once checked.

Entries are signed JSON (HMAC with the installation's key) checked against a schema on every read. A null,
truncated, edited, forged or ill-typed entry is ignored, the granule computed again and the entry replaced; a
cache folder that cannot be written is said once and the run goes on. In every case the masses are those of a run
without a cache.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.science.filters import Filters
from app.services.timeseries import CACHE_FORMAT, TimeseriesCache, compute_mass_timeseries, resolve_volcano

DAY = "2021-04-12"
VOLCANO = "Soufriere St Vincent"
RADII = (25.0, 100.0, 500.0, 2000.0)
FILTERS = Filters(qa_min=0.5)


def run(cache_dir):
    return compute_mass_timeseries("tiny", VOLCANO, DAY, DAY, RADII, filters=FILTERS, cache_dir=cache_dir,
                                   scheduler="sync")


@pytest.fixture(scope="module")
def baseline(tiny_archive_path):
    """The table of a run without a cache, and its report."""
    return run(False)


@pytest.fixture
def filled(tmp_path, baseline):
    """A cache folder filled by one run: (folder, entry files, the run's report)."""
    folder = tmp_path / "cache"
    table, report = run(folder)
    pd.testing.assert_frame_equal(table, baseline[0])
    entries = sorted(folder.glob("*.json"))
    assert len(entries) == report.computed > 1 and report.cache_rejected == 0
    return folder, entries, report


def reading(entry: Path) -> dict:
    return json.loads(entry.read_text())


def entry_with_records(entries: list[Path]) -> Path:
    """An entry whose granule reaches the disk (it has a record per radius)."""
    return next(e for e in entries if reading(e)["records"])


def sign_like_the_cache(folder: Path, body: dict) -> str:
    return TimeseriesCache(folder)._signature(body)


def rerun_and_check(folder: Path, baseline, n_bad: int, n_entries: int) -> None:
    """A run over the damaged cache gives the masses of a no-cache run, recomputes the bad entries, rewrites them."""
    table, report = run(folder)
    pd.testing.assert_frame_equal(table, baseline[0])
    assert report.cache_rejected == n_bad and report.computed == n_bad
    assert report.cache_hits == n_entries - n_bad
    if n_bad:
        assert f"{n_bad} cache entr" in str(report) and "computed again" in str(report)
    again, report = run(folder)  # the bad entries were overwritten with good ones
    pd.testing.assert_frame_equal(again, baseline[0])
    assert (report.cache_hits, report.computed, report.cache_rejected) == (n_entries, 0, 0)


# --- damaged and forged entries ------------------------------------------------------------------------------------


def test_entries_are_signed_json_of_the_documented_format(filled):
    folder, entries, _ = filled
    entry = reading(entry_with_records(entries))
    assert entry["format"] == CACHE_FORMAT and len(entry["hmac"]) == 64
    assert set(entry) == {"format", "key", "records", "window", "n_scanlines", "hmac"}
    assert [r["radius_km"] for r in entry["records"]] == list(RADII) == entry["key"]["radii_km"]
    body = {k: v for k, v in entry.items() if k != "hmac"}
    assert sign_like_the_cache(folder, body) == entry["hmac"]
    assert not list(folder.glob("*.pkl")) and not list(folder.rglob("*.pickle"))


@pytest.mark.parametrize("content", [b"null", b"", b"[]", b"42", b'"text"', b"\xff\xfe garbage", b"[" * 5000])
def test_a_null_empty_or_non_entry_file_is_computed_again(filled, baseline, content, caplog):
    folder, entries, _ = filled
    entries[0].write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="app.services.timeseries"):
        rerun_and_check(folder, baseline, 1, len(entries))
    warned = [r for r in caplog.records if "is not used" in r.getMessage()]
    assert len(warned) == 1 and entries[0].name in warned[0].getMessage()


def test_truncated_entries_are_computed_again(filled, baseline):
    folder, entries, _ = filled
    for entry in entries:
        data = entry.read_bytes()
        entry.write_bytes(data[: len(data) // 2])
    rerun_and_check(folder, baseline, len(entries), len(entries))


def test_a_forged_entry_with_a_valid_looking_key_and_a_bad_signature_is_not_used(filled, baseline, caplog):
    folder, entries, _ = filled
    path = entry_with_records(entries)
    entry = reading(path)
    for record in entry["records"]:
        record["mass_t"] = 123456.0  # plausible, well-typed, but not what the granule holds
    path.write_text(json.dumps(entry))  # the key is right, the signature is the old one
    with caplog.at_level(logging.WARNING, logger="app.services.timeseries"):
        rerun_and_check(folder, baseline, 1, len(entries))
    assert any("signature does not match" in r.getMessage() for r in caplog.records)
    assert 123456.0 not in run(folder)[0]["mass_t"].tolist()


def test_an_entry_signed_with_another_key_is_not_used(filled, baseline):
    folder, entries, _ = filled
    path = entry_with_records(entries)
    entry = reading(path)
    body = {k: v for k, v in entry.items() if k != "hmac"}
    entry["hmac"] = TimeseriesCache(folder, secret=b"k" * 32)._signature(body)
    path.write_text(json.dumps(entry))
    rerun_and_check(folder, baseline, 1, len(entries))


def test_an_entry_copied_under_another_granules_name_is_not_used(filled, baseline):
    folder, entries, _ = filled
    with_data = entry_with_records(entries)
    other = next(e for e in entries if e != with_data)
    other.write_bytes(with_data.read_bytes())  # a valid, signed entry, of another key
    rerun_and_check(folder, baseline, 1, len(entries))


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("mass_t", "12.5", "mass_t '12.5' is not a number of tonnes"),
        ("mass_t", None, "mass_t None is not a number"),
        ("n_pixels", -3, "pixel counts"),
        ("n_valid", 1.5, "pixel counts"),
        ("coverage", 1.5, "coverage 1.5 is not a fraction"),
        ("time", "2021-04-12", "is not a time in ns"),
        ("time", 10**20, "is not a time in ns"),
        ("orbit", -1, "orbit -1 is not a whole number"),
        ("orbit", True, "orbit True is not a whole number"),
        ("radius_km", 26.0, "radius_km 26.0 is not the radius 25"),
        ("granule", "/etc/passwd", "is not the key's"),
    ],
)
def test_a_signed_entry_of_the_wrong_types_or_ranges_is_not_used(filled, baseline, field, value, problem, caplog):
    """The schema is checked even when the signature holds (a leaked key, a bug of an older version)."""
    _resign_and_rerun(filled, baseline, lambda e: e["records"][0].update({field: value}), problem, caplog)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda e: e.update(records=e["records"][:2]), "not a list of 0 or 4 records"),
        (lambda e: e.update(window=[5, 2]), "window [5, 2] is not"),
        (lambda e: e.update(window=None), "records but no window"),
        (lambda e: e.update(n_scanlines=-1), "n_scanlines -1"),
        (lambda e: e.update(format="fumarole-timeseries-cache/1"), "its format is"),
        (lambda e: e["records"][0].update(extra="code"), "record 0 is not a mapping of the fields"),
    ],
)
def test_a_signed_entry_of_the_wrong_shape_is_not_used(filled, baseline, change, problem, caplog):
    _resign_and_rerun(filled, baseline, change, problem, caplog)


def _resign_and_rerun(filled, baseline, change, problem, caplog):
    """Change an entry, sign it again with the installation's key, and check the run refuses it and says why."""
    folder, entries, _ = filled
    path = entry_with_records(entries)
    entry = reading(path)
    change(entry)
    body = {k: v for k, v in entry.items() if k != "hmac"}
    entry["hmac"] = sign_like_the_cache(folder, body)
    path.write_text(json.dumps(entry))
    with caplog.at_level(logging.WARNING, logger="app.services.timeseries"):
        rerun_and_check(folder, baseline, 1, len(entries))
    assert any(problem in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values, extra=st.dictionaries(st.sampled_from(["records", "window", "n_scanlines", "key", "format"]),
                                                json_values, max_size=3))
def test_any_json_in_an_entry_is_refused_without_an_exception(tmp_path, value, extra):
    key = TimeseriesCache.key({"path": "/a/S5P.nc", "size": 1, "mtime": 2.0}, resolve_volcano(360150), RADII,
                              "so2_7km", FILTERS)
    cache = TimeseriesCache(tmp_path, secret=b"s" * 32)
    path = cache._path(key)
    path.write_text(json.dumps(value))
    assert cache.get(key) is None
    entry = {"format": CACHE_FORMAT, "key": key, "records": [], "window": None, "n_scanlines": 0, **extra}
    entry["hmac"] = cache._signature(entry)
    path.write_text(json.dumps(entry))
    got = cache.get(key)  # signed: only the schema decides
    assert got is None or (got["records"] == [] and got["n_scanlines"] >= 0)


# --- a cache folder that cannot be written -------------------------------------------------------------------------


def test_a_cache_folder_that_cannot_be_made_is_said_once_and_the_run_completes(tmp_path, baseline, caplog):
    from app.core.state import said_once_reset

    said_once_reset()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    folder = blocker / "cache"  # mkdir fails whatever the user's rights (root ignores chmod)
    with caplog.at_level(logging.WARNING):
        table, report = run(folder)
    pd.testing.assert_frame_equal(table, baseline[0])
    assert report.computed == baseline[1].computed > 1 and report.cache_hits == 0
    said = [r.getMessage() for r in caplog.records if "cannot write the time-series cache" in r.getMessage()]
    assert len(said) == 1 and "going on in memory" in said[0]
    assert blocker.read_text() == "not a folder\n"


def test_the_default_cache_is_never_in_the_archive(tiny_archive_path, baseline):
    before = set(tiny_archive_path.rglob("*"))
    table, report = run(None)
    pd.testing.assert_frame_equal(table, baseline[0])
    folder = Path(report.cache_dir)
    assert not folder.resolve().is_relative_to(tiny_archive_path.resolve())
    again, second = run(None)
    pd.testing.assert_frame_equal(again, baseline[0])
    assert second.computed == 0 and second.cache_hits == report.computed + report.cache_hits
    assert len(list(folder.glob("*.json"))) >= second.cache_hits > 1
    new = set(tiny_archive_path.rglob("*")) - before
    assert not [p for p in new if p.suffix == ".json" or ".fumarole-cache" in p.parts]
