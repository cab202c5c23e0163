"""The SO2 mass time-series engine (app.services.timeseries): index skip, window reads, cache, bad input, CSV, CLI,
Dask.

Runs on the tiny sample archive (data/tiny: one day of La Soufrière, 15 TROPOMI orbits at 16 × 9 decimation), of
which three orbits pass near St Vincent in daylight.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.cli import main
from app.data.errors import UserInputError
from app.data.index import open_index
from app.data.tropomi import read_swath
from app.paths import REPO
from app.science.filters import DEFAULT_FILTERS, Filters
from app.science.geodesy import destination, great_circle_distance_km
from app.science.mass import so2_mass_within_radii
from app.services.timeseries import (
    ENGINE_VERSION,
    MAX_RADIUS_KM,
    TABLE_COLUMNS,
    compute_flux_timeseries,
    compute_mass_timeseries,
    disk_bbox,
    filters_from_header,
    load_wind_csv,
    mass_for_granule,
    parse_radii,
    read_timeseries_csv,
    resolve_volcano,
    skipped_from_header,
    write_timeseries_csv,
)

DAY = "2021-04-12"
VOLCANO = "Soufriere St Vincent"
RADII = (25.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)
FILTERS = Filters(qa_min=0.5)


def run(catalog="tiny", cache_dir=False, **kw):
    kw.setdefault("radii_km", RADII)
    kw.setdefault("filters", FILTERS)
    return compute_mass_timeseries(catalog, VOLCANO, DAY, DAY, cache_dir=cache_dir, **kw)


@pytest.fixture(scope="module")
def first_run(tiny_archive_path, tmp_path_factory):
    """The day's table computed once into a fresh cache: (table, report, cache folder)."""
    cache = tmp_path_factory.mktemp("ts-cache")
    table, report = run(cache_dir=cache)
    return table, report, cache


@pytest.fixture(scope="module")
def naive(tiny_archive_path):
    """Every granule of the day read whole (all scanlines), masses from so2_mass_within_radii: {orbit: table}."""
    volcano = resolve_volcano(VOLCANO)
    out = {}
    for path in sorted((tiny_archive_path / "tropomi").rglob("*.nc")):
        swath = read_swath(path, variables=["so2_7km", "qa_value"])
        table = so2_mass_within_radii(swath, "so2_7km", volcano.latitude, volcano.longitude, RADII, FILTERS)
        out[int(swath.attrs["orbit"])] = table
    return out


def tiny_catalog_copy(tmp_path: Path, tiny_archive_path: Path, orbits: list[int]) -> tuple[Path, dict[int, Path]]:
    """catalogs/tiny.yaml next to a data/tiny/ holding copies of the given orbits' TROPOMI files."""
    (tmp_path / "catalogs").mkdir()
    yaml_path = tmp_path / "catalogs" / "tiny.yaml"
    yaml_path.write_text((REPO / "catalogs" / "tiny.yaml").read_text())
    paths = {}
    for src in sorted((tiny_archive_path / "tropomi").rglob("*.nc")):
        orbit = int(src.name.split("_")[-4])
        if orbit in orbits:
            dest = tmp_path / "data" / "tiny" / src.relative_to(tiny_archive_path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
            paths[orbit] = dest
    return yaml_path, paths


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


# --- the table -----------------------------------------------------------------------------------------------------


def test_one_row_per_orbit_and_radius_for_the_orbits_that_reach_the_disk(first_run, naive):
    table, report, _ = first_run
    assert list(table.columns) == list(TABLE_COLUMNS)
    reaching = sorted(o for o, t in naive.items() if t["n_pixels"].iloc[-1] > 0)
    assert reaching and len(reaching) < len(naive)
    assert sorted(table["orbit"].unique()) == reaching
    assert len(table) == len(reaching) * len(RADII)
    for _, rows in table.groupby("orbit"):
        assert list(rows["radius_km"]) == list(RADII)
        assert rows["time"].nunique() == 1 and rows["granule"].nunique() == 1
    assert table["time"].is_monotonic_increasing
    assert report.n_granules == len(reaching) and report.granules_used
    assert report.skipped_by_index > 0
    assert report.skipped_by_index + report.computed == report.n_in_period == len(naive)
    assert report.cache_hits == 0 and not report.corrupt and not report.cancelled


def test_masses_equal_the_whole_granule_read_naively(first_run, naive):
    table, _, _ = first_run
    for orbit, rows in table.groupby("orbit"):
        expected = naive[orbit]
        got = rows.reset_index(drop=True)
        for column in ("mass_t", "coverage", "radius_km"):
            np.testing.assert_array_equal(got[column].to_numpy(), expected[column].to_numpy(), err_msg=column)
        for column in ("n_valid", "n_summed", "n_pixels"):
            assert list(got[column]) == list(expected[column]), column
        assert (got["time"] == expected["time"].dt.round("ms")).all()
    assert table["mass_t"].notna().any() and (table["mass_t"].dropna() > 0).any()


def test_only_a_window_of_scanlines_is_read(first_run):
    _, report, _ = first_run
    assert report.windows
    for first, stop, n in report.windows.values():
        assert 0 <= first < stop <= n and stop - first < n


def test_the_naive_path_of_mass_for_granule_gives_the_same_records(first_run, tiny_archive_path):
    table, report, _ = first_run
    volcano = resolve_volcano(VOLCANO)
    path = report.granules_used[0]
    windowed = mass_for_granule(path, "so2_7km", volcano.latitude, volcano.longitude, RADII, FILTERS)
    whole = mass_for_granule(path, "so2_7km", volcano.latitude, volcano.longitude, RADII, FILTERS, window=False)
    assert len(whole["records"]) == len(RADII)
    pd.testing.assert_frame_equal(pd.DataFrame(windowed["records"]), pd.DataFrame(whole["records"]))
    assert whole["window"] == (0, windowed["n_scanlines"])


# --- cache ---------------------------------------------------------------------------------------------------------


def test_a_second_run_comes_from_the_cache_with_the_same_table(first_run):
    table, report, cache = first_run
    again, report2 = run(cache_dir=cache)
    pd.testing.assert_frame_equal(again, table)
    assert report2.cache_hits == report.computed and report2.computed == 0
    assert report2.granules_used == report.granules_used


def test_the_cache_misses_when_a_filter_or_a_granule_changes(first_run, tmp_path, tiny_archive_path):
    table, report, cache = first_run
    _, other = run(cache_dir=cache, filters=Filters(qa_min=0.5, edge_pixels=2))
    assert other.cache_hits == 0 and other.computed == report.computed

    yaml_path, paths = tiny_catalog_copy(tmp_path, tiny_archive_path, [18121, 18122, 18123])
    own_cache = tmp_path / "cache"
    first, r1 = run(catalog=str(yaml_path), cache_dir=own_cache)
    pd.testing.assert_frame_equal(first, table)
    st = paths[18122].stat()
    os.utime(paths[18122], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: the key changes
    second, r2 = run(catalog=str(yaml_path), cache_dir=own_cache)
    assert (r2.cache_hits, r2.computed) == (r1.computed - 1, 1)
    pd.testing.assert_frame_equal(second, table)


def test_default_cache_folder_is_in_the_state_folder_not_the_archive(tmp_path, tiny_archive_path):
    from app.core.state import archive_state_dir

    yaml_path, _ = tiny_catalog_copy(tmp_path, tiny_archive_path, [18122])
    archive = tmp_path / "data" / "tiny"
    _, report = run(catalog=str(yaml_path), cache_dir=None)
    folder = archive_state_dir(archive) / "timeseries"
    assert report.cache_dir == str(folder) and len(list(folder.rglob("*.json"))) == 1
    assert not (archive / ".fumarole-cache").exists()
    assert not [p for p in archive.rglob("*.json")]
    _, again = run(catalog=str(yaml_path), cache_dir=None)
    assert again.cache_hits == 1


# --- corrupt granules ----------------------------------------------------------------------------------------------


def test_a_granule_the_index_cannot_read_is_reported_and_the_rest_computes(tmp_path, tiny_archive_path, first_run):
    table, _, _ = first_run
    yaml_path, paths = tiny_catalog_copy(tmp_path, tiny_archive_path, [18120, 18121, 18122, 18123])
    truncate(paths[18122])
    got, report = run(catalog=str(yaml_path))
    assert [os.path.basename(p) for p, _ in report.corrupt] == [paths[18122].name]
    assert "truncated" in report.corrupt[0][1] or "cannot" in report.corrupt[0][1]
    assert list(got["orbit"].unique()) == [18121]
    pd.testing.assert_frame_equal(got, table[table["orbit"] == 18121].reset_index(drop=True))
    relative = paths[18122].relative_to(tmp_path / "data" / "tiny").as_posix()
    assert relative.startswith("tropomi/") and f"skipped {relative}: " in str(report)
    assert str(tmp_path) not in str(report)


def test_a_granule_that_breaks_after_indexing_is_reported_and_the_rest_computes(tmp_path, tiny_archive_path,
                                                                               first_run):
    table, _, _ = first_run
    yaml_path, paths = tiny_catalog_copy(tmp_path, tiny_archive_path, [18121, 18122, 18123])
    index = open_index(str(yaml_path))
    truncate(paths[18121])
    got, report = run(catalog=index)
    assert [(os.path.basename(p)) for p, _ in report.corrupt] == [paths[18121].name]
    assert "netCDF" in report.corrupt[0][1]
    pd.testing.assert_frame_equal(got, table[table["orbit"] == 18122].reset_index(drop=True))


# --- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"volcano": "Sufriere St Vincnt"}, r"No volcano is named 'Sufriere St Vincnt'.*Did you mean"),
        ({"start": "2021-04-12", "end": "2021-04-11"}, r"the end of the period \(2021-04-11\) comes before its start"),
        ({"start": "2021-04-31"}, r"the start '2021-04-31' is not a date or time"),
        ({"radii_km": [25, 0]}, r"a radius must be more than 0 km; got 0 km"),
        ({"radii_km": [-5]}, r"a radius must be more than 0 km; got -5 km"),
        ({"radii_km": [25, 6000]}, r"a radius must be at most 5,000 km; got 6000 km"),
        ({"radii_km": []}, r"give at least one radius in km"),
        ({"variable": "so2_5km"},
         r"unknown SO2 column 'so2_5km'; choose one of so2_pbl, so2_1km, so2_3km, so2_7km, so2_15km"),
        (
            {"start": "2021-05-01", "end": "2021-05-03"},
            r"^no TROPOMI granule between 2021-05-01 and 2021-05-03 reaches 2000 km of Soufriere St\. Vincent",
        ),
    ],
)
def test_bad_input_is_a_clear_sentence(tiny_archive_path, kwargs, message):
    args = {"volcano": VOLCANO, "start": DAY, "end": DAY, "radii_km": RADII, "variable": "so2_7km", **kwargs}
    with pytest.raises(UserInputError, match=message):
        compute_mass_timeseries("tiny", args.pop("volcano"), args.pop("start"), args.pop("end"), cache_dir=False,
                                **args)


