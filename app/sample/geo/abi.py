"""Sample GOES-R ABI L1b full-disk radiance files: the scene model packed into the real netCDF4 format.

One file per band per slot, named and laid out as the real ones (see :mod:`app.data.geo_abi` for the format), under
``out_root/abi/{G16|G17}/YYYY/MM/DD/``. The real full disk is 5424 × 5424 pixels of 2 km (10848² at 1 km,
21696² at 0.5 km); a demo slot is written on a coarser grid by a whole factor (16 km: 678 × 678), with the
``x``/``y`` scan angles, their ``scale_factor``, and ``spatial_resolution`` adjusted together so satpy computes the
right area. Brightness temperatures become radiances by the inverse Planck function with the band's
``planck_fk1/fk2/bc1/bc2``; reflectances by ``kappa0`` (= π d² / esun); radiances become counts by the band's
``scale_factor``/``add_offset`` and bit depth (clipped to the valid range, the lowest count being the first with a
positive radiance). Large grids are written in blocks of rows.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from app.data.geo_abi import GENERIC_ABI, abi_file_name, bt_to_radiance
from app.data.geo_bands import ABI_BANDS, Band, geo_platform
from app.sample.geo.scene import GeoGrid, grid_cloud_top, simulate_channels

__all__ = ["write_abi_slot", "abi_slot_dir", "DEMO_CHANNELS", "DEMO_RESOLUTION_KM"]

#: The channels the Ash, Dust, Natural Colour, True Colour, Day Microphysics and SO2 recipes need
#: (C01 C02 C03 C05 C07 C09 C10 C11 C13 C14 C15 C16).
DEMO_CHANNELS: tuple[str, ...] = (
    "vis_04", "vis_06", "nir_08", "nir_16", "ir_39", "wv_69", "wv_73", "ir_87", "ir_105", "ir_112", "ir_120",
    "ir_133",
)
#: Pixel size of a demo slot at the sub-satellite point (678 × 678 for the full disk).
DEMO_RESOLUTION_KM = 16.0

#: Mode 6 full disk: scan starts ~20 s after the slot and ends ~9 min 51 s after it; files are created ~6 s later.
SCAN_START_S = 20.4
SCAN_END_S = 591.2
CREATED_AFTER_END_S = 5.8
_J2000 = dt.datetime(2000, 1, 1, 12, 0, 0)
_FILL_F = -999.0


def _as_datetime(time) -> dt.datetime:
    return np.datetime64(time, "us").astype(dt.datetime)


def abi_slot_dir(out_root, platform: str, time) -> Path:
    """The folder of a slot's files: ``out_root/abi/{platform}/YYYY/MM/DD``."""
    t = _as_datetime(time)
    return Path(out_root) / "abi" / platform / f"{t:%Y}" / f"{t:%m}" / f"{t:%d}"


def _earth_sun_distance_au(t: dt.datetime) -> float:
    from pyorbital.astronomy import sun_earth_distance_correction

    return float(sun_earth_distance_correction(t))


def _resolution_text(km: float) -> str:
    return f"{km:g}km at nadir"


