"""Replay plans built from the real per-store band history in data/mask_when_empty."""

import json
import time as host_time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from ops.history import (
    BREAK,
    KST,
    InvalidRecordError,
    PlannedEvent,
    StoreDay,
    available_dates,
    band_for_stock,
    bands_only_fall,
    find_band_mismatches,
    is_nightly,
    known_deliveries,
    load_history,
    load_history_with_skips,
    parse_record,
    plan_day,
    plan_store_day,
    true_band,
)

HISTORY_DIR = Path(__file__).resolve().parents[2] / "data" / "mask_when_empty"
DAY = date(2020, 3, 17)
DAY_BEFORE = date(2020, 3, 16)

# Maximum share of real store-days whose plan shows another band than the feed did at some
# band or event time. Only days whose bands rise without a known delivery should miss.
MAX_MISMATCH_SHARE = 0.03

Row = tuple[str, str, int | None, int, str]


def kst(clock: str, on: date = DAY) -> datetime:
    hour, minute, second = (int(part) for part in clock.split(":"))
    return datetime.combine(on, time(hour, minute, second), tzinfo=KST)


def make_day(
    bands: dict[str, str],
    *,
    code: str = "12848000",
    stock_at: datetime | None = None,
    delivered_at: str | None = None,
) -> StoreDay:
    """Build a store-day on DAY from band names and their first times as HH:MM:SS."""
    return StoreDay(
        code=code,
        date=DAY,
        stock_at=stock_at,
        band_times={band: kst(clock) for band, clock in bands.items()},
        delivered_at=kst(delivered_at) if delivered_at is not None else None,
    )


def rows(events: list[PlannedEvent]) -> list[Row]:
    return [
        (
            event.submit_at.strftime("%H:%M:%S"),
            event.kind,
            event.quantity,
            event.stock_after,
            event.remain_stat_after,
        )
        for event in events
    ]


def record(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "date": "2020-03-17",
        "whenEmpty": "2020-03-17 12:00:00",
        "whenFew": "2020-03-17 11:00:00",
        "stock_at": "2020/03/16 09:01:00",
        "whenSome": "2020-03-17 10:00:00",
        "whenPlenty": "2020-03-17 09:10:00",
        "whenBreak": "",
    }
    base.update(changes)
    return base


def following(stock_at: str, on: str = "2020-03-18") -> dict[str, Any]:
    """Return a record of a later day that only reports its stock_at and one band."""
    return {
        "date": on,
        "whenEmpty": "",
        "whenFew": "",
        "stock_at": stock_at,
        "whenSome": f"{on} 11:25:44",
        "whenPlenty": "",
        "whenBreak": "",
    }


def write_history(directory: Path, name: str, stores: object) -> None:
    (directory / name).write_text(json.dumps(stores), encoding="utf-8")


def check_plan(day: StoreDay, events: list[PlannedEvent]) -> list[str]:
    """Replay a plan's stock and return every broken invariant, empty when it is sound."""
    problems: list[str] = []
    if events and events[0].kind != "delivery":
        problems.append(f"first event is a {events[0].kind}")

    stock = 0
    paused = False
    for index, event in enumerate(events):
        label = f"{event.kind} at {event.submit_at}"
        if index and event.submit_at < events[index - 1].submit_at:
            problems.append(f"{label} is out of time order")
        if paused and event.kind in ("delivery", "sale"):
            problems.append(f"{label} happens while sales are paused")
        problems.extend(check_event_fields(day, event, label))

        stock += signed_quantity(event)
        paused = event.kind == "pause" or (paused and event.kind != "resume")
        problems.extend(check_state_after(event, stock, paused, label))
    return problems


def check_event_fields(day: StoreDay, event: PlannedEvent, label: str) -> list[str]:
    problems: list[str] = []
    moves_stock = event.kind in ("delivery", "sale")
    if moves_stock and (event.quantity is None or event.quantity < 1):
        problems.append(f"{label} has quantity {event.quantity}")
    if not moves_stock and event.quantity is not None:
        problems.append(f"{label} has a quantity")
    if event.kind == "sale" and is_nightly(event.submit_at):
        problems.append(f"{label} is a sale during the nightly reset")
    if event.occurred_at > event.submit_at:
        problems.append(f"{label} occurred after it is submitted")
    if event.kind != "delivery" and event.occurred_at != event.submit_at:
        problems.append(f"{label} has occurred_at {event.occurred_at}")
    if event.code != day.code:
        problems.append(f"{label} has store code {event.code}")
    return problems


