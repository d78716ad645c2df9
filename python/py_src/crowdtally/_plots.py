"""Plots of a release (``Release.plot``): matplotlib figures drawn from the release table
and its report only, and, for the maps, from the geography's tables; and the names and
dates they (and the HTML report) show to people."""

from __future__ import annotations

import datetime as dt
import importlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crowdtally._schema import BANDS, TOTAL
from crowdtally._util import mapping, require, strings

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from crowdtally._crowdtally import Geography
    from crowdtally.release import Release

__all__ = ["GeographyShapes", "Measure", "Names", "ReleasePlot", "ZoneSeries", "suppression_k"]

CATEGORY_PREFIX = "category:"

# Colours of the report: one hue for estimates, grey for what is withheld.
_ESTIMATE_COLOUR = "#1f5fa8"
_OBSERVED_COLOUR = "#e07b00"
_WITHHELD_COLOUR = "#d9d9d9"
_NO_FIGURE_COLOUR = "#f0f0f0"
_COLOUR_MAP = "YlOrRd"
_KEY_LINES = 15


class ReleasePlot:
    """Plots of a release, each a new ``matplotlib.figure.Figure`` (no pyplot state).

    ``zone`` defaults to the zone with the most observed devices (summed over its
    released total rows, zones before categories); ``class_`` to ``visitor`` when the
    release has it, else its first class. Suppressed groups are not drawn; the axes
    title says how many there were, and a plot with nothing released says so in its
    middle instead of drawing empty axes.
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
        axes.plot(x, est, marker=marker, label="people estimated", color=_ESTIMATE_COLOUR)
        axes.plot(x, observed, marker=marker, label="devices observed", color=_OBSERVED_COLOUR)
        if any(not math.isnan(value) for value in low + high):
            axes.fill_between(
                x,
                low,
                high,
                alpha=0.2,
                color=_ESTIMATE_COLOUR,
                label="95% interval (sampling only)",
            )
        kind = release._bucket()
        ticks = _tick_positions(len(rows), 12)
        axes.set_xticks(ticks, [bucket_tick(rows[i]["bucket_start"], kind) for i in ticks])
        axes.set_xlabel(f"{kind} starting")
        axes.set_ylabel(f"{plural(cls)} per {kind}")
        # Not figure.autofmt_xdate(): it calls subplots_adjust, which warns under the
        # constrained layout.
        axes.tick_params(axis="x", labelrotation=30)
        for label in axes.get_xticklabels():
            label.set_horizontalalignment("right")
        if all(row["suppressed"] for row in rows):
            _nothing_released(axes, _all_withheld(release, len(rows)))
        else:
            axes.set_ylim(bottom=0)
            axes.legend()
        axes.set_title(_title(release, zone, rows, f"{plural(cls)} per {kind}"))
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
        per bucket. ``bucket_start`` restricts the plot to one bucket. Origins are shown
        by name."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        release = self._release
        zone, cls, totals = release._zone_totals("plotting", zone, class_)
        if bucket_start is not None:
            totals = [row for row in totals if row["bucket_start"] == bucket_start]
            if not totals:
                raise ValueError(f"no bucket starts at {bucket_start!r} in zone {zone!r}")
        values, observed, counted = origin_sums(release, zone, cls, bucket_start)
        top = sorted(values, key=lambda origin: (-values[origin], origin))[:n]
        names = Names(release)
        labels = []
        for origin in top:
            fallback = observed.get(origin, 0)
            note = (
                ""
                if not fallback
                else (" (observed)" if fallback == counted[origin] else " (partly observed)")
            )
            labels.append(_plain(names.origin(origin) + note))
        figure, axes = _figure(height=min(4.5, 1.6 + 0.35 * len(top)))
        axes.barh(
            range(len(top)),
            [values[origin] for origin in top],
            tick_label=labels,
            color=_ESTIMATE_COLOUR,
        )
        axes.invert_yaxis()
        buckets = len(totals) if bucket_start is None else 1
        if release._bucket() == "period" or buckets == 1:
            axes.set_xlabel("people estimated (devices observed where no estimate)")
        else:
            axes.set_xlabel(
                f"people estimated, summed over the {buckets} {release._bucket()}s "
                "(devices observed where no estimate)"
            )
        if not top:
            _nothing_released(axes, _all_withheld(release, len(totals)))
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
        axes.bar([label for _, label in BANDS], sums, color=_ESTIMATE_COLOUR)
        axes.set_xlabel("length of the visit")
        axes.set_ylabel("visits observed")
        if all(row["suppressed"] for row in rows):
            _nothing_released(axes, _all_withheld(release, len(rows)))
        axes.set_title(_title(release, zone, rows, f"visits by dwell ({cls})"))
        return figure

    def zones(self, *, categories: bool = False, class_: str | None = None) -> Figure:
        """Every zone at a glance (or, with ``categories=True``, every category): small
        multiples of the estimated people per bucket, one panel a zone on a shared
        scale, with the 95% interval shaded and suppressed buckets greyed; with one
        bucket (``bucket="period"``), one bar a zone with its interval instead."""
        release = self._release
        cls = class_ if class_ is not None else release._default_class("plotting")
        series = [s for s in zone_series(release, cls) if s.is_category == categories]
        if not series:
            what = "categories" if categories else "zones"
            raise ValueError(f"the release has no {what} of class {cls!r}")
        names = Names(release)
        measure = Measure.of(release)
        if max(len(s.rows) for s in series) == 1:
            return _zone_bars(release, series, cls, names, measure)
        return _small_multiples(release, series, cls, names, measure)

    def zone_map(self, geography: Geography, *, class_: str | None = None) -> Figure:
        """A map of the zones (categories are unions of zones, not drawn), each filled by
        its estimated people (the period's, or its busiest bucket's), suppressed zones
        hatched grey, over the outline of the study area; zones are numbered on the map
        and named in the key beside it. Needs the ``h3`` package."""
        release = self._release
        cls = class_ if class_ is not None else release._default_class("plotting")
        shapes = GeographyShapes(geography)
        names = Names(release, shapes.region_names)
        measure = Measure.of(release)
        series = {s.zone: s for s in zone_series(release, cls) if not s.is_category}
        numbered = [zone for zone in series if zone in shapes.zone_cells]
        # The largest zones first, so that the small ones inside them stay visible.
        zones = sorted(numbered, key=lambda zone: -len(shapes.zone_cells[zone]))
        figure, axes, key = _map_figure()
        drawn = [cell for zone in zones for cell in shapes.zone_cells[zone]]
        projection = shapes.projection(drawn or shapes.all_region_cells())
        values = {zone: series[zone].peak_value(measure) for zone in zones}
        highest = max((v for v in values.values() if v is not None), default=0.0)
        colours = _colour_scale(highest)
        study = shapes.study_area_cells()
        if study:
            shapes.draw(axes, projection, study, facecolor="#fafafa", edgecolor="#555555", lw=1.2)
        for zone in zones:
            value = values[zone]
            style: dict[str, Any] = (
                {"facecolor": _WITHHELD_COLOUR, "hatch": "///"}
                if value is None
                else {"facecolor": colours(value)}
            )
            shapes.draw(axes, projection, shapes.zone_cells[zone], edgecolor="#333333", **style)
        for number, zone in enumerate(numbered, 1):
            x, y = _label_point(projection, shapes, zone, zones)
            _halo_text(axes, x, y, str(number), size=8, weight="bold")
        _frame(axes, projection, drawn)
        _scale_bar(axes)
        what = measure.label(cls, release._bucket(), peak=True)
        _colour_bar(figure, axes, highest, what)
        _withheld_legend(axes, release)
        lines = [
            (
                f"{number}",
                _plain(names.zone(zone)),
                "suppressed" if values[zone] is None else f"{round(values[zone] or 0.0):,}",
            )
            for number, zone in enumerate(numbered, 1)
        ]
        _key(key, "Zones", lines)
        axes.set_title(f"The zones: {what}")
        return figure

    def origin_map(
        self, geography: Geography, zone: str | None = None, *, class_: str | None = None
    ) -> Figure:
        """A map of the origin regions of the zone's visitors, each region filled by the
        people estimated from it (summed over the released buckets). A pooled row
        (``other:<region>``) fills, hatched, the part of its region with no figure of its
        own; regions with no figure at all are light grey; the study area is outlined.
        The key beside the map lists the origins, those abroad, pooled into the residual
        or of unknown home too (not on the map). Needs ``h3``."""
        release = self._release
        zone, cls, _ = release._zone_totals("plotting", zone, class_)
        shapes = GeographyShapes(geography)
        names = Names(release, shapes.region_names)
        values, _, _ = origin_sums(release, zone, cls, None)
        areas = shapes.origin_areas(values)
        figure, axes, key = _map_figure()
        everything = shapes.all_region_cells()
        projection = shapes.projection(everything)
        if everything:
            shapes.draw(axes, projection, everything, facecolor=_NO_FIGURE_COLOUR, lw=0)
        # A pool's figure is for its whole area: it is hatched and labelled, not coloured,
        # lest a large area read as many visitors.
        pools = {origin for origin in areas if origin.startswith("other:")}
        highest = max((values[origin] for origin in areas if origin not in pools), default=0.0)
        colours = _colour_scale(highest)
        for origin, cells in areas.items():
            if origin in pools:
                shapes.draw(
                    axes, projection, cells, facecolor="white", edgecolor="#888888", hatch="//"
                )
            else:
                shapes.draw(
                    axes, projection, cells, facecolor=colours(values[origin]), edgecolor="white"
                )
        for pool in pools:
            x, y = projection.centre(areas[pool])
            text = f"{names.origin(pool)}\n{round(values[pool]):,}"
            _halo_text(axes, x, y, _plain(text), size=8)
        study = shapes.study_area_cells()
        if study:
            shapes.draw(axes, projection, study, facecolor="none", edgecolor="black", lw=1.6)
        _frame(axes, projection, everything)
        _scale_bar(axes)
        buckets = release._bucket()
        per = "" if buckets == "period" else f", summed over the {buckets}s"
        if len(pools) < len(areas):
            _colour_bar(figure, axes, highest, f"{plural(cls)} estimated{per}")
        from matplotlib.patches import Patch

        axes.legend(
            handles=[
                Patch(facecolor=_NO_FIGURE_COLOUR, edgecolor="#999999", label="no figure"),
                Patch(facecolor="white", edgecolor="#888888", hatch="//", label="pooled area"),
                Patch(facecolor="none", edgecolor="black", label="study area"),
            ],
            loc="lower right",
            fontsize=8,
        )
        ranked = sorted(values, key=lambda origin: (-values[origin], origin))
        lines = [
            (
                "" if origin in areas else "*",
                _plain(names.origin(origin)),
                f"{round(values[origin]):,}",
            )
            for origin in ranked[:_KEY_LINES]
        ]
        if len(ranked) > _KEY_LINES:
            lines.append(("", f"and {len(ranked) - _KEY_LINES} more", ""))
        if any(origin not in areas for origin in ranked[:_KEY_LINES]):
            lines.append(("*", "not on the map", ""))
        _key(key, "Origins", lines)
        axes.set_title(_plain(f"Where the {plural(cls)} to {names.zone(zone)} came from"))
        return figure


# -- what the plots and the page read ------------------------------------------------------


@dataclass(frozen=True)
class ZoneSeries:
    """The total rows of one zone (or category) and class, in bucket order."""

    zone: str
    rows: tuple[Mapping[str, Any], ...]

    @property
    def is_category(self) -> bool:
        return self.zone.startswith(CATEGORY_PREFIX)

    @property
    def released(self) -> list[Mapping[str, Any]]:
        return [row for row in self.rows if not row["suppressed"] and row["devices"] is not None]

    @property
    def suppressed(self) -> int:
        return len(self.rows) - len(self.released)

    def peak(self, measure: Measure) -> Mapping[str, Any] | None:
        """The released row with the most people (estimated, or observed without
        estimates); ties to the earlier bucket."""
        rows = [row for row in self.released if row[measure.column] is not None]
        return max(rows, key=lambda row: row[measure.column], default=None)

    def peak_value(self, measure: Measure) -> float | None:
        peak = self.peak(measure)
        return None if peak is None else float(peak[measure.column])


@dataclass(frozen=True)
class Measure:
    """What a release's figures count: estimated people, or, in a release without
    estimates (no extrapolation), the devices observed."""

    column: str
    estimated: bool

    @classmethod
    def of(cls, release: Release) -> Measure:
        rows = release._rows("showing the figures", ["est_devices", "suppressed"], total=True)
        if any(row["est_devices"] is not None for row in rows):
            return cls("est_devices", True)
        # With every figure suppressed, the report tells whether there would be estimates.
        factor = mapping(release.report.get("extrapolation")).get("national_factor")
        if factor is not None and all(row["suppressed"] for row in rows):
            return cls("est_devices", True)
        return cls("devices", False)

    def label(self, class_: str, bucket: str, *, peak: bool = False) -> str:
        what = f"{plural(class_)} estimated" if self.estimated else "devices observed"
        if bucket == "period":
            return f"{what} in the period"
        return f"{what} on the busiest {bucket}" if peak else f"{what} per {bucket}"


def zone_series(release: Release, class_: str) -> list[ZoneSeries]:
    """The total rows of every zone of the class, zones in table order, then categories
    in table order."""
    columns = ["zone", "bucket_start", "suppressed", "devices", "visits", "dwell_s"]
    columns += [name for name, _ in BANDS]
    columns += ["est_devices", "est_visits", "est_low", "est_high"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in release._rows("showing the figures", columns, class_=class_, total=True):
        groups.setdefault(row["zone"], []).append(row)
    series = [
        ZoneSeries(zone, tuple(sorted(rows, key=lambda row: str(row["bucket_start"]))))
        for zone, rows in groups.items()
    ]
    return sorted(series, key=lambda s: s.is_category)


def origin_sums(
    release: Release, zone: str, class_: str, bucket_start: str | None
) -> tuple[dict[str, float], dict[str, int], dict[str, int]]:
    """The zone's released origin rows summed by origin: people estimated (observed
    devices where the estimate is null), how many rows fell back to observed devices,
    and how many rows were summed."""
    rows = release._rows(
        "plotting",
        ["origin", "devices", "est_devices", "suppressed"],
        zone=zone,
        class_=class_,
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
    return values, observed, counted


class Names:
    """Names for people: of zones, categories and origins, from the release table's
    ``zone_name`` and ``origin_name`` columns where it has them, else from the report's
    zone names and the geography's region names, else the ids made readable
    (``country:FR`` is France, ``other:A3`` other places in A3)."""

    def __init__(self, release: Release, region_names: Mapping[str, str] | None = None) -> None:
        self._zones = {
            str(zone): str(name)
            for zone, name in mapping(release.report.get("zones")).items()
            if name is not None and str(name).strip()
        }
        self._regions = dict(region_names or {})
        self._origins: dict[str, str] = {}
        table = release._arrow_table("naming zones and origins")
        present = set(table.column_names)
        for id_column, name_column, names in (
            ("zone", "zone_name", self._zones),
            ("origin", "origin_name", self._origins),
        ):
            if name_column not in present:
                continue
            pairs = table.select([id_column, name_column]).group_by([id_column, name_column])
            for row in pairs.aggregate([]).to_pylist():
                name = row[name_column]
                if name is not None and str(name).strip() and str(name) != row[id_column]:
                    names[str(row[id_column])] = str(name)

    def zone(self, zone: str) -> str:
        name = self._zones.get(zone)
        if zone.startswith(CATEGORY_PREFIX):
            name = name or zone.removeprefix(CATEGORY_PREFIX).replace("_", " ")
            return name[:1].upper() + name[1:]
        return name or zone

    def origin(self, origin: str) -> str:
        named = self._origins.get(origin)
        if named is not None:
            return named
        if origin == TOTAL:
            return "all origins"
        if origin == "other":
            return "other origins (pooled)"
        if origin == "unknown":
            return "home unknown"
        if origin == "other:abroad":
            return "other countries"
        if origin.startswith("country:"):
            code = origin.removeprefix("country:")
            return _COUNTRIES.get(code.upper(), f"country {code}")
        if origin.startswith("other:"):
            return f"other places in {self.region(origin.removeprefix('other:'))}"
        return self.region(origin)

    def region(self, region: str) -> str:
        return self._regions.get(region) or region


# -- dates ------------------------------------------------------------------------------

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def long_date(day: dt.date) -> str:
    """``Sunday 23 August 2026`` (English names whatever the locale)."""
    return f"{_DAY_NAMES[day.weekday()]} {day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"


def short_date(day: dt.date) -> str:
    """``23 Aug 2026``."""
    return f"{day.day} {_MONTH_NAMES[day.month - 1][:3]} {day.year}"


def date_range(first: dt.date, last: dt.date) -> str:
    """``Wednesday 1 July to Tuesday 14 July 2026``: both days included."""
    if first == last:
        return long_date(first)
    if first.year == last.year:
        start = f"{_DAY_NAMES[first.weekday()]} {first.day} {_MONTH_NAMES[first.month - 1]}"
        return f"{start} to {long_date(last)}"
    return f"{long_date(first)} to {long_date(last)}"


def _parse(bucket_start: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(bucket_start))
    except ValueError:
        return None


def bucket_text(bucket_start: str, kind: str) -> str:
    """A bucket for people: ``Sunday 23 August 2026``, ``Sunday 23 August 2026,
    14:00``, ``week of Monday 17 August 2026``, ``August 2026``, ``July to September
    2026``; the whole period is ``the whole period``."""
    start = _parse(bucket_start)
    if kind == "period":
        return "the whole period"
    if start is None:
        return str(bucket_start)
    if kind == "hour":
        return f"{long_date(start.date())}, {start:%H:%M}"
    if kind == "week":
        return f"week of {long_date(start.date())}"
    if kind == "month":
        return f"{_MONTH_NAMES[start.month - 1]} {start.year}"
    if kind == "quarter":
        last = _MONTH_NAMES[min(start.month + 1, 11)]
        return f"{_MONTH_NAMES[start.month - 1]} to {last} {start.year}"
    return long_date(start.date())


def bucket_tick(bucket_start: str, kind: str) -> str:
    """A short bucket label for an axis: ``23 Aug``, ``23 Aug 14h``, ``Aug 2026``."""
    start = _parse(bucket_start)
    if start is None:
        return str(bucket_start)
    month = _MONTH_NAMES[start.month - 1][:3]
    if kind == "hour":
        return f"{start.day} {month} {start:%H}h"
    if kind == "month":
        return f"{month} {start.year}"
    if kind == "quarter":
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    if kind == "period":
        return "period"
    return f"{start.day} {month}"


def plural(class_: str) -> str:
    return class_.replace("_", " ") + "s"


# -- geometry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """Longitude and latitude to kilometres east and north of a centre (equirectangular:
    true enough over a city or a small country)."""

    lat0: float
    lon0: float
    boundary: Any  # h3's cell_to_boundary
    latlng: Any  # h3's cell_to_latlng

    def point(self, lat: float, lon: float) -> tuple[float, float]:
        x = (lon - self.lon0) * 111.32 * math.cos(math.radians(self.lat0))
        return x, (lat - self.lat0) * 110.57

    def centre(self, cells: Sequence[int]) -> tuple[float, float]:
        points = [self.point(*self.latlng(cell)) for cell in cells]
        return (
            sum(x for x, _ in points) / len(points),
            sum(y for _, y in points) / len(points),
        )


class GeographyShapes:
    """The zones and regions of a geography as H3 cells, drawn as outlines of cells
    merged by the ``h3`` package (which the compiled core does not expose)."""

    def __init__(self, geography: Geography) -> None:
        try:
            self._h3 = importlib.import_module("h3.api.basic_int")
        except ImportError as missing:
            raise ImportError(
                "drawing the maps needs the h3 package, which is not installed: pip install h3"
            ) from missing
        pyarrow = require("pyarrow", "drawing the maps", "pyarrow")
        tables = {name: pyarrow.table(table) for name, table in geography.to_tables().items()}
        self.zone_cells: dict[str, list[int]] = {}
        for row in tables["zone_cells"].to_pylist():
            self.zone_cells.setdefault(str(row["zone_id"]), []).append(int(row["cell"]))
        self._leaf_cells: dict[str, list[int]] = {}
        for row in tables["region_cells"].to_pylist():
            self._leaf_cells.setdefault(str(row["region_id"]), []).append(int(row["cell"]))
        regions = tables["regions"]
        self.regions: set[str] = set()
        self._children: dict[str, list[str]] = {}
        self._parents: dict[str, str] = {}
        self.region_names: dict[str, str] = {}
        named = "name" in regions.column_names
        for row in regions.to_pylist():
            region = str(row["region_id"])
            self.regions.add(region)
            if row["parent_id"] is not None:
                self._children.setdefault(str(row["parent_id"]), []).append(region)
                self._parents[region] = str(row["parent_id"])
            if named and row["name"] is not None:
                self.region_names[region] = str(row["name"])
        self._study_area = strings(geography.study_area)

    def region_cells(self, region: str) -> list[int]:
        """The cells of every leaf under the region (itself included)."""
        cells: list[int] = []
        stack = [region]
        while stack:
            current = stack.pop()
            cells += self._leaf_cells.get(current, [])
            stack += self._children.get(current, [])
        return cells

    def all_region_cells(self) -> list[int]:
        return [cell for cells in self._leaf_cells.values() for cell in cells]

    def study_area_cells(self) -> list[int]:
        return [cell for region in self._study_area for cell in self.region_cells(region)]

    def origin_areas(self, origins: Iterable[str]) -> dict[str, list[int]]:
        """The cells each origin covers on a map: a region's own leaves; a pooled row
        ``other:<region>`` the leaves of its region that no other origin row covers
        (deeper pools first); origins that are no region (abroad, the residual, unknown
        homes) are left out."""
        wanted = set(origins)
        regions = [origin for origin in wanted if origin in self.regions]
        pools = [
            origin
            for origin in wanted
            if origin.startswith("other:") and origin.removeprefix("other:") in self.regions
        ]
        covered = {cell for region in regions for cell in self.region_cells(region)}
        areas = {region: self.region_cells(region) for region in regions}
        for pool in sorted(pools, key=lambda pool: -self._depth(pool.removeprefix("other:"))):
            cells = [c for c in self.region_cells(pool.removeprefix("other:")) if c not in covered]
            covered.update(cells)
            if cells:
                areas[pool] = cells
        return areas

    def _depth(self, region: str) -> int:
        depth = 0
        current = self._parents.get(region)
        while current is not None and depth < len(self.regions):
            depth += 1
            current = self._parents.get(current)
        return depth

    def zone_width_m(self, zone: str) -> float | None:
        """The width of a disk of the zone's area, in metres; None for a zone the
        geography does not hold (a category)."""
        cells = set(self.zone_cells.get(zone, []))
        if not cells:
            return None
        area = sum(float(self._h3.cell_area(cell, "m^2")) for cell in cells)
        return 2 * math.sqrt(area / math.pi)

    def projection(self, cells: Sequence[int]) -> Projection:
        h3 = self._h3
        centres = [h3.cell_to_latlng(cell) for cell in cells] or [(0.0, 0.0)]
        lats, lons = [lat for lat, _ in centres], [lon for _, lon in centres]
        return Projection(
            (min(lats) + max(lats)) / 2,
            (min(lons) + max(lons)) / 2,
            h3.cell_to_boundary,
            h3.cell_to_latlng,
        )

    def draw(self, axes: Axes, projection: Projection, cells: Iterable[int], **style: Any) -> None:
        """The outline of the cells as one patch (holes kept), styled as given."""
        from matplotlib.patches import PathPatch
        from matplotlib.path import Path

        by_resolution: dict[int, list[int]] = {}
        for cell in set(cells):
            by_resolution.setdefault(self._h3.get_resolution(cell), []).append(cell)
        paths = []
        for group in by_resolution.values():
            for polygon in self._h3.cells_to_h3shape(group, tight=False):
                rings = [(polygon.outer, True)] + [(hole, False) for hole in polygon.holes]
                for ring, outer in rings:
                    points = [projection.point(lat, lon) for lat, lon in ring]
                    # The fill rule is non-zero: outer rings anticlockwise, holes clockwise.
                    if (_signed_area(points) > 0) != outer:
                        points.reverse()
                    paths.append(Path([*points, points[0]], closed=True))
        if not paths:
            return
        style.setdefault("lw", 0.6)
        axes.add_patch(PathPatch(Path.make_compound_path(*paths), **style))


def _signed_area(points: Sequence[tuple[float, float]]) -> float:
    return 0.5 * sum(
        x0 * y1 - x1 * y0
        for (x0, y0), (x1, y1) in zip(points, [*points[1:], points[0]], strict=True)
    )


# -- drawing helpers ----------------------------------------------------------------------


def _figure(height: float = 4.5) -> tuple[Figure, Axes]:
    # The parent package first: a blocked `matplotlib` must not hide behind a cached
    # `matplotlib.figure`.
    require("matplotlib", "plotting", "plot")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, height), layout="constrained")
    return figure, figure.add_subplot()


def _map_figure() -> tuple[Figure, Axes, Axes]:
    """A figure with the map's axes and, right of it, the axes of its key."""
    require("matplotlib", "plotting", "plot")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 6.5), layout="constrained")
    axes, key = figure.subplots(1, 2, width_ratios=[2.6, 1])
    key.set_axis_off()
    axes.set_aspect("equal")
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_visible(False)
    return figure, axes, key


