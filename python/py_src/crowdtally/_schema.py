"""The release table's columns and dwell bands, as the compiled core defines them."""

from __future__ import annotations

from crowdtally._crowdtally import DWELL_BANDS, RELEASE_COLUMNS, RELEASE_LABEL_COLUMNS

__all__ = ["BANDS", "COLUMNS", "ESTIMATES", "LABEL_COLUMNS", "TOTAL"]

COLUMNS: tuple[str, ...] = tuple(RELEASE_COLUMNS)
"""The release table's fixed columns, in order (method §6)."""

LABEL_COLUMNS: tuple[str, ...] = tuple(RELEASE_LABEL_COLUMNS)
"""The columns after them, for people and BI tools: ``bucket_ts`` (the bucket's start as
a timestamp in the study's time zone), ``zone_name`` and ``origin_name``."""

ESTIMATES: tuple[str, ...] = ("est_devices", "est_visits", "est_low", "est_high")
"""The estimate columns (method §8)."""


def _hours(seconds: int) -> str:
    return f"{seconds // 3600:g}" if seconds % 3600 else str(seconds // 3600)


def _band_labels() -> tuple[tuple[str, str], ...]:
    """Each band's column and a label from its bounds: ``< 1 h``, ``1-2 h``, ``≥ 8 h``."""
    labels = []
    for i, (name, lower) in enumerate(DWELL_BANDS):
        if i + 1 < len(DWELL_BANDS):
            upper = DWELL_BANDS[i + 1][1]
            label = f"< {_hours(upper)} h" if lower == 0 else f"{_hours(lower)}-{_hours(upper)} h"
        else:
            label = f"≥ {_hours(lower)} h"
        labels.append((name, label))
    return tuple(labels)


BANDS: tuple[tuple[str, str], ...] = _band_labels()
"""The dwell-band columns and their labels."""

TOTAL = "*"
"""The origin of a group's total row."""
