"""The contract's error body and the mapping of validation failures onto it.

Every 4xx answers::

    {"errors": [{"source": ..., "errors": [...]}], "error_code": ..., "status_code": ...}
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NON_FIELD = "non_field_errors"

# Validation error types that carry a contract error code of their own: raised
# with ``PydanticCustomError(<code>, message)`` by the schemas.
CONTRACT_CODES = frozenset(
    {
        "base_error",
        "invalid_enumeration_member",
        "datetime",
        "value_error",
        "validation_error",
        "store_transaction_id_error",
        "expires_date_error",
        "originally_purchased_date_error",
        "refund_date_error",
        "refund_fields_error",
        "family_share_price_error",
        "missing_offer_id",
        "billing_issue_detected_at_date_comparison_error",
        "grace_period_billing_error",
        "grace_period_expires_date_error",
        "renew_status_changed_date_error",
    }
)


class ApiError(Exception):
    """A request the contract answers with an error body."""

    def __init__(self, status: int, code: str, errors: Sequence[tuple[str | None, Sequence[str]]]):
        super().__init__(code)
        self.status = status
        self.code = code
        self.errors = errors
        self.headers: dict[str, str] = {}

    @classmethod
    def one(cls, status: int, code: str, source: str | None, message: str) -> "ApiError":
        return cls(status, code, [(source, [message])])

    def retry_after(self, seconds: float) -> "ApiError":
        """Tell the client to ask again in ``seconds`` (whole seconds, at least one)."""
        self.headers["Retry-After"] = str(max(1, math.ceil(seconds)))
        return self

    def summary(self) -> str:
        """One line for a person: ``code: source: message; source: message``."""
        return f"{self.code}: " + "; ".join(f"{source}: {' '.join(messages)}" for source, messages in self.errors)

    def messages(self) -> str:
        """The messages alone, for a person on a page: ``message; message``."""
        return "; ".join(" ".join(messages) for _source, messages in self.errors)

    def body(self) -> dict[str, Any]:
        return {
            "errors": [{"source": source, "errors": list(messages)} for source, messages in self.errors],
            "error_code": self.code,
            "status_code": self.status,
        }


def not_authenticated(message: str = "Authentication credentials were not provided.") -> ApiError:
    return ApiError.one(401, "not_authenticated", NON_FIELD, message)


def profile_not_found() -> ApiError:
    return ApiError.one(404, "profile_does_not_exist", None, "Profile not found")


def bad_request(code: str, source: str | None, message: str) -> ApiError:
    return ApiError.one(400, code, source, message)


def _code_for(error_type: str, loc: tuple[Any, ...]) -> str:
    if error_type in CONTRACT_CODES:
        return error_type
    if error_type == "json_invalid":
        return "parse_error"
    if not loc and error_type in {"model_type", "model_attributes_type", "dict_type"}:
        return "parse_error"  # the body is JSON but not an object
    if error_type in {"enum", "literal_error"}:
        return "invalid_enumeration_member"
    if error_type.startswith(("datetime", "date", "time")):
        return "datetime"
    return "base_error"


def _message(error: Mapping[str, Any], code: str) -> str:
    if error["type"] == "json_invalid":
        return "JSON parse error - " + str(error.get("ctx", {}).get("error", "invalid JSON"))
    if code == "parse_error":
        return "The body must be a JSON object."
    if "input" in error and error["input"] is None and error["type"] != "missing":
        return "This field may not be null."
    return str(error["msg"])


def from_validation_errors(errors: Iterable[Mapping[str, Any]], strip: int = 0) -> ApiError:
    """Pydantic's error list -> one ApiError; ``strip`` drops leading loc items ("body")."""
    grouped: dict[str | None, list[str]] = {}
    code = None
    for error in errors:
        loc = tuple(error["loc"])[strip:]
        error_code = _code_for(error["type"], loc)
        code = code or error_code
        source = ".".join(str(part) for part in loc) if loc and error_code != "parse_error" else NON_FIELD
        grouped.setdefault(source, []).append(_message(error, error_code))
    return ApiError(400, code or "base_error", list(grouped.items()))
