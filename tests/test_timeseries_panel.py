"""The VolcPlume time-series panel without a browser: it follows the map, computes, plots, cancels, explains, and
downloads the same CSV as the CLI.

Runs on the tiny sample archive (one day of La Soufrière): within 2000 km of St Vincent two orbits (18121, 18122)
have pixels; only 18122 has enough covered radii for a flux.
"""

from __future__ import annotations

import datetime as dt
import threading

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import pytest

from app.cli import main
from app.data.archive import Archive
from app.services.timeseries import TABLE_COLUMNS, compute_flux_timeseries, read_timeseries_csv
from app.views.timeseries_panel import DEFAULT_RADII_KM, TimeSeriesPanel
from app.views.volcplume import RADII_KM, VolcPlume

DAY = dt.date(2021, 4, 12)


@pytest.fixture(scope="module")
def archive_root(tiny_archive_path, tmp_path_factory):
    """The tiny archive's TROPOMI granules and the scenario's ERA5-layout wind, with catalogs/tiny.yaml next to it,
    and catalogs/nowind.yaml: the same without its wind entry."""
    import shutil

    import yaml

    from app.paths import REPO
    from app.sample.wind import write_wind_file

    root = tmp_path_factory.mktemp("ts-panel-archive")
    (root / "catalogs").mkdir()
    text = (REPO / "catalogs" / "tiny.yaml").read_text()
    (root / "catalogs" / "tiny.yaml").write_text(text)
    doc = yaml.safe_load(text)
    del doc["entries"]["wind"], doc["data"]["wind_file"]
    doc["metadata"]["name"] = "nowind"
    (root / "catalogs" / "nowind.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copytree(tiny_archive_path / "tropomi", root / "data" / "tiny" / "tropomi")
    write_wind_file("soufriere-tiny", root / "data" / "tiny")
    return root


@pytest.fixture(scope="module")
def archive(archive_root):
    return Archive(str(archive_root / "catalogs" / "tiny.yaml"))


@pytest.fixture
def vp(archive):
    return VolcPlume(archive=archive)


@pytest.fixture(scope="module")
def computed(archive, tmp_path_factory):
    """A panel that followed a fresh map and computed every radius of the day once (sync), with its cache."""
    cache = tmp_path_factory.mktemp("ts-panel-cache")
    panel = TimeSeriesPanel(VolcPlume(archive=archive), cache_dir=cache, radii=RADII_KM)
    assert panel.compute(sync=True)
    return panel


def curves(obj, kind=hv.Curve) -> list:
    return obj.traverse(lambda x: x, [kind])


# --- following the map ---------------------------------------------------------------------------------------------


def test_defaults_come_from_the_map_and_follow_it_one_way(vp, tmp_path):
    vp.param.update(qa_min=0.7, edge_pixels=45, level="15km")
    panel = TimeSeriesPanel(vp, cache_dir=tmp_path)
    assert panel.volcano == vp.volcano == "Soufriere St. Vincent"
    assert (panel.start, panel.end) == (DAY, DAY)  # the archive's only day, around the map's
    assert panel.variables == ["so2_15km"] and panel.plume_height_km == 15.0
    assert panel.radii == DEFAULT_RADII_KM == [25, 50, 75, 100, 150, 200, 250, 300, 400, 500]
    assert panel.filters().key() == "qa_min=0.7,sza_max=80.0,edge_pixels=45,min_du=none"
    assert panel.log is vp.log and panel.archive is vp.archive

    vp.param.update(volcano="Etna", qa_min=0.9, sza_max=60.0, edge_pixels=0, level="PBL")
    assert panel.volcano == "Etna"
    assert (panel.qa_min, panel.sza_max, panel.edge_pixels, panel.plume_height_km) == (0.9, 60.0, 0, 0.5)
    panel.volcano = "Piton de la Fournaise"  # editable, and the map keeps its own
    assert vp.volcano == "Etna"


# --- the table and the plots ---------------------------------------------------------------------------------------


def test_table_has_a_row_per_orbit_and_radius_and_the_progress_is_complete(computed):
    table = computed.table
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert sorted(table["orbit"].unique()) == [18121, 18122]
    assert len(table) == 2 * len(RADII_KM)
    for _, rows in table.groupby("orbit"):
        assert list(rows["radius_km"]) == [float(r) for r in RADII_KM]
    assert computed.progress_total > 0 and computed.progress_done == computed.progress_total
    assert not computed.running
    assert computed.message_type == "success" and "2 orbits × 12 radii" in computed.message
    assert any("granules in the period" in m for m in computed.log.messages("info"))
    assert computed.shown_variable == "so2_7km" and list(computed.results) == ["so2_7km"]


def test_plots_have_a_line_per_radius_the_fit_and_the_flux(computed):
    mass_time = computed.mass_time_plot()
    assert len(curves(mass_time)) == len(RADII_KM) == len(curves(mass_time, hv.Scatter))
    assert [c.label for c in curves(mass_time)] == [f"{r} km" for r in RADII_KM]
    assert mass_time.get(0).kdims[0].pprint_label == "Time (UTC)"
    assert mass_time.get(0).vdims[0].pprint_label == "SO2 mass (t)"

    computed.orbit = 18122
    mass_radius = computed.mass_radius_plot()
    labels = [c.label for c in curves(mass_radius)]
    a = computed.flux.set_index("orbit").loc[18122, "a_kg_m"]
    assert labels == ["Fit a·r + b·r²", f"Volcanic a·r, a = {a:.3g} kg/m", "Noise b·r²"]
    assert "t/day" in mass_radius.opts.get().kwargs["title"]
    assert curves(mass_radius, hv.Scatter)[0].kdims[0].pprint_label == "Radius (km)"

    flux = computed.flux_time_plot()
    assert len(curves(flux, hv.ErrorBars)) == 1
    assert curves(flux, hv.ErrorBars)[0].vdims[0].pprint_label == "SO2 flux (t/day)"
    for plot in (mass_time, mass_radius, flux):
        hv.render(plot)  # Bokeh builds them


def test_the_flux_of_the_chosen_orbit_is_finite_or_the_reason_is_shown(computed):
    for orbit in (18121, 18122):
        computed.orbit = orbit
        row = computed.flux.set_index("orbit").loc[orbit]
        title = computed.mass_radius_plot().opts.get().kwargs["title"]
        if np.isfinite(row["flux_t_day"]):
            assert f"flux {row['flux_t_day']:,.0f} ± {row['flux_err_t_day']:,.0f} t/day" in title
        else:
            assert row["reason"] and row["reason"] in title
    flux = computed.flux.set_index("orbit")
    assert np.isfinite(flux.loc[18122, "flux_t_day"]) and "only 0 radii" in flux.loc[18121, "reason"]
    assert any(note.startswith("orbit #18121") for note in computed.flux_notes())
    assert computed.wind_label == ("ERA5 u/v from wind/era5_wind.nc at 7 km (410.6 hPa, standard atmosphere), "
                                   "bilinear at 13.33, -61.18, linear in time")


def test_the_wind_changes_the_flux_not_the_masses(computed):
    table = computed.table
    try:
        computed.param.update(wind_source="constant", wind_ms=10.0)
        assert computed.table is table
        pd.testing.assert_frame_equal(computed.flux, compute_flux_timeseries(table, 10.0))
        assert computed.wind_label == "10 m/s (constant)"

        computed.param.update(wind_source="csv", wind_file=None)
        assert computed.flux.set_index("orbit").loc[18122, "reason"].startswith("no wind: upload a wind CSV")

        computed.param.update(wind_filename="era5.csv",
                              wind_file=b"time,wind_ms\n2021-04-12T00:00Z,4\n2021-04-13T00:00Z,8\n")
        assert computed.wind_label == "time series from era5.csv"
        assert computed.flux.set_index("orbit").loc[18122, "wind_ms"] == pytest.approx(4 + 4 * 17.9 / 24, abs=0.01)

        computed.wind_file = b"time,speed\n2021-04-12,4\n"
        assert "the wind file era5.csv needs the columns time and speed_ms (or wind_ms)" in computed.message
        assert "/tmp" not in computed.message and computed.message_type == "warning"
    finally:
        computed.param.update(wind_source="catalog", wind_file=None, wind_filename="")


def test_several_variables_give_a_table_each(archive, tmp_path):
    panel = TimeSeriesPanel(VolcPlume(archive=archive), cache_dir=tmp_path, variables=["so2_15km", "so2_7km"])
    panel.compute(sync=True)
    assert list(panel.results) == ["so2_7km", "so2_15km"] == panel.param.shown_variable.objects
    per_variable = panel.results["so2_7km"][1].computed
    assert panel.progress_total == 2 * per_variable == panel.progress_done
    seven = panel.table
    panel.shown_variable = "so2_15km"
    assert panel.table is panel.results["so2_15km"][0]
    # the same plume seen with a higher assumed box profile: smaller columns, smaller masses
    assert panel.table["mass_t"].sum() < seven["mass_t"].sum()
    assert panel.csv_filename().endswith("_so2_15km.csv")


# --- background, cancel, bad input ---------------------------------------------------------------------------------


def test_compute_in_the_background_gives_the_same_table(computed, archive):
    panel = TimeSeriesPanel(VolcPlume(archive=archive), cache_dir=computed.cache_dir, radii=RADII_KM)
    assert panel.compute() and panel.wait(timeout=60)
    assert not panel.running and panel.message_type == "success"
    pd.testing.assert_frame_equal(panel.table, computed.table)


def test_cancel_before_the_start_computes_nothing_and_says_so(vp):
    panel = TimeSeriesPanel(vp, cache_dir=False)
    cancel = threading.Event()
    cancel.set()
    assert panel.compute(sync=True, cancel=cancel)
    report = panel.results["so2_7km"][1]
    assert report.cancelled and report.computed == 0 and panel.table.empty
    assert panel.message_type == "warning" and "cancelled before any granule was computed" in panel.message
    assert panel.mass_time_plot() is None and not panel.running


def test_cancel_button_stops_after_the_granule_in_progress(vp, monkeypatch):
    monkeypatch.setenv("FUMAROLE_CLUSTERS", "serial=sync")  # the operator's cluster: one granule at a time
    panel = TimeSeriesPanel(vp, cache_dir=False, radii=RADII_KM, cluster="serial")
    panel.param.watch(lambda event: panel.cancel() if event.new >= 1 else None, "progress_done")
    panel.compute(sync=True)
    report = panel.results["so2_7km"][1]
    assert report.cancelled and report.computed == 1 < panel.progress_total
    assert "cancelled after 1 granule" in panel.message
    assert any("cancel asked" in m for m in panel.log.messages())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start": DAY, "end": DAY - dt.timedelta(days=2)}, "comes before its start"),
        ({"radii": []}, "Give at least one radius"),
        ({"volcano": "Sufriere St Vincnt"}, "Did you mean: Soufriere St. Vincent"),
        ({"variables": []}, "Choose at least one SO2 column"),
        ({"start": dt.date(2021, 5, 1), "end": dt.date(2021, 5, 3)},
         "No TROPOMI granule between 2021-05-01 and 2021-05-03"),
    ],
)
def test_bad_input_is_a_sentence_in_the_alert_and_the_log(vp, change, message):
    panel = TimeSeriesPanel(vp, cache_dir=False, **change)
    panel.compute(sync=True)  # never raises
    assert panel.message_type == "danger" and message in panel.message
    assert any(message.lower() in m.lower() for m in panel.log.messages("error"))
    assert not panel.running and panel.table is None


