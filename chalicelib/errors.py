"""Domain errors. The API edge maps each one to an HTTP status and a bilingual message."""


class StockfeedError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidApiKeyError(StockfeedError):
    """The key is missing, malformed, revoked or not the store's current key."""

    def __init__(self, code: str) -> None:
        super().__init__(f"invalid API key for store {code}")
        self.code = code


class ForeignStoreKeyError(StockfeedError):
    """A valid key of one store was used on another store's resource."""

    def __init__(self, key_code: str, target_code: str) -> None:
        super().__init__(f"key of store {key_code} cannot submit for store {target_code}")
        self.key_code = key_code
        self.target_code = target_code


class NoStockRecordedError(StockfeedError):
    """A sale arrived for a store that has never reported a delivery."""

    def __init__(self, code: str) -> None:
        super().__init__(f"store {code} has no recorded stock; post a delivery first")
        self.code = code


class InsufficientStockError(StockfeedError):
    """A sale larger than the stock the store holds."""

    def __init__(self, code: str, available: int, requested: int) -> None:
        super().__init__(f"store {code} holds {available}, cannot sell {requested}")
        self.code = code
        self.available = available
        self.requested = requested


class UnknownStoreError(StockfeedError):
    """The store code is not in the registry."""

    def __init__(self, code: str) -> None:
        super().__init__(f"store {code} is not registered")
        self.code = code


class SubmissionConflictError(StockfeedError):
    """A submission id was reused with a different body."""

    def __init__(self, code: str, submission_id: str) -> None:
        super().__init__(f"submission {submission_id} of store {code} was sent with another body")
        self.code = code
        self.submission_id = submission_id


class EventTimeError(StockfeedError):
    """An event's occurred_at is outside the accepted range."""

    def __init__(self, reason: str, limit: str) -> None:
        super().__init__(f"occurred_at is {reason}; the limit is {limit}")
        self.reason = reason
        self.limit = limit


class DemoDataInProdError(StockfeedError):
    """Demo stores were about to be imported into the prod stage."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"refusing to import {count} demo stores into the prod stage; demo data may only "
            "go to dev"
        )
        self.count = count
