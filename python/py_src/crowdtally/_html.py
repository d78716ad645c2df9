"""The HTML views of a release: the self-contained report page (``report_html``) and the
notebook summary (``_repr_html_``), drawn from the release table and its report only."""

from __future__ import annotations

import base64
import datetime as dt
import html
import importlib
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crowdtally._schema import COLUMNS
from crowdtally._util import mapping, strings

if TYPE_CHECKING:
    from crowdtally.release import Release

__all__ = ["report_page", "repr_html"]

_PREVIEW_ROWS = 10
_TOP_LINES = 5


def _top_lines(release: Release) -> list[_TopLine]:
    what = "showing the rows"
    columns = ["zone", "class", "bucket_start", "suppressed", "devices", "visits"]
    columns += ["est_devices", "est_visits", "est_low", "est_high"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in release._rows(what, columns, total=True):
        groups.setdefault((row["zone"], row["class"]), []).append(row)
    lines = [_TopLine.of(zone, cls, rows) for (zone, cls), rows in groups.items()]
    lines.sort(key=lambda line: (-(line.devices or -1), line.zone, line.class_))
    return lines


def _top_note(release: Release) -> str:
    if release._bucket() == "period":
        return (
            "total rows; the whole period is one bucket, so devices are distinct over "
            "the period; busiest zones first"
        )
    return (
        f"total rows; devices are distinct within a {release._bucket()} and do not add up "
        "across buckets, so the busiest bucket of each zone is shown; visits are "
        "counted in the bucket where they start, so they add up over the released "
        "buckets (suppressed buckets left out); busiest zones first"
    )


def _top_table(release: Release, lines: Sequence[_TopLine]) -> str:
    per_period = release._bucket() == "period"
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
            release._zone_name(line.zone),
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


def _rows_table(release: Release, limit: int) -> str:
    table = release._arrow_table("showing the rows")
    rows = table.slice(0, limit).to_pylist()
    return _html_table(COLUMNS, [[row.get(name) for name in COLUMNS] for row in rows], _raw)


def report_page(release: Release, zone: str | None, max_rows: int) -> str:
    """The self-contained HTML page of `Release.report_html`."""
    report = release.report
    parameters = release._parameters()
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
        f"<p class='note'>{_e(_top_note(release).capitalize())}.</p>",
        _top_table(release, _top_lines(release)),
        "<h2>Figures</h2>",
        _figures_html(release, zone),
        "<h2>Quality</h2>",
        _quality_html(release),
        *_protection_html(report),
        "<h2>Warnings</h2>",
        _list_html(strings(report.get("warnings")), "none"),
        "<h2>Caveats</h2>",
        _list_html(strings(report.get("caveats")), "none"),
        "<h2>Release table</h2>",
    ]
    shown = min(max_rows, len(release))
    if shown < len(release):
        body.append(
            f"<p class='note'>The first {shown:,} of {len(release):,} rows; the full table is "
            "in the release file.</p>"
        )
    body.append(_rows_table(release, max_rows))
    return _PAGE.format(title=_e(title), style=_STYLE, body="\n".join(body))


def _figures_html(release: Release, zone: str | None) -> str:
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        return (
            "<p class='note'>Figures need matplotlib, which is not installed: "
            "pip install crowdtally[plot]</p>"
        )
    if len(release) == 0:
        return "<p class='note'>The release is empty: no figures.</p>"
    plot = release.plot
    chosen = (
        zone
        if zone is not None
        else release._default_zone("plotting", release._default_class("plotting"))
    )
    parts = [f"<p class='note'>Zone: {_e(release._zone_name(chosen))}.</p>"]
    figures = [
        ("people per bucket", plot.visitors_per_bucket(chosen)),
        ("origins", plot.top_origins(chosen)),
        ("dwell bands", plot.dwell_bands(chosen)),
    ]
    for alt, figure in figures:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        parts.append(f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></figure>')
    return "\n".join(parts)


def _quality_html(release: Release) -> str:
    report = release.report
    pings = mapping(report.get("pings"))
    dropped = mapping(pings.get("dropped"))
    opt_out = mapping(report.get("opt_out"))
    devices = mapping(report.get("devices"))
    by_class = mapping(devices.get("by_class"))
    extrapolation = mapping(report.get("extrapolation"))
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
        ("national factor", _text(extrapolation.get("national_factor"))),
    ]
    return _kv_table(rows)


