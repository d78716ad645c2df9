"""The result of an analysis: the release table and its quality report.

``crowdtally.analyze(...)`` (or ``Study.release``) returns a :class:`Release`: the release
table (method §6-8: one total row per (zone, bucket, class) group, then its released
origin rows, with disclosure control applied) and the quality and privacy report
(method §9)::

    release = crowdtally.analyze(...)
    release.write("2026Q3.parquet")  # the table, with the report in the file's metadata
    crowdtally.Release.read("2026Q3.parquet")  # the same release back
    release.write_report("2026Q3.json")  # the report, as JSON
    release.report_html("2026Q3.html")  # one self-contained page for readers
    release.plot.visitors_per_bucket("grote-markt")  # a matplotlib Figure

A release is the one object meant for publication: it exports the Arrow PyCapsule
interface (``pyarrow.table(release)``, ``polars.DataFrame(release)``, DuckDB), and it
pickles. Everything shown or written here comes from the table and the report: the
release holds no subscriber id and no key, and nothing here adds one.

Writing and reading Parquet needs nothing more. Reading the rows (previews, plots,
``report_html``, CSV) needs pyarrow (``pip install crowdtally[pyarrow]``; CSV falls back
to polars when only polars is installed); plots need matplotlib
(``pip install crowdtally[plot]``).
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from crowdtally._crowdtally import read_parquet_table, table_from_ipc, table_to_ipc
from crowdtally._crowdtally import write_parquet as _write_parquet
from crowdtally._result import TableWithReport
from crowdtally._schema import BANDS, COLUMNS, ESTIMATES, LABEL_COLUMNS, TOTAL
from crowdtally._util import join, mapping, require, strings

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from crowdtally._crowdtally import Geography
    from crowdtally._plots import ReleasePlot
    from crowdtally.risk import Risk
    from crowdtally.spend import Spend

__all__ = [
    "BANDS",
    "COLUMNS",
    "LABEL_COLUMNS",
    "REPORT_METADATA_KEY",
    "TOTAL",
    "ArrowStreamTable",
    "CrowdtallyWarning",
    "Release",
]

REPORT_METADATA_KEY = "crowdtally.report"
"""The key of the report (JSON) in a release file's schema metadata."""

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


class CrowdtallyWarning(UserWarning):
    """A warning of a release's report (``release.report["warnings"]``), raised when the
    release is made: a drop reason taking many pings, pings outside the geography or its
    zones, zones without cells, estimates left empty, an empty input."""


