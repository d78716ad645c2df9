"""The result of an analysis: the release table, its quality report, and views of both.

``crowdtally.analyze(...)`` returns a :class:`Release`: the release table (method §6-8:
one total row per (zone, bucket, class) group, then its released origin rows, with
disclosure control applied) and the quality and privacy report (method §9)::

    release = crowdtally.analyze(...)
    release.write("2026Q3.parquet")  # or .csv; the table only
    release.write_report("2026Q3.json")  # the report, as JSON
    release.report_html("2026Q3.html")  # one self-contained page for readers
    release.plot.visitors_per_bucket("grote-markt")  # a matplotlib Figure

Everything shown or written here comes from the table and the report, plus fixed labels
and caveats: the release holds no subscriber id and no key, and nothing here adds one.

Writing Parquet needs nothing more. Reading the rows (previews, plots, ``report_html``,
CSV) needs pyarrow (``pip install crowdtally[pyarrow]``; CSV falls back to polars when
only polars is installed); plots need matplotlib (``pip install crowdtally[plot]``).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import importlib
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from crowdtally._crowdtally import Config, Geography, Progress
from crowdtally._crowdtally import analyze as _native_analyze
from crowdtally._crowdtally import write_parquet as _write_parquet
from crowdtally._progress import progress_bar

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "BANDS",
    "COLUMNS",
    "ArrowStreamTable",
    "Release",
    "ReleasePlot",
    "analyze",
]

COLUMNS: tuple[str, ...] = (
    "zone",
    "bucket_start",
    "class",
    "origin",
    "devices",
    "visits",
    "dwell_s",
    "band_0_1h",
    "band_1_2h",
    "band_2_4h",
    "band_4_8h",
    "band_8h_plus",
    "suppressed",
    "est_devices",
    "est_visits",
    "est_low",
    "est_high",
)
"""The release table's columns, in order (method §6)."""

BANDS: tuple[tuple[str, str], ...] = (
    ("band_0_1h", "< 1 h"),
    ("band_1_2h", "1-2 h"),
    ("band_2_4h", "2-4 h"),
    ("band_4_8h", "4-8 h"),
    ("band_8h_plus", "≥ 8 h"),
)
"""The dwell-band columns and their labels."""


TOTAL = "*"
"""The origin of a group's total row."""

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_PREVIEW_ROWS = 10
_TOP_LINES = 5


