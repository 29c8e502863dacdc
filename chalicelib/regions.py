"""Derive each store's region (province and city/county/district) from its address.

The tile publisher writes one JSON tile per province (sido) and one per sido/sigungu pair, so
every store needs a region.  The addresses in the 2020 public-mask store list are not uniform.
Provinces appear in full ("경상남도") and short ("경남") form, and some addresses start at the
city, county or even the town.  A few glue words together ("전북김제시"), and some use names
abolished before 2020 ("마산시", "연기군").  Region names follow the administrative divisions in
force in March 2020.  Only the standard library is used because the module runs in Lambda.
"""

import math
import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

SEJONG = "세종특별자치시"
GWANGJU_METRO = "광주광역시"

SIDO_NAMES: tuple[str, ...] = (
    "서울특별시",
    "부산광역시",
    "대구광역시",
    "인천광역시",
    "광주광역시",
    "대전광역시",
    "울산광역시",
    "세종특별자치시",
    "경기도",
    "강원도",
    "충청북도",
    "충청남도",
    "전라북도",
    "전라남도",
    "경상북도",
    "경상남도",
    "제주특별자치도",
)

# "광주시" is left out on purpose: it is both the metropolitan city and a city in 경기도.
_SIDO_ALIASES: Mapping[str, str] = {
    **{name: name for name in SIDO_NAMES},
    "서울": "서울특별시",
    "서울시": "서울특별시",
    "부산": "부산광역시",
    "부산시": "부산광역시",
    "대구": "대구광역시",
    "대구시": "대구광역시",
    "인천": "인천광역시",
    "인천시": "인천광역시",
    "광주": "광주광역시",
    "대전": "대전광역시",
    "대전시": "대전광역시",
    "울산": "울산광역시",
    "울산시": "울산광역시",
    "세종": SEJONG,
    "세종시": SEJONG,
    "경기": "경기도",
    "강원": "강원도",
    "강원특별자치도": "강원도",
    "충북": "충청북도",
    "충남": "충청남도",
    "전북": "전라북도",
    "전북특별자치도": "전라북도",
    "전남": "전라남도",
    "경북": "경상북도",
    "경남": "경상남도",
    "제주": "제주특별자치도",
    "제주도": "제주특별자치도",
}

# Longest first, so that a glued "경기도수원시" splits after "경기도" and not after "경기".
_SIDO_ALIASES_LONGEST_FIRST: tuple[str, ...] = tuple(sorted(_SIDO_ALIASES, key=len, reverse=True))

# Autonomous districts, cities and counties on 2020-03-15 (226 in total).  세종특별자치시 has
# none, and 제주시 and 서귀포시 are administrative cities without self-government.  The tests
# check that every name here occurs in the 2020 store list under its province.
SIGUNGU_2020: Mapping[str, tuple[str, ...]] = {
    "서울특별시": (
        "종로구", "중구", "용산구", "성동구", "광진구", "동대문구", "중랑구", "성북구",
        "강북구", "도봉구", "노원구", "은평구", "서대문구", "마포구", "양천구", "강서구",
        "구로구", "금천구", "영등포구", "동작구", "관악구", "서초구", "강남구", "송파구",
        "강동구",
    ),
    "부산광역시": (
        "중구", "서구", "동구", "영도구", "부산진구", "동래구", "남구", "북구", "해운대구",
        "사하구", "금정구", "강서구", "연제구", "수영구", "사상구", "기장군",
    ),
    "대구광역시": ("중구", "동구", "서구", "남구", "북구", "수성구", "달서구", "달성군"),
    "인천광역시": (
        "중구", "동구", "미추홀구", "연수구", "남동구", "부평구", "계양구", "서구", "강화군",
        "옹진군",
    ),
    "광주광역시": ("동구", "서구", "남구", "북구", "광산구"),
    "대전광역시": ("동구", "중구", "서구", "유성구", "대덕구"),
    "울산광역시": ("중구", "남구", "동구", "북구", "울주군"),
    "세종특별자치시": (),
    "경기도": (
        "수원시", "성남시", "의정부시", "안양시", "부천시", "광명시", "평택시", "동두천시",
        "안산시", "고양시", "과천시", "구리시", "남양주시", "오산시", "시흥시", "군포시",
        "의왕시", "하남시", "용인시", "파주시", "이천시", "안성시", "김포시", "화성시",
        "광주시", "양주시", "포천시", "여주시", "연천군", "가평군", "양평군",
    ),
    "강원도": (
        "춘천시", "원주시", "강릉시", "동해시", "태백시", "속초시", "삼척시", "홍천군",
        "횡성군", "영월군", "평창군", "정선군", "철원군", "화천군", "양구군", "인제군",
        "고성군", "양양군",
    ),
    "충청북도": (
        "청주시", "충주시", "제천시", "보은군", "옥천군", "영동군", "증평군", "진천군",
        "괴산군", "음성군", "단양군",
    ),
    "충청남도": (
        "천안시", "공주시", "보령시", "아산시", "서산시", "논산시", "계룡시", "당진시",
        "금산군", "부여군", "서천군", "청양군", "홍성군", "예산군", "태안군",
    ),
    "전라북도": (
        "전주시", "군산시", "익산시", "정읍시", "남원시", "김제시", "완주군", "진안군",
        "무주군", "장수군", "임실군", "순창군", "고창군", "부안군",
    ),
    "전라남도": (
        "목포시", "여수시", "순천시", "나주시", "광양시", "담양군", "곡성군", "구례군",
        "고흥군", "보성군", "화순군", "장흥군", "강진군", "해남군", "영암군", "무안군",
        "함평군", "영광군", "장성군", "완도군", "진도군", "신안군",
    ),
    "경상북도": (
        "포항시", "경주시", "김천시", "안동시", "구미시", "영주시", "영천시", "상주시",
        "문경시", "경산시", "군위군", "의성군", "청송군", "영양군", "영덕군", "청도군",
        "고령군", "성주군", "칠곡군", "예천군", "봉화군", "울진군", "울릉군",
    ),
    "경상남도": (
        "창원시", "진주시", "통영시", "사천시", "김해시", "밀양시", "거제시", "양산시",
        "의령군", "함안군", "창녕군", "고성군", "남해군", "하동군", "산청군", "함양군",
        "거창군", "합천군",
    ),
    "제주특별자치도": ("제주시", "서귀포시"),
}  # fmt: skip

