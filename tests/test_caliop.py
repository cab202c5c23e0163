"""CALIOP L1B V4 sample writer (app.sample.caliop) and reader (app.data.caliop).

Most tests use a stand-in scenario whose features sit in known latitude bands (an ash layer, an opaque water cloud,
clear sea, high land), written along a short regional stretch of one day's tracks; pyhdf reads the files as a
CALIOP user does, and so does our reader. One test checks the real La Soufrière scenario where a track crosses it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyhdf.VS  # noqa: F401  (HDF.vstart() needs it, as in ccplot)
import pytest
import xarray as xr
from pyhdf.HDF import HC, HDF
from pyhdf.SD import SD, SDC

from app.data.caliop import (
    read_altitudes,
    read_curtain,
    read_track,
    tai93_to_datetime64,
    utc_number_to_datetime64,
)
from app.data.errors import GranuleError, UserInputError
from app.data.filenames import parse_filename
from app.sample.caliop import (
    BETA_MOLECULAR_532_SEA_LEVEL,
    granule_windows,
    lidar_data_altitudes,
    solar_zenith_deg,
    write_caliop_day,
    write_granule,
)
from app.sample.orbit import CALIPSO

DAY = "2021-04-12"
REGION = (-80.0, 0.0, -40.0, 25.0)  # one day and one night track of 2021-04-12 or more
ALL_VARS = (
    "total_attenuated_backscatter_532",
    "perpendicular_attenuated_backscatter_532",
    "attenuated_backscatter_1064",
    "depolarization_ratio_532",
)

# Stand-in features by latitude band (independent of longitude and time).
ASH = {"lat": (3.0, 6.0), "height_km": 12.0, "sigma_km": 0.4, "beta": 4e-3, "depol": 0.35}
OPAQUE = {"lat": (8.0, 11.0), "base_km": 1.5, "top_km": 2.5, "tau": 20.0}
CLEAR = (13.0, 16.0)
LAND = {"lat": (18.0, 21.0), "elevation_km": 1.0}


@dataclass
class _Clouds:
    fraction: np.ndarray
    top_km: np.ndarray
    base_km: np.ndarray
    optical_depth: np.ndarray
    is_ice: np.ndarray


def _band(lat, band) -> np.ndarray:
    lat = np.asarray(lat, dtype=float)
    return (lat >= band[0]) & (lat <= band[1])


class StandIn:
    """A scenario with known features, with the interface of app.sample.scenario.Scenario."""

    days = (np.datetime64(DAY, "D"),)

    def aerosol_backscatter_532(self, lat, lon, alt_km, time):
        shape = np.exp(-0.5 * ((np.asarray(alt_km) - ASH["height_km"]) / ASH["sigma_km"]) ** 2)
        return ASH["beta"] * _band(lat, ASH["lat"])[:, None] * shape[None, :]

    def aerosol_depolarization(self, lat, lon, alt_km, time):
        b = self.aerosol_backscatter_532(lat, lon, alt_km, time)
        return np.where(b > 1e-7, ASH["depol"], np.nan)

    def clouds(self, lat, lon, time):
        cloudy = _band(lat, OPAQUE["lat"])
        return _Clouds(
            fraction=np.where(cloudy, 1.0, 0.0),
            top_km=np.where(cloudy, OPAQUE["top_km"], np.nan),
            base_km=np.where(cloudy, OPAQUE["base_km"], np.nan),
            optical_depth=np.where(cloudy, OPAQUE["tau"], 0.0),
            is_ice=np.zeros(np.shape(lat), bool),
        )

    def surface_is_land(self, lat, lon):
        return _band(lat, LAND["lat"])

    def surface_elevation_km(self, lat, lon):
        return np.where(_band(lat, LAND["lat"]), LAND["elevation_km"], 0.0)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("sample")
    return write_caliop_day(StandIn(), DAY, root, region=REGION, lat_margin_deg=2.0, rng_seed=7)


@pytest.fixture(scope="module")
def granules(archive) -> dict[str, Path]:
    """The first day granule and the first night granule of the archive."""
    out = {}
    for p in archive:
        out.setdefault(p.name[-5], p)
    assert set(out) == {"D", "N"}, [p.name for p in archive]
    return out


@pytest.fixture(scope="module")
def curtains(granules) -> dict[str, xr.Dataset]:
    return {k: read_curtain(p, ALL_VARS) for k, p in granules.items()}


def _molecular(z):
    return BETA_MOLECULAR_532_SEA_LEVEL * np.exp(-np.asarray(z) / 8.0)


def _metadata(path) -> dict:
    hdf = HDF(str(path))
    vs = hdf.vstart()
    vd = vs.attach("metadata")
    names = [f[0] for f in vd.fieldinfo()]
    record = vd.read(1)[0]
    vd.detach()
    vs.end()
    hdf.close()
    return dict(zip(names, record, strict=True))


# ----------------------------------------------------------------------------------------- granules and names


def test_granule_windows_split_at_the_terminator():
    windows = granule_windows(DAY)
    assert 28 <= len(windows) <= 30  # 14.57 orbits a day, two halves each
    d0 = np.datetime64(DAY, "ns")
    for a, b in zip(windows[:-1], windows[1:], strict=True):
        assert a.end == b.start
        assert a.day_night != b.day_night
    for w in windows:
        assert d0 <= w.start < d0 + np.timedelta64(1, "D")
        minutes = (w.end - w.start) / np.timedelta64(1, "m")
        assert 40 < minutes < 60
        lat, lon = CALIPSO.subpoint(w.start)
        assert abs(solar_zenith_deg(lat, lon, w.start) - 90.0) < 0.05
        mid = w.start + (w.end - w.start) // 2
        lat, lon = CALIPSO.subpoint(mid)
        assert (solar_zenith_deg(lat, lon, mid) < 90.0) == (w.day_night == "D")


def test_solar_zenith_at_noon_equinox():
    # 2021-03-20 09:37 UTC is the equinox; the equation of time is then -7.5 min, so at 12:00 UTC the sun stands
    # over (0°, 1.9° E)
    t = np.datetime64("2021-03-20T12:00")
    assert solar_zenith_deg(0.0, 1.9, t) < 0.3
    assert abs(solar_zenith_deg(0.0, 91.9, t) - 90.0) < 0.3
    # June solstice: the sun over the Tropic of Cancer (23.44° N) at local noon
    assert abs(solar_zenith_deg(23.44, -0.4, np.datetime64("2021-06-21T12:00"))) < 1.0


def test_names_folders_and_day_night(archive):
    assert archive, "no granule crosses the test region"
    for path in archive:
        fields = parse_filename(path, "caliop_l1b")
        assert fields["version"] == "4.51"
        start = fields["start"]
        assert path.parent.as_posix().endswith(start.strftime("caliop/%Y/%m/%d"))
        meta = _metadata(path)
        granule_start = dt.datetime.strptime(meta["Date_Time_at_Granule_Start"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert start == granule_start.replace(microsecond=0)
        one_ms = np.timedelta64(1, "ms")
        window = next(w for w in granule_windows(DAY) if abs(w.start - np.datetime64(granule_start)) < one_ms)
        assert window.day_night == fields["day_night"]
        sd = SD(str(path))
        flags = sd.select("Day_Night_Flag")[:].ravel()
        sza = sd.select("Solar_Zenith_Angle")[:].ravel()
        sd.end()
        assert np.all(flags == (0 if fields["day_night"] == "D" else 1))
        assert np.all((sza < 90) == (fields["day_night"] == "D"))


# ----------------------------------------------------------------------------------------- as a CALIOP user reads it


def test_pyhdf_reads_it_as_a_caliop_user(granules):
    path = str(granules["N"])
    sd = SD(path, SDC.READ)
    sds = sd.select("Total_Attenuated_Backscatter_532")
    data = sds[:]
    attrs = sds.attributes()
    n = data.shape[0]
    assert data.shape == (n, 583) and data.dtype == np.float32 and n > 100
    assert attrs["units"] == "per kilometer per steradian"
    assert attrs["fillvalue"] == -9999.0
    lo, hi = (float(x) for x in attrs["valid_range"].split("..."))
    assert lo <= np.nanmin(data) and np.nanmax(data) <= hi
    for name in ("Perpendicular_Attenuated_Backscatter_532", "Attenuated_Backscatter_1064"):
        assert sd.select(name)[:].shape == (n, 583)
    for name in ("Latitude", "Longitude", "Profile_Time", "Profile_UTC_Time", "Surface_Elevation", "Land_Water_Mask"):
        assert sd.select(name)[:].shape == (n, 1), name
    tai = sd.select("Profile_Time")[:].ravel()
    utc_number = sd.select("Profile_UTC_Time")[:].ravel()
    lat = sd.select("Latitude")[:].ravel()
    lon = sd.select("Longitude")[:].ravel()
    sd.end()

    # TAI93: 10 leap seconds were inserted between 1993-01-01 and 2021 (TAI - UTC 27 s -> 37 s)
    naive = (utc_number_to_datetime64(utc_number) - np.datetime64("1993-01-01", "ns")) / np.timedelta64(1, "s")
    np.testing.assert_allclose(tai - naive, 10.0, atol=1e-3)
    # ccplot-style decoding of Profile_UTC_Time agrees with our TAI decoding
    delta = (utc_number_to_datetime64(utc_number) - tai93_to_datetime64(tai)) / np.timedelta64(1, "ms")
    assert np.abs(delta).max() < 1.0
    # the profiles lie on the CALIPSO track
    lat_model, lon_model = CALIPSO.subpoint(tai93_to_datetime64(tai))
    np.testing.assert_allclose(lat, lat_model, atol=1e-4)
    np.testing.assert_allclose(lon, lon_model, atol=1e-4)

    hdf = HDF(path)
    vs = hdf.vstart()
    vd = vs.attach("metadata")
    fields = [f[0] for f in vd.fieldinfo()]
    record = vd.read(1)[0]
    vd.detach()
    vs.end()
    hdf.close()
    alt = np.asarray(record[fields.index("Lidar_Data_Altitudes")])
    assert alt.shape == (583,)
    ends = [0, 32, 33, 87, 88, 287, 288, 577, 578, 582]
    expected = [39.86, 30.26, 30.02, 20.31, 20.19, 8.26, 8.21, -0.45, -0.62, -1.82]
    np.testing.assert_allclose(alt[ends], expected, atol=0.005)
    spacing = -np.diff(alt)
    for a, b, step in ((0, 32, 0.300), (33, 87, 0.180), (88, 287, 0.060), (288, 577, 0.030), (578, 582, 0.300)):
        np.testing.assert_allclose(spacing[a:b], step, atol=0.001)
    assert {"Product_ID", "Date_Time_at_Granule_Start", "Date_Time_at_Granule_End"} <= set(fields)


def test_altitudes_function_matches_file(granules):
    np.testing.assert_array_equal(read_altitudes(granules["D"]), lidar_data_altitudes())


# ----------------------------------------------------------------------------------------- round trip


def test_round_trip_through_read_curtain(granules):
    path = granules["D"]
    ds = read_curtain(path, ["total_attenuated_backscatter_532", "attenuated_backscatter_1064"])
    sd = SD(str(path))
    total = sd.select("Total_Attenuated_Backscatter_532")[:]
    b1064 = sd.select("Attenuated_Backscatter_1064")[:]
    lat = sd.select("Latitude")[:].ravel()
    surf = sd.select("Surface_Elevation")[:].ravel()
    sd.end()
    assert ds.total_attenuated_backscatter_532.dims == ("profile", "altitude")
    np.testing.assert_array_equal(ds.total_attenuated_backscatter_532.values, total)
    np.testing.assert_array_equal(ds.attenuated_backscatter_1064.values, b1064)
    np.testing.assert_array_equal(ds.latitude.values, lat)
    np.testing.assert_array_equal(ds.surface_elevation.values, surf)
    np.testing.assert_array_equal(ds.altitude.values, lidar_data_altitudes())
    assert "perpendicular_attenuated_backscatter_532" not in ds
    assert ds.time.dtype == np.dtype("datetime64[ns]")
    assert np.all(np.diff(ds.time.values) > np.timedelta64(0, "ns"))
    assert ds.attrs["platform"] == "CALIPSO" and ds.attrs["day_night"] == "D"
    assert ds.attrs["time_coverage_start"].startswith(str(ds.time.values[0])[:19])
    assert ds.attrs["source"] == str(path)

    track = read_track(path)
    assert set(track.coords) == {"latitude", "longitude", "time"} and not track.data_vars
    np.testing.assert_array_equal(track.time.values, ds.time.values)


def test_profile_and_altitude_windows(granules):
    path = granules["N"]
    full = read_curtain(path)
    part = read_curtain(path, profiles=slice(10, 60, 5), alt_range_km=(0.0, 10.0))
    assert part.sizes["profile"] == 10
    assert part.altitude.min() >= 0.0 and part.altitude.max() <= 10.0
    sub = full.isel(profile=slice(10, 60, 5)).sel(altitude=part.altitude.values)
    np.testing.assert_array_equal(
        part.total_attenuated_backscatter_532.values, sub.total_attenuated_backscatter_532.values
    )
    np.testing.assert_array_equal(part.time.values, sub.time.values)
    pair = read_curtain(path, profiles=(10, 20))
    assert pair.sizes["profile"] == 10
    with pytest.raises(UserInputError, match="unknown CALIOP variable 'backscatter'"):
        read_curtain(path, ["backscatter"])
    with pytest.raises(UserInputError, match="altitude window"):
        read_curtain(path, alt_range_km=(50, 60))


def test_concurrent_reads_agree(granules):
    from concurrent.futures import ThreadPoolExecutor

    paths = [granules["D"], granules["N"]] * 4
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: read_curtain(p, ALL_VARS[:3]), paths))
    for p, ds in zip(paths, results, strict=True):
        xr.testing.assert_identical(ds, results[paths.index(p)])


def test_fill_values_become_nan(granules, tmp_path):
    path = tmp_path / granules["N"].name
    shutil.copy(granules["N"], path)
    sd = SD(str(path), SDC.WRITE)
    sds = sd.select("Total_Attenuated_Backscatter_532")
    data = sds[:]
    data[3, :20] = -9999.0
    sds[:] = data
    sds.endaccess()
    sd.end()
    ds = read_curtain(path)
    values = ds.total_attenuated_backscatter_532.values
    assert np.isnan(values[3, :20]).all()
    assert np.isfinite(values[3, 20:]).all() and np.isfinite(values[4]).all()


# ----------------------------------------------------------------------------------------- physics


def _rows(ds, band):
    return _band(ds.latitude.values, band)


def test_clear_air_molecular_backscatter(curtains):
    for ds in curtains.values():
        rows = _rows(ds, CLEAR)
        assert rows.sum() > 20
        z = ds.altitude.values
        near_1km = np.abs(z - 1.0) <= 0.1
        mean = ds.total_attenuated_backscatter_532.values[rows][:, near_1km].mean()
        assert mean == pytest.approx(1.5e-3 * np.exp(-1.0 / 8.0), rel=0.30)
    # 1064 nm: a sixteenth of it (by night: by day the 1064 channel's noise swamps so faint a signal)
    ds = curtains["N"]
    low = (ds.altitude.values > 0.5) & (ds.altitude.values < 2.5)
    mean1064 = ds.attenuated_backscatter_1064.values[_rows(ds, CLEAR)][:, low].mean()
    assert mean1064 == pytest.approx(_molecular(ds.altitude.values[low]).mean() / 16, rel=0.3)


def test_ash_layer_height_and_depolarisation(curtains):
    for ds in curtains.values():
        rows = _rows(ds, ASH["lat"])
        assert rows.sum() > 20
        z = ds.altitude.values
        mean = ds.total_attenuated_backscatter_532.values[rows].mean(axis=0)
        upper = (z > 5.0) & (z < 25.0)
        peak = z[upper][np.argmax(mean[upper])]
        assert abs(peak - ASH["height_km"]) <= 0.5
        assert mean[upper].max() > 5 * _molecular(ASH["height_km"])
        layer = np.abs(z - ASH["height_km"]) <= ASH["sigma_km"]
        total = ds.total_attenuated_backscatter_532.values[rows][:, layer]
        perp = ds.perpendicular_attenuated_backscatter_532.values[rows][:, layer]
        ratio = perp.sum() / (total - perp).sum()
        assert 0.2 < ratio < 0.45
        # the derived variable says the same where the signal is strong
        derived = ds.depolarization_ratio_532.values[rows][:, layer]
        assert np.nanmedian(derived) > 0.2
        # clear air hardly depolarises
        clear = _rows(ds, CLEAR)
        low = (z > 0.5) & (z < 3.0)
        t_c = ds.total_attenuated_backscatter_532.values[clear][:, low]
        p_c = ds.perpendicular_attenuated_backscatter_532.values[clear][:, low]
        assert p_c.sum() / (t_c - p_c).sum() < 0.05


def test_opaque_cloud_attenuates_below(curtains):
    for ds in curtains.values():
        rows = _rows(ds, (OPAQUE["lat"][0] + 0.2, OPAQUE["lat"][1] - 0.2))
        assert rows.sum() > 20
        z = ds.altitude.values
        below = (z > 0.3) & (z < OPAQUE["base_km"] - 0.2)
        mean_below = ds.total_attenuated_backscatter_532.values[rows][:, below].mean()
        assert mean_below < 0.2 * _molecular(z[below]).mean()
        # the cloud top is bright
        at_top = np.abs(z - (OPAQUE["top_km"] - 0.1)) <= 0.1
        assert ds.total_attenuated_backscatter_532.values[rows][:, at_top].mean() > 1e-2
        # and no surface return comes through
        surf = np.abs(z) < 0.1
        assert ds.total_attenuated_backscatter_532.values[rows][:, surf].max() < 0.05


def test_surface_peak_at_the_surface_elevation(curtains):
    for ds in curtains.values():
        z = ds.altitude.values
        low = z < 3.0
        data = ds.total_attenuated_backscatter_532.values[:, low]
        for band, elevation in ((LAND["lat"], LAND["elevation_km"]), (CLEAR, 0.0)):
            rows = _rows(ds, band)
            assert rows.sum() > 20
            np.testing.assert_allclose(ds.surface_elevation.values[rows], elevation)
            peaks = z[low][np.argmax(data[rows], axis=1)]
            assert np.all(np.abs(peaks - elevation) <= 0.04), peaks
            assert data[rows].max(axis=1).min() > 0.1
            # nothing below ground but noise (past the detector tail of two bins)
            below = z[low] < elevation - 0.12
            assert np.abs(data[rows][:, below].mean()) < 2e-4


def test_day_noisier_than_night(curtains):
    std = {}
    for key, ds in curtains.items():
        z = ds.altitude.values
        strat = (z > 20.0) & (z < 30.0)
        std[key] = ds.total_attenuated_backscatter_532.values[:, strat].std()
    assert std["D"] > 2 * std["N"]
    # the night stratosphere is still noisier than its molecular signal (as in real 5 km L1B curtains)
    assert std["N"] > 0.5 * _molecular(25.0)


def test_write_is_reproducible(tmp_path):
    window = granule_windows(DAY)[0]
    lat, lon = CALIPSO.subpoint(window.profile_times(15))
    region = (float(lon[100]) - 1, float(lat[100]) - 1, float(lon[100]) + 1, float(lat[100]) + 1)
    a = write_granule(StandIn(), window, tmp_path / "a.hdf", region=region, rng=np.random.default_rng(1))
    b = write_granule(StandIn(), window, tmp_path / "b.hdf", region=region, rng=np.random.default_rng(1))
    assert a is not None and b is not None
    np.testing.assert_array_equal(
        read_curtain(a, ALL_VARS[:3]).to_array().values, read_curtain(b, ALL_VARS[:3]).to_array().values
    )


def test_region_missed_writes_nothing(tmp_path):
    window = granule_windows(DAY)[0]
    region = (-180.0, 85.0, 180.0, 90.0)  # beyond the track's highest latitude (81.8°)
    assert write_granule(StandIn(), window, tmp_path / "x.hdf", region=region) is None
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------- the real scenario


def test_soufriere_plume_seen_at_its_height(tmp_path):
    scenario_mod = pytest.importorskip("app.sample.scenario")
    sc = scenario_mod.get_scenario("soufriere")
    # the night track of 2021-04-13 (03:39 UTC) crosses the plume near 35° W, 16° N. (The day track of 2021-04-11
    # at 16:13 crosses it too, but the scenario's layer, ~3e-4 km-1 sr-1, is then too faint against the daytime
    # noise to place its peak within 0.5 km every time.)
    window = next(w for w in granule_windows("2021-04-13") if w.day_night == "N" and str(w.start)[11:13] == "03")
    region = (-45.0, 8.0, -25.0, 24.0)
    path = write_granule(sc, window, tmp_path / "s.hdf", region=region, rng=np.random.default_rng(3))
    assert path is not None
    ds = read_curtain(path)
    z = ds.altitude.values.astype(float)
    truth = sc.aerosol_backscatter_532(ds.latitude.values, ds.longitude.values, z, ds.time.values)
    high_cloud = np.nan_to_num(sc.clouds(ds.latitude.values, ds.longitude.values, ds.time.values).top_km) > 5.0
    rows = (truth.max(axis=1) > 0.5 * truth.max()) & ~high_cloud
    assert rows.sum() >= 10
    expected = z[np.argmax(truth[rows].mean(axis=0))]
    assert 6.0 < expected < 18.0
    signal = ds.total_attenuated_backscatter_532.values[rows].mean(axis=0) - _molecular(z)
    upper = (z > 5.0) & (z < 20.0)
    smooth = np.convolve(signal[upper], np.ones(9) / 9, mode="same")  # 0.54 km running mean
    peak = z[upper][np.argmax(smooth)]
    assert abs(peak - expected) <= 0.5


# ----------------------------------------------------------------------------------------- bad input


def _write_partial(path: Path, sds_names, with_metadata: bool) -> Path:
    sd = SD(str(path), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    for name in sds_names:
        shape = (4, 583) if "Backscatter" in name else (4, 1)
        is_time = "Time" in name
        sds = sd.create(name, SDC.FLOAT64 if is_time else SDC.FLOAT32, shape)
        sds[:] = np.zeros(shape, np.float64 if is_time else np.float32)
        sds.endaccess()
    sd.end()
    if with_metadata:
        hdf = HDF(str(path), HC.WRITE)
        vs = hdf.vstart()
        vd = vs.create("metadata", (("Lidar_Data_Altitudes", HC.FLOAT32, 583),))
        vd.write([[list(map(float, lidar_data_altitudes()))]])
        vd.detach()
        vs.end()
        hdf.close()
    return path


GEO = ["Latitude", "Longitude", "Profile_Time", "Surface_Elevation"]


def test_bad_inputs_raise_granule_errors(granules, tmp_path):
    good = granules["N"]
    missing = tmp_path / "CAL_LID_L1-Standard-V4-51.2021-04-12T00-00-00ZN.hdf"
    with pytest.raises(GranuleError, match="does not exist") as e:
        read_curtain(missing)
    assert str(missing) in str(e.value)

    text = tmp_path / "notes.hdf"
    text.write_text("this is not an HDF4 file\n" * 100)
    with pytest.raises(GranuleError, match="cannot be opened as an HDF4 file") as e:
        read_curtain(text)
    assert e.value.path == str(text)

    data = good.read_bytes()
    for keep in (0.02, 0.5, 0.95):
        truncated = tmp_path / f"truncated_{keep}.hdf"
        truncated.write_bytes(data[: int(len(data) * keep)])
        with pytest.raises(GranuleError) as e:
            read_curtain(truncated, ALL_VARS)
        assert e.value.path == str(truncated)
        with pytest.raises(GranuleError):
            read_track(truncated)

    no_perp = _write_partial(
        tmp_path / "no_perp.hdf", GEO + ["Total_Attenuated_Backscatter_532", "Attenuated_Backscatter_1064"], True
    )
    assert read_curtain(no_perp).sizes["profile"] == 4
    with pytest.raises(GranuleError, match="no SDS 'Perpendicular_Attenuated_Backscatter_532'") as e:
        read_curtain(no_perp, ["depolarization_ratio_532"])
    assert e.value.path == str(no_perp)

    no_meta = _write_partial(tmp_path / "no_meta.hdf", GEO + ["Total_Attenuated_Backscatter_532"], False)
    with pytest.raises(GranuleError, match="no 'metadata' Vdata") as e:
        read_curtain(no_meta)
    assert e.value.path == str(no_meta)
    assert read_track(no_meta).sizes["profile"] == 4  # the track needs no altitudes
