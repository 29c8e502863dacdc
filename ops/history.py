"""Plan pharmacy submissions that replay one real day of store stock history.

The local demo and the benchmarks send realistic traffic through our HTTP API. Our only real
traffic is data/mask_when_empty, which records for each store and day the first time the
public feed showed the store in each remain_stat band. This module turns one day of that
history into a time-ordered plan of deliveries, sales, pauses and resumes whose resulting
bands match the real bands at the real times. It only plans, and a driver sends the plan.

All times are aware datetimes in Korea Standard Time, and nothing here reads the host's time
zone or clock.
"""

import json
import logging
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Literal, NamedTuple

logger = logging.getLogger(__name__)

KST = timezone(timedelta(hours=9), "KST")

PLENTY = "plenty"
SOME = "some"
FEW = "few"
EMPTY = "empty"
BREAK = "break"

# Stock bands from most to least stock. "break" is not a stock band, because it hides the stock.
STOCK_BANDS = (PLENTY, SOME, FEW, EMPTY)
BANDS = (*STOCK_BANDS, BREAK)

# Lowest stock of each band: plenty is 100 or more, some 30-99, few 2-29, empty 0 or 1.
BAND_FLOOR = {PLENTY: 100, SOME: 30, FEW: 2, EMPTY: 0}

# Highest stock of each band that has one. A planned sale into a band stops here.
BAND_TOP = {SOME: 99, FEW: 29, EMPTY: 1}

# Field of a history record for each band.
BAND_FIELDS = {
    "whenPlenty": PLENTY,
    "whenSome": SOME,
    "whenFew": FEW,
    "whenEmpty": EMPTY,
    "whenBreak": BREAK,
}

# The history writes stock_at with slashes and the band times with dashes. Both are KST.
DATE_FORMAT = "%Y-%m-%d"
BAND_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
STOCK_AT_FORMAT = "%Y/%m/%d %H:%M:%S"

# Band times between 00:01 and 00:02 (near 00:35 on 2020-03-17) come from the feed's nightly
# reset, not from sales. A band first seen before this time is the state the day opens in.
NIGHTLY_RESET_END = time(1, 0)

EventKind = Literal["delivery", "sale", "pause", "resume"]


@dataclass(frozen=True, slots=True)
class StoreDay:
    """One store's band history for one day, as the real feed showed it."""

    code: str
    date: date
    # Last delivery as the feed reported it when the day's record began, usually days earlier.
    stock_at: datetime | None
    # Band name to the first time that day the feed showed it. Bands never shown are absent.
    band_times: dict[str, datetime]
    # Time of the delivery made on this day, read from the next day's stock_at, because a
    # record's own stock_at almost always predates that day's delivery (2,785 of 2,788 real
    # records). None when the next day's record is missing or its stock_at is not this day.
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """One submission of the replay, with the stock and band expected right after it.

    quantity and stock_after count masks. quantity is None for pause and resume.
    """

    submit_at: datetime
    code: str
    kind: EventKind
    quantity: int | None
    occurred_at: datetime
    stock_after: int
    remain_stat_after: str


class InvalidRecordError(ValueError):
    """A history record that cannot be read. The message is the reason counted on skip."""


class Observation(NamedTuple):
    """The first time of a day that the feed showed a store in a band."""

    at: datetime
    band: str


# Loading


def load_history(directory: Path) -> list[StoreDay]:
    """Load every store-day from the history files in a directory, sorted by code and date.

    Malformed files and records are skipped and logged with a count per reason. Use
    load_history_with_skips to get the counts.
    """
    days, skipped = load_history_with_skips(directory)
    if skipped:
        logger.warning("Skipped malformed history in %s: %s", directory, dict(skipped))
    return days


def load_history_with_skips(directory: Path) -> tuple[list[StoreDay], Counter[str]]:
    """Load the store-days of every *.json file in a directory and count what was skipped.

    The counter maps a reason to the number of files or records skipped for it. Raises
    FileNotFoundError when the directory does not exist.
    """
    if not directory.is_dir():
        raise FileNotFoundError(f"History directory not found: {directory}")

    skipped: Counter[str] = Counter()
    by_key: dict[tuple[str, date], StoreDay] = {}
    for path in sorted(directory.glob("*.json")):
        for day in _read_file(path, skipped):
            key = (day.code, day.date)
            if key in by_key:
                skipped["duplicate store-day"] += 1
                continue
            by_key[key] = day

    days = _attach_next_day_deliveries(by_key)
    return sorted(days, key=lambda day: (day.code, day.date)), skipped


