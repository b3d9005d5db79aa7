"""JSON text read as the standard defines it, with every number kept exactly as written."""

import json
import re
from typing import Any

import orjson

# orjson reads an integer exactly when it fits in 64 bits (-2**63 to 2**64 - 1) and as a
# rounded double otherwise. Only a run of 19 or more digits can be outside that range.
_LONG_DIGITS = re.compile(rb"\d{19}")
_SMALLEST, _LARGEST = -(2**63), 2**64 - 1


def loads(text: bytes | str) -> Any:
    """``orjson.loads``, which refuses NaN, Infinity, numbers beyond a double's range, unpaired
    surrogates and nesting over 1,024 levels, and also refuses an integer it would round.

    Raises ``orjson.JSONDecodeError`` (a ``json.JSONDecodeError``)."""
    value = orjson.loads(text)
    raw = text.encode() if isinstance(text, str) else text
    if _LONG_DIGITS.search(raw):  # rare (long ids in strings, mostly): read again, exactly
        document = raw.decode()
        json.loads(document, parse_int=lambda digits: _exact(digits, document))
    return value


def _exact(digits: str, document: str) -> int:
    # The length comes first: int() refuses more than 4,300 digits with a ValueError of its own.
    if len(digits) <= len(str(_SMALLEST)) and _SMALLEST <= (number := int(digits)) <= _LARGEST:
        return number
    raise orjson.JSONDecodeError(
        f"Integer {digits[:40]} is outside the 64-bit range and would not be kept exactly",
        document,
        document.find(digits),
    )
