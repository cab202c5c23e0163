"""Convert the npm package ``world-atlas`` v2 (Natural Earth as TopoJSON) into ``assets/basemap/``.

A one-off: its outputs are kept in git and read by ``app/data/basemap.py``. Rerun it only to change the
source or the format. From the repository root, with the project's venv::

    # either let the script fetch the package with npm (needs node/npm and the npm registry) ...
    .venv/bin/python assets/tools/convert_world_atlas.py
    # ... or fetch it yourself and point the script at the unpacked folder
    cd /tmp && npm pack world-atlas@2 && tar xzf world-atlas-2.0.2.tgz && cd -
    .venv/bin/python assets/tools/convert_world_atlas.py --package-dir /tmp/package

It writes, for each scale (50m, 110m), ``coastline_{scale}.npz``, ``borders_{scale}.npz`` and
``land_{scale}.npz`` (layout in the docstring of ``app/data/basemap.py``):

- coastlines are the rings of the ``land`` object of ``land-{scale}.json``;
- land borders are the arcs of ``countries-{scale}.json`` shared by two different countries (TopoJSON's
  ``mesh(countries, (a, b) => a !== b)``);
- every line is cut where it crosses ±180° (the crossing point interpolated), and the edges Natural
  Earth's data run along ±180° and along the South Pole (Antarctica's closing edge) are removed;
- land polygons are made planar: rings crossing ±180° are clipped into [-180, 180] with shapely, and
  Antarctica (whose ring goes round the pole) is closed along -90°.

TopoJSON decoding is done here by hand: arcs are delta-encoded quantized integers; a ring lists arc
indices, ``~i`` meaning arc *i* reversed; consecutive arcs share their joining point.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry import Polygon, box

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.data.basemap import compact_lines, split_at_antimeridian  # noqa: E402

OUT_DIR = ROOT / "assets" / "basemap"
SCALES = ("50m", "110m")
EDGE_TOLERANCE = 1e-6  # degrees: a point this close to ±180 is on the map edge
POLE_LATITUDE = 89.99  # |lat| beyond this is the pole edge of a polygon, not a coast
MIN_AREA = 1e-9  # square degrees: smaller polygon pieces are rounding slivers


def fetch_package(workdir: Path) -> Path:
    """Download and unpack ``world-atlas@2`` with ``npm pack``; return the package folder."""
    subprocess.run(["npm", "pack", "world-atlas@2"], cwd=workdir, check=True, capture_output=True)
    tarball = next(workdir.glob("world-atlas-*.tgz"))
    with tarfile.open(tarball) as tar:
        tar.extractall(workdir, filter="data")
    return workdir / "package"


class Topology:
    """A decoded TopoJSON topology: arcs as float64 (n, 2) lon/lat arrays."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text())
        transform = self.data["transform"]
        scale = np.asarray(transform["scale"], dtype=np.float64)
        translate = np.asarray(transform["translate"], dtype=np.float64)
        self.arcs = [
            np.cumsum(np.asarray(arc, dtype=np.int64), axis=0) * scale + translate for arc in self.data["arcs"]
        ]

    def arc(self, index: int) -> np.ndarray:
        """Arc *index*, reversed when the index is negative (``~i``)."""
        return self.arcs[index] if index >= 0 else self.arcs[~index][::-1]

    def ring(self, indices: list[int]) -> np.ndarray:
        """The closed ring made of the arcs *indices* (each arc starts where the last one ended)."""
        parts = [self.arc(i) for i in indices]
        return np.concatenate([parts[0]] + [p[1:] for p in parts[1:]])

    def polygons(self, name: str) -> list[list[np.ndarray]]:
        """Every polygon of object *name* as a list of rings, exterior first."""
        obj = self.data["objects"][name]
        geometries = obj["geometries"] if obj["type"] == "GeometryCollection" else [obj]
        out = []
        for geometry in geometries:
            if geometry["type"] == "Polygon":
                out.append([self.ring(r) for r in geometry["arcs"]])
            elif geometry["type"] == "MultiPolygon":
                out.extend([self.ring(r) for r in polygon] for polygon in geometry["arcs"])
        return out

    def shared_arcs(self, name: str) -> list[int]:
        """Arcs used by two different geometries of object *name* (the mesh with ``a !== b``)."""
        users: dict[int, set[int]] = {}

        def walk(arcs: list, owner: int) -> None:
            for item in arcs:
                if isinstance(item, list):
                    walk(item, owner)
                else:
                    users.setdefault(item if item >= 0 else ~item, set()).add(owner)

        for owner, geometry in enumerate(self.data["objects"][name]["geometries"]):
            walk(geometry.get("arcs", []), owner)
        return sorted(arc for arc, owners in users.items() if len(owners) == 2)


