"""Time parsing and formatting shared by the API, the stock ledger and the tiles.

Every published timestamp is ISO 8601 with an explicit offset, computed without the host's
time zone. A submitted time without an offset is read in the deployment's zone (Korea Standard
Time for the public-mask deployment), which is the rule the POS integration guide documents.
"""

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


def parse_timestamp(text: str, default_zone: tzinfo) -> datetime:
    """Parse ISO 8601; a value without an offset is taken to be in `default_zone`."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=default_zone)
    return parsed


def format_timestamp(moment: datetime, zone: tzinfo) -> str:
    """Format as ISO 8601 to the second with the zone's offset, e.g. 2020-03-17T09:30:00+09:00."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: attach a zone before formatting")
    return moment.astimezone(zone).isoformat(timespec="seconds")