def _read_file(path: Path, skipped: Counter[str]) -> list[StoreDay]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        skipped["unreadable file"] += 1
        return []
    except json.JSONDecodeError:
        skipped["invalid JSON file"] += 1
        return []

    if not isinstance(document, dict):
        skipped["file is not a JSON object"] += 1
        return []

    days: list[StoreDay] = []
    for code, records in document.items():
        days.extend(_read_store(code, records, skipped))
    return days


def _read_store(code: str, records: object, skipped: Counter[str]) -> list[StoreDay]:
    if not code:
        skipped["empty store code"] += 1
        return []
    if not isinstance(records, list):
        skipped["store records are not a list"] += 1
        return []

    days: list[StoreDay] = []
    for record in records:
        try:
            days.append(parse_record(code, record))
        except InvalidRecordError as error:
            skipped[str(error)] += 1
    return days


def parse_record(code: str, record: object) -> StoreDay:
    """Parse one daily record of a store. Raises InvalidRecordError with the reason."""
    if not isinstance(record, dict):
        raise InvalidRecordError("record is not an object")

    day = _parse_date(_text_field(record, "date"))
    stock_at = _parse_time(_text_field(record, "stock_at"), STOCK_AT_FORMAT, "stock_at")
    if stock_at is not None and stock_at.date() > day:
        raise InvalidRecordError("stock_at is after the record's date")

    band_times: dict[str, datetime] = {}
    for name, band in BAND_FIELDS.items():
        at = _parse_time(_text_field(record, name), BAND_TIME_FORMAT, name)
        if at is None:
            continue
        if at.date() != day:
            raise InvalidRecordError(f"{name} is not on the record's date")
        band_times[band] = at

    return StoreDay(code=code, date=day, stock_at=stock_at, band_times=band_times)


def _text_field(record: dict[object, object], name: str) -> str:
    if name not in record:
        raise InvalidRecordError(f"missing field {name}")
    value = record[name]
    if not isinstance(value, str):
        raise InvalidRecordError(f"field {name} is not a string")
    return value


def _parse_date(text: str) -> date:
    try:
        return datetime.strptime(text, DATE_FORMAT).date()
    except ValueError:
        raise InvalidRecordError("invalid date") from None


def _parse_time(text: str, time_format: str, name: str) -> datetime | None:
    # An empty string means the feed never showed that band, or never reported a delivery.
    if text == "":
        return None
    try:
        return datetime.strptime(text, time_format).replace(tzinfo=KST)
    except ValueError:
        raise InvalidRecordError(f"invalid {name}") from None


def _attach_next_day_deliveries(by_key: dict[tuple[str, date], StoreDay]) -> list[StoreDay]:
    # The next day is looked up by date, not list position, because some stores list
    # 2020-03-18 before 2020-03-17.
    days: list[StoreDay] = []
    for (code, day_date), day in by_key.items():
        following = by_key.get((code, day_date + timedelta(days=1)))
        delivered_at = following.stock_at if following is not None else None
        if delivered_at is not None and _is_real_time_on(delivered_at, day_date):
            day = replace(day, delivered_at=delivered_at)
        days.append(day)
    return days


# Reading a store-day


def available_dates(days: Iterable[StoreDay]) -> list[date]:
    """Return the distinct dates of the store-days, in ascending order."""
    return sorted({day.date for day in days})


def observations(day: StoreDay) -> list[Observation]:
    """Return the bands of a store-day in the order the feed first showed them.

    Bands first seen at the same second are ordered plenty, some, few, empty, break, which
    is also the order true_band breaks the tie in.
    """
    items = [Observation(at, band) for band, at in day.band_times.items()]
    return sorted(items, key=lambda item: (item.at, BANDS.index(item.band)))


def true_band(day: StoreDay, at: datetime) -> str | None:
    """Return the band the real feed showed for a store at a moment.

    Returns None before the first band of the day.
    """
    # NOTE: the history keeps only first-seen times, so a band is assumed to last until the
    # next first sighting. A store that returned to an earlier band is shown in the later one.
    latest_band: str | None = None
    for observation in observations(day):
        if observation.at > at:
            break
        latest_band = observation.band
    return latest_band


def bands_only_fall(day: StoreDay) -> bool:
    """Tell whether the stock bands of a day, in time order, only go down.

    Plenty, some, few, empty in that order (with gaps, and with a break anywhere) is the
    shape that first-seen times describe exactly. Any other order hides a delivery or a
    correction that the history does not record.
    """
    ranks = [STOCK_BANDS.index(item.band) for item in observations(day) if item.band != BREAK]
    return all(earlier < later for earlier, later in pairwise(ranks))


