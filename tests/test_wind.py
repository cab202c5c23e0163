"""Wind for the flux (app.data.wind): the standard atmosphere, ERA5 files of both CDS generations, CSV, constant,
the catalogue's wind entry, and the sample writer.

The ERA5 files are built here from the CDS's public description of "ERA5 hourly data on pressure levels" in netCDF
(the legacy netCDF-3 layout: ``time`` hours since 1900, ``level`` in millibars, int16 ``u``/``v`` with
``scale_factor``/``add_offset``, longitudes 0..360, latitude north first; and the layout since September 2024:
``valid_time`` seconds since 1970, ``pressure_level``, float32, an ``expver`` dimension of length 1), never with our
sample writer. Their fields are chosen so that the interpolations are exact: linear in latitude, longitude and time,
and linear in ln(p) -- so every expected value below is computed by hand from the formula of the field.
"""

from __future__ import annotations

import math

import netCDF4
import numpy as np
import pandas as pd
import pytest
import yaml

from app.data import catalog
from app.data.catalog import wind_spec
from app.data.errors import CatalogError, UserInputError
from app.data.wind import (
    ConstantWind,
    CsvWind,
    Era5Wind,
    WindError,
    height_km_at,
    open_wind,
    pressure_hpa_at,
    wind_from_catalog,
)
from app.paths import REPO
from app.services.timeseries import compute_flux_timeseries

T0 = np.datetime64("2021-04-12T00:00")
LEVELS = np.array([1000, 850, 700, 500, 400, 300, 250, 200, 150, 100], dtype=float)


def u_field(hours, level_hpa, lat, lon_east):
    """The test field u (m/s): linear in time, ln(p), latitude and longitude (0..360 east)."""
    return 2.0 + 0.5 * hours - 4.0 * np.log(level_hpa / 1000.0) + 0.1 * lat + 0.02 * lon_east


def v_field(hours, level_hpa, lat, lon_east):
    """The test field v (m/s)."""
    return -1.0 + 0.25 * hours + 1.5 * np.log(level_hpa / 1000.0) - 0.05 * lat


def _grid(times_h, lats, lons_east):
    h, p, la, lo = np.meshgrid(times_h, LEVELS, lats, lons_east, indexing="ij")
    return u_field(h, p, la, lo), v_field(h, p, la, lo)


def build_legacy_era5(path, lats=None, lons=None, hours=(0, 6, 12, 18, 24)):
    """ERA5 on pressure levels as the legacy CDS delivered it: netCDF-3, packed int16, hours since 1900."""
    lats = np.arange(90.0, -90.1, -2.5) if lats is None else np.asarray(lats, float)
    lons = np.arange(0.0, 360.0, 2.5) if lons is None else np.asarray(lons, float)
    u, v = _grid(np.asarray(hours, float), lats, lons)
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as nc:
        nc.Conventions = "CF-1.6"
        nc.history = "2021-05-01 10:00:00 GMT by grib_to_netcdf-2.20.0: /opt/ecmwf/mars-client/bin/grib_to_netcdf ..."
        for name, size in (("longitude", len(lons)), ("latitude", len(lats)), ("level", len(LEVELS)),
                           ("time", len(hours))):
            nc.createDimension(name, size)
        lo = nc.createVariable("longitude", "f4", ("longitude",))
        lo.units, lo.long_name = "degrees_east", "longitude"
        lo[:] = lons
        la = nc.createVariable("latitude", "f4", ("latitude",))
        la.units, la.long_name = "degrees_north", "latitude"
        la[:] = lats
        lv = nc.createVariable("level", "i4", ("level",))
        lv.units, lv.long_name = "millibars", "pressure_level"
        lv[:] = LEVELS.astype(np.int32)
        t = nc.createVariable("time", "i4", ("time",))
        t.units, t.long_name, t.calendar = "hours since 1900-01-01 00:00:00.0", "time", "gregorian"
        base = (T0 - np.datetime64("1900-01-01T00:00")).astype("timedelta64[h]").astype(int)
        t[:] = base + np.asarray(hours, dtype=np.int32)
        for name, data, long_name in (("u", u, "U component of wind"), ("v", v, "V component of wind")):
            lo_v, hi_v = float(data.min()), float(data.max())
            scale = (hi_v - lo_v) / 65000.0
            var = nc.createVariable(name, "i2", ("time", "level", "latitude", "longitude"), fill_value=np.int16(-32767))
            var.scale_factor, var.add_offset = scale, (hi_v + lo_v) / 2.0
            var.units, var.long_name = "m s**-1", long_name
            var[:] = data  # netCDF4 packs with the scale factor and the offset
    return path