def test_an_orbit_belongs_to_the_period_of_its_overpass(first_run):
    table, _, _ = first_run
    got, report = compute_mass_timeseries("tiny", VOLCANO, "2021-04-12T16:00", "2021-04-12T17:00", RADII,
                                          filters=FILTERS, cache_dir=False)
    assert list(got["orbit"].unique()) == [18121]
    assert [os.path.basename(p).split("_")[-4] for p in report.outside_period] == ["18122"]
    pd.testing.assert_frame_equal(got, table[table["orbit"] == 18121].reset_index(drop=True))


def test_one_granule_per_orbit_prefers_offline_and_the_newest_processor():
    from app.services.timeseries import _one_per_orbit

    rows = pd.DataFrame({
        "path": ["nrti-a", "nrti-b", "offl-old", "offl-new", "other"],
        "orbit": pd.array([1, 1, 1, 1, 2], dtype="Int64"),
        "mode": ["NRTI", "NRTI", "OFFL", "OFFL", "NRTI"],
        "collection": pd.array([2, 2, 2, 2, 2], dtype="Int64"),
        "processor": pd.array([20104, 20104, 20104, 20400, 20104], dtype="Int64"),
        "start": pd.to_datetime(["2021-04-12T10:00", "2021-04-12T10:05", "2021-04-12T10:00", "2021-04-12T10:00",
                                 "2021-04-12T12:00"]),
    })
    keep, dropped = _one_per_orbit(rows)
    assert list(keep["path"]) == ["offl-new", "other"]
    assert dropped == ["nrti-a", "nrti-b", "offl-old"]
    keep, dropped = _one_per_orbit(rows[rows["mode"] == "NRTI"])  # near-real-time pieces of one orbit: all kept
    assert list(keep["path"]) == ["nrti-a", "nrti-b", "other"] and dropped == []


def test_radii_text_and_limits():
    assert parse_radii("25, 50 100,25") == (25.0, 50.0, 100.0)
    with pytest.raises(UserInputError, match="'abc' is not a number"):
        parse_radii("25,abc")
    assert parse_radii(str(MAX_RADIUS_KM)) == (MAX_RADIUS_KM,)


def test_every_granule_unreadable_says_so(tmp_path, tiny_archive_path):
    yaml_path, paths = tiny_catalog_copy(tmp_path, tiny_archive_path, [18121, 18122])
    for path in paths.values():
        truncate(path)
    with pytest.raises(UserInputError,
                       match=r"reaches 2000 km of .* that could be read \(2 could not: tropomi/2021/04/12/S5P_"):
        run(catalog=str(yaml_path))


# --- scheduling: progress, cancel, Dask ----------------------------------------------------------------------------


