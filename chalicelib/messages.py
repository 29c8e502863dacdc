"""API error messages in Korean and English, chosen by the request's Accept-Language.

Every client error names the field at fault and what to send instead.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Language = Literal["ko", "en"]
DEFAULT_LANGUAGE: Language = "ko"


def choose_language(accept_language: str | None) -> Language:
    """Pick ko or en from an Accept-Language header by q-value; Korean when neither is asked."""
    best: tuple[float, Language] | None = None
    for part in (accept_language or "").split(","):
        pieces = [piece.strip() for piece in part.split(";")]
        tag = pieces[0].lower().split("-")[0]
        if tag not in ("ko", "en"):
            continue
        quality = 1.0
        for parameter in pieces[1:]:
            if parameter.startswith("q="):
                try:
                    quality = float(parameter[2:])
                except ValueError:
                    quality = 0.0
        language: Language = "ko" if tag == "ko" else "en"
        if quality > 0 and (best is None or quality > best[0]):
            best = (quality, language)
    return best[1] if best else DEFAULT_LANGUAGE


@dataclass(frozen=True, slots=True)
class Message:
    ko: str
    en: str

    def render(self, language: Language, **values: Any) -> str:
        template = self.ko if language == "ko" else self.en
        return template.format(**values)


MESSAGES: dict[str, Message] = {
    "body_not_utf8": Message(
        "요청 본문이 UTF-8이 아닙니다. UTF-8로 인코딩한 JSON을 보내 주세요.",
        "The request body is not valid UTF-8. Send JSON encoded as UTF-8.",
    ),
    "body_not_json": Message(
        "요청 본문이 올바른 JSON이 아닙니다: {detail}. JSON 객체 하나를 보내 주세요.",
        "The request body is not valid JSON: {detail}. Send one JSON object.",
    ),
    "body_not_object": Message(
        '요청 본문은 JSON 객체여야 합니다. 예: {{"type": "sale", ...}}',
        'The request body must be a JSON object, for example {{"type": "sale", ...}}.',
    ),
    "missing": Message(
        "'{field}' 필드가 없습니다. 이 필드를 보내 주세요.",
        "Field '{field}' is missing. Send it.",
    ),
    "extra_forbidden": Message(
        "'{field}' 필드는 허용되지 않습니다. 이 필드를 빼고 보내 주세요 (구매자 정보 등 개인정보는 받지 않습니다).",
        "Field '{field}' is not allowed. Remove it (no buyer or other personal data is accepted).",
    ),
    "type_tag": Message(
        "'{field}'는 delivery, sale, pause, resume 중 하나여야 합니다.",
        "Field '{field}' must be one of delivery, sale, pause, resume.",
    ),
    "integer": Message(
        "'{field}'는 정수여야 합니다 (따옴표 없이, 예: 2).",
        "Field '{field}' must be a whole number without quotes, for example 2.",
    ),
    "range": Message(
        "'{field}'는 {minimum}에서 {maximum} 사이의 정수여야 합니다.",
        "Field '{field}' must be a whole number from {minimum} to {maximum}.",
    ),
    "timestamp": Message(
        "'{field}'는 ISO 8601 시각이어야 합니다. 예: 2020-03-17T09:30:00+09:00 (오프셋이 없으면 한국 표준시).",
        "Field '{field}' must be an ISO 8601 time, for example 2020-03-17T09:30:00+09:00 "
        "(without an offset it is read as Korea Standard Time).",
    ),
    "submission_id": Message(
        "'{field}'는 1~64자의 영문, 숫자, . _ : - 만 쓸 수 있습니다.",
        "Field '{field}' must be 1 to 64 characters of letters, digits and . _ : -.",
    ),
    "string": Message(
        "'{field}'는 문자열이어야 합니다.",
        "Field '{field}' must be a string.",
    ),
    "invalid_field": Message(
        "'{field}' 값이 올바르지 않습니다: {detail}",
        "Field '{field}' is invalid: {detail}",
    ),
    "unauthorized": Message(
        "API 키가 없거나 올바르지 않습니다. 'Authorization: Bearer <매장 API 키>' 헤더를 보내 주세요.",
        "The API key is missing or invalid. Send the header 'Authorization: Bearer <store API key>'.",
    ),
    "forbidden": Message(
        "이 API 키는 매장 {key_code}의 키입니다. 매장 {code}에는 그 매장의 키를 쓰세요.",
        "This API key belongs to store {key_code}. Use store {code}'s own key.",
    ),
    "no_stock": Message(
        "매장 {code}에는 기록된 재고가 없습니다. 판매 전에 입고(delivery)를 먼저 보내 주세요.",
        "Store {code} has no recorded stock. Post a delivery before a sale.",
    ),
    "oversell": Message(
        "매장 {code}의 재고는 {available}개인데 {requested}개 판매를 보냈습니다. 재고를 넘는 판매는 기록하지 않습니다. 입고를 먼저 보내거나 수량을 확인해 주세요.",
        "Store {code} holds {available}, but the sale is for {requested}. A sale larger than "
        "the stock is rejected; post the delivery first or check the quantity.",
    ),
    "submission_conflict": Message(
        "submission_id '{submission_id}'는 이미 다른 내용으로 접수되었습니다. 새 제출에는 새 submission_id를 쓰고, 재전송할 때는 처음과 같은 본문을 보내 주세요.",
        "submission_id '{submission_id}' was already used with a different body. Use a new id for a new submission, and resend the same body when retrying.",
    ),
    "event_in_future": Message(
        "'{field}'가 미래 시각입니다 ({limit} 이후). POS의 시계를 확인해 주세요.",
        "Field '{field}' is in the future (after {limit}). Check the POS clock.",
    ),
    "event_too_old": Message(
        "'{field}'가 너무 오래되었습니다 ({limit} 이전). 30일보다 오래된 기록은 재전송 여부를 확인할 수 없어 받지 않습니다.",
        "Field '{field}' is too old (before {limit}). Events older than 30 days are rejected because their retries can no longer be recognised.",
    ),
    "batch_size": Message(
        "'events'에는 1개에서 100개까지의 이벤트를 담아 주세요.",
        "Field 'events' must contain 1 to 100 events.",
    ),
    "unknown_store": Message(
        "매장 코드 {code}는 등록되어 있지 않습니다.",
        "Store code {code} is not registered.",
    ),
}


_RANGE_TYPES = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}
_INTEGER_TYPES = {"int_type", "int_parsing", "int_from_float"}


def describe_validation_error(error: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """Map one pydantic error to (field, message id, values) for the response."""
    location = [str(part) for part in error.get("loc", ()) if part not in _UNION_TAGS]
    event_type = next((part for part in error.get("loc", ()) if part in _UNION_TAGS), None)
    field = ".".join(location) or "body"
    kind = error.get("type", "")
    if kind == "missing":
        return field, "missing", {}
    if kind == "extra_forbidden":
        return field, "extra_forbidden", {}
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return ".".join([*location, "type"]), "type_tag", {}
    if field == "events" and kind in ("too_short", "too_long", "list_type"):
        return field, "batch_size", {}
    if kind in _INTEGER_TYPES:
        return field, "integer", {}
    if kind in _RANGE_TYPES:
        return field, "range", _bounds_of(event_type)
    if field.endswith("occurred_at"):
        return field, "timestamp", {}
    if field.endswith("submission_id"):
        return field, "submission_id", {}
    if kind == "string_type":
        return field, "string", {}
    return field, "invalid_field", {"detail": error.get("msg", "")}


_UNION_TAGS = {"delivery", "sale", "pause", "resume"}


def _bounds_of(event_type: str | None) -> dict[str, Any]:
    # Imported here because the models module imports this one's callers, not the reverse.
    from chalicelib.submissions import MAX_DELIVERY_QUANTITY, MAX_SALE_QUANTITY

    maximum = MAX_DELIVERY_QUANTITY if event_type == "delivery" else MAX_SALE_QUANTITY
    return {"minimum": 1, "maximum": maximum}
