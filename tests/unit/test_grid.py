import math

import pytest

from chalicelib.grid import GRID_ZOOM, cell_for, cells_covering

SEOUL_CITY_HALL = (37.5663, 126.9779)


def test_seoul_city_hall_cell():
    assert cell_for(*SEOUL_CITY_HALL).tile_id == "grid/13/6985/3172"


def test_cell_bounds_contain_point():
    south, west, north, east = cell_for(*SEOUL_CITY_HALL).bounds()

    assert south <= SEOUL_CITY_HALL[0] <= north
    assert west <= SEOUL_CITY_HALL[1] <= east


def test_cell_is_about_4_km_wide_in_seoul():
    south, west, north, east = cell_for(*SEOUL_CITY_HALL).bounds()
    width_km = (east - west) * 111.32 * math.cos(math.radians(SEOUL_CITY_HALL[0]))
    height_km = (north - south) * 111.32

    assert 3.5 < width_km < 4.2
    assert 3.5 < height_km < 4.2


@pytest.mark.parametrize("lat_offset", [0.0, 0.01, -0.013])
def test_phone_view_needs_at_most_four_tiles(lat_offset):
    # A street-level phone view is about 1 km across: radius 500 m around its centre.
    lat, lng = SEOUL_CITY_HALL[0] + lat_offset, SEOUL_CITY_HALL[1] + lat_offset
    assert len(cells_covering(lat, lng, 500)) <= 4


def test_covering_includes_centre_cell():
    cells = cells_covering(*SEOUL_CITY_HALL, 2000)

    assert cell_for(*SEOUL_CITY_HALL) in cells
    assert all(cell.zoom == GRID_ZOOM for cell in cells)
