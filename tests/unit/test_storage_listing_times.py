"""The listing's fast timestamp formatter writes exactly what datetime.isoformat() writes."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from workbay.storage.files import _IsoCache


def test_same_text_as_fromtimestamp():
    fmt = _IsoCache()
    rnd = random.Random(42)
    edge = [0.0, 1.0, 0.5, 1e-7, 0.9999995, 1.9999996, -0.5, -1.0000004, 1_700_000_000.0000005,
            1_700_000_000.9999999, 1_799_999_999.123456]
    samples = edge + [rnd.uniform(-2e9, 4e9) for _ in range(20_000)] + \
        [round(rnd.uniform(1.6e9, 1.8e9), 6) for _ in range(20_000)]
    for ts in samples:
        assert fmt(ts) == datetime.fromtimestamp(ts, UTC).isoformat(), ts