def test_a_cluster_the_operator_removed_is_a_sentence(vp, monkeypatch):
    monkeypatch.setenv("FUMAROLE_CLUSTERS", "big=tcp://10.0.0.1:8786")
    panel = TimeSeriesPanel(vp, cache_dir=False)
    assert panel.param.cluster.objects == ["local", "big"] and panel.cluster == "local"
    panel.cluster = "big"
    monkeypatch.delenv("FUMAROLE_CLUSTERS")
    panel.compute(sync=True)
    assert panel.message_type == "danger"
    assert panel.message == "The cluster 'big' is not configured any more; choose one of local"
    assert not panel.running and panel.table is None


# --- the CSV: the same as the CLI's --------------------------------------------------------------------------------


def test_download_csv_equals_the_cli_csv(computed, tmp_path):
    out = tmp_path / "cli.csv"
    status = main([
        "timeseries", "--volcano", "Soufriere St. Vincent", "--start", "2021-04-12", "--end", "2021-04-12",
        "--radii", ",".join(map(str, RADII_KM)), "--variable", "so2_7km", "--qa-min", "0.5", "--sza-max", "80",
        "--edge-pixels", "0", "--catalog", str(computed.archive.catalog_source), "--cache-dir", str(tmp_path / "cache"),
        "--flux", "--plume-height-km", "7", "-o", str(out),
    ])
    assert status == 0
    for panel_csv, cli_csv in ((computed.mass_csv(), out), (computed.flux_csv(), out.with_suffix(".flux.csv"))):
        panel_header, panel_table = read_timeseries_csv(panel_csv)
        cli_header, cli_table = read_timeseries_csv(cli_csv)
        assert panel_header.pop("created") and cli_header.pop("created")
        assert panel_header == cli_header
        pd.testing.assert_frame_equal(panel_table, cli_table)
    assert panel_header["wind"] == cli_header["wind"] and panel_header["n_granules"] == "2"
    assert computed.csv_filename() == "fumarole_soufriere-st-vincent_2021-04-12_2021-04-12_so2_7km.csv"