def _key(axes: Axes, title: str, lines: Sequence[tuple[str, str, str]]) -> None:
    """A map's key: a title, then a line per item (mark or number, name, value)."""
    axes.text(0, 1, title, transform=axes.transAxes, fontsize=10, weight="bold", va="top")
    step = min(0.055, 0.93 / max(len(lines), 1))
    for i, (mark, name, value) in enumerate(lines):
        y = 0.93 - i * step
        axes.text(0, y, mark, transform=axes.transAxes, fontsize=8, weight="bold", va="top")
        shown = name if len(name) <= 28 else name[:27] + "..."
        axes.text(0.1, y, shown, transform=axes.transAxes, fontsize=8, va="top")
        axes.text(1, y, value, transform=axes.transAxes, fontsize=8, va="top", ha="right")


def _small_multiples(
    release: Release, series: Sequence[ZoneSeries], cls: str, names: Names, measure: Measure
) -> Figure:
    require("matplotlib", "plotting", "plot")
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    columns = min(4, len(series))
    rows = math.ceil(len(series) / columns)
    figure = Figure(figsize=(3.1 * columns, 2.0 * rows + 0.9), layout="constrained")
    grid = figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)
    kind = release._bucket()
    starts = sorted({str(row["bucket_start"]) for s in series for row in s.rows})
    position = {start: i for i, start in enumerate(starts)}
    highest = 0.0
    k = suppression_k(release)
    for index, axes in enumerate(grid.flat):
        if index >= len(series):
            axes.set_visible(False)
            # The panel above an empty slot shows the dates the empty one would have.
            if index - columns >= 0:
                grid.flat[index - columns].xaxis.set_tick_params(labelbottom=True)
            continue
        zone = series[index]
        x = [position[str(row["bucket_start"])] for row in zone.rows]
        value = [_nan(row[measure.column], row) for row in zone.rows]
        for xi, row in zip(x, zone.rows, strict=True):
            if row["suppressed"]:
                axes.axvspan(xi - 0.5, xi + 0.5, color=_WITHHELD_COLOUR, lw=0)
        if measure.estimated:
            low = [_nan(row["est_low"], row) for row in zone.rows]
            high = [_nan(row["est_high"], row) for row in zone.rows]
            axes.fill_between(x, low, high, color=_ESTIMATE_COLOUR, alpha=0.2, lw=0)
            highest = max([highest, *(v for v in high if not math.isnan(v))])
        highest = max([highest, *(v for v in value if not math.isnan(v))])
        marker = "o" if len(starts) <= 40 else None
        axes.plot(x, value, color=_ESTIMATE_COLOUR, marker=marker, markersize=3, lw=1.5)
        if not zone.released:
            withheld = f"suppressed every {kind}" if len(zone.rows) > 1 else "suppressed"
            detail = "" if k is None else f"\n(fewer than {k} devices)"
            axes.text(
                0.5,
                0.5,
                withheld + detail,
                transform=axes.transAxes,
                ha="center",
                va="center",
                fontsize=8,
                color="#444444",
            )
        axes.set_title(_plain(names.zone(zone.zone)), fontsize=9, loc="left")
        axes.tick_params(labelsize=7)
    ticks = _tick_positions(len(starts), 4)
    grid.flat[0].set_xticks(ticks, [bucket_tick(starts[i], kind) for i in ticks])
    grid.flat[0].set_xlim(-0.5, len(starts) - 0.5)
    if highest > 0:
        grid.flat[0].set_ylim(0, highest * 1.08)
    else:
        grid.flat[0].set_ylim(0, 1)
        for axes in grid.flat:
            axes.set_yticks([])
    handles: list[Any] = [
        Line2D(
            [], [], color=_ESTIMATE_COLOUR, marker="o", markersize=3, label=measure.label(cls, kind)
        )
    ]
    if measure.estimated:
        handles.append(Patch(color=_ESTIMATE_COLOUR, alpha=0.2, label="likely range (95%)"))
    if any(row["suppressed"] for s in series for row in s.rows):
        withheld = "suppressed" if k is None else f"suppressed (fewer than {k} devices)"
        handles.append(Patch(color=_WITHHELD_COLOUR, label=withheld))
    figure.legend(handles=handles, loc="outside upper center", ncols=len(handles), fontsize=8)
    return figure