def build_cds2024_era5(path, lats=None, lons=None, hours=(0, 3, 6, 9, 12)):
    """ERA5 on pressure levels as the CDS delivers it since 2024: netCDF-4, float32, valid_time, pressure_level."""
    lats = np.arange(20.0, 5.0, -0.25) if lats is None else np.asarray(lats, float)
    lons = np.arange(-70.0, -50.0, 0.25) if lons is None else np.asarray(lons, float)
    u, v = _grid(np.asarray(hours, float), lats, lons % 360.0)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.GRIB_centre, nc.Conventions, nc.institution = "ecmf", "CF-1.7", "European Centre for Medium-Range Weather"
        for name, size in (("valid_time", len(hours)), ("pressure_level", len(LEVELS)), ("latitude", len(lats)),
                           ("longitude", len(lons))):
            nc.createDimension(name, size)
        t = nc.createVariable("valid_time", "i8", ("valid_time",))
        t.units, t.calendar, t.standard_name = "seconds since 1970-01-01", "proleptic_gregorian", "time"
        t[:] = (T0 - np.datetime64("1970-01-01T00:00")).astype("timedelta64[s]").astype(np.int64) + \
            np.asarray(hours, np.int64) * 3600
        p = nc.createVariable("pressure_level", "f8", ("pressure_level",))
        p.units, p.stored_direction = "hPa", "decreasing"
        p[:] = LEVELS
        la = nc.createVariable("latitude", "f8", ("latitude",))
        la.units = "degrees_north"
        la[:] = lats
        lo = nc.createVariable("longitude", "f8", ("longitude",))
        lo.units = "degrees_east"
        lo[:] = lons
        e = nc.createVariable("expver", str, ("valid_time",))
        for i in range(len(hours)):
            e[i] = "0001"
        for name, data in (("u", u), ("v", v)):
            var = nc.createVariable(name, "f4", ("valid_time", "pressure_level", "latitude", "longitude"),
                                    zlib=True, fill_value=np.float32(np.nan))
            var.units, var.GRIB_shortName = "m s**-1", name
            var[:] = data.astype(np.float32)
    return path


def expected_uv(time, height_km, lat, lon):
    """The hand value: the field at the height's standard pressure (the formula is linear in ln p)."""
    hours = (np.datetime64(time, "s") - T0.astype("datetime64[s]")).astype(float) / 3600.0
    p = pressure_hpa_at(height_km)
    return u_field(hours, p, lat, lon % 360.0), v_field(hours, p, lat, lon % 360.0)


# --- the standard atmosphere ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height_km", "hpa"),
    [
        (0.0, 1013.25),
        # 1013.25 · (255.65 / 288.15)^5.255877: ln 0.887212 = -0.119672, × 5.255877 = -0.628982, e^ = 0.533152
        (5.0, 540.20),
        # 1013.25 · (223.15 / 288.15)^5.255877: ln 0.774423 = -0.255659, × 5.255877 = -1.343714, e^ = 0.260877
        (10.0, 264.34),
        (11.0, 226.32),
        # 226.3206 · e^(-4 / 6.34162) = 226.3206 · 0.532194
        (15.0, 120.45),
        (20.0, 54.749),
        # 54.74887 · (216.65 / 221.65)^34.16319: ln 0.977442 = -0.022817, × 34.16319 = -0.779504, e^ = 0.458636
        (25.0, 25.110),
    ],
)
def test_standard_atmosphere_pressure_by_hand(height_km, hpa):
    assert pressure_hpa_at(height_km) == pytest.approx(hpa, rel=2e-4)
    assert height_km_at(hpa) == pytest.approx(height_km, abs=0.005)


def test_standard_atmosphere_inverse_and_range():
    z = np.linspace(0.0, 31.9, 60)
    assert np.allclose(height_km_at(pressure_hpa_at(z)), z, atol=1e-9)
    assert math.isnan(pressure_hpa_at(33.0)) and math.isnan(height_km_at(5.0))  # 5 hPa is above 32 km