def test_progress_and_cancel(tiny_archive_path):
    calls = []
    table, report = run(scheduler="sync", progress=lambda done, total: calls.append((done, total)))
    total = report.computed
    assert calls == [(i, total) for i in range(total + 1)]

    cancel = threading.Event()

    def stop_after_one(done, total):
        if done >= 1:
            cancel.set()

    part, report = run(scheduler="sync", progress=stop_after_one, cancel=cancel)
    assert report.cancelled and report.computed == 1 < total
    assert len(part) <= len(table)
    cancel = threading.Event()
    cancel.set()
    nothing, report = run(cancel=cancel)
    assert report.cancelled and nothing.empty and report.computed == 0


@pytest.mark.distributed
def test_same_table_on_a_distributed_local_cluster(first_run, monkeypatch):
    distributed = pytest.importorskip("distributed")
    table, _, _ = first_run
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        got, report = run(scheduler=cluster.scheduler_address)
        with distributed.Client(cluster) as client:
            again, _ = run(scheduler=client)
        monkeypatch.setenv("FUMAROLE_CLUSTERS", f"lab={cluster.scheduler_address}")  # the operator's setting
        named, by_name = run(cluster="lab")
    pd.testing.assert_frame_equal(got, table)
    pd.testing.assert_frame_equal(again, table)
    pd.testing.assert_frame_equal(named, table)
    assert report.scheduler.startswith("Dask distributed at tcp://") and "2 workers" in report.scheduler
    assert by_name.scheduler == "cluster lab: Dask distributed (2 workers, 2 threads)"  # named, not located


def test_an_unknown_scheduler_is_a_clear_error(tiny_archive_path):
    with pytest.raises(UserInputError, match=r"neither a Dask scheduler address .* nor a configured cluster \(local"):
        run(scheduler="my cluster")


# --- geometry ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lat", "lon", "radius"), [(13.33, -61.18, 2000.0), (-20.54, -175.38, 1500.0),
                                                    (60.0, 179.0, 400.0), (37.75, 15.0, 25.0)])
def test_disk_bbox_holds_the_disk_and_wraps_the_antimeridian(lat, lon, radius):
    lon_min, lat_min, lon_max, lat_max = disk_bbox(lat, lon, radius)
    bearings = np.linspace(0.0, 360.0, 721)
    rim_lat, rim_lon = destination(lat, lon, bearings, radius)
    rim_lat, rim_lon = np.asarray(rim_lat), np.asarray(rim_lon)
    assert np.all((rim_lat >= lat_min - 1e-9) & (rim_lat <= lat_max + 1e-9))
    inside_lon = (rim_lon - lon_min) % 360.0 <= (lon_max - lon_min) % 360.0 + 1e-9
    assert inside_lon.all()
    assert (lon_min > lon_max) == (abs(lon) + np.degrees(radius / 6371.0) / np.cos(np.radians(lat)) > 180.0)
    np.testing.assert_allclose(great_circle_distance_km(lat, lon, rim_lat, rim_lon), radius, rtol=1e-9)


def test_disk_bbox_around_a_pole_spans_every_longitude():
    assert disk_bbox(85.0, 10.0, 1000.0) == (-180.0, 85.0 - np.degrees(1000.0 / 6371.0088), 180.0, 90.0)


# --- flux ----------------------------------------------------------------------------------------------------------


def test_flux_with_a_constant_wind_or_a_wind_file(first_run, tmp_path):
    table, _, _ = first_run
    constant = compute_flux_timeseries(table, 10.0)
    assert list(constant["orbit"]) == sorted(table["orbit"].unique())
    assert (constant["wind_ms"] == 10.0).all()
    wind_file = tmp_path / "wind.csv"
    wind_file.write_text("# ERA5 at 12 km\ntime,wind_ms\n2021-04-12T00:00Z,10\n2021-04-13T00:00Z,10\n")
    series = load_wind_csv(wind_file)
    assert list(series) == [10.0, 10.0] and series.index[0] == pd.Timestamp(DAY)
    from_file = compute_flux_timeseries(table, str(wind_file))
    pd.testing.assert_frame_equal(from_file, constant)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when,speed\n2021-04-12,3\n", r"needs the columns time and speed_ms \(or wind_ms\); it lacks time, speed_ms"),
        ("time,wind_ms\n2021-04-12,fast\n", r"row 2: wind_ms 'fast' is not a speed >= 0 in m/s"),
        ("time,wind_ms\n2021-04-12,3\nyesterday,4\n", r"row 3: time 'yesterday' is not a time"),
        ("time,wind_ms\n2021-04-12,-3\n", r"row 2: wind_ms '-3' is not a speed"),
        ("time,wind_ms\n", r"has no rows"),
    ],
)
def test_bad_wind_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "wind.csv"
    path.write_text(text)
    with pytest.raises(UserInputError, match=message):
        load_wind_csv(path)


def test_bad_winds_are_clear_errors(first_run, tmp_path):
    table, _, _ = first_run
    with pytest.raises(UserInputError, match="does not exist"):
        compute_flux_timeseries(table, str(tmp_path / "nothing.csv"))
    with pytest.raises(UserInputError, match="more than 0 m/s"):
        compute_flux_timeseries(table, 0.0)


# --- CSV with provenance -------------------------------------------------------------------------------------------


def test_csv_header_records_every_filter_and_round_trips(first_run):
    table, report, _ = first_run
    filters = Filters(qa_min=0.75, sza_max=65.0, edge_pixels=3, min_du=0.2)
    buffer = io.StringIO()
    write_timeseries_csv(table, buffer, volcano=VOLCANO, start=DAY, end=DAY, variable="so2_7km", filters=filters,
                         radii=RADII, n_granules=report.n_granules, scheduler=report.scheduler)
    buffer.seek(0)
    header, back = read_timeseries_csv(buffer)
    assert filters_from_header(header) == filters
    assert header["filters"] == filters.key()
    assert header["volcano"] == "Soufriere St. Vincent" and header["volcano_number"] == "360150"
    assert (float(header["volcano_latitude"]), float(header["volcano_longitude"])) == (13.33, -61.18)
    assert (header["start"], header["end"]) == ("2021-04-12T00:00:00", "2021-04-13T00:00:00")
    assert header["variable"] == "so2_7km" and header["radii_km"] == "25,50,100,200,500,1000,2000"
    assert header["code_version"].endswith(f"timeseries engine {ENGINE_VERSION}")
    assert header["n_granules"] == str(report.n_granules) and header["created"].endswith("Z")
    pd.testing.assert_frame_equal(back, table)


def test_csv_header_of_default_filters_round_trips(first_run, tmp_path):
    table, _, _ = first_run
    path = tmp_path / "out.csv"
    write_timeseries_csv(table, path, volcano=360150, start=DAY, end=DAY, variable="so2_7km", filters=None,
                         radii=RADII, n_granules=2)
    header, _ = read_timeseries_csv(path)
    assert filters_from_header(header) == DEFAULT_FILTERS
    assert header["filter_sza_max"] == "80.0" and header["filter_min_du"] == "none"


# --- CLI -----------------------------------------------------------------------------------------------------------


