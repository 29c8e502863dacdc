"""Region resolution on real addresses from the 2020 store list and on its whole file."""

import csv
from pathlib import Path

import pytest

from chalicelib.regions import (
    GENERAL_DISTRICTS_2020,
    SEJONG,
    SIDO_NAMES,
    SIGUNGU_2020,
    Region,
    RegionResolver,
    normalize_sido,
)

STORE_LIST = Path(__file__).resolve().parents[2] / "data" / "kr-mask-stores-2020-03-15.csv"
STORE_COUNT = 25_439

Row = tuple[str, float | None, float | None]


def _coordinate(text: str) -> float | None:
    return float(text) if text.strip() else None


def _read_rows() -> list[Row]:
    with STORE_LIST.open(encoding="utf-8", newline="") as handle:
        return [
            (row["addr"], _coordinate(row["latitude"]), _coordinate(row["longitude"]))
            for row in csv.DictReader(handle)
        ]


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return _read_rows()


@pytest.fixture(scope="module")
def resolver(rows: list[Row]) -> RegionResolver:
    return RegionResolver.from_rows(rows)


def test_sido_names_are_17_distinct() -> None:
    assert len(SIDO_NAMES) == 17
    assert len(set(SIDO_NAMES)) == 17


def test_fixed_table_has_2020_counts() -> None:
    assert set(SIGUNGU_2020) == set(SIDO_NAMES)
    assert sum(len(names) for names in SIGUNGU_2020.values()) == 226 + 2
    assert sum(len(districts) for districts in GENERAL_DISTRICTS_2020.values()) == 32


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("경남", "경상남도"),
        ("경상남도", "경상남도"),
        ("경북", "경상북도"),
        ("서울", "서울특별시"),
        ("서울시", "서울특별시"),
        ("서울특별시", "서울특별시"),
        ("부산시", "부산광역시"),
        ("광주", "광주광역시"),
        ("세종", SEJONG),
        ("세종시", SEJONG),
        ("제주", "제주특별자치도"),
        ("제주도", "제주특별자치도"),
        ("강원", "강원도"),
        ("강원특별자치도", "강원도"),
        ("전북", "전라북도"),
        ("전북특별자치도", "전라북도"),
        (" 충남,", "충청남도"),
        ("광주시", None),
        ("진주시", None),
        ("내면", None),
        ("", None),
    ],
)
def test_normalize_sido(token: str, expected: str | None) -> None:
    assert normalize_sido(token) == expected


@pytest.mark.parametrize(
    ("addr", "lat", "lng", "sido", "sigungu"),
    [
        ("경북 고령군 쌍림면 대가야로 608 ", 35.6791963, 128.2422529, "경상북도", "고령군"),
        ("부산시 기장군 일광면 삼성1길 6-6", 35.2643042, 129.2335715, "부산광역시", "기장군"),
        ("제주 제주시 연삼로 113 (오라삼동)", 33.4937633, 126.5047699, "제주특별자치도", "제주시"),
        ("서울특별시 강남구 압구정로 108 1층 7호 (신사동)", None, None, "서울특별시", "강남구"),
        ("서울시 강남구 압구정로 108 1층 7호 (신사동)", None, None, "서울특별시", "강남구"),
        ("강원특별자치도 춘천시 금강로 35 (소양로3가)", None, None, "강원도", "춘천시"),
    ],
)
def test_resolve_province_forms(
    resolver: RegionResolver,
    addr: str,
    lat: float | None,
    lng: float | None,
    sido: str,
    sigungu: str,
) -> None:
    assert resolver.resolve(addr, lat, lng) == Region(sido, sigungu)