# --- ERA5 files of both generations --------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [build_legacy_era5, build_cds2024_era5])
@pytest.mark.parametrize(("time", "height_km", "lat", "lon"), [
    ("2021-04-12T02:30", 7.0, 13.33, -61.18),  # La Soufrière: between grid points, levels and times
    ("2021-04-12T09:00", 12.0, 13.33, -61.18),  # on a time
    ("2021-04-12T01:00", 1.5, 16.72, -62.18),  # Soufrière Hills
])
def test_era5_wind_is_bilinear_log_pressure_and_linear_in_time(tmp_path, builder, time, height_km, lat, lon):
    path = builder(tmp_path / "era5.nc")
    wind = Era5Wind("era5.nc", str(path))
    u, v = wind.uv([time], height_km, lat, lon)
    eu, ev = expected_uv(time, height_km, lat, lon)
    tol = 0.01 if builder is build_legacy_era5 else 1e-3  # int16 packing vs float32
    assert u[0] == pytest.approx(eu, abs=tol) and v[0] == pytest.approx(ev, abs=tol)
    assert wind.speed_ms([time], height_km, lat, lon)[0] == pytest.approx(math.hypot(eu, ev), abs=2 * tol)


def test_era5_longitude_seam_of_a_global_grid(tmp_path):
    """A volcano at 359° (-1°) lies between the last column (357.5°) and the first (0°): weights 0.4 and 0.6."""
    path = build_legacy_era5(tmp_path / "era5.nc")
    with netCDF4.Dataset(path, "a") as nc:
        for name in ("u", "v"):
            data = np.full(nc[name].shape, 10.0)
            data[..., 0] = 20.0  # the 0° column
            nc[name][:] = data if name == "u" else np.zeros(nc[name].shape)
    wind = Era5Wind("era5.nc", str(path))
    u, v = wind.uv(["2021-04-12T06:00"], 7.0, 0.0, -1.0)
    assert u[0] == pytest.approx(0.4 * 10.0 + 0.6 * 20.0, abs=0.01) and v[0] == pytest.approx(0.0, abs=0.01)


def test_era5_outside_its_times_there_is_no_wind_and_the_flux_says_why(tmp_path):
    wind = Era5Wind("wind/era5.nc", str(build_cds2024_era5(tmp_path / "era5.nc")))
    speeds = wind.speed_ms(["2021-04-12T14:59", "2021-04-12T15:01", "2021-04-11T20:00"], 7.0, 13.33, -61.18)
    assert np.isfinite(speeds[0]) and np.isnan(speeds[1:]).all()  # 12:00 is the last time, 3 h tolerance
    table = pd.DataFrame({"orbit": [1] * 3, "time": pd.Timestamp("2021-04-13T10:00"), "radius_km": [25.0, 50, 100],
                          "mass_t": [1.0, 2.0, 3.0], "coverage": 1.0})
    flux = compute_flux_timeseries(table, wind, plume_height_km=7.0, volcano=(13.33, -61.18))
    assert flux["reason"].iloc[0] == ("no wind: the wind file wind/era5.nc covers 2021-04-12 00:00 UTC to "
                                      "2021-04-12 12:00 UTC, not 2021-04-13 10:00 UTC (± 3 h)")


def test_era5_volcano_outside_a_regional_grid_is_named(tmp_path):
    wind = Era5Wind("wind/era5.nc", str(build_cds2024_era5(tmp_path / "era5.nc")))
    with pytest.raises(WindError, match=r"^the wind file wind/era5.nc covers latitudes 5.25 to 20 and longitudes -70 "
                                        r"to -50.25; the volcano at -20.54, -175.38 is outside it$"):
        wind.speed_ms(["2021-04-12T03:00"], 7.0, -20.54, -175.38)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda nc: nc.renameVariable("u", "t"), "is not an ERA5 pressure-level layout: it has no variable u"),
    (lambda nc: nc.renameDimension("latitude", "y"), "u is on ('valid_time', 'pressure_level', 'y', 'longitude')"),
    (lambda nc: nc["valid_time"].delncattr("units"), "its time variable valid_time has no units"),
])
def test_a_file_that_is_not_era5_is_named_with_the_reason(tmp_path, damage, message):
    path = build_cds2024_era5(tmp_path / "era5.nc")
    with netCDF4.Dataset(path, "a") as nc:
        damage(nc)
    with pytest.raises(WindError) as exc:
        Era5Wind("wind/era5.nc", str(path))
    assert str(exc.value).startswith("the wind file wind/era5.nc ") and message in str(exc.value)
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(WindError, match=r"^the wind file garbage.nc cannot be opened as netCDF"):
        open_wind("era5", path=garbage)