def band_for_stock(stock: int) -> str:
    """Return the remain_stat band of a stock level while sales are not paused."""
    if stock < 0:
        raise ValueError(f"Stock must not be negative, got {stock}")
    for band in STOCK_BANDS:
        if stock >= BAND_FLOOR[band]:
            return band
    raise AssertionError("unreachable: the empty band starts at 0")


def is_nightly(at: datetime) -> bool:
    """Tell whether an aware time falls in the feed's nightly reset hour (00:00-00:59 KST)."""
    if at.tzinfo is None:
        raise ValueError(f"Time {at} has no time zone. Pass an aware datetime, such as KST.")
    return at.astimezone(KST).time() < NIGHTLY_RESET_END


def _is_real_time_on(at: datetime, day_date: date) -> bool:
    local = at.astimezone(KST)
    return local.date() == day_date and not is_nightly(local)


def known_deliveries(day: StoreDay) -> list[datetime]:
    """Return the delivery times known to fall on the day itself, after the nightly reset."""
    candidates = {day.stock_at, day.delivered_at}
    return sorted(at for at in candidates if at is not None and _is_real_time_on(at, day.date))


# Planning


def plan_store_day(
    day: StoreDay, *, delivery_quantity: int = 250, sale_size: int | None = None
) -> list[PlannedEvent]:
    """Plan the submissions that make one store's bands follow its real history for a day.

    The plan opens with a delivery that sets the unknown stock at the day's first band time,
    the nightly reset band included. Each later band crossing is a sale at the crossing time,
    and a break is a pause until the next crossing. A known delivery later in the day is
    planned where the feed showed its effect. With sale_size, the sales between crossings
    are split into sales of that size. A day without any band gets an empty plan.

    Raises ValueError when a quantity is below 1, or when delivery_quantity is below 100 on
    a day that shows plenty.
    """
    _check_quantities(day, delivery_quantity, sale_size)
    planner = _StoreDayPlanner(day, delivery_quantity, sale_size)
    return planner.plan()


def plan_day(
    days: Iterable[StoreDay],
    on: date,
    *,
    store_limit: int | None = None,
    delivery_quantity: int = 250,
    sale_size: int | None = None,
) -> list[PlannedEvent]:
    """Plan every store with a record on a date, sorted by submit time and store code.

    With store_limit, only the first store codes in sorted order are planned. Raises
    ValueError when two store-days have the same code on that date.
    """
    selected: dict[str, StoreDay] = {}
    for day in days:
        if day.date != on:
            continue
        if day.code in selected:
            raise ValueError(f"Duplicate store-day for store {day.code} on {on}")
        selected[day.code] = day

    codes = sorted(selected)
    if store_limit is not None:
        codes = codes[:store_limit]

    events: list[PlannedEvent] = []
    for code in codes:
        events.extend(
            plan_store_day(selected[code], delivery_quantity=delivery_quantity, sale_size=sale_size)
        )

    # The sort is stable, so one store's events at the same time keep their planned order.
    events.sort(key=lambda event: (event.submit_at, event.code))
    return events


def find_band_mismatches(day: StoreDay, events: list[PlannedEvent]) -> list[datetime]:
    """Return the times where a store's planned band differs from the real one.

    events is one store's plan in time order, as plan_store_day returns it.

    The times checked are every event time and every band time from the opening delivery
    on. At each, the planned band is the one after the last event at or before that time,
    so the passing states of several events at one instant are not compared.
    """
    if not events:
        return []

    opening = events[0].submit_at
    checked = {event.submit_at for event in events}
    checked.update(item.at for item in observations(day) if item.at >= opening)

    # Events are in time order, so the last one at or before a time is found by bisection.
    submit_times = [event.submit_at for event in events]
    mismatches: list[datetime] = []
    for at in sorted(checked):
        planned = events[bisect_right(submit_times, at) - 1].remain_stat_after
        if planned != true_band(day, at):
            mismatches.append(at)
    return mismatches


