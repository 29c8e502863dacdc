"""The geographic grid: Web Mercator ("slippy map") tiles at one fixed zoom.

Zoom 13 tiles are 360/2**13 = 0.044 degrees of longitude wide: about 3.9 km east-west at Seoul's
latitude (37.5 N) and the same north-south, since Mercator tiles are square on the ground. A
phone showing a city at street level shows less than one tile in each direction, so its view
touches at most 2 x 2 = 4 tiles. The scheme is the one every web map uses, so app developers can
compute tile numbers with any map library.
"""

import math
from dataclasses import dataclass

GRID_ZOOM = 13
# Mercator is undefined at the poles; clamp like every slippy-map implementation does.
_MAX_LATITUDE = 85.05112878


@dataclass(frozen=True, slots=True)
class GridCell:
    """One grid tile, identified as zoom/x/y."""

    zoom: int
    x: int
    y: int

    @property
    def tile_id(self) -> str:
        return f"grid/{self.zoom}/{self.x}/{self.y}"

    def bounds(self) -> tuple[float, float, float, float]:
        """(south, west, north, east) in degrees."""
        west = _longitude_of(self.x, self.zoom)
        east = _longitude_of(self.x + 1, self.zoom)
        north = _latitude_of(self.y, self.zoom)
        south = _latitude_of(self.y + 1, self.zoom)
        return (south, west, north, east)


def _longitude_of(x: int, zoom: int) -> float:
    return x / (1 << zoom) * 360.0 - 180.0


def _latitude_of(y: int, zoom: int) -> float:
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / (1 << zoom)))))


def cell_for(lat: float, lng: float, zoom: int = GRID_ZOOM) -> GridCell:
    """Return the grid tile that contains a point."""
    lat = max(-_MAX_LATITUDE, min(_MAX_LATITUDE, lat))
    scale = 1 << zoom
    x = int((lng + 180.0) / 360.0 * scale)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * scale)
    return GridCell(zoom, min(max(x, 0), scale - 1), min(max(y, 0), scale - 1))


def cells_covering(
    lat: float, lng: float, radius_m: float, zoom: int = GRID_ZOOM
) -> list[GridCell]:
    """Return every grid tile that a circle around a point touches (its bounding box's tiles)."""
    meters_per_degree = 111_320.0
    dlat = radius_m / meters_per_degree
    dlng = radius_m / (meters_per_degree * max(math.cos(math.radians(lat)), 1e-6))
    north_west = cell_for(lat + dlat, lng - dlng, zoom)
    south_east = cell_for(lat - dlat, lng + dlng, zoom)
    return [
        GridCell(zoom, x, y)
        for x in range(north_west.x, south_east.x + 1)
        for y in range(north_west.y, south_east.y + 1)
    ]
