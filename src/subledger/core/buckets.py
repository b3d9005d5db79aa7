"""Token buckets kept as one number, the moment the bucket will be full again (the generic
cell rate algorithm), so that server processes sharing a bucket in the database update a
single value. No I/O."""

import math


def take(full_at: float, now: float, rate: float, burst: float, wanted: int) -> tuple[int, float, float]:
    """Take up to ``wanted`` tokens from a bucket that refills ``rate`` a second and holds
    up to ``burst``. Returns (tokens granted, the bucket's new ``full_at``, and when none
    is granted, the seconds until one can be)."""
    start = max(full_at, now)
    available = burst - (start - now) * rate
    # The margin keeps a whole token from reading as 0.999… after float arithmetic.
    granted = min(wanted, math.floor(available + 1e-9))
    if granted < 1:
        return 0, start, (1 - available) / rate
    return granted, start + granted / rate, 0.0