# --- CSV and constant ----------------------------------------------------------------------------------------------


def test_csv_wind_linear_in_time_and_in_height(tmp_path):
    path = tmp_path / "sonde.csv"
    path.write_text("# radiosonde, Barbados\ntime,height_km,speed_ms,direction_deg\n"
                    "2021-04-12T00:00Z,5,4,90\n2021-04-12T00:00Z,10,14,90\n"
                    "2021-04-12T12:00Z,5,8,100\n2021-04-12T12:00Z,10,20,100\n")
    wind = CsvWind.from_file(path, "sonde.csv")
    # at 7 km: 4 + (14-4)·2/5 = 8 at 00:00 and 8 + 12·2/5 = 12.8 at 12:00; at 03:00, 8 + (12.8-8)·3/12 = 9.2
    got = wind.speed_ms(["2021-04-12T03:00", "2021-04-12T12:00", "2021-04-12T13:00"], 7.0, 0, 0)
    assert got[:2] == pytest.approx([9.2, 12.8]) and np.isnan(got[2])
    assert wind.speed_ms(["2021-04-12T00:00"], 20.0, 0, 0)[0] == pytest.approx(14.0)  # above the profile: its top
    assert wind.describe(7.0, 0, 0) == "time series from sonde.csv at 7 km"


@pytest.mark.parametrize(("text", "message"), [
    ("time,speed_ms,height_km\n2021-04-12,3,40\n", "row 2: height_km '40' is not a height of -1 to 32 km"),
    ("time,speed_ms,direction_deg\n2021-04-12,3,400\n", "row 2: direction_deg '400' is not a direction 0-360°"),
    ("time,speed_ms,height_km\n2021-04-12,3,5\n2021-04-12,4,5\n", "gives the time 2021-04-12 00:00:00 at 5 km twice"),
])
def test_bad_csv_winds_name_the_file_and_the_row(tmp_path, text, message):
    path = tmp_path / "w.csv"
    path.write_text(text)
    with pytest.raises(UserInputError, match=message):
        CsvWind.from_file(path, "w.csv")


def test_constant_wind_and_its_checks():
    wind = ConstantWind("constant", 8.0, 270.0)
    assert wind.speed_ms(["2021-04-12", "2030-01-01"], 7.0, 0, 0).tolist() == [8.0, 8.0]
    assert wind.describe(7.0, 0, 0) == "8 m/s from 270° (constant)"
    for speed, direction, says in ((0.0, None, "more than 0 m/s"), (5.0, 361.0, "0-360 degrees")):
        with pytest.raises(WindError, match=says):
            ConstantWind("constant", speed, direction)


def test_every_kind_feeds_the_flux(tmp_path):
    """One interface: the flux of a constant source equals that of the number; an ERA5 source gives its speed."""
    table = pd.DataFrame({"orbit": [7] * 4, "time": pd.Timestamp("2021-04-12T03:00"),
                          "radius_km": [25.0, 50.0, 100.0, 200.0], "mass_t": [10.0, 20.5, 42.0, 88.0],
                          "coverage": 1.0})
    by_number = compute_flux_timeseries(table, 8.0)
    pd.testing.assert_frame_equal(compute_flux_timeseries(table, ConstantWind("constant", 8.0)), by_number)
    era5 = Era5Wind("e.nc", str(build_cds2024_era5(tmp_path / "e.nc")))
    flux = compute_flux_timeseries(table, era5, plume_height_km=7.0, volcano=(13.33, -61.18))
    eu, ev = expected_uv("2021-04-12T03:00", 7.0, 13.33, -61.18)
    assert flux["wind_ms"].iloc[0] == pytest.approx(math.hypot(eu, ev), abs=1e-3)
    assert flux["flux_t_day"].iloc[0] == pytest.approx(by_number["flux_t_day"].iloc[0] * math.hypot(eu, ev) / 8.0)
    nothing = compute_flux_timeseries(table, None)
    assert nothing["flux_t_day"].isna().all() and nothing["reason"].iloc[0].startswith("no wind: no wind source")


# --- the catalogue's wind entry ------------------------------------------------------------------------------------


