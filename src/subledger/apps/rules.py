"""API key format, hashing and the Authorization header. No I/O."""

import hashlib
import math
import secrets

from subledger.core.errors import NON_FIELD, ApiError, not_authenticated

SECRET_PREFIX = "secret_live_"
SCHEME = "api-key"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 of the secret.

    A slow password hash buys nothing here: the secret carries 256 random bits,
    so the hash cannot be brute-forced, and a fast hash can be looked up by index.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    """Enough of the secret to tell keys apart in listings, too little to use."""
    return secret[: len(SECRET_PREFIX) + 4]


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


class RateLimiter:
    """Token buckets per app: ``rate`` requests a second, bursts of up to twice that.

    Kept in the server process (each process enforces the rate on its own).
    """

    def __init__(self):
        self._buckets: dict[object, tuple[float, float]] = {}  # app -> (tokens, at)

    def retry_after(self, app: object, rate: int | None, now: float) -> float:
        """0 when a request may pass (and take a token), else the seconds to wait."""
        if rate is None:
            return 0.0
        capacity = 2.0 * rate
        tokens, at = self._buckets.get(app, (capacity, now))
        tokens = min(capacity, tokens + (now - at) * rate)
        if tokens >= 1:
            self._buckets[app] = (tokens - 1, now)
            return 0.0
        self._buckets[app] = (tokens, now)
        return (1 - tokens) / rate


def throttled(seconds: float) -> ApiError:
    wait = max(1, math.ceil(seconds))
    error = ApiError.one(
        429, "rate_limited", NON_FIELD, f"Request was throttled. Expected available in {wait} seconds."
    )
    error.headers["Retry-After"] = str(wait)
    return error