class _BandFile:
    """One band's netCDF file being written."""

    def __init__(self, path: Path, band: Band, grid: GeoGrid, platform: str, times: dict, esd: float):
        import netCDF4

        self.path = path
        self.band = band
        self.grid = grid
        cal = band.calibration
        self.bits = cal["bit_depth"]
        self.fill = 2**self.bits - 1
        self.scale = np.float32(cal["scale_factor"])
        self.offset = np.float32(cal["add_offset"])
        self.count_min = int(np.ceil(-float(self.offset) / float(self.scale)))
        self.count_max = 2**self.bits - 2
        self.kappa0 = np.pi * esd * esd / cal["esun"] if band.is_solar else None
        self.stats = {"n": 0, "sum": 0.0, "sum2": 0.0, "min": np.inf, "max": -np.inf, "sat": 0, "under": 0}
        path.parent.mkdir(parents=True, exist_ok=True)
        self.nc = netCDF4.Dataset(path, "w", format="NETCDF4")
        self._define(platform, times, esd)

    def _define(self, platform: str, times: dict, esd: float) -> None:
        nc, g, band, cal = self.nc, self.grid, self.band, self.band.calibration
        p = geo_platform(platform)
        proj = p.projection
        ny, nx = g.shape
        chunk = (min(226, ny), min(226, nx))
        nc.createDimension("y", ny)
        nc.createDimension("x", nx)
        nc.createDimension("number_of_time_bounds", 2)
        nc.createDimension("band", 1)
        nc.createDimension("number_of_image_bounds", 2)
        solar = band.is_solar
        rad = nc.createVariable("Rad", "i2", ("y", "x"), zlib=True, complevel=1, shuffle=True, chunksizes=chunk,
                                fill_value=np.int16(self.fill))
        rad.set_auto_maskandscale(False)
        step = f"{g.dx_rad:.6f}"
        rad.setncatts({
            "long_name": "ABI L1b Radiances",
            "standard_name": ("toa_outgoing_radiance_per_unit_wavelength" if solar
                              else "toa_outgoing_radiance_per_unit_wavenumber"),
            "_Unsigned": "true",
            "sensor_band_bit_depth": np.int8(self.bits),
            "valid_range": np.array([0, self.count_max], dtype=np.int16),
            "scale_factor": self.scale,
            "add_offset": self.offset,
            "units": "W m-2 sr-1 um-1" if solar else "mW m-2 sr-1 (cm-1)-1",
            "resolution": f"y: {step} rad x: {step} rad",
            "coordinates": "band_id band_wavelength t y x",
            "grid_mapping": "goes_imager_projection",
            "cell_methods": "t: point area: point",
            "ancillary_variables": "DQF",
        })
        dqf = nc.createVariable("DQF", "i1", ("y", "x"), zlib=True, complevel=1, shuffle=True, chunksizes=chunk,
                                fill_value=np.int8(-1))
        dqf.set_auto_maskandscale(False)
        dqf.setncatts({
            "long_name": "ABI L1b Radiances data quality flags",
            "standard_name": "status_flag",
            "_Unsigned": "true",
            "valid_range": np.array([0, 4], dtype=np.int8),
            "units": "1",
            "coordinates": "band_id band_wavelength t y x",
            "grid_mapping": "goes_imager_projection",
            "cell_methods": "t: point area: point",
            "flag_values": np.array([0, 1, 2, 3, 4], dtype=np.int8),
            "flag_meanings": "good_pixel_qf conditionally_usable_pixel_qf out_of_range_pixel_qf no_value_pixel_qf "
                             "focal_plane_temperature_threshold_exceeded_qf",
            "number_of_qf_values": np.int8(5),
        })
        t = nc.createVariable("t", "f8")
        t.setncatts({"long_name": "J2000 epoch mid-point between the start and end image scan in seconds",
                     "standard_name": "time", "units": "seconds since 2000-01-01 12:00:00", "axis": "T",
                     "bounds": "time_bounds"})
        t[...] = times["mid_j2000"]
        tb = nc.createVariable("time_bounds", "f8", ("number_of_time_bounds",))
        tb.setncatts({"long_name": "Scan start and end times in seconds since epoch (2000-01-01 12:00:00)"})
        tb[:] = [times["start_j2000"], times["end_j2000"]]
        for name, values, step_rad, first in (("y", g.y_rad, g.dy_rad, g.y0_rad), ("x", g.x_rad, g.dx_rad, g.x0_rad)):
            v = nc.createVariable(name, "i2", (name,))
            v.set_auto_maskandscale(False)
            v.setncatts({
                "scale_factor": np.float32(round(step_rad, 9)),
                "add_offset": np.float32(round(first, 9)),
                "units": "rad",
                "axis": name.upper(),
                "long_name": f"GOES fixed grid projection {name}-coordinate",
                "standard_name": f"projection_{name}_coordinate",
            })
            v[:] = np.arange(values.size, dtype=np.int16)
        gip = nc.createVariable("goes_imager_projection", "i4")
        gip.setncatts({
            "long_name": "GOES-R ABI fixed grid projection",
            "grid_mapping_name": "geostationary",
            "perspective_point_height": proj.h,
            "semi_major_axis": proj.a,
            "semi_minor_axis": proj.b,
            "inverse_flattening": proj.a / (proj.a - proj.b),
            "latitude_of_projection_origin": 0.0,
            "longitude_of_projection_origin": proj.lon_0,
            "sweep_angle_axis": proj.sweep,
        })
        gip[...] = -2147483647
        half_x = (g.n_cols * g.dx_rad) / 2
        half_y = (g.n_rows * abs(g.dy_rad)) / 2
        for name, value, bounds in (("y_image", 0.0, [half_y, -half_y]), ("x_image", 0.0, [-half_x, half_x])):
            v = nc.createVariable(name, "f4")
            v.setncatts({"long_name": f"GOES-R fixed grid projection {name[0]}-coordinate center of image",
                         "standard_name": f"projection_{name[0]}_coordinate", "units": "rad", "axis": name[0].upper()})
            v[...] = value
            vb = nc.createVariable(f"{name}_bounds", "f4", ("number_of_image_bounds",))
            vb.setncatts({"long_name": f"GOES-R fixed grid projection {name[0]}-coordinate "
                                       f"{'north/south' if name[0] == 'y' else 'west/east'} extent of image",
                          "units": "rad"})
            vb[:] = bounds
        self._scalar("nominal_satellite_subpoint_lat", 0.0, "degrees_north", "nominal satellite subpoint latitude")
        self._scalar("nominal_satellite_subpoint_lon", p.sub_lon, "degrees_east",
                     "nominal satellite subpoint longitude")
        self._scalar("nominal_satellite_height", proj.h / 1000.0, "km", "nominal satellite height above GRS 80 "
                                                                         "ellipsoid")
        ext = nc.createVariable("geospatial_lat_lon_extent", "f4")
        ext.setncatts({
            "long_name": "geospatial latitude and longitude references",
            "geospatial_westbound_longitude": np.float32(proj.lon_0 - 81.3282),
            "geospatial_northbound_latitude": np.float32(81.3282),
            "geospatial_eastbound_longitude": np.float32(proj.lon_0 + 81.3282),
            "geospatial_southbound_latitude": np.float32(-81.3282),
            "geospatial_lat_center": np.float32(0.0),
            "geospatial_lon_center": np.float32(proj.lon_0),
            "geospatial_lat_nadir": np.float32(0.0),
            "geospatial_lon_nadir": np.float32(proj.lon_0),
            "geospatial_lat_units": "degrees_north",
            "geospatial_lon_units": "degrees_east",
        })
        ext[...] = np.float32(9.96921e36)
        yaw = nc.createVariable("yaw_flip_flag", "i1")
        yaw.setncatts({"long_name": "Flag indicating the spacecraft is operating in yaw flip configuration",
                       "_Unsigned": "true", "valid_range": np.array([0, 1], dtype=np.int8), "units": "1",
                       "flag_values": "0 1", "flag_meanings": "false true"})
        yaw[...] = 0
        bid = nc.createVariable("band_id", "i1", ("band",))
        bid.setncatts({"long_name": "ABI band number", "standard_name": "sensor_band_identifier", "units": "1"})
        bid[:] = [band.number]
        bwl = nc.createVariable("band_wavelength", "f4", ("band",))
        bwl.setncatts({"long_name": "ABI band central wavelength", "standard_name": "sensor_band_central_radiation_"
                       "wavelength", "units": "um"})
        bwl[:] = [band.central_wavelength_um]
        esun = cal.get("esun", _FILL_F)
        self._scalar("esun", esun, "W m-2 um-1", "bandpass-weighted solar irradiance at the mean Earth-Sun distance",
                     fill=True)
        self._scalar("kappa0", self.kappa0 if solar else _FILL_F, "(W m-2 um-1 sr-1)-1",
                     "Inverse of the incoming top of atmosphere radiance at current earth-sun distance (PI d2 "
                     "esun-1)-1, in units of reflectance factor, per W m-2 sr-1 um-1", fill=True)
        for name, long in (("fk1", "wavenumber-dependent coefficient (2 h c2/ lambda3) used in the ABI emissive "
                                   "band monochromatic brightness temperature computation"),
                           ("fk2", "wavenumber-dependent coefficient (h c / k lambda) used in the ABI emissive "
                                   "band monochromatic brightness temperature computation"),
                           ("bc1", "spectral bandpass correction offset for brightness temperature (B(T))"),
                           ("bc2", "spectral bandpass correction scale factor for brightness temperature (B(T))")):
            units = {"fk1": "W m-1", "fk2": "K", "bc1": "K", "bc2": "1"}[name]
            self._scalar(f"planck_{name}", cal.get(f"planck_{name}", _FILL_F), units, long, fill=True)
        self._scalar("earth_sun_distance_anomaly_in_AU", esd, "ua", "earth sun distance anomaly in astronomical "
                                                                   "units")
        for name in ("percent_uncorrectable_L0_errors", "percent_uncorrectable_GRB_errors"):
            self._scalar(name, 0.0, "percent", name.replace("_", " "))
        for name in ("algorithm_dynamic_input_data_container", "processing_parm_version_container",
                     "algorithm_product_version_container"):
            v = nc.createVariable(name, "i4")
            v.setncatts({"long_name": f"container for {name.replace('_container', '').replace('_', ' ')}"})
            v[...] = -2147483647
        nc.setncatts(self._global_attrs(p, times))

    def _scalar(self, name, value, units, long_name, fill=False):
        kwargs = {"fill_value": np.float32(_FILL_F)} if fill else {}
        v = self.nc.createVariable(name, "f4", **kwargs)
        v.setncatts({"long_name": long_name, "units": units})
        v[...] = np.float32(value)
        return v

    def _global_attrs(self, p, times: dict) -> dict:
        g = self.grid
        return {
            "naming_authority": "gov.nesdis.noaa",
            "Conventions": "CF-1.7",
            "Metadata_Conventions": "Unidata Dataset Discovery v1.0",
            "standard_name_vocabulary": "CF Standard Name Table (v35, 20 July 2016)",
            "institution": "DOC/NOAA/NESDIS > U.S. Department of Commerce, National Oceanic and Atmospheric "
                           "Administration, National Environmental Satellite, Data, and Information Services",
            "project": "GOES",
            "production_site": "WCDAS",
            "production_environment": "OE",
            "spatial_resolution": _resolution_text(g.resolution_km),
            "orbital_slot": p.slot,
            "platform_ID": p.key,
            "instrument_type": "GOES R Series Advanced Baseline Imager",
            "scene_id": "Full Disk",
            "instrument_ID": p.instrument_id,
            "title": "ABI L1b Radiances",
            "summary": "Single emissive band ABI L1b Radiance Products are digital maps of outgoing radiance values "
                       "at the top of the atmosphere for IR bands. (Synthetic sample written by Fumarole from a "
                       "scenario model; not real data.)",
            "keywords": "SPECTRAL/ENGINEERING > INFRARED WAVELENGTHS > INFRARED RADIANCE",
            "keywords_vocabulary": "NASA Global Change Master Directory (GCMD) Earth Science Keywords, Version 7.0."
                                   "0.0.0",
            "iso_series_metadata_id": "a70be540-c38b-11e0-962b-0800200c9a66",
            "license": "Unclassified data.  Access is restricted to approved users only.",
            "processing_level": "L1b",
            "cdm_data_type": "Image",
            "dataset_name": self.path.name,
            "production_data_source": "Realtime",
            "timeline_id": "ABI Mode 6",
            "date_created": times["created_iso"],
            "time_coverage_start": times["start_iso"],
            "time_coverage_end": times["end_iso"],
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, self.path.name)),
            "source": "Fumarole sample archive (synthetic)",
        }

    def radiance(self, values: np.ndarray) -> np.ndarray:
        """Radiance of scene values (BT in K or reflectance in %)."""
        cal = self.band.calibration
        if self.band.is_solar:
            return values / 100.0 / self.kappa0
        return bt_to_radiance(values, cal["planck_fk1"], cal["planck_fk2"], cal["planck_bc1"], cal["planck_bc2"])

    def write_rows(self, rows: slice, values: np.ndarray) -> None:
        on_disk = np.isfinite(values)
        rad = self.radiance(np.where(on_disk, values, 0.0))
        counts = np.rint((rad - float(self.offset)) / float(self.scale))
        high = on_disk & (counts > self.count_max)
        low = on_disk & (counts < self.count_min)
        counts = np.clip(counts, self.count_min, self.count_max)
        counts = np.where(on_disk, counts, self.fill).astype(np.uint16)
        dqf = np.where(on_disk, np.where(high | low, 2, 0), 255).astype(np.uint8)
        self.nc.variables["Rad"][rows, :] = counts.view(np.int16)
        self.nc.variables["DQF"][rows, :] = dqf.view(np.int8)
        rad_q = counts[on_disk].astype(np.float64) * float(self.scale) + float(self.offset)
        s = self.stats
        if rad_q.size:
            s["n"] += rad_q.size
            s["sum"] += rad_q.sum()
            s["sum2"] += (rad_q * rad_q).sum()
            s["min"] = min(s["min"], rad_q.min())
            s["max"] = max(s["max"], rad_q.max())
        s["sat"] += int(high.sum())
        s["under"] += int(low.sum())

    def close(self) -> None:
        s = self.stats
        n = max(s["n"], 1)
        mean = s["sum"] / n
        std = np.sqrt(max(s["sum2"] / n - mean * mean, 0.0))
        units = "W m-2 sr-1 um-1" if self.band.is_solar else "mW m-2 sr-1 (cm-1)-1"
        for name, value in (("min", s["min"] if s["n"] else _FILL_F), ("max", s["max"] if s["n"] else _FILL_F),
                            ("mean", mean), ("std_dev", std)):
            self._scalar(f"{name}_radiance_value_of_valid_pixels", value, units,
                         f"{name.replace('_', ' ')} radiance value of pixels")
        total = self.grid.n_rows * self.grid.n_cols
        for name, value in (("valid_pixel_count", s["n"]), ("missing_pixel_count", total - s["n"]),
                            ("saturated_pixel_count", s["sat"]), ("undersaturated_pixel_count", s["under"])):
            v = self.nc.createVariable(name, "i4")
            v.setncatts({"long_name": f"number of {name.replace('_count', '').replace('_', ' ')}s", "units": "count"})
            v[...] = value
        self.nc.close()


