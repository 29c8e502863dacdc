/**
 * Korean and English text of the map page, and time formatting in Korea Standard Time.
 *
 * Korean is the default language. Region names and addresses stay in Korean in both languages,
 * because they are the official names that the tiles use.
 */

export const LANGUAGES = ["ko", "en"];

const KOREAN_WEEKDAYS = ["일요일", "월요일", "화요일", "수요일", "목요일", "금요일", "토요일"];
const ENGLISH_WEEKDAYS = [
  "Sunday",
  "Monday",
  "Tuesday",
  "Wednesday",
  "Thursday",
  "Friday",
  "Saturday",
];
const ENGLISH_MONTHS = [
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
];

export const MESSAGES = {
  ko: {
    title: "공적 마스크 재고 지도",
    subtitle: "약국·우체국·농협 하나로마트의 마스크 재고",
    toggle: "English",
    toggleLabel: "Switch to English",
    ruleHeading: "오늘의 구매 요일제",
    searchLabel: "지역 검색",
    searchPlaceholder: "예: 서울특별시 강남구",
    searchButton: "검색",
    nearMe: "내 주변 1km",
    thisArea: "지도 중심 반경 검색",
    legendHeading: "재고 표시",
    listHeading: "판매처",
    mapLabel: "판매처 위치 지도",
    loading: "불러오는 중…",
    noData: "아직 게시된 데이터가 없습니다.",
    noStores: "이 지역에는 판매처가 없습니다.",
    regionNotFound: (query) => `"${query}"에 맞는 지역이 없습니다.`,
    loadFailed: "데이터를 불러오지 못했습니다. 잠시 후 다시 시도하세요.",
    geolocationFailed: "현재 위치를 알 수 없습니다.",
    areaTooLarge: "지도를 더 확대한 뒤 검색하세요 (반경 10km 이하).",
    summary: (place, count) => `${place} · 판매처 ${count.toLocaleString("ko-KR")}곳`,
    nearSummary: (radius, count) => `반경 ${radius} · 판매처 ${count.toLocaleString("ko-KR")}곳`,
    dataAge: (time, age) => `데이터 생성 ${time} (${age})`,
    moreStores: (count) => `외 ${count.toLocaleString("ko-KR")}곳은 지도에만 표시됩니다.`,
    stockAt: "입고",
    reportedAt: "갱신",
    never: "없음",
    stale: "오래된 정보",
    staleLegend: (minutes) => `오래된 정보 (${minutes}분 넘게 갱신 없음)`,
    distance: (metres) =>
      metres < 1000 ? `${Math.round(metres)}m` : `${(metres / 1000).toFixed(1)}km`,
    bands: {
      plenty: "충분 (100개 이상)",
      some: "보통 (30~99개)",
      few: "부족 (2~29개)",
      empty: "없음 (0~1개)",
      break: "판매 중지",
      unknown: "정보 없음",
    },
    types: { "01": "약국", "02": "우체국", "03": "농협 하나로마트" },
    ruleDate: (date) =>
      `${date.year}년 ${date.month}월 ${date.day}일 ${KOREAN_WEEKDAYS[date.weekday]} (한국 표준시)`,
    ruleDigits: (digits) =>
      digits.length
        ? `출생연도 끝자리가 ${digits.join(", ")}인 분이 구매할 수 있습니다.`
        : "오늘은 아무도 구매할 수 없습니다.",
    ruleAnyone: "오늘은 누구나 구매할 수 있습니다.",
    ruleUnpublished: "오늘 적용되는 구매 규칙이 게시되지 않았습니다.",
    rulesFailed: "구매 규칙을 불러오지 못했습니다.",
    ago: (minutes) => koreanAge(minutes),
  },
  en: {
    title: "Public mask stock map",
    subtitle: "Mask stock at pharmacies, post offices and Nonghyup Hanaro Marts",
    toggle: "한국어",
    toggleLabel: "한국어로 보기",
    ruleHeading: "Today's buying rule",
    searchLabel: "Search region",
    searchPlaceholder: "e.g. 서울특별시 강남구",
    searchButton: "Search",
    nearMe: "Within 1 km of me",
    thisArea: "Search around map centre",
    legendHeading: "Stock levels",
    listHeading: "Stores",
    mapLabel: "Map of store locations",
    loading: "Loading…",
    noData: "No data has been published yet.",
    noStores: "There are no stores in this region.",
    regionNotFound: (query) => `No region matches "${query}".`,
    loadFailed: "Could not load the data. Try again in a moment.",
    geolocationFailed: "Your location is not available.",
    areaTooLarge: "Zoom in further before searching (radius at most 10 km).",
    summary: (place, count) => `${place} · ${count.toLocaleString("en")} stores`,
    nearSummary: (radius, count) => `Within ${radius} · ${count.toLocaleString("en")} stores`,
    dataAge: (time, age) => `Data generated ${time} (${age})`,
    moreStores: (count) => `${count.toLocaleString("en")} more stores are shown on the map only.`,
    stockAt: "Delivered",
    reportedAt: "Updated",
    never: "never",
    stale: "Stale",
    staleLegend: (minutes) => `Stale (no update for over ${minutes} min)`,
    distance: (metres) =>
      metres < 1000 ? `${Math.round(metres)} m` : `${(metres / 1000).toFixed(1)} km`,
    bands: {
      plenty: "Plenty (100 or more)",
      some: "Some (30 to 99)",
      few: "Few (2 to 29)",
      empty: "Empty (0 or 1)",
      break: "Sales paused",
      unknown: "Unknown (never reported)",
    },
    types: { "01": "Pharmacy", "02": "Post office", "03": "Nonghyup Hanaro Mart" },
    ruleDate: (date) =>
      `${ENGLISH_WEEKDAYS[date.weekday]}, ${date.day} ${ENGLISH_MONTHS[date.month - 1]} ${date.year} (Korea Standard Time)`,
    ruleDigits: (digits) =>
      digits.length
        ? `People whose birth year ends in ${englishList(digits)} can buy.`
        : "Nobody can buy today.",
    ruleAnyone: "Anyone can buy today.",
    ruleUnpublished: "No buying rule has been published for today.",
    rulesFailed: "Could not load the buying rules.",
    ago: (minutes) => englishAge(minutes),
  },
};