@pytest.mark.parametrize(
    ("addr", "lat", "lng", "sido", "sigungu"),
    [
        ("진주시 문산읍 동부로609번길 10", 35.1691829, 128.1669379, "경상남도", "진주시"),
        ("합천군 봉산면 서부로4351", 35.6286143, 128.042673, "경상남도", "합천군"),
        ("정읍시 태인면 향교1길 5", 35.652019, 126.940451, "전라북도", "정읍시"),
        ("사천시 정동면 상정대로 2492", None, None, "경상남도", "사천시"),
        ("    원주시 문막읍 건등로2", 37.311573, 127.8173869, "강원도", "원주시"),
        ("용인시 처인구 양지면 양지로 171", 37.2342208, 127.2872701, "경기도", "용인시 처인구"),
    ],
)
def test_resolve_city_start(
    resolver: RegionResolver,
    addr: str,
    lat: float | None,
    lng: float | None,
    sido: str,
    sigungu: str,
) -> None:
    assert resolver.resolve(addr, lat, lng) == Region(sido, sigungu)


@pytest.mark.parametrize(
    ("addr", "lat", "lng", "expected"),
    [
        ("고성군 거진읍 거탄진로102", 38.4443354, 128.4539102, Region("강원도", "고성군")),
        ("고성군 죽왕면 동해대로5901", 38.3290301, 128.5240892, Region("강원도", "고성군")),
        ("고성군 고성읍 동외로 156", 34.9751014, 128.3261233, Region("경상남도", "고성군")),
        ("중구 동호로 171 (신당동)", 37.5534585, 127.0112461, Region("서울특별시", "중구")),
        ("중구 대영로 219 (영주동)", 35.1123557, 129.0347719, Region("부산광역시", "중구")),
        ("중구 계백로 1560 (유천동)", 36.3171113, 127.3936154, Region("대전광역시", "중구")),
        ("남구 문수로 331 1층 (옥동)", 35.535473, 129.2898058, Region("울산광역시", "남구")),
        ("서구 풍금로 167 (금호동)", 35.1309005, 126.8592337, Region("광주광역시", "서구")),
        # 포항시 남구 is no candidate for a bare "남구", and every 광역시 남구 is over 30 km away.
        ("남구 시청로 7 (대잠동)", 36.0180464, 129.3417615, None),
        ("중구 동호로 171 (신당동)", None, None, None),
        ("고성군 거탄진로102", None, None, None),
    ],
)
def test_resolve_ambiguous_name(
    resolver: RegionResolver,
    addr: str,
    lat: float | None,
    lng: float | None,
    expected: Region | None,
) -> None:
    assert resolver.resolve(addr, lat, lng) == expected


def test_resolve_ambiguous_name_by_town(resolver: RegionResolver) -> None:
    # No coordinates, but 토성면 exists only in 강원도 고성군.
    assert resolver.resolve("고성군 토성면 천진로170", None, None) == Region("강원도", "고성군")


@pytest.mark.parametrize(
    ("addr", "sido", "sigungu"),
    [
        ("전북김제시 공덕면 공덕10길 18", "전라북도", "김제시"),
        ("전북김제시 광활면 광활11길 30-4", "전라북도", "김제시"),
        ("전북군산시 대야면 번영로 883", "전라북도", "군산시"),
        ("경남거창군 위천면 원학길 359", "경상남도", "거창군"),
        ("전북 남원시택내길12", "전라북도", "남원시"),
        ("경기도 수원시영통구 인계로 218 (매탄동)", "경기도", "수원시 영통구"),
        ("수원시영통구 인계로 218 (매탄동)", "경기도", "수원시 영통구"),
        ("경상남도 창원시의창구 도계로 120 1층 (도계동)", "경상남도", "창원시 의창구"),
        ("서울특별시중구 동호로 171 (신당동)", "서울특별시", "중구"),
    ],
)
def test_resolve_glued_tokens(resolver: RegionResolver, addr: str, sido: str, sigungu: str) -> None:
    assert resolver.resolve(addr, None, None) == Region(sido, sigungu)