class ArrowStreamTable(Protocol):
    """Anything exporting a table through the Arrow PyCapsule interface, with a length
    (``crowdtally.Table``, ``pyarrow.Table``, ``polars.DataFrame``, ...)."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

    def __len__(self) -> int: ...


class Release:
    """A release: the table (``.table``) and its quality report (``.report``, a dict).

    The table has the columns of :data:`COLUMNS`; the report has the shape of method §9
    (``parameters``, ``pings``, ``opt_out``, ``devices``, ``disclosure``,
    ``extrapolation``, ``zones``, ``warnings``, ``caveats``, ...).
    """

    __slots__ = ("_arrow", "_report", "_table")

    def __init__(self, table: ArrowStreamTable, report: dict[str, Any]) -> None:
        if not hasattr(table, "__arrow_c_stream__"):
            raise TypeError(
                f"table must export __arrow_c_stream__ (Arrow PyCapsule interface), "
                f"got {type(table).__name__}"
            )
        if not isinstance(report, dict):
            raise TypeError(f"report must be a dict, got {type(report).__name__}")
        names = getattr(table, "column_names", None)
        if isinstance(names, Sequence) and not isinstance(names, str) and tuple(names) != COLUMNS:
            raise ValueError(
                f"the release table must have the columns {', '.join(COLUMNS)} in this "
                f"order, got {', '.join(map(str, names))}"
            )
        self._table = table
        self._report = report
        self._arrow: Any = None

    # -- the data -------------------------------------------------------------------

    @property
    def table(self) -> ArrowStreamTable:
        """The release table, as given (exports ``__arrow_c_stream__``)."""
        return self._table

    @property
    def report(self) -> dict[str, Any]:
        """The quality and privacy report (method §9), a plain dict."""
        return self._report

    def __len__(self) -> int:
        return len(self._table)

    def to_arrow(self) -> Any:
        """The table as a ``pyarrow.Table`` (needs pyarrow)."""
        convert = getattr(self._table, "to_arrow", None)
        if callable(convert):
            return convert()
        return self._arrow_table("to_arrow()")

    def to_pandas(self) -> pd.DataFrame:
        """The table as a ``pandas.DataFrame`` (needs pandas and pyarrow)."""
        convert = getattr(self._table, "to_pandas", None)
        if callable(convert):
            return cast("pd.DataFrame", convert())
        _require("pandas", "to_pandas()", "pandas")
        return cast("pd.DataFrame", self._arrow_table("to_pandas()").to_pandas())

    def to_polars(self) -> pl.DataFrame:
        """The table as a ``polars.DataFrame`` (needs polars)."""
        convert = getattr(self._table, "to_polars", None)
        if callable(convert):
            return cast("pl.DataFrame", convert())
        polars = _require("polars", "to_polars()", "polars")
        return cast("pl.DataFrame", polars.DataFrame(self._table))

    # -- files ----------------------------------------------------------------------

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Writes the table (only the table) as Parquet (``.parquet``, ``.pq``) or CSV
        (``.csv``), chosen by the extension, in any case. Nulls are empty cells in CSV.

        Parquet is written by the compiled core (no pyarrow needed); CSV uses pyarrow, or
        polars when only polars is installed. Returns the path.

        Raises:
            ValueError: the extension is none of the above.
            ImportError: the library needed is not installed.
        """
        out = Path(os.fspath(path))
        kind = _FORMATS.get(out.suffix.lower())
        if kind is None:
            raise ValueError(
                f"cannot tell the format of {os.fspath(path)!r} from its extension: "
                f"use {', '.join(_FORMATS)}"
            )
        if kind == "parquet":
            _write_parquet(self._table, out)
            return out
        try:
            _require("pyarrow", "writing CSV", "pyarrow")
        except ImportError as no_pyarrow:
            try:
                frame = self.to_polars()
            except ImportError:
                raise ImportError(
                    "writing CSV needs pyarrow or polars: pip install crowdtally[pyarrow]"
                ) from no_pyarrow
            frame.write_csv(out, null_value="")
            return out
        csv = importlib.import_module("pyarrow.csv")
        csv.write_csv(self._arrow_table("writing CSV"), out)
        return out

    def write_report(self, path: str | os.PathLike[str]) -> Path:
        """Writes the report as JSON (indent 2, UTF-8). Returns the path."""
        out = Path(os.fspath(path))
        text = json.dumps(self._report, indent=2, ensure_ascii=False)
        out.write_text(text + "\n", encoding="utf-8")
        return out

    def report_html(
        self, path: str | os.PathLike[str], zone: str | None = None, max_rows: int = 200
    ) -> Path:
        """Writes a self-contained HTML report (one file, no external resources): the
        period, parameters, top-line numbers, three figures for ``zone`` (default: the
        zone with the most observed devices; figures need matplotlib, else a note says
        so), the quality report, disclosure counts, warnings, caveats, and the table's
        first ``max_rows`` rows. Needs pyarrow. Returns the path."""
        if max_rows < 0:
            raise ValueError(f"max_rows must be at least 0, got {max_rows}")
        out = Path(os.fspath(path))
        out.write_text(self._report_page(zone, max_rows), encoding="utf-8")
        return out

    # -- views ----------------------------------------------------------------------

    @property
    def plot(self) -> ReleasePlot:
        """Plots of the release (matplotlib figures): ``visitors_per_bucket``,
        ``top_origins``, ``dwell_bands``."""
        return ReleasePlot(self)

    def __repr__(self) -> str:
        parameters = self._parameters()
        classes = parameters.get("classes")
        disclosure = _mapping(self._report.get("disclosure"))
        return (
            f"Release(bucket={parameters.get('bucket')}, level={parameters.get('level')}, "
            f"classes={_join(classes) if classes is not None else None}: "
            f"{len(self)} rows, {disclosure.get('groups', '?')} groups, "
            f"{disclosure.get('groups_suppressed', '?')} suppressed)"
        )

    def _repr_html_(self) -> str:
        parameters = self._parameters()
        disclosure = _mapping(self._report.get("disclosure"))
        parts = [
            '<div class="crowdtally-release">',
            f"<p><strong>Release</strong>: {len(self):,} rows, "
            f"{_e(_count(disclosure.get('groups')))} groups, "
            f"{_e(_count(disclosure.get('groups_suppressed')))} suppressed "
            f"(k = {_e(_count(parameters.get('k')))})</p>",
            _kv_table(
                [
                    ("bucket", _text(parameters.get("bucket"))),
                    ("level", _text(parameters.get("level"))),
                    ("classes", _text(parameters.get("classes"))),
                    ("k", _text(parameters.get("k"))),
                    ("period", _period_text(parameters)),
                    ("tz", _text(parameters.get("tz"))),
                ]
            ),
            "<p><strong>Disclosure control</strong></p>",
            _disclosure_table(disclosure),
        ]
        try:
            lines = self._top_lines()
        except ImportError as missing:
            parts.append(f"<p><em>{_e(missing)}</em></p>")
        else:
            parts.append(f"<p><strong>Top-line numbers</strong> ({_e(self._top_note())})</p>")
            parts.append(self._top_table(lines[:_TOP_LINES]))
            if len(lines) > _TOP_LINES:
                parts.append(
                    f"<p>{_TOP_LINES} of {len(lines)} (zone, class) pairs shown, busiest first.</p>"
                )
            parts.append(f"<p><strong>First {_PREVIEW_ROWS} rows</strong></p>")
            parts.append(self._rows_table(_PREVIEW_ROWS))
        parts.append("<p><strong>Warnings</strong></p>")
        parts.append(_list_html(_strings(self._report.get("warnings")), "none"))
        parts.append("</div>")
        return "\n".join(parts)

    # -- internals ------------------------------------------------------------------

    def _parameters(self) -> Mapping[str, Any]:
        return _mapping(self._report.get("parameters"))

    def _bucket(self) -> str:
        return str(self._parameters().get("bucket") or "bucket")

    def _zone_name(self, zone: str) -> str:
        name = _mapping(self._report.get("zones")).get(zone)
        if name is None or str(name) == zone:
            return zone
        return f"{name} ({zone})"

    def _arrow_table(self, what: str) -> Any:
        """The table as a pyarrow Table, read once."""
        if self._arrow is None:
            pyarrow = _require("pyarrow", what, "pyarrow")
            self._arrow = pyarrow.table(self._table)
        return self._arrow

    def _rows(
        self,
        what: str,
        columns: Sequence[str] = COLUMNS,
        *,
        zone: str | None = None,
        class_: str | None = None,
        total: bool | None = None,
        bucket_start: str | None = None,
    ) -> list[dict[str, Any]]:
        """Rows as dicts, filtered in Arrow first (a release table can be long)."""
        table = self._arrow_table(what)
        compute = importlib.import_module("pyarrow.compute")
        mask = None
        for column, value in (("zone", zone), ("class", class_), ("bucket_start", bucket_start)):
            if value is not None:
                test = compute.equal(table[column], value)
                mask = test if mask is None else compute.and_(mask, test)
        if total is not None:
            test = (compute.equal if total else compute.not_equal)(table["origin"], TOTAL)
            mask = test if mask is None else compute.and_(mask, test)
        if mask is not None:
            table = table.filter(mask)
        return cast("list[dict[str, Any]]", table.select(list(columns)).to_pylist())

    def _default_class(self, what: str) -> str:
        classes = _strings(self._parameters().get("classes"))
        if "visitor" in classes:
            return "visitor"
        if classes:
            return classes[0]
        rows = self._rows(what, ["class"])
        if not rows:
            raise ValueError("the release is empty: nothing to plot")
        return str(rows[0]["class"])

    def _default_zone(self, what: str, class_: str) -> str:
        """The zone with the most observed devices summed over its released total rows
        (a device counts once per bucket); zones before categories."""
        seen: dict[str, int] = {}
        for row in self._rows(what, ["zone", "devices"], class_=class_, total=True):
            seen[row["zone"]] = seen.get(row["zone"], 0) + (row["devices"] or 0)
        if not seen:
            raise ValueError(f"the release has no rows of class {class_!r}")
        return min(seen, key=lambda zone: (zone.startswith("category:"), -seen[zone], zone))

    def _zone_totals(
        self, what: str, zone: str | None, class_: str | None
    ) -> tuple[str, str, list[dict[str, Any]]]:
        """The zone, class and total rows a plot is about, in table order."""
        cls = class_ if class_ is not None else self._default_class(what)
        chosen = zone if zone is not None else self._default_zone(what, cls)
        rows = self._rows(what, zone=chosen, class_=cls, total=True)
        if not rows:
            zones = sorted({str(row["zone"]) for row in self._rows(what, ["zone"], total=True)})
            shown = ", ".join(zones[:10]) + (", ..." if len(zones) > 10 else "")
            raise ValueError(
                f"no rows for zone {chosen!r} and class {cls!r} in the release "
                f"(zones: {shown or 'none'})"
            )
        return chosen, cls, rows

    def _top_lines(self) -> list[_TopLine]:
        what = "showing the rows"
        columns = ["zone", "class", "bucket_start", "suppressed", "devices", "visits"]
        columns += ["est_devices", "est_visits", "est_low", "est_high"]
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in self._rows(what, columns, total=True):
            groups.setdefault((row["zone"], row["class"]), []).append(row)
        lines = [_TopLine.of(zone, cls, rows) for (zone, cls), rows in groups.items()]
        lines.sort(key=lambda line: (-(line.devices or -1), line.zone, line.class_))
        return lines

    def _top_note(self) -> str:
        if self._bucket() == "period":
            return (
                "total rows; the whole period is one bucket, so devices are distinct over "
                "the period; busiest zones first"
            )
        return (
            f"total rows; devices are distinct within a {self._bucket()} and do not add up "
            "across buckets, so the busiest bucket of each zone is shown; visits are "
            "counted in the bucket where they start, so they add up over the released "
            "buckets (suppressed buckets left out); busiest zones first"
        )

    def _top_table(self, lines: Sequence[_TopLine]) -> str:
        per_period = self._bucket() == "period"
        header = [
            "zone",
            "class",
            "buckets (suppressed)",
            "period" if per_period else "busiest bucket",
            "devices observed",
            "people estimated (95% interval)",
            "visits observed",
            "visits estimated",
        ]
        rows = [
            [
                self._zone_name(line.zone),
                line.class_,
                f"{line.buckets:,} ({line.suppressed:,})",
                line.bucket_start or "",
                line.devices,
                _estimate(line.est_devices, line.est_low, line.est_high),
                line.visits,
                line.est_visits,
            ]
            for line in lines
        ]
        return _html_table(header, rows, _count)

    def _rows_table(self, limit: int) -> str:
        table = self._arrow_table("showing the rows")
        rows = table.slice(0, limit).to_pylist()
        return _html_table(COLUMNS, [[row.get(name) for name in COLUMNS] for row in rows], _raw)

    def _report_page(self, zone: str | None, max_rows: int) -> str:
        report = self._report
        parameters = self._parameters()
        label = parameters.get("period_label")
        period = _period_text(parameters)
        title = "Visitor statistics" + (f" {label}" if label else "")
        if isinstance(parameters.get("period"), Mapping):
            title += f", {period}"
            period += " (local dates, both included)"
        subtitle = f"Period: {period}; time zone {_text(parameters.get('tz'))}"
        body = [
            f"<h1>{_e(title)}</h1>",
            f"<p class='note'>{_e(subtitle)}; crowdtally {_e(_text(report.get('version')))}</p>",
            "<h2>Parameters</h2>",
            _kv_table([(str(key), _param_text(key, value)) for key, value in parameters.items()]),
            "<h2>Top-line numbers</h2>",
            f"<p class='note'>{_e(self._top_note().capitalize())}.</p>",
            self._top_table(self._top_lines()),
            "<h2>Figures</h2>",
            self._figures_html(zone),
            "<h2>Quality</h2>",
            self._quality_html(),
            "<h2>Disclosure control</h2>",
            _disclosure_table(_mapping(report.get("disclosure"))),
            "<h2>Warnings</h2>",
            _list_html(_strings(report.get("warnings")), "none"),
            "<h2>Caveats</h2>",
            _list_html(_strings(report.get("caveats")), "none"),
            "<h2>Release table</h2>",
        ]
        shown = min(max_rows, len(self))
        if shown < len(self):
            body.append(
                f"<p class='note'>The first {shown:,} of {len(self):,} rows; the full table is "
                "in the release file.</p>"
            )
        body.append(self._rows_table(max_rows))
        return _PAGE.format(title=_e(title), style=_STYLE, body="\n".join(body))

    def _figures_html(self, zone: str | None) -> str:
        try:
            importlib.import_module("matplotlib")
        except ImportError:
            return (
                "<p class='note'>Figures need matplotlib, which is not installed: "
                "pip install crowdtally[plot]</p>"
            )
        if len(self) == 0:
            return "<p class='note'>The release is empty: no figures.</p>"
        plot = self.plot
        chosen = (
            zone
            if zone is not None
            else self._default_zone("plotting", self._default_class("plotting"))
        )
        parts = [f"<p class='note'>Zone: {_e(self._zone_name(chosen))}.</p>"]
        figures = [
            ("people per bucket", plot.visitors_per_bucket(chosen)),
            ("origins", plot.top_origins(chosen)),
            ("dwell bands", plot.dwell_bands(chosen)),
        ]
        for alt, figure in figures:
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
            data = base64.b64encode(buffer.getvalue()).decode("ascii")
            parts.append(
                f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></figure>'
            )
        return "\n".join(parts)

    def _quality_html(self) -> str:
        report = self._report
        pings = _mapping(report.get("pings"))
        dropped = _mapping(pings.get("dropped"))
        opt_out = _mapping(report.get("opt_out"))
        devices = _mapping(report.get("devices"))
        by_class = _mapping(devices.get("by_class"))
        extrapolation = _mapping(report.get("extrapolation"))
        rows: list[tuple[str, str]] = [
            ("pings read", _count(pings.get("read"))),
            ("pings kept", _count(pings.get("kept"))),
        ]
        rows += [(f"pings dropped: {reason}", _count(n)) for reason, n in dropped.items()]
        rows += [
            ("opt-out: pings", _count(opt_out.get("pings"))),
            ("opt-out: subscribers", _count(opt_out.get("subscribers"))),
            ("pseudonym collisions", _count(report.get("pseudonym_collisions"))),
            ("devices", _count(devices.get("total"))),
        ]
        rows += [(f"devices: {cls}", _count(n)) for cls, n in by_class.items()]
        rows += [
            ("devices: roamers", _count(devices.get("roamers"))),
            ("domestic devices with unknown home", _count(devices.get("domestic_unknown_home"))),
            ("subscribers (extrapolation)", _text(extrapolation.get("subscribers"))),
            ("subscribers total", _count(extrapolation.get("subscribers_total"))),
            ("national factor", _text(extrapolation.get("national_factor"))),
        ]
        return _kv_table(rows)


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