def test_cli_writes_the_same_table_as_the_function(first_run, tmp_path, capsys):
    table, _, _ = first_run
    out = tmp_path / "soufriere.csv"
    status = main([
        "timeseries", "--volcano", VOLCANO, "--start", DAY, "--end", DAY, "--radii", "25,50,100,200,500,1000,2000",
        "--variable", "so2_7km", "--qa-min", "0.5", "--sza-max", "none", "--catalog", "tiny",
        "--cache-dir", str(tmp_path / "cache"), "--flux", "--wind-ms", "10", "-o", str(out),
    ])
    assert status == 0
    header, got = read_timeseries_csv(out)
    pd.testing.assert_frame_equal(got, table)
    assert filters_from_header(header) == FILTERS
    _, flux = read_timeseries_csv(out.with_suffix(".flux.csv"))
    expected = compute_flux_timeseries(table, 10.0)
    pd.testing.assert_frame_equal(flux, expected, check_dtype=False)
    assert "wrote 14 rows" in capsys.readouterr().err


def test_cli_flux_takes_the_catalogues_era5_wind_at_the_plume_height(first_run, tiny_copy, tmp_path, capsys):
    """No wind flag: the catalogue's wind entry (the scenario's wind as an ERA5 file) at --plume-height-km."""
    from app.data.wind import Era5Wind
    from app.sample.scenario import get_scenario
    from app.sample.wind import write_wind_file

    table, _, _ = first_run
    write_wind_file("soufriere-tiny", tiny_copy)
    out = tmp_path / "a.csv"
    args = ["timeseries", "--volcano", VOLCANO, "--start", DAY, "--end", DAY, "--radii", "25,50,100,200,500,1000,2000",
            "--sza-max", "none", "--catalog", str(catalog_for(tiny_copy, tmp_path)), "--cache-dir",
            str(tmp_path / "cache"), "--flux", "--plume-height-km", "12", "-o", str(out)]
    assert main(args) == 0
    assert "no flux" not in capsys.readouterr().err
    header, flux = read_timeseries_csv(out.with_suffix(".flux.csv"))
    assert header["wind"].startswith("ERA5 u/v from wind/era5_wind.nc at 12 km (193.3 hPa, standard atmosphere)")
    assert header["plume_height_km"] == "12.0"
    v = resolve_volcano(VOLCANO)
    era5 = Era5Wind("era5", str(tiny_copy / "wind" / "era5_wind.nc"))
    assert np.allclose(flux["wind_ms"], era5.speed_ms(flux["time"], 12.0, v.latitude, v.longitude))
    # the scenario's wind at 12 km, which the file holds on pressure levels: within the ln(p)-versus-height error
    assert np.allclose(flux["wind_ms"], float(get_scenario("soufriere-tiny").wind_speed_ms(12.0)), atol=0.3)
    assert np.isfinite(flux["flux_t_day"]).any()