def _zone_bars(
    release: Release, series: Sequence[ZoneSeries], cls: str, names: Names, measure: Measure
) -> Figure:
    require("matplotlib", "plotting", "plot")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 0.38 * len(series) + 1.3), layout="constrained")
    axes = figure.add_subplot()
    k = suppression_k(release)
    positions = list(range(len(series)))
    highest = 0.0
    for i, zone in zip(positions, series, strict=True):
        row = zone.rows[0]
        value = row[measure.column]
        if row["suppressed"] or value is None:
            withheld = "suppressed" if k is None else f"suppressed (fewer than {k} devices)"
            axes.text(0, i, "  " + withheld, va="center", fontsize=8, color="#444444")
            continue
        low, high = row["est_low"], row["est_high"]
        error = None
        if measure.estimated and low is not None and high is not None:
            error = [[max(value - low, 0.0)], [max(high - value, 0.0)]]
            highest = max(highest, high)
        highest = max(highest, value)
        axes.barh(i, value, xerr=error, color=_ESTIMATE_COLOUR, capsize=3, ecolor="#333333")
        axes.text(value, i, f" {round(value):,}", va="bottom", fontsize=8)
    axes.set_yticks(positions, [_plain(names.zone(zone.zone)) for zone in series])
    axes.invert_yaxis()
    axes.set_xlim(0, max(highest * 1.1, 1.0))
    label = measure.label(cls, "period")
    axes.set_xlabel(
        label + (" (bar: estimate; whisker: likely range)" if measure.estimated else "")
    )
    return figure


