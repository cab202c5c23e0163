"""`fumarole sample` never loses a file of the user's, and refuses bad arguments in one line before any work."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import main
from app.sample import archive as archive_mod

ONE_DAY = ["--resolution", "tiny", "--products", "tropomi", "--days", "2021-04-12", "--workers", "1"]
#: collection 01 and processor 02.01.04, as the real OFFL granules of that day
GRANULE = "tropomi/2021/04/12/S5P_OFFL_L2__SO2____20210412T000441_20210412T014611_18112_01_020104_20210412T044611.nc"


def _run(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    return rc, capsys.readouterr().err


@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if any sample file would be written."""
    def refuse(*a, **k):
        raise AssertionError("work started although the arguments are bad")

    monkeypatch.setattr(archive_mod, "_task", refuse)
    monkeypatch.setattr(archive_mod, "_run_jobs", refuse)


def test_a_folder_of_the_users_is_refused_and_left_as_it_was(tmp_path, capsys, no_work):
    out = tmp_path / "mine"
    (out / "tropomi").mkdir(parents=True)
    (out / "notes.txt").write_text("my notes")
    (out / "tropomi" / "x.nc").write_bytes(b"my data")
    rc, err = _run(["sample", *ONE_DAY, "--out", str(out)], capsys)
    assert rc == 2
    assert err == (f"fumarole: the archive folder {out} is not empty and is not a Fumarole sample archive (it has no "
                   ".complete stamp): give a new or empty folder, so that no file of yours is overwritten\n")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["notes.txt", "tropomi", "tropomi/x.nc"]
    assert (out / "notes.txt").read_text() == "my notes" and (out / "tropomi" / "x.nc").read_bytes() == b"my data"


def test_a_users_file_inside_an_archive_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "arch"
    assert main(["sample", *ONE_DAY, "--out", str(out)]) == 0
    stamp = json.loads((out / ".complete").read_text())
    # one day of TROPOMI (15 orbits) and the scenario's wind file for the flux
    assert len(stamp["manifest"]) == 16 and GRANULE in stamp["manifest"] and "wind/era5_wind.nc" in stamp["manifest"]
    written = (out / GRANULE).read_bytes()
    assert written[:4] == b"\x89HDF"
    # the user puts a file of theirs under the name of a sample file (not one of ours: drop it from the manifest)
    stamp["manifest"].remove(GRANULE)
    (out / ".complete").write_text(json.dumps(stamp))
    (out / GRANULE).write_bytes(b"the user's own granule")
    (out / "README.txt").write_text("mine")
    capsys.readouterr()
    rc, err = _run(["sample", *ONE_DAY, "--out", str(out)], capsys)
    assert rc == 2
    progress, last = err.splitlines()[:-1], err.splitlines()[-1]
    assert progress == ["[1/1] tropomi 2021-04-12"]
    assert last.startswith(f"fumarole: 1 file(s) in {out} that Fumarole did not write") and GRANULE in last
    assert (out / GRANULE).read_bytes() == b"the user's own granule"
    assert (out / "README.txt").read_text() == "mine"
    # the archive is incomplete, its 14 other granules and the wind file ours, and no staging folder left behind
    assert not (out / ".complete").exists()
    assert len(json.loads((out / ".fumarole-writing").read_text())["manifest"]) == 15
    assert not list(out.glob(".fumarole-staging-*"))
    # the user moves their file away: the next run completes and replaces only its own files
    (out / GRANULE).unlink()
    capsys.readouterr()
    assert main(["sample", *ONE_DAY, "--out", str(out)]) == 0
    assert (out / GRANULE).read_bytes()[:4] == b"\x89HDF"
    assert len(json.loads((out / ".complete").read_text())["manifest"]) == 16  # 15 granules and the wind file
    assert (out / "README.txt").read_text() == "mine" and not (out / ".fumarole-writing").exists()


def test_an_empty_folder_is_accepted(tmp_path, capsys):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["sample", *ONE_DAY, "--out", str(out)]) == 0
    assert len(list(out.glob("tropomi/2021/04/12/*.nc"))) == 15