# General (non-autonomous) districts of the cities that had them on 2020-03-15 (32 in total).
# 부천시 abolished its districts in 2016, so it is absent.
GENERAL_DISTRICTS_2020: Mapping[str, tuple[str, ...]] = {
    "수원시": ("장안구", "권선구", "팔달구", "영통구"),
    "성남시": ("수정구", "중원구", "분당구"),
    "안양시": ("만안구", "동안구"),
    "안산시": ("상록구", "단원구"),
    "고양시": ("덕양구", "일산동구", "일산서구"),
    "용인시": ("처인구", "기흥구", "수지구"),
    "청주시": ("상당구", "서원구", "흥덕구", "청원구"),
    "천안시": ("동남구", "서북구"),
    "전주시": ("완산구", "덕진구"),
    "포항시": ("남구", "북구"),
    "창원시": ("의창구", "성산구", "마산합포구", "마산회원구", "진해구"),
}

_TOWN_SUFFIXES = ("읍", "면")
_NAME_SUFFIXES = ("시", "군", "구")

# Distance limits for choosing a place by coordinates.  They were measured on the 2020 list as
# the distance from each store to the centroids that from_rows learns from that list.  99 % of
# stores lie within 5.4 km of their town's centroid and within 22 km of their sigungu's.  Every
# store in a sigungu whose name repeats (고성군, 중구, 남구, ...) lies within 19 km.  Island
# towns and counties reach 59 km and 118 km, so an island address that starts at its town
# can stay unresolved.
_MAX_TOWN_DISTANCE_KM = 15.0
_MAX_CITY_DISTANCE_KM = 30.0

_KM_PER_DEGREE = 111.2
_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class Region:
    """Province and city/county/district of one store, as named in 2020.

    For a city with general districts, sigungu is "city district" when the address names the
    district and the city alone when it does not ("창원시").
    """

    sido: str
    sigungu: str


class _Place(NamedTuple):
    """A 2020 sigungu split into its city and optional general district."""

    sido: str
    city: str
    district: str = ""

    @property
    def region(self) -> Region:
        if self.district:
            return Region(self.sido, f"{self.city} {self.district}")
        return Region(self.sido, self.city)


class _Match(NamedTuple):
    """A place read from an address and the index of the first token after it."""

    place: _Place
    next_index: int


_SEJONG_PLACE = _Place(SEJONG, SEJONG)

# (sido, city, district, town), the district being "" when the city has none.
type _TownKey = tuple[str, str, str, str]