@pytest.mark.parametrize(
    ("addr", "lat", "lng"),
    [
        ("내면 창촌로 45-5", 37.7723391, 128.3891892),
        ("동면 공작산로 510", 37.6774459, 127.9362589),
        ("서면 팔봉산로 624", 37.6888352, 127.6650222),
        ("남면 양덕원로 88", 37.6173391, 127.7682414),
        ("서석면 구룡령로 2518", 37.7127506, 128.1847478),
        ("홍천읍 연봉중앙로 54", 37.6823281, 127.8785337),
        ("북방면 영서로 2678", 37.7034444, 127.85292),
        ("화촌면 성산로 139", 37.770554, 127.966682),
        ("내촌면 아홉사리로 1141", 37.8157334, 128.0888563),
        # The only full address with 두촌면 has no coordinates, so 홍천군's centroid decides.
        ("두촌면 자은로 341", 37.8681199, 128.0183773),
    ],
)
def test_resolve_town_start(resolver: RegionResolver, addr: str, lat: float, lng: float) -> None:
    assert resolver.resolve(addr, lat, lng) == Region("강원도", "홍천군")


@pytest.mark.parametrize(
    ("addr", "lat", "lng"),
    [
        ("내면 창촌로 45-5", None, None),
        ("동면 공작산로 510", None, None),
        # 동면 exists elsewhere, but no learned 동면 lies near 제주.
        ("동면 공작산로 510", 33.4937633, 126.5047699),
    ],
)
def test_resolve_town_start_unresolved(
    resolver: RegionResolver, addr: str, lat: float | None, lng: float | None
) -> None:
    assert resolver.resolve(addr, lat, lng) is None


@pytest.mark.parametrize(
    ("addr", "sido", "sigungu"),
    [
        ("충청남도 홍성군 갈산면 상촌로 12-1,", "충청남도", "홍성군"),
        ("충청남도 천안시 서북구 성환읍 율금1길 291  ", "충청남도", "천안시 서북구"),
        (" 충청남도 당진시 대호지면 4.4만세로 37 ", "충청남도", "당진시"),
        ("경기 안성 금광면 금광초교길 71", "경기도", "안성시"),
        ("경남 경산시 남매로 251", "경상북도", "경산시"),
    ],
)
def test_resolve_stray_text(resolver: RegionResolver, addr: str, sido: str, sigungu: str) -> None:
    assert resolver.resolve(addr, None, None) == Region(sido, sigungu)


@pytest.mark.parametrize(
    ("addr", "sido", "sigungu"),
    [
        ("경남 진해시 성내동 379", "경상남도", "창원시 진해구"),
        ("경남 마산시 합성동 100-8", "경상남도", "창원시"),
        ("충남 연기군 조치원읍 신흥리 172-4", SEJONG, SEJONG),
        ("충남 당진군 합덕읍 운산리 255-12", "충청남도", "당진시"),
        ("충북 청원군 낭성면 이목리 118-2", "충청북도", "청주시"),
        ("제주 남제주군 안덕면 창천리153의1", "제주특별자치도", "서귀포시"),
        ("제주 북제주군 조천읍 신촌리 2220-3", "제주특별자치도", "제주시"),
        ("인천광역시 남구 경인로 233 1층 1호 (도화동)", "인천광역시", "미추홀구"),
        ("대구광역시 군위군 군위읍 중앙길 72", "경상북도", "군위군"),
    ],
)
def test_resolve_former_names(resolver: RegionResolver, addr: str, sido: str, sigungu: str) -> None:
    assert resolver.resolve(addr, None, None) == Region(sido, sigungu)