def test_the_default_folder_of_a_fresh_checkout_is_made_with_its_parents(tmp_path, capsys, monkeypatch):
    # a fresh clone has no data/ folder: `make test` runs `fumarole sample --resolution tiny` with no --out
    import app.sample.cli as cli

    fresh = tmp_path / "fresh-clone" / "data" / "tiny"
    monkeypatch.setattr(cli, "tiny_archive", lambda: fresh)
    assert main(["sample", *ONE_DAY]) == 0
    assert len(list(fresh.glob("tropomi/2021/04/12/*.nc"))) == 15
    # a folder the user names must exist up to its parent: a typo is not made into folders
    rc, err = _run(["sample", *ONE_DAY, "--out", str(tmp_path / "typo" / "archive")], capsys)
    assert rc == 2 and "does not exist" in err


@pytest.mark.parametrize(("argv", "says"), [
    (["--days", "3000-01-01"], "day 3000-01-01 is not a day of scenario soufriere-tiny: 2021-04-12"),
    (["--days", "1677-09-21"], "day 1677-09-21 is not a day of scenario soufriere-tiny"),
    (["--days", "2021-13-01"], "day '2021-13-01' is not a date YYYY-MM-DD"),
    (["--days", ","], "no day given"),
    (["--scenario", "vesuvius"], "unknown scenario 'vesuvius'; known scenarios: etna, hunga-tonga, lewotobi-2025, "
                                       "lewotobi-2025-tiny, soufriere, "),
    (["--products", "tropomi,modis"], "unknown product 'modis'; known products: tropomi, caliop, geo"),
    (["--resolution", "huge"], "argument --resolution: invalid choice: 'huge'"),
    (["--workers", "0"], "--workers 0: give 1 to 64 processes"),
    (["--workers", "many"], "argument --workers: invalid int value: 'many'"),
])
def test_bad_arguments_are_one_line_before_any_work(argv, says, tmp_path, capsys, no_work):
    out = tmp_path / "new"
    rc, err = _run(["sample", "--resolution", "tiny", "--out", str(out), *argv], capsys)
    assert rc == 2
    assert says in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_bad_out_folders_are_refused_before_any_work(tmp_path, capsys, no_work):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [
        (tmp_path / "missing" / "arch", f"its parent {tmp_path / 'missing'} does not exist"),
        (a_file / "arch", f"its parent {a_file} is a file, not a folder"),
        (a_file, f"the archive folder {a_file} is a file, not a folder"),
    ]
    for out, says in cases:
        rc, err = _run(["sample", *ONE_DAY, "--out", str(out)], capsys)
        assert rc == 2 and says in err and err.count("\n") == 1, err
    assert a_file.read_text() == "x" and not (tmp_path / "missing").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_is_refused(tmp_path, capsys, no_work):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, err = _run(["sample", *ONE_DAY, "--out", str(ro / "arch")], capsys)
    finally:
        ro.chmod(0o755)
    assert rc == 2 and "is not writable" in err


WORDS = ["sample", "index", "--out", "--days", "--products", "--scenario", "--resolution", "--workers", "--catalog",
         "--if-missing", "tiny", "demo", "full", "tropomi", "geo", "caliop", "nope", "3000-01-01", "2021-04-12",
         "1677-01-01", "NaT", "nan", "-1", "0", "99", ",", "", "etna", "/nope.yaml", "sample.yaml", "x" * 300]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=st.lists(st.sampled_from(WORDS) | st.text(max_size=10), min_size=1, max_size=7))
def test_random_index_and_sample_arguments_end_in_0_or_2_and_never_a_traceback(argv, tmp_path, capsys,
                                                                                monkeypatch):
    # refusal paths only: a run that would write is stopped where the work starts, and --out stays under tmp
    monkeypatch.setattr(archive_mod, "_run_jobs", lambda *a, **k: (_ for _ in ()).throw(SystemExit(0)))
    monkeypatch.setattr("app.data.index.GranuleIndex.refresh",
                        lambda self: (_ for _ in ()).throw(SystemExit(0)))
    command = argv[0] if argv[0] in ("sample", "index") else "sample"
    rest = argv[1:] if argv[0] in ("sample", "index") else argv
    if command == "sample":
        rest = [*rest, "--out", str(tmp_path / "h" / "out")]
        (tmp_path / "h").mkdir(exist_ok=True)
    rc, err = _run([command, *rest], capsys)
    assert rc in (0, 2), (argv, rc, err)
    assert "Traceback" not in err
    if rc == 2:
        assert err.count("\n") == 1 and err.startswith("fumarole"), err