# Names that addresses still use after a merger, promotion or transfer, keyed by the province
# the address names, with the 2020 place they stand for.
_FORMER_NAMES: Mapping[tuple[str, str], _Place] = {
    ("경상남도", "마산시"): _Place("경상남도", "창원시"),
    ("경상남도", "진해시"): _Place("경상남도", "창원시", "진해구"),
    ("충청남도", "당진군"): _Place("충청남도", "당진시"),
    ("충청남도", "연기군"): _SEJONG_PLACE,
    ("충청북도", "청원군"): _Place("충청북도", "청주시"),
    ("경기도", "여주군"): _Place("경기도", "여주시"),
    ("제주특별자치도", "남제주군"): _Place("제주특별자치도", "서귀포시"),
    ("제주특별자치도", "북제주군"): _Place("제주특별자치도", "제주시"),
    ("인천광역시", "남구"): _Place("인천광역시", "미추홀구"),
    ("대구광역시", "군위군"): _Place("경상북도", "군위군"),
}


def _build_places_by_sido() -> dict[str, dict[str, _Place]]:
    places: dict[str, dict[str, _Place]] = {sido: {} for sido in SIDO_NAMES}
    for sido, names in SIGUNGU_2020.items():
        for name in names:
            places[sido][name] = _Place(sido, name)

    for (sido, name), place in _FORMER_NAMES.items():
        places[sido][name] = place

    return places


def _build_places_by_name(
    places_by_sido: Mapping[str, Mapping[str, _Place]],
) -> dict[str, tuple[_Place, ...]]:
    places: dict[str, list[_Place]] = {}
    for names in places_by_sido.values():
        for name, place in names.items():
            places.setdefault(name, []).append(place)

    return {name: tuple(dict.fromkeys(found)) for name, found in places.items()}


_PLACES_BY_SIDO = _build_places_by_sido()
_PLACES_BY_NAME = _build_places_by_name(_PLACES_BY_SIDO)


def normalize_sido(token: str) -> str | None:
    """Map a first address token to the full 2020 province name, or None if it is not one.

    Accepts full names, short names ("경남"), "X시" forms of metropolitan cities and the newer
    names 강원특별자치도 and 전북특별자치도.  "광주시" returns None because 경기도 also has a
    광주시.
    """
    return _SIDO_ALIASES.get(token.strip(" \t\n,"))


def _tokenize(addr: str) -> list[str]:
    return [token for token in _SEPARATORS.split(addr) if token]


def _match_name(token: str, names: Iterable[str]) -> tuple[str, str] | None:
    """Find the name a token starts with and return it with the rest of the token.

    An exact match wins, then the longest name that is a prefix of the token, which covers
    glued tokens such as "수원시영통구" and "남원시택내길12".
    """
    best: str | None = None
    for name in names:
        if name == token:
            return name, ""
        if token.startswith(name) and (best is None or len(name) > len(best)):
            best = name

    if best is None:
        return None
    return best, token[len(best) :]


def _complete_name(token: str, names: Mapping[str, _Place]) -> str | None:
    """Return the name a token stands for when it lacks its 시/군/구 suffix ("안성")."""
    if len(token) < 2 or token.endswith(_NAME_SUFFIXES):
        return None

    for suffix in _NAME_SUFFIXES:
        if token + suffix in names:
            return token + suffix
    return None


def _add_district(place: _Place, remainder: str, tokens: list[str], index: int) -> _Match:
    """Attach the general district that follows a city, glued to it or as the next token."""
    districts = GENERAL_DISTRICTS_2020.get(place.city)
    if place.district or not districts:
        return _Match(place, index)

    if remainder:
        found = _match_name(remainder, districts)
        if found is not None:
            return _Match(place._replace(district=found[0]), index)
        return _Match(place, index)

    if index < len(tokens):
        found = _match_name(tokens[index], districts)
        if found is not None:
            return _Match(place._replace(district=found[0]), index + 1)

    return _Match(place, index)


def _match_in_sido(sido: str, tokens: list[str]) -> _Match | None:
    """Read the sigungu that starts `tokens` when the address has named its province."""
    if sido == SEJONG:
        return _Match(_SEJONG_PLACE, 0)
    if not tokens:
        return None

    places = _PLACES_BY_SIDO[sido]
    completed = _complete_name(tokens[0], places)
    found = (completed, "") if completed else _match_name(tokens[0], places)
    if found is None:
        return None

    name, remainder = found
    return _add_district(places[name], remainder, tokens, 1)