def signed_quantity(event: PlannedEvent) -> int:
    quantity = event.quantity or 0
    if event.kind == "delivery":
        return quantity
    if event.kind == "sale":
        return -quantity
    return 0


def check_state_after(event: PlannedEvent, stock: int, paused: bool, label: str) -> list[str]:
    if stock < 0:
        return [f"{label} leaves stock {stock}"]

    problems: list[str] = []
    if event.stock_after != stock:
        problems.append(f"{label} expects stock {event.stock_after}, replay gives {stock}")
    expected_band = BREAK if paused else band_for_stock(stock)
    if event.remain_stat_after != expected_band:
        problems.append(f"{label} expects {event.remain_stat_after}, stock gives {expected_band}")
    return problems


@pytest.fixture(scope="module")
def real_days() -> list[StoreDay]:
    return load_history(HISTORY_DIR)


# Loading the real files


def test_real_history_loads_every_record() -> None:
    days, skipped = load_history_with_skips(HISTORY_DIR)

    assert len(days) == 2_788
    assert len({day.code for day in days}) == 466
    assert skipped == Counter()


def test_real_history_dates_and_store_counts(real_days: list[StoreDay]) -> None:
    per_date = Counter(day.date for day in real_days)

    assert available_dates(real_days) == [date(2020, 3, 17) + timedelta(days=n) for n in range(6)]
    assert per_date[date(2020, 3, 17)] == 463
    assert per_date[date(2020, 3, 18)] == 463
    assert per_date[date(2020, 3, 19)] == 464
    assert per_date[date(2020, 3, 20)] == 466
    assert per_date[date(2020, 3, 21)] == 466
    assert per_date[date(2020, 3, 22)] == 466


def test_real_record_parsed_field_by_field(real_days: list[StoreDay]) -> None:
    day = next(day for day in real_days if day.code == "4128302000" and day.date == DAY)

    assert day.stock_at == datetime(2020, 3, 16, 9, 1, 0, tzinfo=KST)
    assert day.band_times == {"few": kst("08:52:20"), "some": kst("10:16:59")}
    # The next day's record reports the delivery made on this day.
    assert day.delivered_at == kst("10:14:00")


def test_real_store_listing_days_out_of_order(real_days: list[StoreDay]) -> None:
    store_days = [day for day in real_days if day.code == "5118304004"]

    assert [day.date for day in store_days] == available_dates(real_days)
    assert store_days[0].delivered_at is not None


def test_real_times_are_kst(real_days: list[StoreDay]) -> None:
    for day in real_days:
        times = [*day.band_times.values(), day.stock_at, day.delivered_at]
        for at in times:
            assert at is None or at.utcoffset() == timedelta(hours=9)


def test_real_next_day_deliveries_found(real_days: list[StoreDay]) -> None:
    with_delivery = [day for day in real_days if day.delivered_at is not None]

    assert len(with_delivery) == 2_192
    for day in with_delivery:
        assert day.delivered_at is not None
        assert day.delivered_at.date() == day.date
        assert not is_nightly(day.delivered_at)


def test_load_history_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_history(tmp_path / "absent")


# Loading malformed files


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"date": "2020/03/17"}, "invalid date"),
        ({"stock_at": "2020-03-16 09:01:00"}, "invalid stock_at"),
        ({"whenFew": "2020/03/17 11:00:00"}, "invalid whenFew"),
        ({"whenSome": "2020-03-18 10:00:00"}, "whenSome is not on the record's date"),
        ({"stock_at": "2020/03/18 09:00:00"}, "stock_at is after the record's date"),
        ({"whenBreak": None}, "field whenBreak is not a string"),
        ({"whenPlenty": 5}, "field whenPlenty is not a string"),
    ],
)
def test_parse_record_rejects(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidRecordError) as raised:
        parse_record("1", record(**changes))

    assert str(raised.value) == reason


def test_parse_record_missing_field() -> None:
    broken = record()
    del broken["whenEmpty"]

    with pytest.raises(InvalidRecordError, match="missing field whenEmpty"):
        parse_record("1", broken)


