"""Per-store API keys, stored only as salted SHA-256 hashes.

A key reads `sf1.<store code>.<salt>.<secret>`. The salt travels inside the key, so the API can
compute the stored hash from the request alone and check it in the same conditional write that
records the submission: authentication costs no read. The secret is 32 random bytes, which is
why a fast hash is enough here; a slow password hash protects low-entropy secrets only.
"""

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.errors import InvalidApiKeyError, UnknownStoreError

KEY_PREFIX = "sf1"
_KEY_PATTERN = re.compile(
    r"^sf1\.(?P<code>[0-9]{1,16})\.(?P<salt>[A-Za-z0-9_-]{22})\.(?P<secret>[A-Za-z0-9_-]{43})$"
)


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A parsed API key. `str(key)` is the text handed to the store, once."""

    code: str
    salt: str
    secret: str

    def __str__(self) -> str:
        return f"{KEY_PREFIX}.{self.code}.{self.salt}.{self.secret}"

    def __repr__(self) -> str:
        # Never let a secret reach a log line through repr().
        return f"ApiKey(code={self.code!r}, secret=<hidden>)"

    @property
    def hash(self) -> str:
        """The value stored in the store item: sha256 over salt, store code and secret."""
        digest = hashlib.sha256(f"{self.salt}.{self.code}.{self.secret}".encode()).hexdigest()
        return f"sha256:{digest}"


def parse_api_key(text: str, code: str) -> ApiKey:
    """Parse a presented key; a malformed one raises InvalidApiKeyError for store `code`."""
    match = _KEY_PATTERN.match(text.strip())
    if match is None:
        raise InvalidApiKeyError(code)
    return ApiKey(code=match["code"], salt=match["salt"], secret=match["secret"])


def new_api_key(code: str, token_bytes: Callable[[int], bytes] = secrets.token_bytes) -> ApiKey:
    """Create a random key for one store."""
    return ApiKey(code=code, salt=_encode(token_bytes(16)), secret=_encode(token_bytes(32)))


class KeyRegistry:
    """Issues, rotates, revokes and checks store keys in the stores table."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def issue(self, code: str, key: ApiKey | None = None) -> ApiKey:
        """Give a store a new key, replacing (rotating) any previous one."""
        key = key or new_api_key(code)
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={"code": {"S": code}},
                # `recent` must exist before a submission can set one of its entries.
                UpdateExpression="SET key_hash = :key_hash, recent = if_not_exists(recent, :empty)",
                # Keys are only issued to registered stores, never create a bare item.
                ConditionExpression="attribute_exists(code)",
                ExpressionAttributeValues={":key_hash": {"S": key.hash}, ":empty": {"M": {}}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise UnknownStoreError(code) from error
            raise
        return key

    def revoke(self, code: str) -> None:
        """Remove a store's key; its submissions get 401 until a new key is issued."""
        self._client.update_item(
            TableName=self._table_name,
            Key={"code": {"S": code}},
            UpdateExpression="REMOVE key_hash",
            ConditionExpression="attribute_exists(code)",
        )

    def is_valid(self, key: ApiKey) -> bool:
        """Check a key against its own store's stored hash (one read; used on error paths)."""
        response = self._client.get_item(
            TableName=self._table_name,
            Key={"code": {"S": key.code}},
            ProjectionExpression="key_hash",
            ConsistentRead=True,
        )
        stored = response.get("Item", {}).get("key_hash", {}).get("S", "")
        return hmac.compare_digest(stored, key.hash)