@pytest.mark.parametrize(
    ("addr", "sigungu"),
    [
        ("경기도 수원시 영통구 인계로 218 (매탄동)", "수원시 영통구"),
        ("경기도 성남시 분당구 성남대로 926 분당메트로 406호 (야탑동)", "성남시 분당구"),
        ("경상남도 창원시 의창구 도계로 120 1층 (도계동)", "창원시 의창구"),
        ("경상남도 창원시 마산합포구 신마산시장길 33 (창포동3가)", "창원시 마산합포구"),
        ("경상북도 포항시 남구 시청로 7 (대잠동)", "포항시 남구"),
        ("충청북도 청주시 상당구 쇠내로 82 (금천동)", "청주시 상당구"),
        ("충청남도 천안시 동남구 만남로 42 1층 (신부동)", "천안시 동남구"),
        ("전라북도 전주시 완산구 온고을로 18 (서신동)", "전주시 완산구"),
        ("전북특별자치도 전주시 완산구 온고을로 18 (서신동)", "전주시 완산구"),
        ("경기도 고양시 덕양구 충경로 87 대명상가 2층 (행신동)", "고양시 덕양구"),
        ("경기도 용인시 수지구 수지로 62 (상현동)", "용인시 수지구"),
        ("경기도 안산시 단원구 적금로 114 (고잔동)", "안산시 단원구"),
        ("경기도 안양시 만안구 명학로 34 1층 (안양동)", "안양시 만안구"),
        ("경남 창원시 반림동 8 럭키상가내", "창원시"),
        ("충남 천안시 광덕면 행정리68의2", "천안시"),
        ("경기도 부천시 경인로 565 (괴안동)", "부천시"),
    ],
)
def test_resolve_general_districts(resolver: RegionResolver, addr: str, sigungu: str) -> None:
    region = resolver.resolve(addr, None, None)

    assert region is not None
    assert region.sigungu == sigungu


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("세종특별자치시 달빛로 47 1층 104호 (종촌동)", Region(SEJONG, SEJONG)),
        ("세종  한누리대로 486 NH농협 통합센터 1층 102호", Region(SEJONG, SEJONG)),
        ("광주광역시 서구 월드컵4강로 194 1층 (내방동)", Region("광주광역시", "서구")),
        ("광주시 서구 월드컵4강로 194 1층 (내방동)", Region("광주광역시", "서구")),
        ("경기도 광주시 오포읍 양벌로 208 1층", Region("경기도", "광주시")),
        ("광주시 오포읍 양벌로 208 1층", Region("경기도", "광주시")),
        ("세종로 175", None),
        ("서울특별시", None),
        ("   ", None),
        ("", None),
    ],
)
def test_resolve_special_names(
    resolver: RegionResolver, addr: str, expected: Region | None
) -> None:
    assert resolver.resolve(addr, None, None) == expected


def test_resolve_without_learned_rows() -> None:
    empty = RegionResolver.from_rows([])

    assert empty.resolve("진주시 문산읍 동부로609번길 10", None, None) == Region(
        "경상남도", "진주시"
    )
    assert empty.resolve("고성군 거진읍 거탄진로102", 38.4443354, 128.4539102) is None


@pytest.mark.slow
def test_resolve_whole_store_list(rows: list[Row]) -> None:
    resolver = RegionResolver.from_rows(rows)
    regions = [resolver.resolve(addr, lat, lng) for addr, lat, lng in rows]
    resolved = [region for region in regions if region is not None]

    assert len(rows) == STORE_COUNT
    assert len(resolved) >= 25_400
    assert {region.sido for region in resolved} <= set(SIDO_NAMES)
    assert len({region.sido for region in resolved}) == 17
    assert 225 <= len(set(resolved)) <= 260


@pytest.mark.slow
def test_store_list_covers_fixed_table(rows: list[Row], resolver: RegionResolver) -> None:
    resolved = {resolver.resolve(addr, lat, lng) for addr, lat, lng in rows}
    cities = {(region.sido, region.sigungu.split(" ")[0]) for region in resolved if region}
    districts = {region.sigungu for region in resolved if region and " " in region.sigungu}

    expected_cities = {(sido, name) for sido, names in SIGUNGU_2020.items() for name in names}
    expected_districts = {
        f"{city} {district}" for city, names in GENERAL_DISTRICTS_2020.items() for district in names
    }
    assert cities - {(SEJONG, SEJONG)} == expected_cities
    assert districts == expected_districts
