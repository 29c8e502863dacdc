"""The map page in headless Chromium, served with real tiles by the local CDN stand-in.

Every test publishes web/ and a rebuilt set of tiles to a fresh bucket, starts a browser with
a new profile, and opens the page with a fixed `now` query parameter, so no result depends on
the wall clock. The browser is Debian's chromium, driven over the DevTools pipe.
"""

import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ops.site import publish_site
from ops.tileserver import TileServer
from tests.functional.headless_chromium import Chromium, chromium_executable, decode_png
from tests.functional.published_stock import StockReport, publish_with_stock

pytestmark = [
    pytest.mark.functional,
    pytest.mark.skipif(
        chromium_executable() is None,
        reason="chromium is not installed; install it with: apt-get install -y chromium",
    ),
]

KST = timezone(timedelta(hours=9))
NOW = datetime(2020, 3, 17, 12, 0, tzinfo=KST)
SIDO = "서울특별시"
MAIN_SIGUNGU, OTHER_SIGUNGU = "종로구", "중구"
MAIN_COUNT, OTHER_COUNT = 30, 10
STALE_INDEX = 6
# The 2020 colours: green, yellow, red, grey (paused stores in a darker grey).
EXPECTED_COLOURS = {
    "plenty": (30, 158, 74),
    "some": (245, 184, 0),
    "few": (229, 57, 53),
    "empty": (158, 158, 158),
    "break": (95, 99, 104),
}


def _band_for(index: int) -> str:
    return ("plenty", "some", "few", "empty", "break", "unknown")[index % 6]


@dataclass
class ServedPage:
    """A published page and its tiles, with a browser to look at them."""

    stage: Any
    server: TileServer
    browser: Chromium
    main_codes: list[str]

    def url(self, now: str = NOW.isoformat(), **params: str) -> str:
        query = urllib.parse.urlencode({"now": now, **params})
        return f"{self.server.base_url}/index.html?{query}"

    def open(self, now: str = NOW.isoformat(), **params: str) -> str:
        """Load the page and wait until it has finished loading; return its data-state."""
        self.browser.navigate(self.url(now, **params))
        state: str = self.browser.wait_for(
            "document.readyState === 'complete' && document.body.dataset.state !== 'loading'"
            " && document.body.dataset.state"
        )
        return state

    def text(self, selector: str) -> str:
        value: str = self.browser.evaluate(f"document.querySelector('{selector}').textContent")
        return value


@contextmanager
def _serve(stage: Any) -> Iterator[ServedPage]:
    publish_site(stage.s3, stage.settings.bucket_name)
    server = TileServer(0, stage.s3, stage.settings.bucket_name)
    server.start_in_background()
    try:
        with Chromium(width=1280, height=1000) as browser:
            yield ServedPage(stage=stage, server=server, browser=browser, main_codes=[])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page(stage: Any, real_store_list: Any) -> Iterator[ServedPage]:
    def located_in(sigungu: str, count: int) -> list[Any]:
        return [
            store
            for store in real_store_list.stores
            if store.sido == SIDO and store.sigungu == sigungu and store.lat is not None
        ][:count]

    main = located_in(MAIN_SIGUNGU, MAIN_COUNT)
    other = located_in(OTHER_SIGUNGU, OTHER_COUNT)
    stage.runtime.registry.import_stores(main + other)
    reports = {}
    for index, store in enumerate(main):
        band = _band_for(index)
        if band == "unknown":
            continue
        age = timedelta(hours=3) if index == STALE_INDEX else timedelta(minutes=20)
        reported_at = (NOW - age).isoformat()
        reports[store.code] = StockReport(band, reported_at, reported_at)
    publish_with_stock(stage, reports)

    with _serve(stage) as served:
        served.main_codes = [store.code for store in main]
        yield served


@pytest.fixture
def empty_page(stage: Any) -> Iterator[ServedPage]:
    with _serve(stage) as served:
        yield served


def _open_main(page: ServedPage, **params: str) -> None:
    assert page.open(region=f"{SIDO}/{MAIN_SIGUNGU}", **params) == "ready"


