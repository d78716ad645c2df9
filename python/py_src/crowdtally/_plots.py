"""Plots of a release (``Release.plot``): matplotlib figures drawn from the release table
and its report only."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crowdtally._schema import BANDS
from crowdtally._util import require

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from crowdtally.release import Release

__all__ = ["ReleasePlot"]


class ReleasePlot:
    """Plots of a release, each a new ``matplotlib.figure.Figure`` (no pyplot state).

    ``zone`` defaults to the zone with the most observed devices (summed over its
    released total rows, zones before categories); ``class_`` to ``visitor`` when the
    release has it, else its first class. Suppressed groups are not drawn; the axes
    title says how many there were.
    """

    __slots__ = ("_release",)

    def __init__(self, release: Release) -> None:
        self._release = release

    def visitors_per_bucket(self, zone: str | None = None, *, class_: str | None = None) -> Figure:
        """Lines of the total rows per bucket start: estimated people (``est_devices``,
        with its interval shaded) and observed devices. Suppressed buckets are gaps."""
        release = self._release
        zone, cls, rows = release._zone_totals("plotting", zone, class_)
        figure, axes = _figure()
        x = list(range(len(rows)))
        marker = "o" if len(rows) <= 40 else None
        est = [_nan(row["est_devices"], row) for row in rows]
        low = [_nan(row["est_low"], row) for row in rows]
        high = [_nan(row["est_high"], row) for row in rows]
        observed = [_nan(row["devices"], row) for row in rows]
        axes.plot(x, est, marker=marker, label="people estimated")
        axes.plot(x, observed, marker=marker, label="devices observed")
        if any(not math.isnan(value) for value in low + high):
            axes.fill_between(x, low, high, alpha=0.2, label="95% interval (sampling only)")
        step = max(1, math.ceil(len(rows) / 12))
        hourly = release._bucket() == "hour"
        axes.set_xticks(
            x[::step], [_bucket_label(row["bucket_start"], hourly) for row in rows[::step]]
        )
        axes.set_xlabel(f"{release._bucket()} starting")
        axes.set_ylabel(f"{_plural(cls)} per {release._bucket()}")
        axes.set_ylim(bottom=0)
        # Not figure.autofmt_xdate(): it calls subplots_adjust, which warns under the
        # constrained layout.
        axes.tick_params(axis="x", labelrotation=30)
        for label in axes.get_xticklabels():
            label.set_horizontalalignment("right")
        axes.legend()
        axes.set_title(_title(release, zone, rows, f"{_plural(cls)} per {release._bucket()}"))
        return figure

    def top_origins(
        self,
        zone: str | None = None,
        n: int = 10,
        *,
        class_: str | None = None,
        bucket_start: str | None = None,
    ) -> Figure:
        """Horizontal bars of the zone's ``n`` largest released origin rows (not ``*``),
        by ``est_devices``, or by observed ``devices`` where the estimate is null (the
        label says so). Over several buckets the values are summed: a person counts once
        per bucket. ``bucket_start`` restricts the plot to one bucket."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        release = self._release
        zone, cls, totals = release._zone_totals("plotting", zone, class_)
        if bucket_start is not None:
            totals = [row for row in totals if row["bucket_start"] == bucket_start]
            if not totals:
                raise ValueError(f"no bucket starts at {bucket_start!r} in zone {zone!r}")
        rows = release._rows(
            "plotting",
            ["origin", "devices", "est_devices", "suppressed"],
            zone=zone,
            class_=cls,
            total=False,
            bucket_start=bucket_start,
        )
        values: dict[str, float] = {}
        observed: dict[str, int] = {}
        counted: dict[str, int] = {}
        for row in rows:
            if row["suppressed"] or row["devices"] is None:
                continue
            origin = row["origin"]
            counted[origin] = counted.get(origin, 0) + 1
            if row["est_devices"] is None:
                observed[origin] = observed.get(origin, 0) + 1
                values[origin] = values.get(origin, 0.0) + row["devices"]
            else:
                values[origin] = values.get(origin, 0.0) + row["est_devices"]
        top = sorted(values, key=lambda origin: (-values[origin], origin))[:n]
        labels = []
        for origin in top:
            fallback = observed.get(origin, 0)
            note = (
                ""
                if not fallback
                else (" (observed)" if fallback == counted[origin] else " (partly observed)")
            )
            labels.append(_plain(origin + note))
        figure, axes = _figure()
        axes.barh(range(len(top)), [values[origin] for origin in top], tick_label=labels)
        axes.invert_yaxis()
        buckets = len(totals) if bucket_start is None else 1
        if release._bucket() == "period" or buckets == 1:
            axes.set_xlabel("people estimated (devices observed where no estimate)")
        else:
            axes.set_xlabel(
                f"people estimated, summed over {buckets} {release._bucket()} buckets "
                "(devices observed where no estimate)"
            )
        axes.set_title(_title(release, zone, totals, f"top {n} origins ({cls})"))
        return figure

    def dwell_bands(self, zone: str | None = None, *, class_: str | None = None) -> Figure:
        """Bars of the observed visits by dwell band, summed over the zone's released
        total rows (visits count in the bucket where they start, so they add up)."""
        release = self._release
        zone, cls, rows = release._zone_totals("plotting", zone, class_)
        sums = [
            sum(row[column] or 0 for row in rows if not row["suppressed"]) for column, _ in BANDS
        ]
        figure, axes = _figure()
        axes.bar([label for _, label in BANDS], sums)
        axes.set_xlabel("dwell of the visit")
        axes.set_ylabel("visits observed")
        axes.set_title(_title(release, zone, rows, f"visits by dwell ({cls})"))
        return figure


def _figure() -> tuple[Figure, Axes]:
    # The parent package first: a blocked `matplotlib` must not hide behind a cached
    # `matplotlib.figure`.
    require("matplotlib", "plotting", "plot")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), layout="constrained")
    return figure, figure.add_subplot()


def _title(release: Release, zone: str, totals: Sequence[Mapping[str, Any]], what: str) -> str:
    title = _plain(f"{release._zone_name(zone)}: {what}")
    suppressed = sum(1 for row in totals if row["suppressed"])
    if suppressed:
        k = release._parameters().get("k")
        title += f"\n{suppressed} of {len(totals)} buckets suppressed (below k = {k}), not shown"
    return title


def _plain(text: str) -> str:
    """Text matplotlib shows as it is (a ``$`` would start mathtext)."""
    return text.replace("$", r"\$")


def _plural(class_: str) -> str:
    return class_.replace("_", " ") + "s"


def _nan(value: Any, row: Mapping[str, Any]) -> float:
    return math.nan if value is None or row["suppressed"] else float(value)


def _bucket_label(bucket_start: str, hourly: bool) -> str:
    return bucket_start[5:16].replace("T", " ") if hourly else bucket_start[:10]