def test_parse_record_empty_strings_absent() -> None:
    day = parse_record("1", record(stock_at="", whenFew="", whenEmpty=""))

    assert day.stock_at is None
    assert set(day.band_times) == {"plenty", "some"}


def test_malformed_history_skipped_and_counted(tmp_path: Path) -> None:
    write_history(
        tmp_path,
        "stores.json",
        {
            "100": [record(), following("2020/03/17 10:14:00")],
            "200": [record(date="bad"), "not a record", record()],
            "300": {"not": "a list"},
            "": [record()],
        },
    )
    write_history(tmp_path, "duplicate.json", {"100": [record()]})
    write_history(tmp_path, "list.json", [record()])
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    (tmp_path / "latin1.json").write_bytes(b'{"\xff": []}')
    (tmp_path / "notes.txt").write_text("not history", encoding="utf-8")

    days, skipped = load_history_with_skips(tmp_path)

    assert [(day.code, day.date) for day in days] == [
        ("100", DAY),
        ("100", date(2020, 3, 18)),
        ("200", DAY),
    ]
    assert skipped == Counter(
        {
            "invalid date": 1,
            "record is not an object": 1,
            "store records are not a list": 1,
            "empty store code": 1,
            "duplicate store-day": 1,
            "file is not a JSON object": 1,
            "invalid JSON file": 1,
            "unreadable file": 1,
        }
    )


def test_next_day_delivery_only_from_following_date(tmp_path: Path) -> None:
    write_history(
        tmp_path,
        "stores.json",
        {
            "100": [following("2020/03/17 10:14:00", on="2020-03-19"), record()],
            "200": [following("2020/03/17 00:30:00"), record()],
            "300": [following("2020/03/16 10:14:00"), record()],
        },
    )

    days, skipped = load_history_with_skips(tmp_path)
    delivered = {day.code: day.delivered_at for day in days if day.date == DAY}

    assert skipped == Counter()
    assert delivered == {"100": None, "200": None, "300": None}


def test_next_day_delivery_attached(tmp_path: Path) -> None:
    write_history(tmp_path, "stores.json", {"100": [following("2020/03/17 10:14:00"), record()]})

    days, skipped = load_history_with_skips(tmp_path)

    assert skipped == Counter()
    assert [day.delivered_at for day in days] == [kst("10:14:00"), None]


@pytest.fixture
def restore_host_zone() -> Iterator[None]:
    yield
    host_time.tzset()


@pytest.mark.usefixtures("restore_host_zone")
@pytest.mark.parametrize("zone", ["UTC", "Asia/Seoul", "America/Los_Angeles"])
def test_plans_ignore_host_time_zone(monkeypatch: pytest.MonkeyPatch, zone: str) -> None:
    expected = [
        (event.submit_at.isoformat(), event.kind, event.quantity)
        for event in plan_day(load_history(HISTORY_DIR), DAY, store_limit=20, sale_size=2)
    ]

    monkeypatch.setenv("TZ", zone)
    host_time.tzset()
    planned = plan_day(load_history(HISTORY_DIR), DAY, store_limit=20, sale_size=2)

    assert [(event.submit_at.isoformat(), event.kind, event.quantity) for event in planned] == (
        expected
    )
    assert all(event.submit_at.utcoffset() == timedelta(hours=9) for event in planned)


# Planning one store-day, one rule per case


