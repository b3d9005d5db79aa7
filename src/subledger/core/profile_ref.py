"""How a request or a store notification names a profile (a value the services take; the HTTP
layer reads it from headers in ``addressing``)."""

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class ProfileRef:
    """How a request names a profile: by the app's user id, by profile_id, or both."""

    customer_user_id: str | None = None
    profile_id: UUID | None = None
