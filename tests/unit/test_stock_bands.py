import pytest

from chalicelib.stock import RemainStat, remain_stat_for


@pytest.mark.parametrize(
    ("stock", "paused", "expected"),
    [
        (None, False, None),
        (0, False, RemainStat.EMPTY),
        (1, False, RemainStat.EMPTY),
        (2, False, RemainStat.FEW),
        (29, False, RemainStat.FEW),
        (30, False, RemainStat.SOME),
        (99, False, RemainStat.SOME),
        (100, False, RemainStat.PLENTY),
        (5000, False, RemainStat.PLENTY),
        (250, True, RemainStat.BREAK),
        (None, True, RemainStat.BREAK),
    ],
)
def test_band_thresholds(stock, paused, expected):
    assert remain_stat_for(stock, paused) == expected