def _tick_positions(count: int, most: int) -> list[int]:
    """At most ``most`` evenly spaced positions out of ``count``, the first and last
    included."""
    if count <= most:
        return list(range(count))
    step = (count - 1) / (most - 1)
    return sorted({round(i * step) for i in range(most)})


def _nothing_released(axes: Axes, text: str) -> None:
    """A plot with nothing released says so, instead of showing made-up axes."""
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_xlabel("")
    axes.set_ylabel("")
    axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center")


def _all_withheld(release: Release, buckets: int) -> str:
    k = suppression_k(release)
    every = f"all {buckets} {release._bucket()} buckets" if buckets > 1 else "the only bucket"
    return f"Nothing to show: {every} suppressed" + (
        "" if k is None else f" (fewer than {k} devices)"
    )


def suppression_k(release: Release) -> int | None:
    """The threshold of a k-anonymity release; None for a differentially private one."""
    privacy = mapping(release.report.get("privacy"))
    if privacy.get("mode") == "differential_privacy":
        return None
    for source in (release.report.get("disclosure"), privacy, release._parameters()):
        k = mapping(source).get("k")
        if isinstance(k, int) and not isinstance(k, bool):
            return k
    return None


def _colour_scale(highest: float) -> Any:
    from matplotlib import colormaps

    cmap = colormaps[_COLOUR_MAP]
    top = highest if highest > 0 else 1.0
    # The light end of the scale is left out: it would vanish against the background.
    return lambda value: cmap(0.15 + 0.85 * min(max(value / top, 0.0), 1.0))


