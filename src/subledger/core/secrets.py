"""Secrets that must be read back (webhook signing secrets, Authorization values),
sealed at rest with the server's key (Fernet: AES-128-CBC with HMAC-SHA256).

The key comes from ``SUBLEDGER_SECRET_KEY``; without it, a key is generated
once into ``<data dir>/secret.key`` (mode 0600). Servers sharing one database
must share the key.
"""

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

SECRET_KEY_FILE = "secret.key"  # the generated key, in the data directory


class Sealer:
    def __init__(self, key: str | bytes):
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, secret_key: str, data_dir: Path) -> "Sealer":
        if secret_key:
            return cls(secret_key)
        path = data_dir / SECRET_KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ValueError(
                "a stored secret cannot be opened: SUBLEDGER_SECRET_KEY differs from the one that sealed it"
            ) from None
