"""JSON text read as the standard defines it, with every number kept exactly as written."""

import json
import re
from typing import Any

import orjson

# orjson reads an integer exactly when it fits in 64 bits and as a rounded double otherwise;
# only a run of 19 or more digits can be wider.
_LONG_DIGITS = re.compile(rb"\d{19}")


def loads(text: bytes | str) -> Any:
    """Read JSON text: orjson refuses NaN, Infinity, numbers beyond a double's range, unpaired
    surrogates and nesting over 1,024 levels (``orjson.JSONDecodeError``, a
    ``json.JSONDecodeError``), and every integer comes back exactly as written.

    Where an integer may be wider than 64 bits, the text orjson accepted is read again by the
    standard library, which keeps such integers whole (rare: long ids in strings, mostly)."""
    value = orjson.loads(text)
    if _LONG_DIGITS.search(text.encode() if isinstance(text, str) else text):
        return json.loads(text)
    return value
