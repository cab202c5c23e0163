"""Times as the readers and the API write them: one ISO-8601 UTC form, ``2021-04-12T15:18:23.000Z``.

Every reader's ``start_time``/``end_time``/``time_coverage_*`` attribute and every time in an API answer is written
by :func:`iso_utc`, so two readers of the same instant write the same text (a cache key, a permalink, a CSV
header compare equal).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

__all__ = ["iso_utc"]


def iso_utc(t) -> str:
    """``t`` (datetime, numpy datetime64, pandas Timestamp; naive = UTC) as ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

    An aware datetime is converted to UTC first; the time is truncated (not rounded) to the millisecond.
    """
    if isinstance(t, dt.datetime) and t.tzinfo is not None:
        t = t.astimezone(dt.UTC).replace(tzinfo=None)
    value = np.datetime64(t, "ms") if not isinstance(t, np.datetime64) else t.astype("datetime64[ms]")
    if np.isnat(value):
        raise ValueError("a time that is not a time (NaT) has no ISO form")
    return str(np.datetime_as_string(value, unit="ms")) + "Z"