def test_page_korean_by_default(page):
    _open_main(page)

    assert page.browser.evaluate("document.documentElement.lang") == "ko"
    assert page.text("h1") == "공적 마스크 재고 지도"
    assert page.text("#language-toggle") == "English"
    assert page.text("#summary") == f"{SIDO} {MAIN_SIGUNGU} · 판매처 {MAIN_COUNT}곳"
    assert page.text("#rule-text") == "출생연도 끝자리가 2, 7인 분이 구매할 수 있습니다."


def test_language_toggle_switches_text(page):
    _open_main(page)

    page.browser.click("#language-toggle")

    assert page.browser.evaluate("document.documentElement.lang") == "en"
    assert page.text("h1") == "Public mask stock map"
    assert page.text("#language-toggle") == "한국어"
    assert page.text("#summary") == f"{SIDO} {MAIN_SIGUNGU} · {MAIN_COUNT} stores"
    assert page.text("#rule-text") == "People whose birth year ends in 2 or 7 can buy."
    assert page.text("#rule-date") == "Tuesday, 17 Mar 2020 (Korea Standard Time)"
    assert "Plenty (100 or more)" in page.text("#legend")

    page.browser.click("#language-toggle")

    assert page.browser.evaluate("document.documentElement.lang") == "ko"
    assert page.text("h1") == "공적 마스크 재고 지도"


@pytest.mark.parametrize(
    ("now", "rule", "date", "text"),
    [
        # 00:30 on Tuesday in Korea is still Monday in UTC.
        (
            "2020-03-16T15:30:00+00:00",
            "2,7",
            "2020년 3월 17일 화요일 (한국 표준시)",
            "출생연도 끝자리가 2, 7인 분이 구매할 수 있습니다.",
        ),
        (
            "2020-03-20T23:59:00+09:00",
            "5,0",
            "2020년 3월 20일 금요일 (한국 표준시)",
            "출생연도 끝자리가 5, 0인 분이 구매할 수 있습니다.",
        ),
        (
            "2020-03-20T15:00:00+00:00",
            "anyone",
            "2020년 3월 21일 토요일 (한국 표준시)",
            "오늘은 누구나 구매할 수 있습니다.",
        ),
        (
            "2020-03-08T12:00:00+09:00",
            "unpublished",
            "2020년 3월 8일 일요일 (한국 표준시)",
            "오늘 적용되는 구매 규칙이 게시되지 않았습니다.",
        ),
    ],
)
def test_rule_for_fixed_date_in_kst(page, now, rule, date, text):
    page.open(now=now, region=f"{SIDO}/{MAIN_SIGUNGU}")

    assert page.browser.evaluate("document.body.dataset.rule") == rule
    assert page.text("#rule-date") == date
    assert page.text("#rule-text") == text
    digits = page.browser.evaluate(
        "[...document.querySelectorAll('#rule-digits .digit')].map((d) => d.textContent)"
    )
    assert digits == (rule.split(",") if "," in rule else [])


def test_store_colours_follow_2020_convention(page):
    _open_main(page)

    dots = page.browser.evaluate(
        "[...document.querySelectorAll('#store-list .store')].map((item) => [item.dataset.code,"
        " item.dataset.band, getComputedStyle(item.querySelector('.dot')).backgroundColor])"
    )

    bands = {code: band for code, band, _ in dots}
    assert len(dots) == MAIN_COUNT
    for index, code in enumerate(page.main_codes):
        assert bands[code] == _band_for(index), code
    for _, band, colour in dots:
        if band == "unknown":
            assert colour == "rgb(255, 255, 255)"
        else:
            assert colour == "rgb({}, {}, {})".format(*EXPECTED_COLOURS[band])
    canvas_colours = page.browser.evaluate("window.stockfeedPage.colours")
    for band, rgb in EXPECTED_COLOURS.items():
        assert canvas_colours[band] == "#{:02x}{:02x}{:02x}".format(*rgb)