def test_the_sample_catalogues_name_the_scenarios_era5_file():
    for name in ("sample", "tiny"):
        spec = wind_spec(catalog.open_catalog(name))
        assert spec.kind == "era5" and spec.entry == "wind"
        assert spec.url.endswith(f"data/{name}/wind/era5_wind.nc") or name == "sample"


def _template_with(tmp_path, wind_yaml: str, data: dict | None = None):
    doc = yaml.safe_load((REPO / "catalogs" / "real-archive.template.yaml").read_text())
    doc["entries"]["wind"] = {"user_parameters": {}, **yaml.safe_load(wind_yaml)}
    if data is not None:
        doc["data"]["wind_file"] = {"metadata": {}, "user_parameters": {}, **data}
    path = tmp_path / "cat.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return catalog.open_catalog(path)


def test_the_templates_three_kinds_of_wind_entry(tmp_path):
    """The era5 entry of the template, and its commented constant and csv entries, uncommented."""
    template = (REPO / "catalogs" / "real-archive.template.yaml").read_text()
    blocks = template.split("  # wind:\n")[1:]
    constant, csv = (
        "\n".join(line[4:] for line in b.splitlines() if line.startswith("  #   "))
        for b in (blocks[1], blocks[0])
    )
    cat = _template_with(tmp_path, constant)
    source = wind_from_catalog(cat)
    assert isinstance(source, ConstantWind) and (source.speed, source.direction_deg) == (8.0, 270.0)
    sonde = tmp_path / "sonde.csv"
    sonde.write_text("time,speed_ms\n2021-04-12T00:00Z,6\n2021-04-12T12:00Z,9\n")
    cat = _template_with(tmp_path, csv, {"datatype": "intake.readers.datatypes:CSV",
                                         "kwargs": {"url": str(sonde), "storage_options": None}})
    source = wind_from_catalog(cat)
    assert isinstance(source, CsvWind) and source.speed_ms(["2021-04-12T06:00"], 7, 0, 0)[0] == pytest.approx(7.5)
    assert catalog.products(cat)[0] == "tropomi_so2"  # a wind entry is not a product
    era5 = wind_spec(catalog.open_catalog(REPO / "catalogs" / "real-archive.template.yaml"))
    assert (era5.kind, era5.url) == ("era5", "/data/ERA5/era5_pressure_levels_u_v.nc")


def test_a_wrong_wind_entry_is_a_sentence(tmp_path):
    with pytest.raises(CatalogError, match=r"entry 'wind' has wind_source: 'gfs'; known kinds: constant, csv, era5"):
        wind_spec(_template_with(tmp_path, "{reader: 'intake.readers.readers:PandasCSV', "
                                           "metadata: {wind_source: gfs}}"))
    with pytest.raises(CatalogError, match=r"the constant wind entry 'wind' has no speed_ms"):
        wind_spec(_template_with(tmp_path, "{reader: 'intake.readers.convert:GenericFunc', "
                                           "metadata: {wind_source: constant}}"))


# --- the sample writer ---------------------------------------------------------------------------------------------


def test_the_scenarios_wind_file_is_era5_and_reads_back_as_the_scenarios_wind(tmp_path):
    import xarray as xr

    from app.sample.scenario import get_scenario
    from app.sample.wind import PRESSURE_LEVELS_HPA, write_wind_file

    sc = get_scenario("soufriere-tiny")
    path = write_wind_file(sc, tmp_path)
    assert path == tmp_path / "wind" / "era5_wind.nc"
    with xr.open_dataset(path) as ds:  # an ERA5 file as any reader sees it
        assert ds["u"].dims == ("valid_time", "pressure_level", "latitude", "longitude")
        assert ds["u"].attrs["units"] == "m s**-1" and ds["u"].dtype == np.float32
        assert (np.diff(ds["latitude"].values) < 0).all() and ds["longitude"].min() >= -180
        assert ds["valid_time"].values[0] == np.datetime64("2021-04-11T23:00")
        assert ds["valid_time"].values[-1] == np.datetime64("2021-04-13T01:00")  # an hour either side
    wind = Era5Wind("wind/era5_wind.nc", str(path))
    v = sc.volcano
    heights = height_km_at(np.asarray(PRESSURE_LEVELS_HPA, float))
    for h in heights[heights < 20]:  # at the levels' own heights: the scenario's wind itself
        got = wind.speed_ms(["2021-04-12T17:55"], float(h), v.latitude, v.longitude)[0]
        assert got == pytest.approx(float(sc.wind_speed_ms(h)), abs=1e-4)
