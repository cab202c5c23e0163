"""The command line: sample archive, index, errors on stderr."""

import json

import numpy as np

from app.cli import main
from app.data.tropomi import read_swath


def test_sample_writes_a_complete_archive_and_skips_when_done(tmp_path, capsys):
    out = tmp_path / "arch"
    rc = main(["sample", "--resolution", "tiny", "--out", str(out), "--products", "tropomi",
               "--days", "2021-04-12", "--workers", "1"])
    assert rc == 0
    files = sorted(out.glob("tropomi/2021/04/12/S5P_OFFL_L2__SO2____*.nc"))
    assert len(files) == 15
    stamp = json.loads((out / ".complete").read_text())
    assert stamp["files"] == 15 and stamp["scenario"] == "soufriere-tiny"
    ds = read_swath(files[9], variables=("so2_7km",))
    assert ds.attrs["orbit"] == 18121
    assert np.isfinite(ds["so2_7km"]).mean() > 0.5
    capsys.readouterr()
    assert main(["sample", "--resolution", "tiny", "--out", str(out), "--if-missing"]) == 0
    assert "already complete" in capsys.readouterr().err


def test_index_prints_what_the_archive_holds(tiny_archive_path, capsys):
    assert main(["index", "--catalog", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "tropomi_so2: 15 granules" in out
    assert "orbits 18112–18126" in out


def test_missing_catalogue_is_one_sentence_on_stderr(capsys, tmp_path):
    rc = main(["index", "--catalog", str(tmp_path / "nowhere.yaml")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("fumarole: catalogue ") and "nowhere.yaml does not exist" in err
    assert "Traceback" not in err


def test_argument_errors_are_one_line_with_exit_status_2(capsys):
    import pytest

    for argv, says in [(["frobnicate"], "fumarole: argument command: invalid choice: 'frobnicate'"),
                       (["serve", "--port", "x\ny"], "fumarole serve: argument --port: invalid int value: 'x\\ny'"),
                       (["index", "--bogus"], "fumarole: unrecognized arguments: --bogus")]:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.startswith(says) and err.count("\n") == 1, err