def test_unknown_stock_not_shown_available(page):
    _open_main(page)

    unknown = page.browser.evaluate(
        "[...document.querySelectorAll('.store[data-band=unknown] .store-meta strong')]"
        ".map((label) => label.textContent)"
    )

    assert len(unknown) == MAIN_COUNT // 6
    assert set(unknown) == {"정보 없음"}


def test_stale_store_marked(page):
    _open_main(page)
    stale_code = page.main_codes[STALE_INDEX]

    marked = page.browser.evaluate(
        "[...document.querySelectorAll('.store[data-stale=true]')].map((item) => item.dataset.code)"
    )
    badge = page.browser.evaluate(
        f"document.querySelector('.store[data-code=\"{stale_code}\"] .badge-stale').textContent"
    )

    assert marked == [stale_code]
    assert badge == "오래된 정보"


def test_times_and_data_age_in_kst(page):
    _open_main(page)
    fresh_code = page.main_codes[0]

    meta = page.browser.evaluate(
        f"document.querySelector('.store[data-code=\"{fresh_code}\"] .store-meta').textContent"
    )

    # A tile is generated when its newest report arrives, here 20 minutes before the page clock.
    assert page.text("#data-age") == "데이터 생성 3월 17일 11:40 (20분 전)"
    assert (
        meta == "충분 (100개 이상) · 입고 3월 17일 11:40 (20분 전) · 갱신 3월 17일 11:40 (20분 전)"
    )


def test_region_search_by_typing(page):
    _open_main(page)

    page.browser.type_text("#region-search", OTHER_SIGUNGU)
    page.browser.click("#search-form button[type=submit]")
    page.browser.wait_for(
        f"document.querySelector('#summary').textContent.includes('{OTHER_SIGUNGU}')"
    )

    assert page.text("#summary") == f"{SIDO} {OTHER_SIGUNGU} · 판매처 {OTHER_COUNT}곳"
    assert page.browser.evaluate("document.querySelectorAll('#store-list .store').length") == 10
    location_query = urllib.parse.unquote(page.browser.evaluate("location.search"))
    assert f"region={SIDO}/{OTHER_SIGUNGU}" in location_query


def test_screenshot_shows_coloured_stores(page):
    _open_main(page)
    box = page.browser.evaluate(
        "(() => { const r = document.querySelector('#map').getBoundingClientRect();"
        " return [r.left, r.top, r.right, r.bottom].map(Math.round); })()"
    )
    map_box = (box[0] + 2, box[1] + 2, box[2] - 2, box[3] - 2)

    image = decode_png(page.browser.screenshot())

    fresh = [index for index in range(MAIN_COUNT) if index != STALE_INDEX]
    for band in ("plenty", "some", "few"):
        stores = sum(1 for index in fresh if _band_for(index) == band)
        pixels = image.count_near(EXPECTED_COLOURS[band], box=map_box)
        assert pixels >= 20 * stores, (band, pixels)

    page.browser.evaluate("window.stockfeedPage.map.setStores([], () => false)")
    without_stores = decode_png(page.browser.screenshot())
    for band in ("plenty", "some", "few"):
        assert without_stores.count_near(EXPECTED_COLOURS[band], box=map_box) == 0, band


def test_page_without_tiles_says_no_data(empty_page):
    state = empty_page.open()

    assert state == "no-data"
    assert empty_page.text("#notice") == "아직 게시된 데이터가 없습니다."


def test_site_objects_have_content_types(stage):
    keys = publish_site(stage.s3, stage.settings.bucket_name)

    assert "index.html" in keys
    assert "stockfeed-client.js" in keys
    assert "rules.json" in keys
    expected = {
        "index.html": "text/html; charset=utf-8",
        "app.js": "text/javascript; charset=utf-8",
        "style.css": "text/css; charset=utf-8",
        "rules.json": "application/json; charset=utf-8",
    }
    for key, content_type in expected.items():
        head = stage.s3.head_object(Bucket=stage.settings.bucket_name, Key=key)
        assert head["ContentType"] == content_type, key
        assert head["CacheControl"].startswith("public, max-age=")