@dataclass(frozen=True)
class _TopLine:
    """Top-line numbers of one (zone, class): its busiest released bucket and the visits
    summed over the released buckets."""

    zone: str
    class_: str
    buckets: int
    suppressed: int
    bucket_start: str | None
    devices: int | None
    est_devices: float | None
    est_low: float | None
    est_high: float | None
    visits: int
    est_visits: float | None

    @classmethod
    def of(cls, zone: str, class_: str, rows: Sequence[Mapping[str, Any]]) -> _TopLine:
        released = [row for row in rows if not row["suppressed"] and row["devices"] is not None]
        peak = max(released, key=lambda row: row["devices"], default=None)
        estimates = [row["est_visits"] for row in released]
        return cls(
            zone=zone,
            class_=class_,
            buckets=len(rows),
            suppressed=len(rows) - len(released),
            bucket_start=None if peak is None else peak["bucket_start"],
            devices=None if peak is None else peak["devices"],
            est_devices=None if peak is None else peak["est_devices"],
            est_low=None if peak is None else peak["est_low"],
            est_high=None if peak is None else peak["est_high"],
            visits=sum(row["visits"] or 0 for row in released),
            est_visits=(sum(estimates) if released and None not in estimates else None),
        )


# -- helpers --------------------------------------------------------------------------


