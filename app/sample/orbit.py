"""Sun-synchronous orbits for the sample archive: ground tracks, swaths and orbit numbers.

A circular orbit over a spherical Earth (mean radius 6371.0088 km). The orbital plane keeps a fixed local solar
time at the ascending node (LTAN): in a sun-synchronous orbit the node precesses at the Sun's mean motion, so the
Earth turns under the plane at exactly one turn per mean solar day (2π / 86400 s). That is all a ground track
needs; no TLE, no ephemeris. The numbers of the Sentinel-5P model are pinned to the orbit numbers of real public
granule names (FORMATS.md): 13196 at 2020-04-30T12:59:48Z and 40035 at 2025-07-05T06:41:45Z.

Times are ``numpy.datetime64`` (UTC, no leap seconds); angles in degrees unless a name says ``_rad``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EARTH_RADIUS_KM = 6371.0088
SOLAR_DAY_S = 86400.0
_EPOCH = np.datetime64("2000-01-01T00:00:00", "ns")


def seconds_since_2000(t) -> np.ndarray:
    """Seconds since 2000-01-01T00:00:00 UTC of datetime64 value(s), as float64."""
    t = np.asarray(t, dtype="datetime64[ns]")
    return (t - _EPOCH).astype("int64") / 1e9


def from_seconds_since_2000(s) -> np.ndarray:
    """Inverse of :func:`seconds_since_2000`."""
    return _EPOCH + np.round(np.asarray(s, dtype=float) * 1e9).astype("int64").astype("timedelta64[ns]")


@dataclass(frozen=True)
class SunSynchronousOrbit:
    """A circular sun-synchronous orbit.

    Orbit ``n`` starts at the descending node (the night side, near spacecraft midnight for an afternoon orbit),
    so its ascending node, in the middle of the daylit half, falls half a period later.

    Parameters
    ----------
    name : platform name.
    altitude_km : orbit altitude above the mean sphere.
    inclination_deg : inclination (> 90° for sun-synchronous).
    period_s : nodal period.
    ltan_hours : local mean solar time of the ascending node.
    reference_orbit : an orbit number ...
    reference_start : ... and the time at which that orbit starts (datetime64 string, UTC).
    """

    name: str
    altitude_km: float
    inclination_deg: float
    period_s: float
    ltan_hours: float
    reference_orbit: int
    reference_start: str

    @property
    def _t0(self) -> float:
        return float(seconds_since_2000(np.datetime64(self.reference_start)))

    def orbit_number(self, t) -> np.ndarray:
        """Orbit number(s) at time(s) ``t``."""
        s = seconds_since_2000(t)
        return (self.reference_orbit + np.floor((s - self._t0) / self.period_s)).astype(np.int64)

    def orbit_start(self, orbit) -> np.ndarray:
        """Start time(s) (descending node) of orbit number(s)."""
        s = self._t0 + (np.asarray(orbit, dtype=float) - self.reference_orbit) * self.period_s
        return from_seconds_since_2000(s)

    def ascending_node_time(self, orbit) -> np.ndarray:
        """Time of the ascending node crossing of orbit number(s)."""
        s = self._t0 + (np.asarray(orbit, dtype=float) - self.reference_orbit + 0.5) * self.period_s
        return from_seconds_since_2000(s)

    def orbits_between(self, start, end) -> np.ndarray:
        """Numbers of the orbits that start within [start, end)."""
        first = int(self.orbit_number(np.datetime64(start)))
        if self.orbit_start(first) < np.datetime64(start):
            first += 1
        last = int(self.orbit_number(np.datetime64(end) - np.timedelta64(1, "ns")))
        return np.arange(first, last + 1)

    def _argument_and_node(self, t):
        s = seconds_since_2000(t)
        orbit = self.reference_orbit + np.floor((s - self._t0) / self.period_s)
        t_an = self._t0 + (orbit - self.reference_orbit + 0.5) * self.period_s
        dt = s - t_an
        u = 2 * np.pi * dt / self.period_s
        utc_hours_an = np.mod(t_an, SOLAR_DAY_S) / 3600.0
        lon_an = 15.0 * (self.ltan_hours - utc_hours_an)
        return u, dt, lon_an

    def subpoint(self, t) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude (degrees, longitude in [-180, 180)) of the sub-satellite point at ``t``."""
        u, dt, lon_an = self._argument_and_node(t)
        inc = np.deg2rad(self.inclination_deg)
        lat = np.rad2deg(np.arcsin(np.sin(inc) * np.sin(u)))
        dlon = np.rad2deg(np.arctan2(np.cos(inc) * np.sin(u), np.cos(u)))
        lon = lon_an + dlon - 360.0 * dt / SOLAR_DAY_S
        return lat, wrap_longitude(lon)

    def heading(self, t, dt_s: float = 1.0) -> np.ndarray:
        """Ground-track azimuth (degrees clockwise from north) at ``t``."""
        t = np.asarray(t, dtype="datetime64[ns]")
        step = np.timedelta64(int(dt_s * 1e9), "ns")
        lat1, lon1 = self.subpoint(t - step)
        lat2, lon2 = self.subpoint(t + step)
        return initial_bearing(lat1, lon1, lat2, lon2)

    def ground_points(self, t, cross_track_km) -> tuple[np.ndarray, np.ndarray]:
        """Points at signed cross-track distances (km, positive to the right of the motion) from the track.

        ``t`` has shape (n,), ``cross_track_km`` shape (m,); returns latitude and longitude of shape (n, m).
        """
        t = np.atleast_1d(np.asarray(t, dtype="datetime64[ns]"))
        lat0, lon0 = self.subpoint(t)
        az = self.heading(t)
        x = np.asarray(cross_track_km, dtype=float)
        bearing = (az[:, None] + np.where(x >= 0, 90.0, -90.0)[None, :]) % 360.0
        return destination(lat0[:, None], lon0[:, None], bearing, np.abs(x)[None, :])