def _match_nationwide(tokens: list[str]) -> list[_Match]:
    """Read the sigungu that starts `tokens` in every province that has one of that name."""
    if not tokens:
        return []

    found = _match_name(tokens[0], _PLACES_BY_NAME)
    if found is None:
        return []

    name, remainder = found
    return [_add_district(place, remainder, tokens, 1) for place in _PLACES_BY_NAME[name]]


def _split_glued_sido(token: str) -> tuple[str, str] | None:
    """Split a province glued to its sigungu ("전북김제시") into both parts."""
    for alias in _SIDO_ALIASES_LONGEST_FIRST:
        if not token.startswith(alias) or token == alias:
            continue

        # 세종특별자치시 has no sigungu to confirm the split, and "세종로" is a street name.
        sido = _SIDO_ALIASES[alias]
        if sido == SEJONG:
            continue

        rest = token[len(alias) :]
        if _match_in_sido(sido, [rest]) is not None:
            return sido, rest

    return None


def _split_sido(tokens: list[str]) -> tuple[str | None, list[str]]:
    """Split off the province that starts an address, if it names one."""
    first = tokens[0]
    sido = _SIDO_ALIASES.get(first)
    if sido is not None:
        return sido, tokens[1:]

    # "광주시 서구 ..." is the metropolitan city, but "광주시 오포읍 ..." is the city in 경기도.
    gwangju_districts = SIGUNGU_2020[GWANGJU_METRO]
    if first == "광주시" and len(tokens) > 1 and tokens[1] in gwangju_districts:
        return GWANGJU_METRO, tokens[1:]

    glued = _split_glued_sido(first)
    if glued is not None:
        return glued[0], [glued[1], *tokens[1:]]

    return None, tokens


def _distance_km(lat_a: float, lng_a: float, lat_b: float, lng_b: float) -> float:
    """Approximate the distance in km with an equirectangular projection.

    Within South Korea the error is below 1 %, far less than the distance limits need.
    """
    mean_lat = math.radians((lat_a + lat_b) / 2)
    dx = (lng_a - lng_b) * math.cos(mean_lat)
    dy = lat_a - lat_b
    return _KM_PER_DEGREE * math.hypot(dx, dy)


def _point(lat: float | None, lng: float | None) -> tuple[float, float] | None:
    if lat is None or lng is None or not (math.isfinite(lat) and math.isfinite(lng)):
        return None
    return lat, lng


def _town_token(tokens: list[str], index: int) -> str | None:
    if index < len(tokens) and tokens[index].endswith(_TOWN_SUFFIXES):
        return tokens[index]
    return None


class _CentroidSums[Key: Hashable]:
    """Running sums of latitude and longitude per key, turned into centroids at the end."""

    def __init__(self) -> None:
        self._sums: dict[Key, list[float]] = {}

    def add(self, key: Key, point: tuple[float, float]) -> None:
        entry = self._sums.setdefault(key, [0.0, 0.0, 0.0])
        entry[0] += point[0]
        entry[1] += point[1]
        entry[2] += 1.0

    def centroids(self) -> dict[Key, tuple[float, float]]:
        return {
            key: (lat_sum / count, lng_sum / count)
            for key, (lat_sum, lng_sum, count) in self._sums.items()
        }