def test_cli_flux_without_any_wind_says_why_once_and_writes_the_masses(first_run, tiny_copy, tmp_path, capsys):
    """A catalogue whose wind file is missing: the masses are written, the flux is blank, and why is said once on
    stderr and in the flux CSV's header and rows."""
    out = tmp_path / "a.csv"
    args = ["timeseries", "--volcano", VOLCANO, "--start", DAY, "--end", DAY, "--radii", "25,50,100,200,500,1000,2000",
            "--catalog", str(catalog_for(tiny_copy, tmp_path)), "--no-cache", "--flux", "-o", str(out)]
    shutil.rmtree(tiny_copy / "wind")  # the sample archive has one: take it away
    assert main(args) == 0
    err = capsys.readouterr().err
    why = "the catalogue's wind cannot be used: the wind file wind/era5_wind.nc does not exist"
    assert err.count("no flux") == 1 and f"fumarole: no flux: {why}" in err
    _, table = read_timeseries_csv(out)
    assert len(table) == 14
    header, flux = read_timeseries_csv(out.with_suffix(".flux.csv"))
    assert header["wind"] == f"none: {why}"
    no_wind = flux["reason"].str.startswith("no wind")
    assert flux["flux_t_day"].isna().all() and no_wind.any()
    assert (flux.loc[no_wind, "reason"] == f"no wind: {why}").all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--volcano", "Sufriere St Vincnt"], "Did you mean"),
        (["--end", "2021-04-10"], "comes before its start"),
        (["--radii", "25,0"], "a radius must be more than 0 km"),
        (["--radii", "25,9000"], "at most 5,000 km"),
        (["--variable", "so2"], "unknown SO2 column 'so2'"),
        (["--start", "2021-05-01", "--end", "2021-05-03"], "no TROPOMI granule between 2021-05-01 and 2021-05-03"),
        (["--flux", "--wind-csv", "missing.csv"], "the wind file missing.csv does not exist"),
        (["--scheduler", "nowhere"], "neither a Dask scheduler address"),
    ],
)
def test_cli_errors_are_one_sentence_and_status_2(tiny_archive_path, tmp_path, capsys, extra, message):
    args = {"--volcano": VOLCANO, "--start": DAY, "--end": DAY, "--catalog": "tiny"}
    flags = [a for a in extra if a.startswith("--")]
    base = [x for k, v in args.items() if k not in flags for x in (k, v)]
    status = main(["timeseries", *base, *extra, "--no-cache", "-o", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.startswith("fumarole: ") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


# --- every failure a named skip: damaged granules, bad names, reader errors -----------------------------------------


def catalog_for(archive: Path, tmp_path: Path) -> Path:
    """catalogs/tiny.yaml pointed at another copy of the archive (e.g. ``tiny_copy``)."""
    text = (REPO / "catalogs" / "tiny.yaml").read_text().replace("{CATALOG_DIR}/../data/tiny", str(archive))
    path = tmp_path / "copy.yaml"
    path.write_text(text)
    return path


def tropomi_of(archive: Path, orbit: int) -> Path:
    return next(p for p in (archive / "tropomi").rglob("*.nc") if int(p.name.split("_")[-4]) == orbit)


def test_the_csv_header_names_a_damaged_granule_and_the_other_orbits_are_all_there(tiny_copy, tmp_path, first_run):
    table, _, _ = first_run
    damaged = tropomi_of(tiny_copy, 18122)
    truncate(damaged)
    got, report = run(catalog=str(catalog_for(tiny_copy, tmp_path)))
    pd.testing.assert_frame_equal(got, table[table["orbit"] != 18122].reset_index(drop=True))
    out = tmp_path / "out.csv"
    write_timeseries_csv(got, out, volcano=report.volcano, start=report.start, end=report.end, variable="so2_7km",
                         filters=FILTERS, radii=RADII, n_granules=report.n_granules, scheduler=report.scheduler,
                         skipped=report.skipped_granules())
    header, back = read_timeseries_csv(out)
    name = damaged.relative_to(tiny_copy).as_posix()
    assert header["n_skipped_granules"] == "1"
    assert header["skipped_granule_1"].startswith(f"{name}: cannot be opened as a netCDF-4 file")
    assert skipped_from_header(header) == report.skipped_granules() == [(name, report.skipped_granules()[0][1])]
    assert str(tiny_copy) not in out.read_text()
    pd.testing.assert_frame_equal(back, got)


def test_a_badly_named_file_is_skipped_and_named_and_the_run_completes(tiny_copy, tmp_path, first_run):
    table, _, _ = first_run
    good = tropomi_of(tiny_copy, 18121)
    bad = good.with_name("S5P_OFFL_L2__SO2____20211312T151810_20211312T165940_18121_02_020104_20211312T195940.nc")
    shutil.copy2(good, bad)  # month 13 in its name
    got, report = run(catalog=str(catalog_for(tiny_copy, tmp_path)))
    pd.testing.assert_frame_equal(got, table)
    names = dict(report.skipped_granules())
    assert list(names) == [bad.relative_to(tiny_copy).as_posix()]
    assert "not a valid time" in names[bad.relative_to(tiny_copy).as_posix()]


@pytest.mark.parametrize("error", [ValueError("bad scale_factor"), KeyError("so2_7km"), IndexError("index 9 is out"),
                                   RuntimeError("NetCDF: HDF error"), TypeError("unsupported operand")])
def test_any_reader_failure_is_a_named_skip_and_the_period_goes_on(tiny_archive_path, first_run, monkeypatch, error):
    import app.data.tropomi as tropomi

    table, _, _ = first_run
    real = tropomi.read_swath

    def flaky(path, *args, **kwargs):
        if "_18122_" in os.fspath(path):
            raise error
        return real(path, *args, **kwargs)

    monkeypatch.setattr(tropomi, "read_swath", flaky)
    got, report = run(scheduler="sync")
    pd.testing.assert_frame_equal(got, table[table["orbit"] != 18122].reset_index(drop=True))
    [(name, reason)] = report.skipped_granules()
    assert name.startswith("tropomi/2021/04/12/") and "_18122_" in name
    assert reason.startswith(f"cannot be used ({type(error).__name__}: ")
    assert f"skipped {name}: {reason}" in str(report)


def test_any_failure_of_the_reader_skips_that_granule_and_the_period_goes_on(tiny_archive_path, monkeypatch,
                                                                               caplog):
    """Even a failure that looks like a bug (a NameError) skips only its granule, named with the reason; the error
    log keeps the traceback. The other orbits are computed as before."""
    import app.data.tropomi as tropomi

    real = tropomi.read_swath

    def broken_on_18122(path, *args, **kwargs):
        if "_18122_" in os.path.basename(path):
            raise NameError("name 'scale' is not defined")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(tropomi, "read_swath", broken_on_18122)
    with caplog.at_level("ERROR", logger="app.services.timeseries"):
        table, report = run(scheduler="sync")
    assert sorted(table["orbit"].unique()) == [18121]
    [(name, reason)] = report.skipped_granules()
    assert name.startswith("tropomi/2021/04/12/S5P_OFFL_L2__SO2____") and "_18122_" in name
    assert reason == "cannot be used (unexpected failure of the reader: NameError: name 'scale' is not defined)"
    assert any(r.exc_info and r.exc_info[0] is NameError for r in caplog.records)


# --- the CLI checks every argument before any work -----------------------------------------------------------------


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the CLI opens the catalogue or starts computing."""
    import app.data.catalog as catalogs
    import app.services.timeseries as engine

    def forbidden(*_args, **_kwargs):
        raise AssertionError("the CLI started working before checking its arguments")

    monkeypatch.setattr(engine, "compute_mass_timeseries", forbidden)
    monkeypatch.setattr(catalogs, "open_catalog", forbidden)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--wind-ms", "-3"], "--wind-ms must be more than 0 m/s; got -3.0"),
        (["--wind-ms", "nan"], "--wind-ms must be more than 0 m/s; got nan"),
        (["--wind-ms", "inf"], "--wind-ms must be more than 0 m/s; got inf"),
        (["--wind-ms", "fast"], "argument --wind-ms: invalid float value: 'fast'"),
        (["--start", "3000-01-01", "--end", "3000-01-02"], "the start '3000-01-01' is outside the years 1900-2199"),
        (["--start", "1677", "--end", "2021-04-12"], "the start '1677' is outside the years"),
        (["--start", "NaT"], "give the start of the period as a date"),
        (["--start", "2021-13-01"], "the start '2021-13-01' is not a date or time"),
        (["--end", "2021-04-10"], "comes before its start"),
        (["--volcano", "Nowhere Mountain"], "No volcano is named 'Nowhere Mountain'"),
        (["--radii", "25,-1"], "a radius must be more than 0 km"),
        (["--radii", "25,x"], "'x' is not a number"),
        (["--radii", "nan"], "a radius must be more than 0 km; got nan km"),
        (["--scheduler", "my laptop"], "neither a Dask scheduler address"),
        (["--plume-height-km", "-2"], "--plume-height-km must be a height between 0 and 32 km"),
        (["--wind-ms", "3", "--min-coverage", "2"], "--min-coverage must be a fraction between 0 and 1"),
        (["--qa-min", "2"], "qa_min must be between 0 and 1"),
        (["--volcano"], "argument --volcano: expected one argument"),
    ],
)
def test_cli_bad_arguments_are_one_line_before_any_work(tmp_path, capsys, no_work, extra, message):
    out = tmp_path / "x.csv"
    args = {"--volcano": VOLCANO, "--start": DAY, "--end": DAY, "--catalog": "tiny"}
    flags = [a for a in extra if a.startswith("--")]
    base = [x for k, v in args.items() if k not in flags for x in (k, v)]
    try:
        status = main(["timeseries", *base, *extra, "--no-cache", "-o", str(out)])
    except SystemExit as exc:  # argparse's own errors (a flag without its value, a float that is not one)
        status = exc.code
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.startswith("fumarole: ") and message in err and len(err.splitlines()) == 1, err
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["missing-folder", "under-a-file", "is-a-folder", "flux-missing",
                                   "flux-under-a-file", "flux-same-as-output"])
def test_cli_output_files_are_checked_before_any_work(tmp_path, capsys, no_work, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine\n")
    out, flux = tmp_path / "x.csv", []
    if where == "missing-folder":
        out = tmp_path / "no" / "such" / "x.csv"
    elif where == "under-a-file":
        out = blocker / "x.csv"
    elif where == "is-a-folder":
        out = tmp_path
    elif where == "flux-missing":
        flux = ["--flux-output", str(tmp_path / "nope" / "f.csv")]
    elif where == "flux-under-a-file":
        flux = ["--flux-output", str(blocker / "f.csv")]
    else:
        flux = ["--flux-output", str(out)]
    status = main(["timeseries", "--volcano", VOLCANO, "--start", DAY, "--end", DAY, "--catalog", "tiny",
                   "--wind-ms", "5", *flux, "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.startswith("fumarole: ") and len(err.splitlines()) == 1, err
    expected = {"missing-folder": "does not exist", "under-a-file": "is not a folder", "is-a-folder": "is a folder",
                "flux-missing": "--flux-output", "flux-under-a-file": "is not a folder",
                "flux-same-as-output": "is the mass CSV of -o"}[where]
    assert expected in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a-file"] and blocker.read_text() == "mine\n"


def test_cli_lists_the_skipped_granules_on_stderr_and_in_both_headers(tiny_copy, tmp_path, capsys, first_run):
    table, _, _ = first_run
    damaged = tropomi_of(tiny_copy, 18122)
    truncate(damaged)
    out = tmp_path / "out.csv"
    status = main(["timeseries", "--volcano", VOLCANO, "--start", DAY, "--end", DAY,
                   "--radii", ",".join(f"{r:g}" for r in RADII), "--catalog", str(catalog_for(tiny_copy, tmp_path)),
                   "--no-cache", "--wind-ms", "10", "-o", str(out)])
    err = capsys.readouterr().err
    name = damaged.relative_to(tiny_copy).as_posix()
    assert status == 0 and f"skipped {name}: cannot be opened" in err and str(tiny_copy) not in err
    for path in (out, out.with_suffix(".flux.csv")):
        header, _ = read_timeseries_csv(path)
        assert [n for n, _ in skipped_from_header(header)] == [name]
    _, got = read_timeseries_csv(out)
    pd.testing.assert_frame_equal(got, table[table["orbit"] != 18122].reset_index(drop=True))


# --- real-layout granules (tests/conformance, not our writer) enter the time series; any failure is a named skip ----


def _renamed(path: Path, orbit: int) -> Path:
    new = path.with_name(path.name.replace("_12367_", f"_{orbit}_"))
    path.rename(new)
    return new


@pytest.fixture(scope="module")
def conformance_archive(tmp_path_factory):
    """Real-layout granules (tests/conformance/s5p_so2.py) of 2020-03-03, one good and four damaged otherwise.

    12367 good; 12368 a real-layout file whose 7 km column has an unexpected shape (time, scanline); 12369
    truncated; 12370 good on disk, but its read raises a KeyError (monkeypatched in the test); 12371 garbage bytes.
    """
    from tests.conformance import s5p_so2

    root = tmp_path_factory.mktemp("conformance-archive")
    folder = root / "tropomi" / "2020" / "03" / "03"
    good = s5p_so2.build(folder)
    scratch = tmp_path_factory.mktemp("scratch")
    odd = s5p_so2.build(scratch)
    with netCDF4_dataset(odd.path) as nc:
        group = nc["PRODUCT/SUPPORT_DATA/DETAILED_RESULTS"]
        group.renameVariable("sulfurdioxide_total_vertical_column_7km", "sulfurdioxide_7km_moved")
        bad = group.createVariable("sulfurdioxide_total_vertical_column_7km", "f4", ("time", "scanline"))
        bad.units, bad.multiplication_factor_to_convert_to_DU = "mol m-2", np.float32(2241.15)
    shutil.move(str(odd.path), folder / odd.path.name.replace("_12367_", "_12368_"))
    data = good.path.read_bytes()
    (folder / good.path.name.replace("_12367_", "_12369_")).write_bytes(data[: len(data) // 2])
    shutil.copyfile(good.path, folder / good.path.name.replace("_12367_", "_12370_"))
    (folder / good.path.name.replace("_12367_", "_12371_")).write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(4096))
    return root, good


def netCDF4_dataset(path):
    import netCDF4

    return netCDF4.Dataset(path, "a")


def hand_mass_t(granule, lat0: float, lon0: float, radius_km: float) -> float:
    """The 7 km mass within the disk by hand: Σ column (mol m-2) × pixel area × 64.066 g/mol over the pixels whose
    centre is within the radius and whose qa_value is above 0.5. The pixel is the parallelogram of the steps of the
    centres along (0.04076° lat, -0.05° lon per scanline) and across (0.002°, 0.058° per pixel) track."""
    lat, lon = np.radians(granule.latitude), np.radians(granule.longitude)
    la0, lo0 = math.radians(lat0), math.radians(lon0)
    hav = np.sin((lat - la0) / 2) ** 2 + np.cos(lat) * math.cos(la0) * np.sin((lon - lo0) / 2) ** 2
    distance = 2 * 6371.0088 * np.arcsin(np.sqrt(hav))
    keep = (distance <= radius_km) & (granule.qa_raw > 50) & (granule.qa_raw != 255)
    col = np.where(keep, np.nan_to_num(granule.columns["7km"].astype(float)), 0.0)
    step_deg2 = abs((170.0 / 4171) * 0.058 - (-0.05) * 0.002)
    km_per_deg = math.pi / 180 * 6371.0088
    area_m2 = step_deg2 * km_per_deg**2 * np.cos(lat) * 1e6
    return float((col * area_m2).sum() * 64.066e-6)


def test_real_layout_granules_enter_the_time_series_and_every_damaged_one_is_named(conformance_archive, tmp_path,
                                                                                  monkeypatch):
    import app.data.tropomi as tropomi
    from app.services.timeseries import VolcanoRef

    root, good = conformance_archive
    real = tropomi.read_swath

    def key_error_on_12370(path, *args, **kwargs):
        if "_12370_" in os.path.basename(path):
            raise KeyError("sulfurdioxide_total_vertical_column_7km")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(tropomi, "read_swath", key_error_on_12370)
    peak = (30, 225)
    volcano = VolcanoRef("conformance plume", None, float(good.latitude[peak]), float(good.longitude[peak]))
    radii = (25.0, 50.0, 100.0)
    table, report = compute_mass_timeseries(catalog_for(root, tmp_path), volcano, "2020-03-03", "2020-03-03",
                                            radii, "so2_7km", cache_dir=False, scheduler="threads")
    assert table["orbit"].unique().tolist() == [12367]
    for radius in radii:
        got = float(table.loc[table["radius_km"] == radius, "mass_t"].iloc[0])
        assert got == pytest.approx(hand_mass_t(good, volcano.latitude, volcano.longitude, radius), rel=0.01)
    assert table["mass_t"].iloc[0] > 50  # tonnes: a real plume, not the 1e-5 mol m-2 background
    overpass = good.scanline_time(30).astype("datetime64[ns]")
    assert abs(table["time"].iloc[0] - pd.Timestamp(overpass)) < pd.Timedelta(seconds=30)
    skipped = dict(report.skipped_granules())
    names = {orbit: next(n for n in skipped if f"_{orbit}_" in n) for orbit in (12368, 12369, 12370, 12371)}
    assert all(n.startswith("tropomi/2020/03/03/S5P_OFFL_L2__SO2____20200303T013547_") for n in names.values())
    assert "sulfurdioxide_total_vertical_column_7km" in skipped[names[12368]]
    assert "KeyError" in skipped[names[12370]] and "sulfurdioxide_total_vertical_column_7km" in skipped[names[12370]]
    for orbit in (12369, 12371):
        assert "netCDF" in skipped[names[orbit]] or "HDF" in skipped[names[orbit]], skipped[names[orbit]]
    buffer = io.StringIO()
    write_timeseries_csv(table, buffer, volcano=volcano, start="2020-03-03", end="2020-03-03", variable="so2_7km",
                         filters=report.filters, radii=radii, n_granules=report.n_granules,
                         skipped=report.skipped_granules())
    buffer.seek(0)
    header, _ = read_timeseries_csv(buffer)
    assert header["n_skipped_granules"] == "4"
    assert sorted(name for name, _ in skipped_from_header(header)) == sorted(names.values())
    assert str(root) not in str(report)


def test_a_task_that_dies_where_it_runs_is_a_skipped_granule(tiny_archive_path):
    """The Dask path: a worker that dies (KilledWorker) on one granule's task skips that granule; the rest compute."""
    import concurrent.futures as cf

    from distributed.scheduler import KilledWorker

    class Worker:  # what distributed's KilledWorker names: the worker it died on
        address = "tcp://10.0.0.7:40001"

    class DiesOn18122(cf.Executor):
        def submit(self, fn, /, *args, **kwargs):
            future: cf.Future = cf.Future()
            if "_18122_" in os.path.basename(args[0]):
                future.set_exception(KilledWorker("task-18122", Worker(), 3))
            else:
                future.set_result(fn(*args, **kwargs))
            return future

    table, report = run(scheduler=DiesOn18122())
    assert table["orbit"].unique().tolist() == [18121]
    [(name, reason)] = report.skipped_granules()
    assert "_18122_" in name and reason.startswith("its task failed (KilledWorker: ")
    assert "tcp://10.0.0.7:40001" in reason


# --- the scanline window from the satellite's ground track ----------------------------------------------------------

WINDOW_RADII = (25.0, 300.0, 2000.0)


def _centres(path):
    whole = read_swath(path, variables=("so2_7km",), with_bounds=False)
    return whole["latitude"].values, whole["longitude"].values


def _exact_window(centres, lat, lon, radius_km):
    """The scanlines holding a pixel centre within the radius, by brute force over the whole granule's centres."""
    distance = great_circle_distance_km(lat, lon, *centres)
    rows = np.flatnonzero((distance <= radius_km).any(axis=1))
    return (int(rows[0]), int(rows[-1]) + 1) if rows.size else None


def _window(path, lat, lon, radius_km):
    from app.services.timeseries import scanline_window

    rows, _ = scanline_window(path, lat, lon, radius_km)
    return None if rows is None else (rows.start, rows.stop)


def _bearing(lat1, lon1, lat2, lon2) -> float:
    """Initial great-circle bearing (degrees from north) from point 1 to point 2."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    return math.degrees(math.atan2(math.sin(dl) * math.cos(p2),
                                   math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)))


def _granule_points(path):
    """For one granule: two volcanoes, a point the orbit never reaches and one 15 km beyond the swath's edge."""
    import h5py

    with h5py.File(path, "r") as f:
        mid = f["PRODUCT/latitude"].shape[1] // 2
        s_lat = float(f["PRODUCT/SUPPORT_DATA/GEOLOCATIONS/satellite_latitude"][0, mid])
        s_lon = float(f["PRODUCT/SUPPORT_DATA/GEOLOCATIONS/satellite_longitude"][0, mid])
        e_lat = float(f["PRODUCT/latitude"][0, mid, -1])
        e_lon = float(f["PRODUCT/longitude"][0, mid, -1])
    away_from_track = _bearing(e_lat, e_lon, s_lat, s_lon) + 180.0
    edge = destination(e_lat, e_lon, away_from_track, 15.0)
    return {"Soufriere": (13.33, -61.18), "Etna": (37.748, 14.999),
            "never reached": (-s_lat, ((s_lon + 360.0) % 360.0) - 180.0),  # the night side, opposite
            "swath edge": (float(edge[0]), float(edge[1]))}


def _tiny_granules(tiny_archive_path):
    return sorted((tiny_archive_path / "tropomi").rglob("S5P_*.nc"))


def test_the_track_window_is_the_exact_window_on_every_tiny_granule(tiny_archive_path):
    """Every granule, four places (two volcanoes, one never reached, one 15 km beyond the swath's edge), three
    radii: the window is the scanlines holding a centre in the disk, found by brute force over the whole granule,
    and lies within the strided read's (the way before, for files without satellite positions)."""
    from app.data import tropomi
    from app.services.timeseries import _strided_window

    granules = _tiny_granules(tiny_archive_path)
    assert len(granules) == 15
    seen = {"reached": 0, "edge reached": 0, "never reached": 0}
    for path in granules:
        centres = _centres(path)
        for name, (lat, lon) in _granule_points(path).items():
            for radius in WINDOW_RADII:
                want = _exact_window(centres, lat, lon, radius)
                assert _window(path, lat, lon, radius) == want, (path.name, name, radius)
                with tropomi.open_granule(path) as nc:
                    strided, _ = _strided_window(nc, str(path), lat, lon, radius, 16)
                if want is not None:
                    assert strided.start <= want[0] and want[1] <= strided.stop
                    seen["edge reached" if name == "swath edge" and radius == 25.0 else "reached"] += 1
                if name == "never reached":
                    assert want is None
                    seen["never reached"] += 1
    assert seen["reached"] > 20 and seen["never reached"] == 45
    assert seen["edge reached"] == 15  # 25 km from a point 15 km beyond the edge: the edge pixel, on every orbit


def test_the_track_window_gives_the_records_of_the_whole_granule(tiny_archive_path):
    """The masses from the window equal the masses from the whole granule (the naive way), place by place."""
    compared = 0
    for path in _tiny_granules(tiny_archive_path)[::2]:
        for name, (lat, lon) in _granule_points(path).items():
            windowed = mass_for_granule(str(path), "so2_7km", lat, lon, WINDOW_RADII, FILTERS)
            whole = mass_for_granule(str(path), "so2_7km", lat, lon, WINDOW_RADII, FILTERS, window=False)
            pd.testing.assert_frame_equal(pd.DataFrame(windowed["records"]), pd.DataFrame(whole["records"]),
                                          obj=f"{path.name} at {name}")
            compared += bool(whole["records"])
    assert compared >= 10


def write_synthetic_swath(path, *, skew_deg=0.0, with_track=True, n_rows=300, n_pix=51, step_deg=0.2,
                          half_swath_km=1300.0, chunk_rows=32):
    """An S5P L2 SO2 file built here from the layout of FORMATS.md (not with our writer), of known geometry.

    The sub-satellite track runs north along the meridian 20° W from 30° S, one scanline every ``step_deg``;
    the ground pixels of each scanline lie on the great circle through its sub-satellite point at
    ``90° + skew_deg`` (a skew like the Earth's rotation gives real swaths), ``n_pix`` centres evenly spaced
    from -``half_swath_km`` to +``half_swath_km`` (the middle one on the track). The SO2 column is a plume of
    10 DU around 0° N, 15° W.
    """
    import netCDF4

    s_lat = -30.0 + step_deg * np.arange(n_rows)
    s_lon = np.full(n_rows, -20.0)
    x = np.linspace(-half_swath_km, half_swath_km, n_pix)
    dx = x[1] - x[0]

    def ground(rows_lat, cross_km):
        bearing = np.where(cross_km >= 0, 90.0 + skew_deg, 270.0 + skew_deg)
        lat, lon = destination(rows_lat[:, None], -20.0, bearing[None, :], np.abs(cross_km)[None, :])
        return lat, lon

    lat, lon = ground(s_lat, x)
    corners = [ground(s_lat + da * step_deg / 2, x + dc * dx / 2) for da, dc in ((-1, -1), (-1, 1), (1, 1), (1, -1))]
    lat_b = np.stack([c[0] for c in corners], axis=-1)
    lon_b = np.stack([c[1] for c in corners], axis=-1)
    du = 10.0 * np.exp(-(great_circle_distance_km(0.0, -15.0, lat, lon) / 300.0) ** 2)
    mol = 2241.15
    with netCDF4.Dataset(path, "w") as nc:
        nc.setncatts({"orbit": np.int32(99001), "processor_version": "02.04.00",
                      "time_coverage_start": "2021-04-12T12:00:00", "time_coverage_end": "2021-04-12T12:50:00"})
        nc.createDimension("time", 1)
        nc.createDimension("scanline", n_rows)
        nc.createDimension("ground_pixel", n_pix)
        nc.createDimension("corner", 4)
        product = nc.createGroup("PRODUCT")
        geo = product.createGroup("SUPPORT_DATA").createGroup("GEOLOCATIONS")
        detailed = nc["PRODUCT/SUPPORT_DATA"].createGroup("DETAILED_RESULTS")
        pixel, chunks = ("time", "scanline", "ground_pixel"), (1, chunk_rows, n_pix)

        def var(group, name, dtype, data, dims=pixel, **attrs):
            shape_chunks = chunks + (4,) if dims[-1] == "corner" else chunks[: len(dims)]
            v = group.createVariable(name, dtype, dims, zlib=True, chunksizes=shape_chunks)
            v[:] = data[None]  # raw values: the attributes (scale_factor...) come after, so nothing is packed
            v.setncatts(attrs)
            return v

        t = product.createVariable("time", "i4", ("time",))
        t.units = "seconds since 2010-01-01 00:00:00"
        t[:] = [355924800]  # 2021-04-12T00:00:00
        var(product, "delta_time", "i4", np.broadcast_to((43200 + np.arange(n_rows))[:, None] * 1000, lat.shape),
            units="milliseconds since 2021-04-12 00:00:00")
        var(product, "latitude", "f4", lat, units="degrees_north")
        var(product, "longitude", "f4", lon, units="degrees_east")
        var(product, "qa_value", "u1", np.full(lat.shape, 100, "u1"), scale_factor=np.float32(0.01))
        var(geo, "latitude_bounds", "f4", lat_b, dims=pixel + ("corner",))
        var(geo, "longitude_bounds", "f4", lon_b, dims=pixel + ("corner",))
        var(geo, "solar_zenith_angle", "f4", np.full(lat.shape, 30.0), units="degree")
        if with_track:
            var(geo, "satellite_latitude", "f4", s_lat, dims=("time", "scanline"), units="degrees_north")
            var(geo, "satellite_longitude", "f4", s_lon, dims=("time", "scanline"), units="degrees_east")
        var(detailed, "sulfurdioxide_total_vertical_column_7km", "f4", du / mol, units="mol m-2",
            multiplication_factor_to_convert_to_DU=np.float32(mol))
    return s_lat, s_lon


@pytest.mark.parametrize("skew_deg", [0.0, 4.0])
def test_the_track_window_on_a_synthetic_swath_of_known_geometry(tmp_path, skew_deg):

    path = tmp_path / "S5P_OFFL_L2__SO2____20210412T120000_20210412T125000_99001_01_020400_20210412T130000.nc"
    s_lat, s_lon = write_synthetic_swath(path, skew_deg=skew_deg)
    centres = _centres(path)
    step_km = great_circle_distance_km(s_lat[0], -20.0, s_lat[1], -20.0)
    places = {
        "on the track": (s_lat[150] + 0.3 * (s_lat[1] - s_lat[0]), -20.0),
        "near the edge": tuple(float(v) for v in destination(s_lat[120], -20.0, 90.0 + skew_deg, 1315.0)),
        "beyond the edge": tuple(float(v) for v in destination(s_lat[120], -20.0, 90.0 + skew_deg, 1400.0)),
        "in the plume": (0.0, -15.0),
        "past the last scanline": (float(s_lat[-1]) + 3.0, -20.0),
    }
    for name, (lat, lon) in places.items():
        for radius in (25.0, 100.0, 500.0):
            want = _exact_window(centres, lat, lon, radius)
            assert _window(path, lat, lon, radius) == want, (name, radius)
    if skew_deg == 0.0:  # on the track, the nearest centre of each scanline is its sub-satellite point: analytic
        for radius in (25.0, 100.0, 500.0):
            reach = radius / step_km
            assert _window(path, *places["on the track"], radius) == (math.ceil(150.3 - reach),
                                                                       math.floor(150.3 + reach) + 1)
    assert _window(path, *places["near the edge"], 25.0) is not None  # the edge pixels, 15 km away
    assert _window(path, *places["beyond the edge"], 25.0) is None
    assert _window(path, *places["past the last scanline"], 100.0) is None
    assert _window(path, *places["past the last scanline"], 500.0) is not None
    windowed = mass_for_granule(str(path), "so2_7km", 0.0, -15.0, (100.0, 500.0), FILTERS)
    whole = mass_for_granule(str(path), "so2_7km", 0.0, -15.0, (100.0, 500.0), FILTERS, window=False)
    pd.testing.assert_frame_equal(pd.DataFrame(windowed["records"]), pd.DataFrame(whole["records"]))
    assert windowed["records"][-1]["mass_t"] > 0 and windowed["window"][1] - windowed["window"][0] < 60


def test_without_satellite_positions_the_window_comes_from_strided_centres(tmp_path, caplog):
    """A file without GEOLOCATIONS/satellite_latitude falls back, said in a debug line; the masses are the same."""
    import logging

    from app.services.timeseries import scanline_window

    path = tmp_path / "S5P_OFFL_L2__SO2____20210412T120000_20210412T125000_99001_01_020400_20210412T130000.nc"
    write_synthetic_swath(path, with_track=False)
    exact = _exact_window(_centres(path), 0.0, -15.0, 500.0)
    with caplog.at_level(logging.DEBUG, logger="app.services.timeseries"):
        rows, n_rows = scanline_window(path, 0.0, -15.0, 500.0)
    assert n_rows == 300 and rows.start <= exact[0] and exact[1] <= rows.stop
    assert any("every 16th scanline" in r.getMessage() and "no satellite_latitude" in r.getMessage()
               and r.levelno == logging.DEBUG for r in caplog.records)
    windowed = mass_for_granule(str(path), "so2_7km", 0.0, -15.0, (100.0, 500.0), FILTERS)
    whole = mass_for_granule(str(path), "so2_7km", 0.0, -15.0, (100.0, 500.0), FILTERS, window=False)
    pd.testing.assert_frame_equal(pd.DataFrame(windowed["records"]), pd.DataFrame(whole["records"]))