PLAN_CASES: dict[str, tuple[StoreDay, list[Row]]] = {
    # Each crossing is one sale at the crossing time down to the top of the new band.
    "falling day": (
        make_day(
            {"plenty": "09:10:00", "some": "10:00:00", "few": "11:00:00", "empty": "12:00:00"}
        ),
        [
            ("09:10:00", "delivery", 250, 250, "plenty"),
            ("10:00:00", "sale", 151, 99, "some"),
            ("11:00:00", "sale", 70, 29, "few"),
            ("12:00:00", "sale", 28, 1, "empty"),
        ],
    ),
    "opening in some": (
        make_day({"some": "10:00:00", "few": "11:00:00"}),
        [("10:00:00", "delivery", 99, 99, "some"), ("11:00:00", "sale", 70, 29, "few")],
    ),
    "opening in few": (
        make_day({"few": "10:00:00"}),
        [("10:00:00", "delivery", 29, 29, "few")],
    ),
    "opening in empty": (
        make_day({"empty": "10:00:00"}),
        [("10:00:00", "delivery", 1, 1, "empty")],
    ),
    "skipped band": (
        make_day({"plenty": "09:00:00", "empty": "15:00:00"}),
        [("09:00:00", "delivery", 250, 250, "plenty"), ("15:00:00", "sale", 249, 1, "empty")],
    ),
    # A nightly band is the opening state. Its delivery goes at the reset time, no sale.
    "nightly empty only": (
        make_day({"empty": "00:02:00"}),
        [("00:02:00", "delivery", 1, 1, "empty")],
    ),
    "nightly plenty then some": (
        make_day({"plenty": "00:02:00", "some": "14:00:00"}),
        [("00:02:00", "delivery", 250, 250, "plenty"), ("14:00:00", "sale", 151, 99, "some")],
    ),
    "several nightly bands": (
        make_day({"plenty": "00:02:00", "some": "00:35:00"}),
        [("00:35:00", "delivery", 99, 99, "some")],
    ),
    # A day opening in break: delivery for the next stock band, then a pause.
    "nightly break only": (
        make_day({"break": "00:01:00"}),
        [("00:01:00", "delivery", 1, 1, "empty"), ("00:01:00", "pause", None, 1, "break")],
    ),
    "nightly break then bands": (
        make_day({"some": "10:00:00", "few": "11:00:00", "break": "00:02:00"}),
        [
            ("00:02:00", "delivery", 99, 99, "some"),
            ("00:02:00", "pause", None, 99, "break"),
            ("10:00:00", "resume", None, 99, "some"),
            ("11:00:00", "sale", 70, 29, "few"),
        ],
    ),
    # A crossing after a break resumes first, at the same time.
    "break then crossing": (
        make_day(
            {"plenty": "09:00:00", "some": "10:00:00", "few": "13:00:00", "break": "12:00:00"}
        ),
        [
            ("09:00:00", "delivery", 250, 250, "plenty"),
            ("10:00:00", "sale", 151, 99, "some"),
            ("12:00:00", "pause", None, 99, "break"),
            ("13:00:00", "resume", None, 99, "some"),
            ("13:00:00", "sale", 70, 29, "few"),
        ],
    ),
    "break ends day": (
        make_day({"plenty": "09:00:00", "break": "18:00:00"}),
        [("09:00:00", "delivery", 250, 250, "plenty"), ("18:00:00", "pause", None, 250, "break")],
    ),
    # Out-of-order first-seen times: a rise with no known delivery is skipped.
    "rise without delivery": (
        make_day(
            {"plenty": "10:00:00", "empty": "11:00:00", "some": "12:00:00", "few": "13:00:00"}
        ),
        [("10:00:00", "delivery", 250, 250, "plenty"), ("11:00:00", "sale", 249, 1, "empty")],
    ),
    # A rise after a known delivery is that delivery, submitted when the feed showed it.
    "rise after known delivery": (
        make_day({"few": "08:52:20", "some": "10:16:59"}, delivered_at="10:14:00"),
        [("08:52:20", "delivery", 29, 29, "few"), ("10:16:59", "delivery", 70, 99, "some")],
    ),
    "delivery to plenty stock": (
        make_day({"plenty": "08:46:00", "some": "15:00:00"}, delivered_at="12:57:00"),
        [
            ("08:46:00", "delivery", 250, 250, "plenty"),
            ("12:57:00", "delivery", 250, 500, "plenty"),
            ("15:00:00", "sale", 401, 99, "some"),
        ],
    ),
    "delivery without visible effect": (
        make_day({"some": "00:02:00"}, delivered_at="10:08:00"),
        [("00:02:00", "delivery", 99, 99, "some")],
    ),
    "break with delivery before next band": (
        make_day({"some": "09:35:00", "break": "09:00:00"}, delivered_at="09:30:00"),
        [
            ("09:00:00", "delivery", 1, 1, "empty"),
            ("09:00:00", "pause", None, 1, "break"),
            ("09:35:00", "resume", None, 1, "empty"),
            ("09:35:00", "delivery", 98, 99, "some"),
        ],
    ),
    "delivery during break": (
        make_day(
            {"empty": "00:02:00", "plenty": "11:00:00", "break": "10:07:00"},
            delivered_at="10:00:00",
        ),
        [
            ("00:02:00", "delivery", 1, 1, "empty"),
            ("10:07:00", "pause", None, 1, "break"),
            ("11:00:00", "resume", None, 1, "empty"),
            ("11:00:00", "delivery", 250, 251, "plenty"),
        ],
    ),
}