def wrap_longitude(lon) -> np.ndarray:
    """Longitudes wrapped into [-180, 180)."""
    return (np.asarray(lon) + 180.0) % 360.0 - 180.0


def initial_bearing(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle initial bearing (degrees clockwise from north) from point 1 to point 2."""
    p1, p2 = np.deg2rad(lat1), np.deg2rad(lat2)
    dl = np.deg2rad(np.asarray(lon2) - np.asarray(lon1))
    y = np.sin(dl) * np.cos(p2)
    x = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
    return np.rad2deg(np.arctan2(y, x)) % 360.0


def destination(lat, lon, bearing_deg, distance_km) -> tuple[np.ndarray, np.ndarray]:
    """The point reached from (lat, lon) along a great circle with the given initial bearing and distance."""
    p1 = np.deg2rad(lat)
    lam1 = np.deg2rad(lon)
    th = np.deg2rad(bearing_deg)
    d = np.asarray(distance_km) / EARTH_RADIUS_KM
    p2 = np.arcsin(np.sin(p1) * np.cos(d) + np.cos(p1) * np.sin(d) * np.cos(th))
    lam2 = lam1 + np.arctan2(np.sin(th) * np.sin(d) * np.cos(p1), np.cos(d) - np.sin(p1) * np.sin(p2))
    return np.rad2deg(p2), wrap_longitude(np.rad2deg(lam2))


def scan_angle_to_ground_km(scan_angle_deg, altitude_km: float) -> np.ndarray:
    """Ground distance (km) from nadir of a line of sight at a scan angle, on the sphere."""
    th = np.deg2rad(scan_angle_deg)
    ratio = (EARTH_RADIUS_KM + altitude_km) / EARTH_RADIUS_KM
    gamma = np.arcsin(np.clip(ratio * np.sin(np.abs(th)), -1, 1)) - np.abs(th)
    return np.sign(th) * gamma * EARTH_RADIUS_KM


def viewing_zenith_deg(scan_angle_deg, altitude_km: float) -> np.ndarray:
    """Viewing zenith angle (degrees) at the ground for a scan angle."""
    th = np.deg2rad(np.abs(scan_angle_deg))
    ratio = (EARTH_RADIUS_KM + altitude_km) / EARTH_RADIUS_KM
    return np.rad2deg(np.arcsin(np.clip(ratio * np.sin(th), -1, 1)))


# Sentinel-5P: 227 orbits in a 16-day repeat cycle; inclination 98.74°, altitude 824 km, LTAN 13:30. The phase
# puts orbit 25579 over Réunion at about 08:13 UTC on 2022-09-20 (as the VolcPlume portal shows it, see
# shared/reference), and then the two public granule names of FORMATS.md fall in their numbered orbits, in the
# daylit half: 13196 at 2020-04-30T12:59:48Z is 57 % into its orbit, 40035 at 2025-07-05T06:41:45Z 60 %.
S5P_PERIOD_S = 16 * SOLAR_DAY_S / 227
SENTINEL_5P = SunSynchronousOrbit(
    name="S5P",
    altitude_km=824.0,
    inclination_deg=98.74,
    period_s=S5P_PERIOD_S,
    ltan_hours=13.5,
    reference_orbit=25579,
    reference_start="2022-09-20T07:28:45",
)

# CALIPSO in 2021: the C-Train at 688 km, 98.2° inclination, about 14.57 orbits a day, ascending near 13:30.
# Its orbit numbering is not used in file names; the reference start only fixes the phase, chosen so that
# a daytime track crosses the La Soufrière plume east of St Vincent on the sample days.
CALIPSO = SunSynchronousOrbit(
    name="CALIPSO",
    altitude_km=688.0,
    inclination_deg=98.2,
    period_s=SOLAR_DAY_S / 14.57,
    ltan_hours=13.5,
    reference_orbit=0,
    reference_start="2021-04-12T00:00:00",
)
