"""JSON text read as the standard defines it, with every number kept exactly as written."""

import json
import re
from typing import Any

import orjson

# orjson reads an integer exactly when it fits in 64 bits and as a rounded double otherwise;
# only a run of 19 or more digits can be wider.
_LONG_DIGITS = re.compile(rb"\d{19}")
# The standard library reads recursively: deeper than this, Python's recursion limit (1,000 frames)
# would stop it with a RecursionError rather than a parse error.
REREAD_NESTING = 512


def nesting(value: Any) -> int:
    """How many levels of objects and arrays ``value`` has (0 for a string, number, bool or null)."""
    levels, current = 0, [value]
    while containers := [item for item in current if isinstance(item, dict | list)]:
        levels += 1
        current = [child for item in containers for child in (item.values() if isinstance(item, dict) else item)]
    return levels


def loads(text: bytes | str) -> Any:
    """Read JSON text: orjson refuses NaN, Infinity, numbers beyond a double's range, unpaired
    surrogates and nesting over 1,024 levels (``orjson.JSONDecodeError``, a
    ``json.JSONDecodeError``), and every integer comes back exactly as written.

    Where an integer may be wider than 64 bits, the text orjson accepted is read again by the
    standard library, which keeps such integers whole (rare: long ids in strings, mostly); such
    text may nest ``REREAD_NESTING`` levels at most."""
    value = orjson.loads(text)
    if _LONG_DIGITS.search(text.encode() if isinstance(text, str) else text):
        if nesting(value) > REREAD_NESTING:
            document = text if isinstance(text, str) else text.decode("utf-8", "replace")
            raise orjson.JSONDecodeError(f"Objects and arrays nest more than {REREAD_NESTING} levels deep", document, 0)
        return json.loads(text)
    return value