class ArrowStreamTable(Protocol):
    """Anything exporting a table through the Arrow PyCapsule interface, with a length
    (``crowdtally.Table``, ``pyarrow.Table``, ``polars.DataFrame``, ...)."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

    def __len__(self) -> int: ...


class Release(TableWithReport):
    """A release: the table (``.table``) and its quality report (``.report``, a dict).

    The table has the columns of :data:`COLUMNS`; the report has the shape of method §9
    (``parameters``, ``pings``, ``opt_out``, ``devices``, ``disclosure``,
    ``extrapolation``, ``zones``, ``warnings``, ``caveats``, ...). It exports the Arrow
    PyCapsule interface: ``pyarrow.table(release)``, ``polars.DataFrame(release)`` and
    DuckDB read a release directly.
    """

    __slots__ = ("_arrow",)

    def __init__(self, table: ArrowStreamTable, report: dict[str, Any]) -> None:
        super().__init__(table, report)
        names = getattr(table, "column_names", None)
        if (
            isinstance(names, Sequence)
            and not isinstance(names, str)
            and tuple(names) not in (COLUMNS, COLUMNS + LABEL_COLUMNS)
        ):
            raise ValueError(
                f"the release table must have the columns {', '.join(COLUMNS)} in this "
                f"order (and then {', '.join(LABEL_COLUMNS)}), got {', '.join(map(str, names))}"
            )
        self._arrow: Any = None

    # -- the data -------------------------------------------------------------------

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
        require("pandas", "to_pandas()", "pandas")
        return cast("pd.DataFrame", self._arrow_table("to_pandas()").to_pandas())

    def to_polars(self) -> pl.DataFrame:
        """The table as a ``polars.DataFrame`` (needs polars)."""
        convert = getattr(self._table, "to_polars", None)
        if callable(convert):
            return cast("pl.DataFrame", convert())
        polars = require("polars", "to_polars()", "polars")
        return cast("pl.DataFrame", polars.DataFrame(self._table))

    # -- pickling -------------------------------------------------------------------

    def __reduce__(self) -> tuple[Any, tuple[bytes, dict[str, Any]]]:
        # A release is publishable: it pickles as its table (Arrow IPC) and its report.
        return (_restore, (table_to_ipc(self._table), self._report))

    # -- files ----------------------------------------------------------------------

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Writes the table as Parquet (``.parquet``, ``.pq``), with the report in the
        file's schema metadata (so that :meth:`Release.read` restores both), or as CSV
        (``.csv``, the table only), chosen by the extension, in any case. Nulls are empty
        cells in CSV, and estimates are rounded to whole people there (Parquet keeps them
        exact).

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
            report = json.dumps(self._report, ensure_ascii=False)
            _write_parquet(self._table, out, {REPORT_METADATA_KEY: report})
            return out
        try:
            require("pyarrow", "writing CSV", "pyarrow")
        except ImportError as no_pyarrow:
            try:
                frame = self.to_polars()
            except ImportError:
                raise ImportError(
                    "writing CSV needs pyarrow or polars: pip install crowdtally[pyarrow]"
                ) from no_pyarrow
            polars = importlib.import_module("polars")
            present = [name for name in ESTIMATES if name in frame.columns]
            frame = frame.with_columns(polars.col(present).round(0).cast(polars.Int64))
            frame.write_csv(out, null_value="")
            return out
        csv = importlib.import_module("pyarrow.csv")
        compute = importlib.import_module("pyarrow.compute")
        table = self._arrow_table("writing CSV")
        for name in ESTIMATES:
            if name in table.column_names:
                index = table.column_names.index(name)
                whole = compute.round(table[name], 0, round_mode="half_to_even")
                table = table.set_column(index, name, compute.cast(whole, "int64"))
        csv.write_csv(table, out)
        return out

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Release:
        """The release written by :meth:`Release.write` as Parquet: its table and its
        report (read by the core; no pyarrow needed).

        Raises:
            crowdtally.InputError: the file is missing, not Parquet, or not a release
                (its columns, or no report in its metadata); the error names the file.
        """
        where = os.fspath(path)
        table, metadata = read_parquet_table(Path(where), "release")
        text = metadata.get(REPORT_METADATA_KEY)
        if text is None:
            raise _input_error(
                where, "holds no crowdtally report: it was not written by Release.write"
            )
        try:
            report = json.loads(text)
        except json.JSONDecodeError as damaged:
            raise _input_error(where, "holds a damaged crowdtally report") from damaged
        if tuple(table.column_names) not in (COLUMNS, COLUMNS + LABEL_COLUMNS):
            raise _input_error(where, "does not have the columns of a release table")
        return cls(table, report)

    def write_report(self, path: str | os.PathLike[str]) -> Path:
        """Writes the report as JSON (indent 2, UTF-8). Returns the path."""
        out = Path(os.fspath(path))
        text = json.dumps(self._report, indent=2, ensure_ascii=False)
        out.write_text(text + "\n", encoding="utf-8")
        return out

    def report_html(
        self,
        path: str | os.PathLike[str],
        zone: str | None = None,
        max_rows: int = 200,
        *,
        geography: Geography | None = None,
        spend: Spend | None = None,
        risk: Risk | None = None,
    ) -> Path:
        """Writes a self-contained HTML report (one file, no external resources) for a
        reader who is not a developer: the report's warnings and a summary in plain
        words first (how many people, from where, for how long, how sure), then every
        zone at a glance, small multiples of every zone and of every category, a map of
        the zones, ``zone`` in detail (default: the busiest zone; where its visitors came
        from, on a map too, and how long they stayed), what limits the figures, the
        table's first ``max_rows`` rows with names and dates for people, and in an
        appendix the settings and the quality and privacy report, each explained.

        The release does not hold its geography: give ``geography`` (the study's
        ``Geography``) to draw the maps and to flag zones too small for the position
        error of phones. Give ``spend`` (``crowdtally.spend`` of this release) to add
        where visitors spend: card spend and spend per visitor by zone and, for
        ``zone``, by type of shop, what was withheld to protect the shops, and what card
        spend does not tell. Give ``risk`` (``crowdtally.risk`` of the prepared pings this
        release was made from) to add, before the appendix, how unique the traces behind
        the figures are, for a data protection officer: how many phones a few places and
        times single out, and their home and work regions and their visits, in counts and
        shares only, and what that means for the per-phone data. Figures need matplotlib
        and maps the ``h3`` package; without them the page says so. Needs pyarrow.
        Returns the path.

        Raises:
            ValueError: ``max_rows`` is negative, or ``spend`` was joined to another
                release (another bucket, period, time zone or origin level).
            TypeError: ``spend`` is not a ``crowdtally.Spend``, or ``risk`` not a
                ``crowdtally.Risk``.
        """
        from crowdtally._html import report_page
        from crowdtally.risk import Risk
        from crowdtally.spend import Spend

        if max_rows < 0:
            raise ValueError(f"max_rows must be at least 0, got {max_rows}")
        if spend is not None and not isinstance(spend, Spend):
            raise TypeError(f"spend must be a crowdtally.Spend, got {type(spend).__name__}")
        if risk is not None and not isinstance(risk, Risk):
            raise TypeError(f"risk must be a crowdtally.Risk, got {type(risk).__name__}")
        out = Path(os.fspath(path))
        page = report_page(self, zone, max_rows, geography, spend, risk)
        out.write_text(page, encoding="utf-8")
        return out

    # -- views ----------------------------------------------------------------------

    @property
    def plot(self) -> ReleasePlot:
        """Plots of the release (matplotlib figures): ``visitors_per_bucket``,
        ``top_origins``, ``dwell_bands``."""
        from crowdtally._plots import ReleasePlot

        return ReleasePlot(self)

    def __repr__(self) -> str:
        # The report's warnings come first: they are what a reader must not miss.
        parameters = self._parameters()
        classes = parameters.get("classes")
        disclosure = mapping(self._report.get("disclosure"))
        privacy = mapping(self._report.get("privacy"))
        if privacy.get("mode") == "differential_privacy":
            protection = f"differential privacy, rho={privacy.get('rho', '?')}"
        else:
            protection = (
                f"{disclosure.get('groups', '?')} groups, "
                f"{disclosure.get('groups_suppressed', '?')} suppressed"
            )
        lines = [f"warning: {warning}" for warning in strings(self._report.get("warnings"))]
        lines.append(
            f"Release(bucket={parameters.get('bucket')}, level={parameters.get('level')}, "
            f"classes={join(classes) if classes is not None else None}: "
            f"{len(self)} rows, {protection})"
        )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from crowdtally._html import repr_html

        return repr_html(self)

    # -- what the views read ----------------------------------------------------------

    def _parameters(self) -> Mapping[str, Any]:
        return mapping(self._report.get("parameters"))

    def _bucket(self) -> str:
        return str(self._parameters().get("bucket") or "bucket")

    def _zone_name(self, zone: str) -> str:
        name = mapping(self._report.get("zones")).get(zone)
        if name is None or str(name) == zone:
            return zone
        return f"{name} ({zone})"

    def _arrow_table(self, what: str) -> Any:
        """The table as a pyarrow Table, read once."""
        if self._arrow is None:
            pyarrow = require("pyarrow", what, "pyarrow")
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
        classes = strings(self._parameters().get("classes"))
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


def _restore(ipc: bytes, report: dict[str, Any]) -> Release:
    """A pickled release back: its table from Arrow IPC, and its report."""
    return Release(table_from_ipc(ipc, "release"), report)


def _input_error(path: str, message: str) -> Exception:
    from crowdtally._crowdtally import InputError

    error = InputError(f"cannot read `{path}`: {message}")
    error.field = path
    return error
