import pytest

from chalicelib.messages import MESSAGES, choose_language


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "ko"),
        ("", "ko"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("ko-KR,ko;q=0.9,en;q=0.8", "ko"),
        ("en;q=0.5, ko;q=0.8", "ko"),
        ("fr, en;q=0.3", "en"),
        ("ko;q=0, en;q=0.1", "en"),
        ("ja", "ko"),
        ("en;q=bogus, ko", "ko"),
    ],
)
def test_language_choice(header, expected):
    assert choose_language(header) == expected


def test_every_message_has_both_languages():
    for message_id, message in MESSAGES.items():
        assert message.ko.strip(), message_id
        assert message.en.strip(), message_id