@pytest.mark.parametrize(("day", "expected"), PLAN_CASES.values(), ids=PLAN_CASES.keys())
def test_plan_store_day_cases(day: StoreDay, expected: list[Row]) -> None:
    events = plan_store_day(day)

    assert rows(events) == expected
    assert check_plan(day, events) == []


@pytest.mark.parametrize("name", [name for name in PLAN_CASES if name != "rise without delivery"])
def test_plan_cases_match_true_bands(name: str) -> None:
    day, _ = PLAN_CASES[name]

    assert find_band_mismatches(day, plan_store_day(day)) == []


def test_rise_without_delivery_mismatches() -> None:
    day, _ = PLAN_CASES["rise without delivery"]

    assert find_band_mismatches(day, plan_store_day(day)) == [kst("12:00:00"), kst("13:00:00")]


def test_plan_empty_without_bands() -> None:
    assert plan_store_day(make_day({}, stock_at=kst("09:00:00", DAY_BEFORE))) == []


# The opening delivery's occurred_at keeps the real delivery time


@pytest.mark.parametrize(
    ("day", "occurred_at"),
    [
        (
            make_day({"plenty": "09:10:00"}, stock_at=kst("09:01:00", DAY_BEFORE)),
            kst("09:01:00", DAY_BEFORE),
        ),
        (make_day({"plenty": "09:06:56"}, stock_at=kst("09:02:00")), kst("09:02:00")),
        (make_day({"plenty": "09:06:56"}, stock_at=kst("00:30:00")), kst("00:30:00")),
        (
            make_day(
                {"plenty": "10:47:05"},
                stock_at=kst("09:01:00", DAY_BEFORE),
                delivered_at="10:41:00",
            ),
            kst("10:41:00"),
        ),
        (make_day({"plenty": "09:10:00"}), kst("09:10:00")),
        (make_day({"plenty": "00:02:00"}, stock_at=kst("09:30:00")), kst("00:02:00")),
    ],
    ids=[
        "stock_at days earlier",
        "stock_at on the day",
        "stock_at in the nightly hour",
        "next-day delivery",
        "no stock_at",
        "stock_at after the first band",
    ],
)
def test_opening_delivery_occurred_at(day: StoreDay, occurred_at: datetime) -> None:
    opening = plan_store_day(day)[0]

    assert opening.kind == "delivery"
    assert opening.occurred_at == occurred_at
    assert opening.submit_at == min(day.band_times.values())


def test_known_deliveries_skip_nightly_and_earlier() -> None:
    day = make_day({"plenty": "10:05:00"}, stock_at=kst("00:30:00"), delivered_at="10:00:00")
    earlier = make_day({"plenty": "10:05:00"}, stock_at=kst("09:00:00", DAY_BEFORE))

    assert known_deliveries(day) == [kst("10:00:00")]
    assert known_deliveries(earlier) == []


# Quantities


def test_delivery_quantity_below_plenty_rejected() -> None:
    with pytest.raises(ValueError, match="at least 100"):
        plan_store_day(make_day({"plenty": "09:00:00"}), delivery_quantity=99)


def test_delivery_quantity_below_plenty_without_plenty() -> None:
    events = plan_store_day(make_day({"some": "09:00:00"}), delivery_quantity=50)

    assert rows(events) == [("09:00:00", "delivery", 99, 99, "some")]


def test_custom_delivery_quantity() -> None:
    events = plan_store_day(
        make_day({"plenty": "09:00:00", "some": "10:00:00"}), delivery_quantity=120
    )

    assert rows(events) == [
        ("09:00:00", "delivery", 120, 120, "plenty"),
        ("10:00:00", "sale", 21, 99, "some"),
    ]


