"""API key format, hashing and the Authorization header. No I/O."""

import hashlib
import math
import secrets
from urllib.parse import urlsplit

from subledger.core.errors import NON_FIELD, ApiError, not_authenticated

# An app's keys: secret keys for the server-side APIs, a public key for the Web API, which browsers call.
SECRET, PUBLIC = "secret", "public"
KEY_PREFIXES = {SECRET: "secret_live_", PUBLIC: "public_live_"}
SECRET_PREFIX = KEY_PREFIXES[SECRET]
# Every app has this access level from its creation, as the reference's apps do.
DEFAULT_ACCESS_LEVEL = "premium"
SCHEME = "api-key"


def new_key(kind: str = SECRET) -> str:
    return KEY_PREFIXES[kind] + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 of the secret.

    A slow password hash buys nothing here: the secret carries 256 random bits,
    so the hash cannot be brute-forced, and a fast hash can be looked up by index.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """Enough of the key to tell keys apart in listings, too little to use."""
    return key[: len("public_live_") + 4]


def secret_from_header(value: str | None) -> str:
    """``Api-Key <secret>`` -> the secret, or the contract's 401."""
    if not value or not value.strip():
        raise not_authenticated()
    scheme, _, secret = value.strip().partition(" ")
    if scheme.lower() != SCHEME:
        raise not_authenticated()
    secret = secret.strip()
    if not secret or " " in secret:
        raise invalid_key()
    return secret


def invalid_key() -> ApiError:
    return not_authenticated("Invalid API key.")


# A server process leases this many seconds' worth of an app's rate at a time, and spends it
# from memory: one write to the shared bucket per lease instead of one per request.
LEASE_SECONDS = 0.1


def lease_size(rate: float) -> int:
    """How many requests a process leases at a time from an app allowed ``rate`` a second."""
    return max(1, int(rate * LEASE_SECONDS))


def throttled(seconds: float) -> ApiError:
    wait = max(1, math.ceil(seconds))
    return ApiError.one(
        429, "rate_limited", NON_FIELD, f"Request was throttled. Expected available in {wait} seconds."
    ).retry_after(wait)


ANY_ORIGIN = "*"


def web_origin(value: str) -> str:
    """An origin whose pages may call the Web API, as browsers send it in ``Origin``
    (``https://shop.example.com``, ``http://localhost:8080``), or ``*`` for any; ValueError else."""
    if value == ANY_ORIGIN:
        return value
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError for a port that is not a number in range
    except ValueError:
        raise ValueError(f"{value!r} is not an origin such as https://shop.example.com") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or len(value) > 255
    ):
        raise ValueError(f"{value!r} is not an origin such as https://shop.example.com")
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port is not None else "")