def repr_html(release: Release) -> str:
    """The notebook view of a release (`Release._repr_html_`)."""
    parameters = release._parameters()
    disclosure = mapping(release.report.get("disclosure"))
    privacy = mapping(release.report.get("privacy"))
    if privacy.get("mode") == "differential_privacy":
        sigma = _number(mapping(privacy.get("sigma")).get("devices"))
        headline = (
            f"differential privacy, rho = {_e(_text(privacy.get('rho')))}, "
            f"noise sigma of devices {_e(sigma)}"
        )
    else:
        headline = (
            f"{_e(_count(disclosure.get('groups')))} groups, "
            f"{_e(_count(disclosure.get('groups_suppressed')))} suppressed "
            f"(k = {_e(_count(parameters.get('k')))})"
        )
    parts = [
        '<div class="crowdtally-release">',
        f"<p><strong>Release</strong>: {len(release):,} rows, {headline}</p>",
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
        *_protection_html(release.report, _strong),
    ]
    try:
        lines = _top_lines(release)
    except ImportError as missing:
        parts.append(f"<p><em>{_e(missing)}</em></p>")
    else:
        parts.append(f"<p><strong>Top-line numbers</strong> ({_e(_top_note(release))})</p>")
        parts.append(_top_table(release, lines[:_TOP_LINES]))
        if len(lines) > _TOP_LINES:
            parts.append(
                f"<p>{_TOP_LINES} of {len(lines)} (zone, class) pairs shown, busiest first.</p>"
            )
        parts.append(f"<p><strong>First {_PREVIEW_ROWS} rows</strong></p>")
        parts.append(_rows_table(release, _PREVIEW_ROWS))
    parts.append("<p><strong>Warnings</strong></p>")
    parts.append(_list_html(strings(release.report.get("warnings")), "none"))
    parts.append("</div>")
    return "\n".join(parts)


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
            (
                "of which with a suppressed member zone",
                _count(disclosure.get("groups_suppressed_as_unions")),
            ),
            ("rows released", _count(disclosure.get("rows_released"))),
            ("origin rows rolled up", _count(disclosure.get("origin_rows_rolled_up"))),
            (
                "origin rows moved into the residual",
                _count(disclosure.get("origin_rows_moved_to_residual")),
            ),
            ("dwell bands withheld", _count(disclosure.get("bands_withheld"))),
        ]
    )


def _h2(title: str) -> str:
    return f"<h2>{_e(title)}</h2>"


def _strong(title: str) -> str:
    return f"<p><strong>{_e(title)}</strong></p>"


def _protection_html(report: Mapping[str, Any], heading: Callable[[str], str] = _h2) -> list[str]:
    """The section on how the table is protected: its k-anonymity counts, or the
    differential privacy it carries, and the ledger's account of the period."""
    privacy = mapping(report.get("privacy"))
    if privacy.get("mode") == "differential_privacy":
        parts = [heading("Differential privacy"), _dp_table(privacy)]
    else:
        parts = [
            heading("Disclosure control (k-anonymity)"),
            _disclosure_table(mapping(report.get("disclosure"))),
        ]
    parts.append(_ledger_html(privacy))
    return parts


def _dp_table(privacy: Mapping[str, Any]) -> str:
    sigma = mapping(privacy.get("sigma"))
    bounds = mapping(privacy.get("bounds"))
    dropped = mapping(privacy.get("dropped_by_bounding"))
    return _kv_table(
        [
            ("rho (zCDP) of this release", _text(privacy.get("rho"))),
            (
                "epsilon at delta",
                f"{_number(privacy.get('epsilon'))} at {_text(privacy.get('delta'))}",
            ),
            *(
                (f"noise sigma of {measure}", _number(sigma.get(measure)))
                for measure in ("devices", "visits", "dwell_s", "bands")
            ),
            ("most (zone, bucket) pairs a device counts in", _count(bounds.get("max_partitions"))),
            ("most visits a device counts in a pair", _count(bounds.get("max_visits"))),
            ("most dwell a device counts in a pair", f"{_count(bounds.get('max_dwell_s'))} s"),
            ("declared countries", _text(privacy.get("countries"))),
            ("pairs dropped by the bounds", _count(dropped.get("pairs"))),
            ("visits dropped by the bounds", _count(dropped.get("visits"))),
        ]
    )


def _ledger_html(privacy: Mapping[str, Any]) -> str:
    ledger = privacy.get("ledger")
    differencing = (
        " Another cut of the period was allowed (allow_differencing)."
        if privacy.get("allow_differencing")
        else ""
    )
    if not isinstance(ledger, Mapping):
        return f"<p class='note'>No ledger records the releases of this period.{differencing}</p>"
    spent, remaining = _number(ledger.get("spent_rho")), _number(ledger.get("remaining_rho"))
    return (
        f"<p class='note'>The ledger records {_count(ledger.get('releases'))} release(s) of "
        f"{_e(_text(ledger.get('period_label')))}; rho spent {_e(spent)}, "
        f"remaining {_e(remaining)}.{_e(differencing)}</p>"
    )


def _number(value: Any) -> str:
    """A measured real for people: three significant digits; null is ``n/a``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return "n/a"


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
