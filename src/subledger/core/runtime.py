"""What a running subledger holds once per process, handed to every service call."""

from dataclasses import dataclass, field

from subledger.config import Settings
from subledger.core.clock import Clock, ResponseTimestamps, SystemClock
from subledger.core.db import Database
from subledger.core.secrets import Sealer


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    timestamps: ResponseTimestamps = None  # type: ignore[assignment]
    sealer: Sealer = None  # type: ignore[assignment]

    def __post_init__(self):
        if self.timestamps is None:
            self.timestamps = ResponseTimestamps(self.clock)
        if self.sealer is None:
            self.sealer = Sealer.from_settings(self.settings.secret_key, self.settings.data_dir)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> "Runtime":
        db = Database(settings.sqlalchemy_url, sqlite_synchronous=settings.sqlite_synchronous)
        return cls(settings=settings, db=db, clock=clock or SystemClock())