function englishList(items) {
  if (items.length < 2) {
    return items.join("");
  }
  return `${items.slice(0, -1).join(", ")} or ${items[items.length - 1]}`;
}

function koreanAge(minutes) {
  if (minutes < 1) {
    return "방금";
  }
  if (minutes < 60) {
    return `${Math.floor(minutes)}분 전`;
  }
  if (minutes < 48 * 60) {
    const hours = Math.floor(minutes / 60);
    const rest = Math.floor(minutes % 60);
    return rest ? `${hours}시간 ${rest}분 전` : `${hours}시간 전`;
  }
  return `${Math.floor(minutes / 1440)}일 전`;
}

function englishAge(minutes) {
  if (minutes < 1) {
    return "just now";
  }
  if (minutes < 60) {
    return `${Math.floor(minutes)} min ago`;
  }
  if (minutes < 48 * 60) {
    const hours = Math.floor(minutes / 60);
    const rest = Math.floor(minutes % 60);
    return rest ? `${hours} h ${rest} min ago` : `${hours} h ago`;
  }
  return `${Math.floor(minutes / 1440)} days ago`;
}

/** Formats an instant as "3월 17일 09:00" or "17 Mar 09:00" at a fixed UTC offset. */
export function formatTime(language, epochMs, offsetMinutes) {
  const shifted = new Date(epochMs + offsetMinutes * 60000);
  const hours = String(shifted.getUTCHours()).padStart(2, "0");
  const minutes = String(shifted.getUTCMinutes()).padStart(2, "0");
  const month = shifted.getUTCMonth();
  const day = shifted.getUTCDate();
  if (language === "ko") {
    return `${month + 1}월 ${day}일 ${hours}:${minutes}`;
  }
  return `${day} ${ENGLISH_MONTHS[month]} ${hours}:${minutes}`;
}
