"""Write one Meteosat SEVIRI slot as an EUMETSAT Level 1.5 netCDF file (satpy's ``seviri_l1b_nc`` format).

The format, its name and the choice of it over the native ``.nat`` binary are described in
:mod:`app.data.geo_seviri`. One file per 15-minute slot and satellite:
``W_XX-EUMETSAT-Darmstadt,VIS+IR+HRV+IMAGERY,{MSG4|MSG1}+SEVIRI_C_EUMG_{YYYYmmddHHMMSS}.nc`` — Meteosat-11
(MSG4) at 0° for the prime service, Meteosat-8 (MSG1) at 41.5° E for the Indian Ocean service (as in 2021).

Reduced resolution
------------------
The real VIS/IR grid is 3712 × 3712 pixels of 3 km (3.0004031658 km) at the sub-satellite point. The sample
coarsens it by ``resolution_factor`` (an integer dividing 3712 into an even number): 464 × 464 pixels of 24 km
for the demo's factor 8. The file's grid step is 3.0004031658 km × factor and its line/pixel numbers are those of
a grid centred on pixel 1856 as the real one is (``west_most_pixel = 1856 + N/2``, ``east_most_pixel =
1857 − N/2``, likewise north/south), so the sub-satellite point stays at a pixel centre and satpy's area extent
is the real one coarsened. ``resolution_factor=1`` writes the real full disk. HRV (``ch12``) is written on a grid
three times finer over the whole disk (real HRV covers only part of it), the scene's ``hrv`` reflectance on the
VIS/IR grid repeated 3 × 3: it carries no finer detail (satpy's netCDF reader does not read HRV; ours averages it
back onto the VIS/IR grid).

Calibration written
-------------------
10-bit counts (1–1023, 0 = no data) with each channel's nominal gain (``GAIN``, close to real MSG values) and an
offset of −51 counts × gain, stored as ``scale_factor`` / ``add_offset``; infrared channels use effective
radiance (``planned_chan_processing`` = 2) with the satellite's published νc, α, β; solar channels the
satellite's band solar irradiance and the Sun–Earth distance at the repeat-cycle start. Values beyond the count
range saturate. Quantisation is SEVIRI's own: half a count is 0.05–0.1 K for IR_108 / IR_120 at 260–300 K,
≈ 0.15–0.2 K at 220 K, more at colder temperatures; ≈ 0.06 % reflectance for VIS006.
Navigation: the satellite sits exactly at its nominal longitude; all lines are valid and nominal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np

from app.data import geo_seviri as l15
from app.data.geo_bands import geo_platform
from app.sample.geo.scene import GeoGrid, grid_cloud_top, scan_angles_to_lonlat, simulate_channels

#: Platforms the sample writes: short name -> (satellite_id, sub-satellite longitude).
PLATFORMS = {key: (l15.SATELLITE_IDS[key], geo_platform(key).sub_lon) for key in ("MSG1", "MSG2", "MSG3", "MSG4")}
#: Real VIS/IR full disk and its step (km).
FULL_DISK = 3712
GRID_STEP_KM = 3.0004031658172607
#: Earth model written (km), EUMETSAT's for Level 1.5 (as the band table's Meteosat projection).
EQUATORIAL_RADIUS_KM = geo_platform("MSG4").projection.a / 1000.0
POLAR_RADIUS_KM = geo_platform("MSG4").projection.b / 1000.0
#: Nominal calibration gains (mW m⁻² sr⁻¹ (cm⁻¹)⁻¹ per count), close to real MSG values; offset = −51 × gain.
GAIN = {"VIS006": 0.0236, "VIS008": 0.0306, "IR_016": 0.0233, "IR_039": 0.00365, "WV_062": 0.00828,
        "WV_073": 0.0395, "IR_087": 0.125, "IR_097": 0.0999, "IR_108": 0.2156, "IR_120": 0.2249,
        "IR_134": 0.157, "HRV": 0.0295}
SPACE_COUNT = 51
MAX_COUNT = 1023
#: Repeat cycle: true start after the slot, scan duration (south to north), planned end after the slot (s).
START_DELAY_S = 9.5
SCAN_DURATION_S = 744.0
PLANNED_END_S = 762.6
#: Satellite distance from the Earth's centre for the orbit polynomials (km).
ORBIT_RADIUS_KM = 42164.0


@dataclass(frozen=True)
class SeviriGrid:
    """A (reduced) SEVIRI VIS/IR full-disk grid."""

    resolution_factor: int
    size: int
    sub_lon: float

    @property
    def step_km(self) -> float:
        """Grid step at the sub-satellite point (km)."""
        return GRID_STEP_KM * self.resolution_factor

    @property
    def shape(self) -> tuple[int, int]:
        """(lines, columns)."""
        return self.size, self.size

    def line_numbers(self) -> dict[str, int]:
        """The north/south/east/west line and pixel numbers written in the global attributes."""
        half = self.size // 2
        c = l15.GRID_CENTRE
        return {"north_most_line": c + half, "south_most_line": c + 1 - half, "west_most_pixel": c + half,
                "east_most_pixel": c + 1 - half}

    def xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Projection x (west -> east) and y (north -> south) of pixel centres (m): canonical orientation."""
        attrs = {"vis_ir_column_dir_grid_step": self.step_km, "vis_ir_line_dir_grid_step": self.step_km,
                 "type_of_earth_model": "0x02", **self.line_numbers()}
        return l15.geos_xy_from_attrs(attrs, self.size, self.size)

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """Longitude and latitude (degrees) of pixel centres, canonical orientation (row 0 north); NaN off disk."""
        x, y = self.xy()
        projection = geo_platform("MSG4").projection
        h = projection.h
        lat, lon = scan_angles_to_lonlat(x[None, :] / h, y[:, None] / h,
                                         dataclasses.replace(projection, lon_0=self.sub_lon))
        return lon, lat

    def geo_grid(self, platform: str) -> GeoGrid:
        """The same grid as a :class:`~app.sample.geo.scene.GeoGrid` (canonical orientation).

        The sub-satellite point is on a pixel centre, as in real Level 1.5 images. The slot's CTTH product is
        written on it, and the scene's cloud tops are computed on it.
        """
        if geo_platform(platform).sub_lon != self.sub_lon:
            raise ValueError(f"{platform} is not at {self.sub_lon}°, the longitude of this grid")
        x, y = self.xy()
        h = geo_platform(platform).projection.h
        step = self.step_km * 1000.0 / h
        return GeoGrid(platform, self.size, self.size, x[0] / h, step, y[0] / h, -step, self.step_km)