class RegionResolver:
    """Resolve store addresses to 2020 regions with centroids learned from the store list.

    The fixed 2020 tables decide which names exist and where.  The learned rows supply the
    centroids that settle ambiguous names (고성군, 중구) and the towns (eup/myeon) of each
    sigungu, which place addresses that start at the town.
    """

    def __init__(
        self,
        city_centroids: Mapping[tuple[str, str], tuple[float, float]],
        town_centroids: Mapping[_TownKey, tuple[float, float]],
        towns: Iterable[_TownKey],
    ) -> None:
        """Take centroids keyed by (sido, city) and by (sido, city, district, town).

        `towns` lists every town seen, including towns seen only without coordinates.
        """
        self._city_centroids = dict(city_centroids)
        self._town_centroids: dict[str, dict[_Place, tuple[float, float]]] = {}
        for (sido, city, district, town), centroid in town_centroids.items():
            place = _Place(sido, city, district)
            self._town_centroids.setdefault(town, {})[place] = centroid

        self._places_by_town: dict[str, set[_Place]] = {}
        for sido, city, district, town in towns:
            self._places_by_town.setdefault(town, set()).add(_Place(sido, city, district))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, float | None, float | None]]) -> "RegionResolver":
        """Learn sigungu and town centroids from (addr, lat, lng) rows that name a province.

        Rows whose sigungu is missing or not in the named province are skipped.
        """
        city_sums = _CentroidSums[tuple[str, str]]()
        town_sums = _CentroidSums[_TownKey]()
        towns: set[_TownKey] = set()

        for addr, lat, lng in rows:
            tokens = _tokenize(addr)
            if not tokens:
                continue
            sido, rest = _split_sido(tokens)
            if sido is None:
                continue
            match = _match_in_sido(sido, rest)
            if match is None:
                continue

            place = match.place
            town = _town_token(rest, match.next_index)
            town_key = (place.sido, place.city, place.district, town) if town else None
            if town_key is not None:
                towns.add(town_key)

            point = _point(lat, lng)
            if point is None:
                continue
            city_sums.add((place.sido, place.city), point)
            if town_key is not None:
                town_sums.add(town_key, point)

        return cls(city_sums.centroids(), town_sums.centroids(), towns)

    def resolve(self, addr: str, lat: float | None, lng: float | None) -> Region | None:
        """Return the region of one address, or None when it cannot be determined.

        Coordinates only choose between places that share a name and place addresses that
        start at their town.  They never override a sigungu the address names.
        """
        tokens = _tokenize(addr)
        if not tokens:
            return None

        sido, rest = _split_sido(tokens)
        if sido is not None:
            match = _match_in_sido(sido, rest)
            if match is not None:
                return match.place.region

        # The address starts below the province, or names a sigungu of another province
        # ("경남 경산시"), and then the sigungu is trusted over the province.
        point = _point(lat, lng)
        candidates = _match_nationwide(rest)
        if candidates:
            chosen = self._choose(candidates, rest, point)
            return chosen.region if chosen is not None else None

        if rest:
            return self._resolve_town(rest[0], sido, point)
        return None

    def _choose(
        self,
        candidates: list[_Match],
        tokens: list[str],
        point: tuple[float, float] | None,
    ) -> _Place | None:
        """Pick one of several same-named places by the nearest centroid, else by the town.

        The town is used only for addresses without coordinates ("고성군 토성면 천진로170").
        """
        if len(candidates) == 1:
            return candidates[0].place
        if point is not None:
            places = [match.place for match in candidates]
            return self._nearest_city(places, point, _MAX_CITY_DISTANCE_KM)
        return self._only_city_with_town(candidates, tokens)

    def _nearest_city(
        self, places: Iterable[_Place], point: tuple[float, float], max_km: float
    ) -> _Place | None:
        best: _Place | None = None
        best_distance = max_km
        for place in places:
            centroid = self._city_centroids.get((place.sido, place.city))
            if centroid is None:
                continue
            distance = _distance_km(*point, *centroid)
            if distance <= best_distance:
                best, best_distance = place, distance

        return best

    def _only_city_with_town(self, candidates: list[_Match], tokens: list[str]) -> _Place | None:
        """Return the one candidate in which the town the address names was seen."""
        found: list[_Place] = []
        for match in candidates:
            town = _town_token(tokens, match.next_index)
            seen_in = self._places_by_town.get(town, set()) if town else set()
            if any(_same_city(match.place, place) for place in seen_in):
                found.append(match.place)

        return found[0] if len(found) == 1 else None

    def _resolve_town(
        self, town: str, sido: str | None, point: tuple[float, float] | None
    ) -> Region | None:
        """Place an address that starts at its town ("내면 창촌로 45-5") by coordinates.

        Town names repeat across the country, so the nearest learned town of that name is
        taken if it lies within _MAX_TOWN_DISTANCE_KM.  A town seen only in rows without
        coordinates falls back to the centroid of its sigungu, within _MAX_CITY_DISTANCE_KM.
        """
        if point is None or not town.endswith(_TOWN_SUFFIXES):
            return None

        best: _Place | None = None
        best_distance = _MAX_TOWN_DISTANCE_KM
        for place, centroid in self._town_centroids.get(town, {}).items():
            if sido is not None and place.sido != sido:
                continue
            distance = _distance_km(*point, *centroid)
            if distance <= best_distance:
                best, best_distance = place, distance
        if best is not None:
            return best.region

        seen_in = self._places_by_town.get(town, set())
        without_centroid = [
            place
            for place in seen_in
            if place not in self._town_centroids.get(town, {})
            and (sido is None or place.sido == sido)
        ]
        nearest = self._nearest_city(without_centroid, point, _MAX_CITY_DISTANCE_KM)
        return nearest.region if nearest is not None else None


def _same_city(first: _Place, second: _Place) -> bool:
    return first.sido == second.sido and first.city == second.city