def _bands(channels: Iterable[str]) -> list[Band]:
    names = [channels] if isinstance(channels, str) else list(channels)
    unknown = [c for c in names if c not in GENERIC_ABI]
    if unknown:
        raise ValueError(f"ABI has no channel {', '.join(map(repr, unknown))}; its channels are "
                         f"{', '.join(GENERIC_ABI)}")
    return [ABI_BANDS[GENERIC_ABI[c]] for c in dict.fromkeys(names)]


def _times(time) -> dict:
    slot = _as_datetime(time)
    start = slot + dt.timedelta(seconds=SCAN_START_S)
    end = slot + dt.timedelta(seconds=SCAN_END_S)
    created = end + dt.timedelta(seconds=CREATED_AFTER_END_S)

    def iso(t):
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 100000:d}Z"

    def j2000(t):
        return (t - _J2000).total_seconds()

    return {
        "slot": slot, "start": start, "end": end, "created": created,
        "start_iso": iso(start), "end_iso": iso(end), "created_iso": iso(created),
        "start_j2000": j2000(start), "end_j2000": j2000(end), "mid_j2000": 0.5 * (j2000(start) + j2000(end)),
    }


def write_abi_slot(
    scenario,
    platform: str,
    time,
    out_root,
    *,
    resolution_km: float | None = DEMO_RESOLUTION_KM,
    channels: Iterable[str] = DEMO_CHANNELS,
    max_block_pixels: int = 1_000_000,
) -> list[Path]:
    """Write one full-disk slot of GOES ABI L1b radiance files, one per band; return their paths.

    ``platform`` is ``G16`` (GOES-East, −75.2°) or ``G17`` (GOES-West, −137.2°); ``time`` the slot (e.g.
    ``2021-04-12T15:00``); ``channels`` generic names (default: what the RGB recipes need). ``resolution_km`` is
    the pixel size at the sub-satellite point: each band is written at it or at its native resolution if that is
    coarser (16 km: every band on a 678 × 678 grid; ``None``: native, 5424² at 2 km … 21696² at 0.5 km). It must
    divide the full disk into whole pixels (2, 4, 6, 8, 16, 32 … km).
    """
    p = geo_platform(platform)
    if p.sensor != "abi":
        raise ValueError(f"{platform} carries {p.sensor.upper()}, not ABI; ABI platforms are G16 and G17")
    bands = _bands(channels)
    times = _times(time)
    esd = _earth_sun_distance_au(times["start"])
    folder = abi_slot_dir(out_root, platform, times["slot"])
    groups: dict[float, list[Band]] = {}
    for b in bands:
        res = b.resolution_km if resolution_km is None else max(float(resolution_km), b.resolution_km)
        groups.setdefault(res, []).append(b)
    paths: list[Path] = []
    slot64 = np.datetime64(times["slot"])
    for res, group in groups.items():
        grid = GeoGrid.full_disk(platform, res)
        files = [
            _BandFile(folder / abi_file_name(b.number, platform, times["start"], times["end"], times["created"]),
                      b, grid, platform, times, esd)
            for b in group
        ]
        try:
            for rows in grid.row_blocks(max_block_pixels):
                lat, lon = grid.lonlat(rows)
                clouds = grid_cloud_top(scenario, grid, slot64, rows)
                values = simulate_channels(scenario, lat, lon, slot64, p.sub_lon, [b.generic for b in group],
                                           sat_height_m=p.projection.h, cloud_tops=clouds)
                for f in files:
                    f.write_rows(rows, values[f.band.generic])
        except BaseException:
            for f in files:  # no half-written file may look like a real one
                f.nc.close()
                f.path.unlink(missing_ok=True)
            raise
        for f in files:
            f.close()
        paths += [f.path for f in files]
    order = {b.number: i for i, b in enumerate(bands)}
    return sorted(paths, key=lambda path: order[int(path.name.split("-M6C")[1][:2])])