def _colour_bar(figure: Figure, axes: Axes, highest: float, label: str) -> None:
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    cmap = ListedColormap(colormaps[_COLOUR_MAP]([0.15 + 0.85 * i / 255 for i in range(256)]))
    mappable = ScalarMappable(norm=Normalize(0, highest if highest > 0 else 1.0), cmap=cmap)
    bar = figure.colorbar(mappable, ax=axes, orientation="horizontal", shrink=0.6, pad=0.02)
    bar.set_label(label)


def _withheld_legend(axes: Axes, release: Release) -> None:
    from matplotlib.patches import Patch

    k = suppression_k(release)
    label = "suppressed" if k is None else f"suppressed (fewer than {k} devices)"
    axes.legend(
        handles=[
            Patch(facecolor=_WITHHELD_COLOUR, hatch="///", edgecolor="#333333", label=label),
            Patch(facecolor="#fafafa", edgecolor="#555555", label="study area"),
        ],
        loc="lower right",
        fontsize=8,
    )


def _label_point(
    projection: Projection, shapes: GeographyShapes, zone: str, zones: Sequence[str]
) -> tuple[float, float]:
    """Where a zone's number goes: the centre of its cell nearest its centre among
    the cells no smaller zone covers, so that a zone's number is not hidden under a
    zone inside it."""
    cells = shapes.zone_cells[zone]
    size = len(cells)
    inner = {
        cell
        for other in zones
        if other != zone and len(shapes.zone_cells[other]) <= size
        for cell in shapes.zone_cells[other]
    }
    free = [cell for cell in cells if cell not in inner] or cells
    cx, cy = projection.centre(cells)
    points = [projection.point(*projection.latlng(cell)) for cell in free]
    return min(points, key=lambda p: (p[0] - cx) ** 2 + (p[1] - cy) ** 2)


