"""Named map zones: the main volcanic regions, the World and a Pacific-centred World.

A zone is (lon_min, lat_min, lon_max, lat_max) in its frame's longitudes, and the frame's central longitude:
0 for longitudes in [-180, 180), 180 for [0, 360) (the Pacific-centred World and zones across the date line).
Declarative data: add a line to add a zone. Shared by the views, the API and the kiosk (below all of them).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.lonlat import wrap_lon


@dataclass(frozen=True)
class Zone:
    """A map extent and the longitude frame it is drawn in."""

    name: str
    lon_min: float
    lat_min: float
    lon_max: float
    lat_max: float
    central_longitude: float = 0.0

    @property
    def x_range(self) -> tuple[float, float]:
        """Longitude range in the zone's frame."""
        return (self.lon_min, self.lon_max)

    @property
    def y_range(self) -> tuple[float, float]:
        """Latitude range."""
        return (self.lat_min, self.lat_max)

    def bbox(self) -> tuple[float, float, float, float]:
        """The zone for index queries: longitudes in [-180, 180), lon_min > lon_max across the antimeridian."""
        if self.lon_max - self.lon_min >= 360.0:
            return (-180.0, self.lat_min, 180.0, self.lat_max)
        lo, hi = wrap_lon(self.lon_min), wrap_lon(self.lon_max)
        if hi == -180.0:
            hi = 180.0
        return (lo, self.lat_min, hi, self.lat_max)

    @classmethod
    def from_bbox(cls, lon_min: float, lat_min: float, lon_max: float, lat_max: float) -> Zone:
        """A zone from a box of the API (``lon_min > lon_max`` crosses the antimeridian: a frame centred on 180°)."""
        if lon_max < lon_min:  # across the antimeridian: draw it in the Pacific-centred frame
            return cls("bbox", wrap_lon(lon_min, 180.0), lat_min, wrap_lon(lon_max, 180.0) + (
                360.0 if wrap_lon(lon_max, 180.0) <= wrap_lon(lon_min, 180.0) else 0.0), lat_max, 180.0)
        central = 0.0 if lon_max <= 180.0 else 180.0
        return cls("bbox", lon_min, lat_min, lon_max, lat_max, central)


ZONES: dict[str, Zone] = {
    z.name: z
    for z in (
        Zone("World", -180, -90, 180, 90),
        Zone("World (Pacific-centred)", 0, -90, 360, 90, 180),
        Zone("Caribbean", -90, 3, -40, 28),
        Zone("Central America", -106, 5, -76, 23),
        Zone("Andes", -86, -48, -60, 8),
        Zone("Mediterranean", -8, 28, 42, 48),
        Zone("Iceland", -32, 58, -4, 70),
        Zone("East Africa", 26, -14, 50, 18),
        Zone("Réunion", 42, -28, 70, -14),
        Zone("Indonesia", 94, -12, 132, 8),
        Zone("Philippines", 114, 3, 130, 22),
        Zone("Japan", 124, 26, 150, 47),
        Zone("Kamchatka–Kurils", 144, 40, 172, 63),
        Zone("Aleutians", 160, 48, 212, 64, 180),
        Zone("Tonga–Vanuatu", 160, -32, 192, -8, 180),
        Zone("Hawaii", -163, 15, -150, 25),
    )
}
