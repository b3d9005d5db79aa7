"""Google's own authentication of Pub/Sub pushes: an OIDC token in ``Authorization``.

A push subscription set to authenticate sends ``Authorization: Bearer <JWT>``, the JWT signed by
Google (RS256) for the audience the subscription names and the service account it acts as. It is
checked with google-auth against Google's published certificates
(``SUBLEDGER_GOOGLE_OAUTH2_CERTS_URL``), which each process keeps for as long as Google says they
may be cached, and fetches again when a token names a key it does not have (Google rotates them).
"""

import re
import threading
import time
from typing import Any

import google.auth.exceptions
import google.auth.jwt
import httpx

# Who signs Pub/Sub's tokens.
ISSUERS = {"accounts.google.com", "https://accounts.google.com"}
DEFAULT_MAX_AGE = 3600.0  # seconds, when Google's answer says nothing of caching
# A token naming a key not in hand fetches them again, but not more often than this: made-up key
# ids must not make every push a request to Google.
REFETCH_AFTER = 60.0
_MAX_AGE = re.compile(r"max-age=(\d+)")


class NotAuthenticated(ValueError):
    """The push does not carry a token Google signed for this app's subscription; why."""


class CertsUnavailable(Exception):
    """Google's certificates could not be fetched: the push is to be sent again later."""


class GoogleCerts:
    """Google's token-signing certificates, ``{key id: PEM}``, kept until they may be stale."""

    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url
        self.timeout = timeout
        self._lock = threading.Lock()
        self._certs: dict[str, str] = {}
        self._fresh_until = 0.0
        self._fetched_at = -REFETCH_AFTER

    def get(self, key_id: str | None) -> dict[str, str]:
        with self._lock:
            now = time.monotonic()
            rotated = key_id is not None and key_id not in self._certs and now - self._fetched_at >= REFETCH_AFTER
            if now >= self._fresh_until or rotated:
                self._fetch()
            return self._certs

    def _fetch(self) -> None:
        try:
            response = httpx.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            certs = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise CertsUnavailable(f"Google's certificates could not be fetched: {error}") from None
        if not isinstance(certs, dict) or not all(isinstance(v, str) for v in certs.values()):
            raise CertsUnavailable("Google's certificates are not as Google documents them")
        found = _MAX_AGE.search(response.headers.get("cache-control", ""))
        self._certs = certs
        self._fetched_at = time.monotonic()
        self._fresh_until = self._fetched_at + (float(found.group(1)) if found else DEFAULT_MAX_AGE)


_by_url: dict[str, GoogleCerts] = {}
_by_url_lock = threading.Lock()


def certs_at(url: str) -> GoogleCerts:
    """The process's certificates from ``url`` (one fetch shared by every app)."""
    with _by_url_lock:
        return _by_url.setdefault(url, GoogleCerts(url))


def verify(authorization: str | None, certs: GoogleCerts, audience: str, service_account: str) -> dict[str, Any]:
    """The claims of the push's token if Google signed it for ``audience``, as
    ``service_account``, with a verified email; NotAuthenticated else."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("no OIDC token (Authorization: Bearer ...)")
    try:
        header = google.auth.jwt.decode_header(token)  # type: ignore[no-untyped-call]
        claims: dict[str, Any] = google.auth.jwt.decode(  # type: ignore[no-untyped-call]
            token, certs=certs.get(header.get("kid")), audience=audience
        )
    except (ValueError, google.auth.exceptions.GoogleAuthError) as error:
        raise NotAuthenticated(f"the OIDC token is not valid: {error}") from None
    if claims.get("iss") not in ISSUERS:
        raise NotAuthenticated(f"the OIDC token was issued by {claims.get('iss')!r}, not Google")
    if claims.get("email") != service_account or claims.get("email_verified") is not True:
        raise NotAuthenticated(f"the OIDC token is not {service_account}'s")
    return claims