def _require(module: str, what: str, extra: str) -> Any:
    """Imports an optional dependency, or says which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as missing:
        raise ImportError(
            f"{what} needs {module}, which is not installed: pip install crowdtally[{extra}]"
        ) from missing


def _figure() -> tuple[Figure, Axes]:
    # The parent package first: a blocked `matplotlib` must not hide behind a cached
    # `matplotlib.figure`.
    _require("matplotlib", "plotting", "plot")
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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def _join(values: Any) -> str:
    return ",".join(_strings(values))


def _e(value: object) -> str:
    return html.escape(str(value))


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{key}: {_text(item)}" for key, item in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value) or "none"
    return str(value)


def _param_text(key: str, value: Any) -> str:
    if key == "period":
        return _period_text({"period": value})
    if key == "max_gap" or key == "min_dwell":
        return f"{_text(value)} s"
    return _text(value)


def _period_text(parameters: Mapping[str, Any]) -> str:
    """``start to last day`` (the period's end date is excluded, method §1.4)."""
    period = parameters.get("period")
    if not isinstance(period, Mapping):
        return "not given (the days of the data)"
    start, end = period.get("start"), period.get("end")
    try:
        last = dt.date.fromisoformat(str(end)) - dt.timedelta(days=1)
    except ValueError:
        return f"{start} to {end} (end excluded)"
    return f"{start} to {last.isoformat()}"


def _count(value: Any) -> str:
    """A number for people: thousands separated, estimates rounded; null is ``n/a``."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if math.isfinite(value) else str(value)
    return str(value)


def _raw(value: Any) -> str:
    """A table cell as in the CSV: null is empty, booleans are ``true``/``false``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _estimate(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return "n/a"
    if low is None or high is None:
        return _count(value)
    return f"{_count(value)} ({_count(low)} to {_count(high)})"


def _html_table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], format_cell: Callable[[Any], str] = _raw
) -> str:
    head = "".join(f"<th>{_e(name)}</th>" for name in header)
    lines = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for row in rows:
        cells = []
        for value in row:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            attribute = ' class="num"' if number else ""
            text = format_cell(value) if not isinstance(value, str) else value
            cells.append(f"<td{attribute}>{_e(text)}</td>")
        lines.append(f"<tr>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _kv_table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>" for key, value in rows)
    return f"<table><tbody>{body}</tbody></table>"