@pytest.mark.parametrize(
    ("delivery_quantity", "sale_size", "message"),
    [(0, None, "delivery_quantity"), (250, 0, "sale_size"), (250, -2, "sale_size")],
)
def test_quantities_below_one_rejected(
    delivery_quantity: int, sale_size: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plan_store_day(
            make_day({"some": "09:00:00"}), delivery_quantity=delivery_quantity, sale_size=sale_size
        )


# Sales of a fixed size


def sales_between(events: list[PlannedEvent], start: datetime, end: datetime) -> list[PlannedEvent]:
    return [event for event in events if event.kind == "sale" and start < event.submit_at < end]


def test_sale_size_spreads_sales_evenly() -> None:
    day = make_day({"plenty": "09:00:00", "some": "10:00:00"})

    events = plan_store_day(day, sale_size=2)
    earlier = sales_between(events, kst("09:00:00"), kst("10:00:00"))
    gaps = {later.submit_at - sooner.submit_at for sooner, later in pairwise(earlier)}

    assert [event.quantity for event in earlier] == [2] * 74 + [1]
    assert len(gaps) == 1
    assert min(event.stock_after for event in earlier) == 101
    assert rows(events[-1:]) == [("10:00:00", "sale", 2, 99, "some")]
    assert check_plan(day, events) == []
    assert find_band_mismatches(day, events) == []


def test_sale_size_keeps_band_until_crossing() -> None:
    day = make_day(
        {"plenty": "09:00:00", "some": "10:00:00", "few": "11:00:00", "empty": "12:00:00"}
    )

    events = plan_store_day(day, sale_size=2)
    crossings = [event for event in events if event.submit_at in day.band_times.values()]

    assert rows(crossings) == [
        ("09:00:00", "delivery", 250, 250, "plenty"),
        ("10:00:00", "sale", 2, 99, "some"),
        ("11:00:00", "sale", 2, 29, "few"),
        ("12:00:00", "sale", 2, 1, "empty"),
    ]
    assert all(1 <= (event.quantity or 0) <= 2 for event in events if event.kind == "sale")
    assert sum(event.quantity or 0 for event in events if event.kind == "sale") == 249
    assert find_band_mismatches(day, events) == []


def test_sale_size_skipped_band_last_sale_larger() -> None:
    day = make_day({"plenty": "09:00:00", "few": "10:00:00"})

    events = plan_store_day(day, sale_size=2)
    earlier = sales_between(events, kst("09:00:00"), kst("10:00:00"))

    assert sum(event.quantity or 0 for event in earlier) == 150
    assert min(event.stock_after for event in earlier) == 100
    assert rows(events[-1:]) == [("10:00:00", "sale", 71, 29, "few")]
    assert find_band_mismatches(day, events) == []


def test_sale_size_no_sales_while_paused() -> None:
    day = make_day(
        {"plenty": "09:00:00", "some": "10:00:00", "few": "13:00:00", "break": "12:00:00"}
    )

    events = plan_store_day(day, sale_size=2)
    paused_sales = sales_between(events, kst("12:00:00"), kst("13:00:00"))
    before_break = sales_between(events, kst("10:00:00"), kst("12:00:00"))

    assert paused_sales == []
    assert sum(event.quantity or 0 for event in before_break) == 68
    assert rows(events[-3:]) == [
        ("12:00:00", "pause", None, 31, "break"),
        ("13:00:00", "resume", None, 31, "some"),
        ("13:00:00", "sale", 2, 29, "few"),
    ]
    assert check_plan(day, events) == []


def test_sale_size_no_sales_at_night() -> None:
    day = make_day({"plenty": "00:02:00", "some": "14:00:00", "few": "15:00:00"})

    events = plan_store_day(day, sale_size=2)
    night_and_morning = sales_between(events, kst("00:00:00"), kst("14:00:00"))
    at_first_crossing = [event for event in events if event.submit_at == kst("14:00:00")]

    assert night_and_morning == []
    assert sum(event.quantity or 0 for event in at_first_crossing) == 151
    assert at_first_crossing[-1].remain_stat_after == "some"
    assert len(sales_between(events, kst("14:00:00"), kst("15:00:00"))) == 34
    assert check_plan(day, events) == []
    assert find_band_mismatches(day, events) == []


def test_sale_size_after_resume_starts_at_resume() -> None:
    day = make_day({"few": "17:36:47", "empty": "17:41:51", "break": "10:42:18"})

    events = plan_store_day(day, sale_size=2)
    during_break = sales_between(events, kst("10:42:18"), kst("17:36:47"))

    assert during_break == []
    assert check_plan(day, events) == []
    assert find_band_mismatches(day, events) == []


# Reading the history


def test_true_band_follows_first_times() -> None:
    day = make_day({"plenty": "09:00:00", "some": "10:00:00", "break": "00:02:00"})

    assert true_band(day, kst("00:01:59")) is None
    assert true_band(day, kst("00:02:00")) == "break"
    assert true_band(day, kst("08:59:59")) == "break"
    assert true_band(day, kst("09:00:00")) == "plenty"
    assert true_band(day, kst("23:59:59")) == "some"


def test_true_band_accepts_other_zones() -> None:
    day = make_day({"plenty": "09:00:00"})

    assert true_band(day, datetime(2020, 3, 17, 0, 0, tzinfo=KST).astimezone()) is None
    assert true_band(day, kst("09:00:00").astimezone(UTC)) == "plenty"


@pytest.mark.parametrize(
    ("bands", "expected"),
    [
        (
            {"plenty": "09:00:00", "some": "10:00:00", "break": "10:30:00", "empty": "11:00:00"},
            True,
        ),
        ({"break": "00:02:00", "few": "10:00:00"}, True),
        ({"plenty": "09:00:00", "empty": "10:00:00", "some": "11:00:00"}, False),
        ({"empty": "00:02:00", "some": "10:00:00"}, False),
    ],
)
def test_bands_only_fall(bands: dict[str, str], expected: bool) -> None:
    assert bands_only_fall(make_day(bands)) is expected


def test_is_nightly_rejects_naive_time() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        is_nightly(datetime(2020, 3, 17, 0, 30))


# Planning a whole day


def test_plan_day_sorted_and_limited() -> None:
    days = [
        make_day({"few": "09:00:00"}, code="300"),
        make_day({"plenty": "10:00:00", "some": "11:00:00"}, code="100"),
        make_day({"some": "09:00:00", "few": "10:00:00"}, code="200"),
        replace(make_day({"few": "09:00:00"}, code="400"), date=DAY_BEFORE),
    ]

    events = plan_day(days, DAY)
    limited = plan_day(days, DAY, store_limit=2)

    assert [(event.submit_at.strftime("%H:%M"), event.code) for event in events] == [
        ("09:00", "200"),
        ("09:00", "300"),
        ("10:00", "100"),
        ("10:00", "200"),
        ("11:00", "100"),
    ]
    assert {event.code for event in limited} == {"100", "200"}
    assert plan_day(days, date(2020, 3, 23)) == []


def test_plan_day_rejects_duplicate_store() -> None:
    days = [make_day({"few": "09:00:00"}, code="100"), make_day({"some": "09:00:00"}, code="100")]

    with pytest.raises(ValueError, match="Duplicate store-day for store 100"):
        plan_day(days, DAY)


def test_plan_day_real_date(real_days: list[StoreDay]) -> None:
    events = plan_day(real_days, DAY, store_limit=50, sale_size=2)

    assert len({event.code for event in events}) == 50
    assert [(event.submit_at, event.code) for event in events] == sorted(
        (event.submit_at, event.code) for event in events
    )


# Every real store-day


@pytest.mark.parametrize("sale_size", [None, 2])
def test_real_plans_sound_and_match_feed(real_days: list[StoreDay], sale_size: int | None) -> None:
    unsound: dict[tuple[str, date], list[str]] = {}
    mismatched_plans = 0
    mismatched_falling_days: list[tuple[str, date]] = []

    for day in real_days:
        events = plan_store_day(day, sale_size=sale_size)
        problems = check_plan(day, events)
        if problems:
            unsound[(day.code, day.date)] = problems
        if not events:
            unsound[(day.code, day.date)] = ["empty plan"]
            continue
        if find_band_mismatches(day, events):
            mismatched_plans += 1
            if bands_only_fall(day):
                mismatched_falling_days.append((day.code, day.date))

    share = mismatched_plans / len(real_days)
    summary = f"{mismatched_plans} of {len(real_days)} plans mismatch the feed ({share:.2%})"
    print(f"sale_size={sale_size}: {summary}")

    assert unsound == {}
    assert mismatched_falling_days == []
    assert share <= MAX_MISMATCH_SHARE, summary
