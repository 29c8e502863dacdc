"""Publish the tiles of imported stores with chosen stock, without the stock ledger.

The client and map page tests need tiles with stores in every stock band. They build the tiles
with the real regenerator from a scan of the stores table, then set the stock fields of the
published rows (the tile format that clients read) directly. So these tests depend on the tile
format only, not on how the submission API and the ledger record stock.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.regeneration import snapshots_from_items


@dataclass(frozen=True, slots=True)
class StockReport:
    """The stock fields of one published store row."""

    remain_stat: str | None
    stock_at: str | None
    created_at: str | None


def publish_with_stock(stage: Any, reports: Mapping[str, StockReport], version: int = 1) -> int:
    """Rebuild every tile of the stage, with `reports` applied by store code.

    Stores without a report keep the row that the scan gives (remain_stat null). Every reported
    row gets `version`, so a later call with a higher version reads as newer. Returns the number
    of tiles written.
    """
    regenerator = stage.runtime.regenerator
    grouped = regenerator.group(snapshots_from_items(stage.runtime.registry.scan()))
    for rows in grouped.values():
        for code, row in rows.items():
            report = reports.get(code)
            if report is None:
                continue
            rows[code] = {
                **row,
                "remain_stat": report.remain_stat,
                "stock_at": report.stock_at,
                "created_at": report.created_at,
                "version": version,
            }
    written: int = regenerator.rebuild(grouped)
    return written