def seviri_grid(platform: str = "MSG4", resolution_factor: int = 8) -> SeviriGrid:
    """The 3 km full disk of a platform coarsened by an integer factor (8 -> 464 × 464 pixels of 24 km)."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown SEVIRI platform {platform!r}; the sample writes {', '.join(PLATFORMS)}")
    if resolution_factor < 1 or FULL_DISK % resolution_factor or (FULL_DISK // resolution_factor) % 2:
        raise ValueError(f"resolution_factor must divide {FULL_DISK} into an even number, got {resolution_factor}")
    return SeviriGrid(resolution_factor, FULL_DISK // resolution_factor, PLATFORMS[platform][1])


def to_counts(value: np.ndarray, channel: str, sat_id: int, start: dt.datetime) -> np.ndarray:
    """BT (K) or reflectance (%) -> 10-bit counts (0 where the value is NaN)."""
    value = np.asarray(value, dtype=np.float64)
    finite = np.isfinite(value)
    if channel in l15.SOLAR_CHANNELS:
        rad = np.where(finite, value, 0.0) / l15.reflectance_factor(sat_id, channel, start)
    else:
        rad = l15.effective_radiance(np.where(finite, value, 250.0), sat_id, channel)
    gain = GAIN[channel]
    # the lowest count kept is the first with a positive radiance: an infrared radiance of 0 has no temperature
    lowest = 1 if channel in l15.SOLAR_CHANNELS else SPACE_COUNT + 1
    counts = np.clip(np.rint(rad / gain + SPACE_COUNT), lowest, MAX_COUNT).astype(np.int16)
    counts[~finite] = 0
    return counts


def _cds_pair(nc: netCDF4.Dataset, name: str, times: list[dt.datetime], dims: tuple[str, ...]) -> None:
    days, msecs = zip(*(l15.to_cds(t) for t in times), strict=True)
    nc.createVariable(f"{name}_day", "i4", dims)[:] = np.array(days)
    nc.createVariable(f"{name}_msec", "i4", dims)[:] = np.array(msecs)


def _write_orbit(nc: netCDF4.Dataset, start: dt.datetime, sub_lon: float) -> None:
    """Chebyshev orbit polynomials (km) for a satellite at rest at sub_lon, three 6-hour windows around start."""
    six = dt.timedelta(hours=6)
    first = dt.datetime.combine(start.date(), dt.time()) + (start.hour // 6) * six - six
    windows = [(first + k * six, first + (k + 1) * six) for k in range(3)]
    nc.createDimension("orbit_polynomial_dim_row", len(windows))
    nc.createDimension("orbit_polynomial_dim_col", 8)
    lon = np.radians(sub_lon)
    # the evaluated polynomial is sum(c_k T_k) − c_0 / 2, so a constant position p has c_0 = 2 p
    for axis, value in (("x", ORBIT_RADIUS_KM * np.cos(lon)), ("y", ORBIT_RADIUS_KM * np.sin(lon)), ("z", 0.0)):
        coefs = np.zeros((len(windows), 8))
        coefs[:, 0] = 2.0 * value
        var = nc.createVariable(f"orbit_polynomial_{axis}", "f8", ("orbit_polynomial_dim_row",
                                                                   "orbit_polynomial_dim_col"))
        var[:] = coefs
        var.units = "km"
    _cds_pair(nc, "orbit_polynomial_start_time", [w[0] for w in windows], ("orbit_polynomial_dim_row",))
    _cds_pair(nc, "orbit_polynomial_end_time", [w[1] for w in windows], ("orbit_polynomial_dim_row",))


def _global_attrs(nc: netCDF4.Dataset, grid: SeviriGrid, sat_id: int, platform: str, start: dt.datetime,
                  end: dt.datetime) -> None:
    start_day, start_ms = l15.to_cds(start)
    end_day, end_ms = l15.to_cds(end)
    nc.setncatts({
        "title": f"MSG SEVIRI Level 1.5 image data (Fumarole sample, grid step {grid.step_km:.3f} km)",
        "institution": "EUMETSAT (format); Fumarole sample generator (values)",
        "satellite_id": np.int32(sat_id),
        "platform": l15.SATELLITES[sat_id][0],
        "instrument": "SEVIRI",
        "longitude_of_SSP": grid.sub_lon,
        "nominal_longitude": grid.sub_lon,
        "equatorial_radius": EQUATORIAL_RADIUS_KM,
        "north_polar_radius": POLAR_RADIUS_KM,
        "south_polar_radius": POLAR_RADIUS_KM,
        "type_of_earth_model": "0x02",
        "vis_ir_grid_origin": "0x02",
        "vis_ir_column_dir_grid_step": grid.step_km,
        "vis_ir_line_dir_grid_step": grid.step_km,
        **{k: np.int32(v) for k, v in grid.line_numbers().items()},
        "true_repeat_cycle_start_day": np.int32(start_day),
        "true_repeat_cycle_start_mi_sec": np.int32(start_ms),
        "planned_repeat_cycle_end_day": np.int32(end_day),
        "planned_repeat_cycle_end_mi_sec": np.int32(end_ms),
        "nominal_image_scanning": "T",
        "reduced_scanning": "F",
        "resolution_factor": np.int32(grid.resolution_factor),
        "source_platform_short_name": platform,
    })


def write_seviri_fields(fields: Mapping[str, np.ndarray], platform: str, time: dt.datetime, out_root: str | Path,
                        *, resolution_factor: int = 8) -> list[Path]:
    """Write given fields (generic name -> BT K / reflectance %, canonical orientation on :func:`seviri_grid`).

    Channels not given are written as no data (count 0). Returns ``[path]`` of the one file written.
    """
    grid = seviri_grid(platform, resolution_factor)
    sat_id = PLATFORMS[platform][0]
    for name, field in fields.items():
        if name not in l15.GENERIC_SEVIRI:
            raise ValueError(f"unknown SEVIRI channel {name!r}; channels are {', '.join(l15.GENERIC_SEVIRI)}")
        if np.shape(field) != grid.shape:
            raise ValueError(f"field {name!r} has shape {np.shape(field)}, the grid is {grid.shape}")
    slot = _slot(time)
    start = slot + dt.timedelta(seconds=START_DELAY_S)
    end = slot + dt.timedelta(seconds=PLANNED_END_S)
    out = Path(out_root)
    out.mkdir(parents=True, exist_ok=True)
    path = out / l15.seviri_file_name(platform, start.replace(microsecond=0))
    n = grid.size
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        _global_attrs(nc, grid, sat_id, platform, start, end)
        nc.createDimension("num_rows_vis_ir", n)
        nc.createDimension("num_columns_vis_ir", n)
        nc.createDimension("num_rows_hrv", 3 * n)
        nc.createDimension("num_columns_hrv", 3 * n)
        nc.createDimension("channels_vis_ir_dim", 11)
        nc.createDimension("channels_hrv_dim", 1)
        nc.createDimension("channels_dim", 12)
        for number, (name, generic) in l15.SEVIRI_CHANNELS.items():
            if name == "HRV":
                counts = _hrv_counts(fields, grid.shape, sat_id, start)
                dims = ("num_rows_hrv", "num_columns_hrv")
            else:
                field = fields.get(generic)
                counts = (np.zeros(grid.shape, np.int16) if field is None
                          else to_counts(field, name, sat_id, start)[::-1])  # file rows run south -> north
                dims = ("num_rows_vis_ir", "num_columns_vis_ir")
            var = nc.createVariable(f"ch{number}", "i2", dims, zlib=True, complevel=4, shuffle=True,
                                    fill_value=np.int16(0), chunksizes=(min(464, counts.shape[0]),
                                                                        min(464, counts.shape[1])))
            var.set_auto_maskandscale(False)
            var.setncatts({
                "long_name": f"{name} counts",
                "comment": f"SEVIRI channel {number} ({name}) Level 1.5 counts; radiance = count * scale_factor "
                           "+ add_offset in mW m-2 sr-1 (cm-1)-1",
                "scale_factor": GAIN[name], "add_offset": -SPACE_COUNT * GAIN[name],
                "valid_min": np.int16(1), "valid_max": np.int16(MAX_COUNT),
            })
            var[:] = counts
        planned = nc.createVariable("planned_chan_processing", "i1", ("channels_dim",))
        planned[:] = [1 if name in l15.SOLAR_CHANNELS else 2 for name, _ in l15.SEVIRI_CHANNELS.values()]
        line_times = [start + dt.timedelta(seconds=SCAN_DURATION_S * (i + 0.5) / n) for i in range(n)]
        days, msecs = (np.array(v) for v in zip(*(l15.to_cds(t) for t in line_times), strict=True))
        dims = ("num_rows_vis_ir", "channels_vis_ir_dim")
        prefix = "channel_data_visir_data_"
        nc.createVariable(prefix + "l10_line_mean_acquisition_time_day", "i4", dims)[:] = np.repeat(
            days[:, None], 11, axis=1)
        nc.createVariable(prefix + "l10_line_mean_acquisition_msec", "i4", dims)[:] = np.repeat(
            msecs[:, None], 11, axis=1)
        for flag in ("line_validity", "line_geometric_quality", "line_radiometric_quality"):
            nc.createVariable(prefix + flag, "i1", dims)[:] = np.ones((n, 11), np.int8)  # 1 = nominal
        _write_orbit(nc, start, grid.sub_lon)
    return [path]


def _hrv_counts(fields: Mapping[str, np.ndarray], shape: tuple[int, int], sat_id: int,
                start: dt.datetime) -> np.ndarray:
    """HRV counts on the 3× grid (file orientation), each VIS/IR-grid value repeated 3 × 3; no data without hrv."""
    if "hrv" not in fields:
        return np.zeros((3 * shape[0], 3 * shape[1]), np.int16)
    counts = to_counts(fields["hrv"], "HRV", sat_id, start)[::-1]
    return np.repeat(np.repeat(counts, 3, axis=0), 3, axis=1)


def write_seviri_slot(scenario, platform: str, time: dt.datetime, out_root: str | Path, *,
                      resolution_factor: int = 8) -> list[Path]:
    """Write the SEVIRI slot at ``time`` (rounded down to 15 min) of a scenario for MSG4 (0°) or MSG1 (41.5° E).

    The scene comes from the GEO scene model (:func:`app.sample.geo.scene.simulate_channels`) at the pixel centres
    of :func:`seviri_grid`, with the cloud tops of :func:`~app.sample.geo.scene.grid_cloud_top` on that grid
    (:meth:`SeviriGrid.geo_grid`), the clouds the CTTH product written on the same grid reports. Returns
    ``[path]``.
    """
    grid = seviri_grid(platform, resolution_factor)
    lon, lat = grid.lonlat()
    names = list(l15.GENERIC_SEVIRI)
    slot = _slot(time)
    slot64 = np.datetime64(slot, "s")
    clouds = grid_cloud_top(scenario, grid.geo_grid(platform), slot64)
    fields = simulate_channels(scenario, lat, lon, slot64, grid.sub_lon, names,
                               sat_height_m=geo_platform(platform).projection.h, cloud_tops=clouds)
    return write_seviri_fields(fields, platform, slot, out_root, resolution_factor=resolution_factor)


def _slot(time: dt.datetime) -> dt.datetime:
    """The 15-minute slot a time falls in (naive UTC)."""
    if isinstance(time, np.datetime64):
        time = time.astype("datetime64[us]").astype(dt.datetime)
    if time.tzinfo is not None:
        time = time.astimezone(dt.UTC).replace(tzinfo=None)
    return time.replace(second=0, microsecond=0, minute=time.minute - time.minute % 15)