def _check_quantities(day: StoreDay, delivery_quantity: int, sale_size: int | None) -> None:
    if delivery_quantity < 1:
        raise ValueError(f"delivery_quantity must be at least 1, got {delivery_quantity}")
    if sale_size is not None and sale_size < 1:
        raise ValueError(f"sale_size must be at least 1, got {sale_size}")
    if PLENTY in day.band_times and delivery_quantity < BAND_FLOOR[PLENTY]:
        raise ValueError(
            f"delivery_quantity {delivery_quantity} cannot reach plenty (100 or more), which "
            f"store {day.code} shows on {day.date}. Use a delivery_quantity of at least 100."
        )


@dataclass(slots=True)
class _StoreDayPlanner:
    """Walks one store-day's bands and known deliveries in time order, emitting events."""

    day: StoreDay
    delivery_quantity: int
    sale_size: int | None
    events: list[PlannedEvent] = field(default_factory=list)
    stock: int | None = None
    # Time of the last delivery, crossing or resume, where the next sales may start.
    anchor_at: datetime | None = None
    # Break seen but its pause not yet emitted, because sales planned at the next crossing
    # may fall before it.
    pause_at: datetime | None = None
    # Known deliveries whose effect the feed has not shown yet.
    pending_deliveries: list[datetime] = field(default_factory=list)

    def plan(self) -> list[PlannedEvent]:
        # Deliveries sort before a band seen at the same second, because they cause it.
        timeline: list[tuple[datetime, int, str | None]] = [
            (at, 0, None) for at in known_deliveries(self.day)
        ]
        timeline.extend((item.at, 1, item.band) for item in _opening_observations(self.day))
        timeline.sort(key=lambda entry: (entry[0], entry[1]))

        for at, _, band in timeline:
            if band is None:
                self._on_delivery(at)
            else:
                self._on_band(at, band)

        # A known delivery still pending changed no band the feed showed, so it is left out.
        if self.pause_at is not None:
            self._emit_pause()
        return self.events

    def _on_delivery(self, at: datetime) -> None:
        if self.stock is None or self.pause_at is not None or self.stock < BAND_FLOOR[PLENTY]:
            self.pending_deliveries.append(at)
            return

        # Adding to plenty stock keeps the band, so the delivery can go at its real time.
        self._emit("delivery", at, self.delivery_quantity)
        self.anchor_at = at

    def _on_band(self, at: datetime, band: str) -> None:
        if self.stock is None:
            self._open(at, band)
        elif band == BREAK:
            self.pause_at = at
        else:
            self._cross(at, band)

    def _open(self, at: datetime, band: str) -> None:
        # The API has no stock for the store yet, so the first event is a delivery. It is
        # submitted when the feed first showed the store, nightly reset band included,
        # because the feed trailed the pharmacies by 5-10 minutes and often first showed a
        # store hours after its delivery. occurred_at keeps the real delivery time.
        quantity = self._opening_quantity(at, band)
        self._emit("delivery", at, quantity, occurred_at=self._opening_occurred_at(at))
        self.pending_deliveries.clear()
        self.anchor_at = at

        # A day that opens in break gets its pause right after the opening delivery.
        if band == BREAK:
            self.pause_at = at

    def _opening_quantity(self, at: datetime, band: str) -> int:
        # The opening stock is delivery_quantity for plenty and the top of any other band,
        # so a day that opens in empty gets 1 mask and shows as empty.
        if band == BREAK:
            band = self._band_after_break(at)
        if band == PLENTY:
            return self.delivery_quantity
        return BAND_TOP[band]

    def _band_after_break(self, at: datetime) -> str:
        # The stock under a break is hidden, so it is read from the next stock band, unless
        # a known delivery comes first. Then 1 mask (empty) is the least stock to invent.
        deliveries = known_deliveries(self.day)
        for item in observations(self.day):
            if item.at <= at or item.band == BREAK:
                continue
            if any(at < delivery <= item.at for delivery in deliveries):
                return EMPTY
            return item.band
        return EMPTY

    def _opening_occurred_at(self, at: datetime) -> datetime:
        if self.pending_deliveries:
            return self.pending_deliveries[-1]
        if self.day.stock_at is not None and self.day.stock_at < at:
            return self.day.stock_at
        return at

    def _cross(self, at: datetime, band: str) -> None:
        stock = self._known_stock()
        if self.pending_deliveries and (band == PLENTY or BAND_TOP[band] > stock):
            self._resume(at)
            self._deliver_pending(at, band, stock)
            return

        # A pending delivery followed by the same or a lower band left no trace in the
        # bands, so it is dropped rather than guessed.
        self.pending_deliveries.clear()
        current = band_for_stock(stock)
        if STOCK_BANDS.index(band) > STOCK_BANDS.index(current):
            self._sell_down(at, band, stock)
        elif band == current:
            self._resume(at)
        # NOTE: a higher band with no known delivery before it would need stock from nowhere,
        # so the crossing is skipped and the plan keeps the lower band, unlike the feed.

    def _deliver_pending(self, at: datetime, band: str, stock: int) -> None:
        quantity = self.delivery_quantity if band == PLENTY else BAND_TOP[band] - stock
        self._emit("delivery", at, quantity, occurred_at=self.pending_deliveries[-1])
        self.pending_deliveries.clear()
        self.anchor_at = at

    def _sell_down(self, at: datetime, band: str, stock: int) -> None:
        # The crossing sale lands exactly at the band time and brings the stock to the top
        # of the new band. Empty stops at 1 mask, the top of its band, like some and few.
        target = BAND_TOP[band]
        crossing = self._crossing_sale(stock, target)
        earlier = _split_quantity(stock - target - crossing, self.sale_size)
        window_start, window_end = self._sale_window(at)

        # Earlier sales are spread evenly over the window and keep the stock in its
        # current band, so the band never changes before the real crossing time.
        if window_end > window_start:
            step = (window_end - window_start) / (len(earlier) + 1)
            for index, quantity in enumerate(earlier, start=1):
                self._emit("sale", window_start + step * index, quantity)
            earlier = []

        self._resume(at)
        for quantity in earlier:
            self._emit("sale", at, quantity)
        self._emit("sale", at, crossing)
        self.anchor_at = at

    def _crossing_sale(self, stock: int, target: int) -> int:
        total = stock - target
        if self.sale_size is None:
            return total
        # When the crossing skips a band (plenty straight to few), the last sale takes the
        # stock from the floor of the current band to the target, which exceeds sale_size.
        floor = BAND_FLOOR[band_for_stock(stock)]
        return max(min(self.sale_size, total), floor - target)

    def _sale_window(self, at: datetime) -> tuple[datetime, datetime]:
        start = self.anchor_at if self.anchor_at is not None else at
        # Sales after a nightly opening start at the day's first event after 01:00, so that
        # none falls at night. Sales before a break end when the break starts.
        if is_nightly(start):
            start = max(start, self._first_real_time(at))
        end = self.pause_at if self.pause_at is not None else at
        return start, end

    def _first_real_time(self, default: datetime) -> datetime:
        times = [item.at for item in observations(self.day) if not is_nightly(item.at)]
        times.extend(known_deliveries(self.day))
        return min(times, default=default)

    def _resume(self, at: datetime) -> None:
        # A crossing or delivery after a break means sales restarted, so the resume comes
        # right before it at the same time.
        if self.pause_at is None:
            return
        self._emit_pause()
        self._emit("resume", at, None)
        self.anchor_at = at

    def _emit_pause(self) -> None:
        if self.pause_at is None:
            return
        pause_at = self.pause_at
        self.pause_at = None
        self._emit("pause", pause_at, None)

    def _known_stock(self) -> int:
        if self.stock is None:
            raise AssertionError("stock is set by the opening delivery before any crossing")
        return self.stock

    def _emit(
        self,
        kind: EventKind,
        submit_at: datetime,
        quantity: int | None,
        *,
        occurred_at: datetime | None = None,
    ) -> None:
        stock = self.stock or 0
        if kind == "delivery" and quantity is not None:
            stock += quantity
        elif kind == "sale" and quantity is not None:
            stock -= quantity

        self.stock = stock
        remain_stat = BREAK if kind == "pause" else band_for_stock(stock)
        self.events.append(
            PlannedEvent(
                submit_at=submit_at,
                code=self.day.code,
                kind=kind,
                quantity=quantity,
                occurred_at=occurred_at if occurred_at is not None else submit_at,
                stock_after=stock,
                remain_stat_after=remain_stat,
            )
        )


def _opening_observations(day: StoreDay) -> list[Observation]:
    """Return the observations to plan, keeping only the last of several nightly bands.

    Nightly bands are the state the day opens in, not sales, so only the latest one counts.
    """
    items = observations(day)
    nightly = [item for item in items if is_nightly(item.at)]
    return [item for item in items if not is_nightly(item.at) or item is nightly[-1]]


def _split_quantity(amount: int, size: int | None) -> list[int]:
    """Split an amount into sales of a size, with the last one smaller if needed."""
    if amount <= 0:
        return []
    if size is None:
        return [amount]
    quantities = [size] * (amount // size)
    if amount % size:
        quantities.append(amount % size)
    return quantities
