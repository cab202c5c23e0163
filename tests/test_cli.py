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
    assert stamp["files"] == 15 + 1 and stamp["scenario"] == "soufriere-tiny"  # the orbits and the wind file
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


def test_only_the_sample_command_loads_app_sample():
    """The CLI's parser and its other commands never import app.sample; `fumarole sample` dispatches to it."""
    import subprocess
    import sys

    code = ("import sys; from app.cli import build_parser, main; build_parser(); "
            "main(['index', '--catalog', 'nowhere']); "
            "print(sorted(m for m in sys.modules if m.startswith('app.sample')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    code = ("import sys; from app.cli import main; main(['sample', '--scenario', 'nowhere', '--out', '/nonexistent']); "
            "print('app.sample.cli' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True" and "unknown scenario 'nowhere'" in out.stderr


def test_timeseries_defaults_are_the_one_default_filters(tiny_archive_path, tmp_path):
    """`fumarole timeseries` without filter flags uses Filters.default(), as the panel and the engine do: the same
    request gives the same table."""
    from app.data.archive import Archive
    from app.science.filters import DEFAULT_FILTERS
    from app.services.timeseries import compute_mass_timeseries, filters_from_header, read_timeseries_csv
    from app.views.timeseries_panel import TimeSeriesPanel

    out = tmp_path / "t.csv"
    assert main(["timeseries", "--volcano", "Soufriere St Vincent", "--start", "2021-04-12", "--end", "2021-04-12",
                 "--radii", "100,500", "--catalog", "tiny", "--no-cache", "-o", str(out)]) == 0
    header, table = read_timeseries_csv(out)
    assert filters_from_header(header) == DEFAULT_FILTERS
    engine, _ = compute_mass_timeseries("tiny", "Soufriere St Vincent", "2021-04-12", "2021-04-12", (100, 500),
                                        cache_dir=False)
    import pandas as pd

    pd.testing.assert_frame_equal(table, engine)
    assert TimeSeriesPanel(archive=Archive("tiny"), cache_dir=False).filters() == DEFAULT_FILTERS


def test_filter_flags_take_none_for_no_limit(tiny_archive_path, tmp_path, capsys):
    from app.services.timeseries import read_timeseries_csv

    out = tmp_path / "t.csv"
    assert main(["timeseries", "--volcano", "Soufriere St Vincent", "--start", "2021-04-12", "--end", "2021-04-12",
                 "--radii", "500", "--sza-max", "none", "--catalog", "tiny", "--no-cache", "-o", str(out)]) == 0
    header, _ = read_timeseries_csv(out)
    assert header["filter_sza_max"] == "none"
    import pytest

    with pytest.raises(SystemExit) as exc:
        main(["timeseries", "--volcano", "x", "--start", "2021-04-12", "--end", "2021-04-12", "--sza-max", "high",
              "-o", str(out)])
    assert exc.value.code == 2 and "argument --sza-max: 'high' is not a number or 'none'" in capsys.readouterr().err