def join_lines(lines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate (n, 2) lines into NaN-separated lon, lat arrays."""
    nan = np.full((1, 2), np.nan)
    xy = np.concatenate([part for line in lines for part in (line, nan)]) if lines else np.empty((0, 2))
    return xy[:, 0], xy[:, 1]


def clean_lines(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut at ±180°, drop the artificial edges along ±180° and the poles, drop repeated points."""
    lon, lat = split_at_antimeridian(lon, lat)
    on_edge = np.abs(np.abs(lon) - 180.0) < EDGE_TOLERANCE
    at_pole = np.abs(lat) > POLE_LATITUDE
    same_lon = np.abs(np.diff(lon)) < EDGE_TOLERANCE
    artificial = (on_edge[:-1] & on_edge[1:] & same_lon) | (at_pole[:-1] & at_pole[1:])
    cut = np.flatnonzero(artificial) + 1
    lon, lat = np.insert(lon, cut, np.nan), np.insert(lat, cut, np.nan)
    repeated = np.concatenate([[False], (np.diff(lon) == 0) & (np.diff(lat) == 0)])
    lon, lat = compact_lines(lon[~repeated], lat[~repeated])
    lon = np.clip(lon, -180.0, 180.0)
    return lon.astype(np.float32), lat.astype(np.float32)


def unwrap(ring: np.ndarray) -> np.ndarray:
    """The ring with longitudes made continuous (each step taken the short way round)."""
    # whole turns only, so points that need no shift keep their exact value and the ring stays closed
    turns = -np.round(np.diff(ring[:, 0]) / 360.0)
    lon = ring[:, 0] + 360.0 * np.concatenate([[0.0], np.cumsum(turns)])
    return np.column_stack([lon, ring[:, 1]])


def planar_polygon(rings: list[np.ndarray]) -> shapely.Geometry | None:
    """A TopoJSON (spherical) polygon as a planar shapely polygon in unwrapped longitudes."""
    exterior = unwrap(rings[0])
    turn = exterior[-1, 0] - exterior[0, 0]
    if abs(turn) > 180.0:  # goes round a pole: close it along that pole
        pole = -90.0 if exterior[:, 1].mean() < 0 else 90.0
        exterior = np.concatenate([exterior, [[exterior[-1, 0], pole], [exterior[0, 0], pole], exterior[0]]])
    if abs(shapely.area(Polygon(exterior))) == 0.0:
        return None
    centre = 0.5 * (exterior[:, 0].min() + exterior[:, 0].max())
    holes = []
    for ring in rings[1:]:
        hole = unwrap(ring)
        if abs(hole[-1, 0] - hole[0, 0]) > 180.0:  # a ring round the pole (Antarctica's pole edge)
            continue
        hole_centre = 0.5 * (hole[:, 0].min() + hole[:, 0].max())
        hole[:, 0] -= 360.0 * np.round((hole_centre - centre) / 360.0)
        holes.append(hole)
    polygon = Polygon(exterior, holes)
    return polygon if polygon.is_valid else shapely.make_valid(polygon)


def clip_to_map(geometry: shapely.Geometry) -> list[Polygon]:
    """Cut an unwrapped polygon into pieces inside [-180, 180], shifted back by multiples of 360°."""
    pieces = []
    for k in (-1, 0, 1):
        window = box(-180.0 + 360.0 * k, -90.0, 180.0 + 360.0 * k, 90.0)
        part = shapely.affinity.translate(geometry.intersection(window), xoff=-360.0 * k)
        pieces.extend(p for p in shapely.get_parts(part) if isinstance(p, Polygon) and p.area > MIN_AREA)
    return pieces


def land_rings(topology: Topology) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Planar land rings, NaN-separated, and per ring whether it is an exterior."""
    rings, exterior = [], []
    for polygon_rings in topology.polygons("land"):
        geometry = planar_polygon(polygon_rings)
        if geometry is None:
            continue
        for piece in clip_to_map(geometry):
            rings.append(np.asarray(piece.exterior.coords))
            exterior.append(True)
            for hole in piece.interiors:
                rings.append(np.asarray(hole.coords))
                exterior.append(False)
    lon, lat = join_lines(rings)
    return lon[:-1].astype(np.float32), lat[:-1].astype(np.float32), np.asarray(exterior)


def convert(package_dir: Path, out_dir: Path = OUT_DIR) -> list[Path]:
    """Write the basemap files of every scale from the unpacked package; return their paths."""
    version = json.loads((package_dir / "package.json").read_text())["version"]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for scale in SCALES:
        source = f"Natural Earth 4.1.0 {scale} via npm world-atlas@{version}"
        land = Topology(package_dir / f"land-{scale}.json")
        countries = Topology(package_dir / f"countries-{scale}.json")

        coast = [ring for polygon in land.polygons("land") for ring in polygon]
        lon, lat = clean_lines(*join_lines(coast))
        written.append(save(out_dir / f"coastline_{scale}.npz", lon=lon, lat=lat, source=source))

        borders = [countries.arc(i) for i in countries.shared_arcs("countries")]
        lon, lat = clean_lines(*join_lines(borders))
        written.append(save(out_dir / f"borders_{scale}.npz", lon=lon, lat=lat, source=source))

        lon, lat, exterior = land_rings(land)
        written.append(save(out_dir / f"land_{scale}.npz", lon=lon, lat=lat, exterior=exterior, source=source))
    return written


def save(path: Path, source: str, **arrays: np.ndarray) -> Path:
    """Write *arrays* and the *source* note to a compressed ``.npz``."""
    np.savez_compressed(path, source=np.array(source), **arrays)
    return path


def main(argv: list[str] | None = None) -> None:
    """Command line: convert a local ``world-atlas`` package, or fetch one with npm first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-dir", type=Path, help="unpacked world-atlas package (default: npm pack it)")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help=f"output folder (default {OUT_DIR})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        package_dir = args.package_dir or fetch_package(Path(tmp))
        for path in convert(package_dir, args.out_dir):
            print(f"{path}  {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