def test_the_panel_lays_out_and_renders_to_bokeh(computed):
    root = pn.panel(computed).get_root()
    assert root is not None
    labels = {m.label for m in root.references() if isinstance(getattr(m, "label", None), str)}
    assert {"Compute time series", "Cancel", "Download CSV", "Download flux CSV"} <= labels


def test_an_unreadable_granule_is_in_the_alert_and_the_log_and_the_rest_computes(tmp_path, tiny_archive_path):
    """A copy of the archive with three orbits, one truncated: the other orbits are in the table."""
    from app.paths import REPO

    (tmp_path / "catalogs").mkdir()
    yaml_path = tmp_path / "catalogs" / "tiny.yaml"
    yaml_path.write_text((REPO / "catalogs" / "tiny.yaml").read_text())
    broken = None
    for src in sorted((tiny_archive_path / "tropomi").rglob("*.nc")):
        orbit = int(src.name.split("_")[-4])
        if orbit in (18121, 18122, 18123):
            dest = tmp_path / "data" / "tiny" / src.relative_to(tiny_archive_path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = src.read_bytes()
            dest.write_bytes(data[: len(data) // 3] if orbit == 18122 else data)
            broken = src.relative_to(tiny_archive_path).as_posix() if orbit == 18122 else broken
    panel = TimeSeriesPanel(archive=Archive(str(yaml_path)), cache_dir=False, radii=RADII_KM, start=DAY, end=DAY)
    panel.compute(sync=True)
    assert list(panel.table["orbit"].unique()) == [18121]
    assert panel.message_type == "warning" and f"1 granule(s) could not be read and were skipped ({broken}" in (
        panel.message)
    assert any(m.startswith(f"time series: skipped {broken}: ") for m in panel.log.messages("warning"))
    everything = panel.message + "\n".join(panel.log.messages())
    assert str(tmp_path) not in everything  # granules are named relative to the archive root
    header, table = read_timeseries_csv(panel.mass_csv())
    assert header["n_skipped_granules"] == "1" and header["skipped_granule_1"].startswith(f"{broken}: cannot")
    assert list(table["orbit"].unique()) == [18121]


# --- no wind: the flux says why, once ------------------------------------------------------------------------------


def test_without_a_wind_the_flux_is_blank_and_says_why_once(archive_root, tmp_path):
    """A catalogue without a wind entry: the masses compute; the alert and the log say once why there is no flux;
    each orbit's reason and the flux CSV's header say it too; a constant wind then gives the flux."""
    panel = TimeSeriesPanel(archive=Archive(str(archive_root / "catalogs" / "nowind.yaml")), cache_dir=tmp_path,
                            radii=RADII_KM, start=DAY, end=DAY)
    assert panel.wind_source == "catalog"
    panel.compute(sync=True)
    why = ("the catalogue nowind has no wind entry: give a constant speed or a wind CSV (time, speed_ms), or add a "
           "wind entry (constant, csv or era5) to the catalogue")
    assert sorted(panel.table["orbit"].unique()) == [18121, 18122]
    assert panel.message_type == "warning" and panel.message.endswith(f" No flux: {why}")
    assert panel.flux["flux_t_day"].isna().all()
    assert panel.flux.set_index("orbit").loc[18122, "reason"] == f"no wind: {why}"
    header, _ = read_timeseries_csv(panel.flux_csv())
    assert header["wind"] == f"none: {why}"
    panel.min_coverage = 0.4  # the flux is made again: the reason is not said again
    panel.min_coverage = 0.5
    assert sum(why in m for m in panel.log.messages()) == 1
    panel.param.update(wind_source="constant", wind_ms=10.0)
    assert np.isfinite(panel.flux.set_index("orbit").loc[18122, "flux_t_day"])
    assert panel.wind_label == "10 m/s (constant)"


def test_no_view_module_imports_app_sample():
    """The panel takes its wind from the catalogue: importing the views loads nothing of app.sample."""
    import subprocess
    import sys

    code = ("import sys, app.views.timeseries_panel, app.views.volcplume; "
            "print(sorted(m for m in sys.modules if m.startswith('app.sample')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