def _frame(axes: Axes, projection: Projection, cells: Sequence[int]) -> None:
    """Limits around the cells' centres, with a margin of a tenth of the extent."""
    points = [projection.point(*projection.latlng(cell)) for cell in cells] or [(0.0, 0.0)]
    xs, ys = [x for x, _ in points], [y for _, y in points]
    margin = max(max(xs) - min(xs), max(ys) - min(ys), 0.5) * 0.1
    axes.set_xlim(min(xs) - margin, max(xs) + margin)
    axes.set_ylim(min(ys) - margin, max(ys) + margin)


def _scale_bar(axes: Axes) -> None:
    x0, x1 = axes.get_xlim()
    y0, y1 = axes.get_ylim()
    width = x1 - x0
    length = next(
        (n for n in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200) if n >= width / 6), 500.0
    )
    x, y = x0 + width * 0.04, y0 + (y1 - y0) * 0.04
    axes.plot([x, x + length], [y, y], color="black", lw=2, solid_capstyle="butt")
    text = f"{length * 1000:g} m" if length < 1 else f"{length:g} km"
    axes.text(x + length / 2, y + (y1 - y0) * 0.012, text, ha="center", va="bottom", fontsize=8)


def _halo_text(axes: Axes, x: float, y: float, text: str, **style: Any) -> None:
    from matplotlib import patheffects

    style.setdefault("size", 7)
    label = axes.text(x, y, text, ha="center", va="center", color="#111111", **style)
    label.set_path_effects([patheffects.withStroke(linewidth=2.5, foreground="white")])


