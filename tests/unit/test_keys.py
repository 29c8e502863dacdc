import pytest

from chalicelib.errors import InvalidApiKeyError
from chalicelib.keys import new_api_key, parse_api_key


def test_key_round_trips():
    key = new_api_key("01234567")

    parsed = parse_api_key(str(key), "01234567")

    assert parsed == key
    assert parsed.hash == key.hash


def test_hash_is_salted_per_key():
    first, second = new_api_key("01234567"), new_api_key("01234567")

    assert first.hash != second.hash
    assert first.hash.startswith("sha256:")


def test_repr_hides_secret():
    key = new_api_key("01234567")

    assert key.secret not in repr(key)


@pytest.mark.parametrize(
    "text",
    ["", "Bearer", "sf1.123", "sf1.abc.def.ghi", "sf2.01234567." + "a" * 22 + "." + "b" * 43],
)
def test_malformed_key_rejected(text):
    with pytest.raises(InvalidApiKeyError):
        parse_api_key(text, "01234567")