def _disclosure_table(disclosure: Mapping[str, Any]) -> str:
    return _kv_table(
        [
            ("k", _count(disclosure.get("k"))),
            ("groups", _count(disclosure.get("groups"))),
            ("groups suppressed", _count(disclosure.get("groups_suppressed"))),
            ("rows released", _count(disclosure.get("rows_released"))),
            ("origin rows rolled up", _count(disclosure.get("origin_rows_rolled_up"))),
            (
                "origin rows moved into the residual",
                _count(disclosure.get("origin_rows_moved_to_residual")),
            ),
        ]
    )


def _list_html(items: Sequence[str], empty: str) -> str:
    if not items:
        return f"<p class='note'>{_e(empty)}</p>"
    return "<ul>" + "".join(f"<li>{_e(item)}</li>" for item in items) + "</ul>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { margin-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: #f2f2f2; }
.note { color: #555; }
figure { margin: 1em 0; }
img { max-width: 100%; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
{body}
</body>
</html>
"""


def _as_dict(value: Any) -> Any:
    """A mapping as a dict (the core takes dicts); anything else as it is, so the core
    rejects it with an error naming the parameter."""
    return dict(value) if isinstance(value, Mapping) else value


def analyze(
    pings: Any,
    geography: Geography,
    config: Config,
    bucket: str = "period",
    level: str | None = None,
    classes: str | Sequence[str] = ("visitor",),
    subscribers: Mapping[str, int] | None = None,
    roaming_factors: Mapping[str, float] | None = None,
    *,
    roll_up: bool = True,
    columns: Mapping[str, str] | None = None,
    threads: int | None = None,
    memory_limit: int | str | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    progress: bool | Callable[[Progress], object] | None = None,
) -> Release:
    """Runs the whole method (§2-9) on pings and returns the protected release.

    ``pings`` is anything :func:`crowdtally.prepare` takes: a Parquet path, a glob pattern
    or a list of them (read by the core, no pyarrow needed), an Arrow stream (pulled batch
    by batch), an iterator of Arrow record batches (pulled one by one), a pyarrow, pandas,
    polars or DuckDB table, a dict of columns; or a :class:`crowdtally.Prepared`.

    - ``bucket``: ``hour``, ``day``, ``week``, ``month``, ``quarter`` or ``period``
      (local calendar intervals, DST-correct).
    - ``level``: the origin level, a level name of the region tree (default: the leaves).
    - ``classes``: ``visitor`` (default), or its parts ``overnight_visitor`` and
      ``day_visitor``, and ``resident`` and ``regular`` on request.
    - ``subscribers``: the operator's subscribers per leaf region (from billing); by
      default detected as the devices whose home is there.
    - ``roaming_factors``: the expansion factor per roamer country (``{"FR": 3.3}``);
      rows with roamers of a country without one have no estimates.
    - ``roll_up``: pool origin rows below k up the region tree before the residual.
    - ``columns``: your column names for the roles ``subscriber``, ``ts``, ``lat``,
      ``lon``, ``cell``, ``country``.
    - ``threads``: threads (None or 0: one per core).
    - ``memory_limit``: the memory budget, in bytes or as a size (``"4GiB"``); default half
      of the machine's memory. Pings beyond it are spilled to disk by device and analysed
      shard by shard, with the same result.
    - ``spill_dir``: where spill files go (default: the system's temporary directory).
      They are removed when the run ends, also on an error or Ctrl-C.
    - ``progress``: ``True`` shows a progress bar (needs tqdm; in Jupyter and in a
      terminal), or a callable receives every :class:`crowdtally.Progress` event. An
      exception it raises stops the run and is raised from here. Ctrl-C stops a run
      within about a second in any case.

    Raises :class:`crowdtally.ConfigError` (with ``.field``) for an invalid parameter
    before any work, and :class:`crowdtally.InputError` for unreadable pings.
    """
    table, report = _native_analyze(
        pings,
        geography,
        config,
        bucket=bucket,
        level=level,
        classes=classes,
        subscribers=_as_dict(subscribers),
        roaming_factors=_as_dict(roaming_factors),
        roll_up=roll_up,
        columns=columns,
        threads=threads,
        memory_limit=memory_limit,
        spill_dir=spill_dir,
        # The bar is made here so that a warning about tqdm points at the caller.
        progress=progress_bar(stacklevel=3) if progress is True else progress,
    )
    return Release(table, report)