def _title(release: Release, zone: str, totals: Sequence[Mapping[str, Any]], what: str) -> str:
    title = _plain(f"{Names(release).zone(zone)}: {what}")
    suppressed = sum(1 for row in totals if row["suppressed"])
    if suppressed:
        k = suppression_k(release)
        below = "" if k is None else f" (below k = {k})"
        title += f"\n{suppressed} of {len(totals)} buckets suppressed{below}, not shown"
    return title


def _plain(text: str) -> str:
    """Text matplotlib shows as it is (a ``$`` would start mathtext)."""
    return text.replace("$", r"\$")


def _nan(value: Any, row: Mapping[str, Any]) -> float:
    return math.nan if value is None or row["suppressed"] else float(value)


# The countries a roamer comes from most often in Europe's statistics; any other code is
# shown as `country XX` (or by the table's `origin_name` when it has one).
_COUNTRIES = {
    "AT": "Austria",
    "AU": "Australia",
    "BE": "Belgium",
    "BG": "Bulgaria",
    "BR": "Brazil",
    "CA": "Canada",
    "CH": "Switzerland",
    "CN": "China",
    "CY": "Cyprus",
    "CZ": "Czechia",
    "DE": "Germany",
    "DK": "Denmark",
    "EE": "Estonia",
    "ES": "Spain",
    "FI": "Finland",
    "FR": "France",
    "GB": "United Kingdom",
    "GR": "Greece",
    "HR": "Croatia",
    "HU": "Hungary",
    "IE": "Ireland",
    "IN": "India",
    "IS": "Iceland",
    "IT": "Italy",
    "JP": "Japan",
    "LI": "Liechtenstein",
    "LT": "Lithuania",
    "LU": "Luxembourg",
    "LV": "Latvia",
    "MA": "Morocco",
    "MT": "Malta",
    "NL": "the Netherlands",
    "NO": "Norway",
    "PL": "Poland",
    "PT": "Portugal",
    "RO": "Romania",
    "SE": "Sweden",
    "SI": "Slovenia",
    "SK": "Slovakia",
    "TR": "Türkiye",
    "UA": "Ukraine",
    "US": "the United States",
}
