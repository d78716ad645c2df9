"""The HTML views of a release: the self-contained report page (``report_html``), written
for a reader who is not a developer (a city official), and the notebook summary
(``_repr_html_``); both drawn from the release table and its report only, and the page's
maps from the geography when one is given."""

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

from crowdtally._plots import (
    CATEGORY_PREFIX,
    GeographyShapes,
    Measure,
    Names,
    ZoneSeries,
    bucket_text,
    date_range,
    origin_sums,
    plural,
    short_date,
    suppression_k,
    zone_series,
)
from crowdtally._schema import BANDS, COLUMNS, TOTAL
from crowdtally._util import mapping, require, strings

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from crowdtally._crowdtally import Geography
    from crowdtally.release import Release
    from crowdtally.risk import Risk
    from crowdtally.spend import Spend

__all__ = ["report_page", "repr_html"]

_PREVIEW_ROWS = 10
_TOP_LINES = 5

# Zones narrower than this are flagged as likely undercounted. On the synthetic city of
# the method's accuracy section (150 m of position error), zones a few hundred metres
# across came out 10-37 % low, one of 1.5 km within 1 %.
_SMALL_ZONE_M = 1000.0

_WHAT = "writing the HTML report"


# -- the report page ------------------------------------------------------------------------


def report_page(
    release: Release,
    zone: str | None,
    max_rows: int,
    geography: Geography | None = None,
    spend: Spend | None = None,
    risk: Risk | None = None,
) -> str:
    """The self-contained HTML page of `Release.report_html`, with where visitors spend
    when ``spend`` (a spend table joined to this release) is given, and how unique the
    traces behind it are when ``risk`` (the audit of the pings it was made from) is."""
    return _Page(release, zone, geography, spend, risk).html(max_rows)


class _Page:
    """The report page: what it reads from the release once, and its sections in the
    order a reader meets them."""

    def __init__(
        self,
        release: Release,
        zone: str | None,
        geography: Geography | None,
        spend: Spend | None = None,
        risk: Risk | None = None,
    ) -> None:
        self.release = release
        self.report = release.report
        self.parameters = release._parameters()
        self.kind = release._bucket()
        self.k = suppression_k(release)
        self.dp = mapping(self.report.get("privacy")).get("mode") == "differential_privacy"
        self.geography = geography
        self.shapes: GeographyShapes | None = None
        self.map_note = ""
        if geography is None:
            self.map_note = (
                "No map: the release does not hold the geography. Pass it to draw the zones "
                "and where visitors came from: release.report_html(path, geography=...)."
            )
        else:
            try:
                self.shapes = GeographyShapes(geography)
            except ImportError as missing:
                self.map_note = f"No map: {missing}."
        self.names = Names(release, self.shapes.region_names if self.shapes else None)
        self.empty = len(release) == 0
        self.classes = _classes(release)
        self.class_ = self.classes[0] if self.classes else "visitor"
        self.measure = Measure("est_devices", True) if self.empty else Measure.of(release)
        self.series = [] if self.empty else zone_series(release, self.class_)
        self.zones = [s for s in self.series if not s.is_category]
        self.categories = [s for s in self.series if s.is_category]
        self.zone = zone if zone is not None else self._busiest_zone()
        self.spend = None if spend is None else _SpendSection(self, spend)
        self.risk = None if risk is None else _RiskSection(self, risk)

    # -- reading ------------------------------------------------------------------------

    def _busiest_zone(self) -> str | None:
        ranked = [s for s in self.zones if s.peak_value(self.measure) is not None]
        if ranked:
            return max(ranked, key=lambda s: s.peak_value(self.measure) or 0.0).zone
        if not self.series:
            return None
        return self.release._default_zone("showing the figures", self.class_)

    def _people(self) -> str:
        return plural(self.class_) if self.measure.estimated else "devices"

    def _withheld(self) -> str:
        return "suppressed" if self.k is None else f"suppressed (fewer than {self.k} devices)"

    def _width(self, zone: str) -> float | None:
        return None if self.shapes is None else self.shapes.zone_width_m(zone)

    def _small(self, zone: str) -> bool:
        width = self._width(zone)
        return width is not None and width < _SMALL_ZONE_M

    # -- the page -----------------------------------------------------------------------

    def html(self, max_rows: int) -> str:
        label = self.parameters.get("period_label")
        title = "Visitor statistics" + (f" {label}" if label else "")
        body = [
            "<header>",
            f"<h1>{_e(title)}</h1>",
            f"<p class='period'>{_e(self._period_line())}</p>",
            self._warnings(),
            "</header>",
            "<main>",
            "<section id='summary' aria-label='Summary'>",
            f"<p class='summary'>{_e(self._summary())}</p>",
            "</section>",
            *self._glance(),
            *self._figures(),
            *self._maps(),
            *self._zone_detail(),
            *(self.spend.html() if self.spend is not None else []),
            *self._how_sure(),
            *self._full_table(max_rows),
            *(self.risk.html() if self.risk is not None else []),
            *self._appendix(),
            "</main>",
        ]
        return _PAGE.format(title=_e(title), style=_STYLE, body="\n".join(b for b in body if b))

    def _period_line(self) -> str:
        period = _period_dates(self.parameters)
        when = "Period not given (the days of the data)" if period is None else date_range(*period)
        per = (
            "figures for the whole period" if self.kind == "period" else f"figures per {self.kind}"
        )
        tz = self.parameters.get("tz")
        return f"{when} · {per}" + (f" · local time ({tz})" if tz else "")

    def _warnings(self) -> str:
        return _warnings_html(strings(self.report.get("warnings")))

    # -- the summary --------------------------------------------------------------------

    def _summary(self) -> str:
        people = self._people()
        period = _period_dates(self.parameters)
        when = "Over the period" if period is None else f"From {date_range(*period)}"
        if self.empty or not self.zones:
            return (
                f"{when}, the release holds no figures: nobody was counted in any zone "
                "(no ping survived, or no period was given)."
            )
        released = [s for s in self.zones if s.peak_value(self.measure) is not None]
        groups = sum(len(s.rows) for s in self.series)
        suppressed = sum(s.suppressed for s in self.series)
        if not released:
            detail = "" if self.k is None else f" fewer than {self.k} of the operator's phones"
            return (
                f"{when}, no zone figure could be published: in every zone and every "
                f"{self.kind}{detail} were seen, so every figure is suppressed to protect "
                "privacy. Suppressed does not mean that nobody came; a longer period, longer "
                "buckets or larger zones give figures that can be published."
            )
        busiest = max(released, key=lambda s: s.peak_value(self.measure) or 0.0)
        peak = busiest.peak(self.measure)
        assert peak is not None  # busiest has a released figure
        name = self.names.zone(busiest.zone)
        amount = _people_range(peak, self.measure)
        sentences = []
        if self.kind == "period":
            others = sorted(
                (s for s in released if s is not busiest),
                key=lambda s: -(s.peak_value(self.measure) or 0.0),
            )[:2]
            also = ", ".join(
                f"{self.names.zone(s.zone)} {_whole(s.peak_value(self.measure))}" for s in others
            )
            sentences.append(
                f"{when}, {amount} {people} came to {name}, the busiest of the "
                f"{len(self.zones)} zones" + (f" (then {also})" if also else "") + "."
            )
        else:
            sentences.append(
                f"{when}, the busiest {self.kind} was "
                f"{bucket_text(peak['bucket_start'], self.kind)}, when {amount} {people} "
                f"came to {name}, the busiest of the "
                f"{len(self.zones)} zones."
            )
        sentences += self._origins_sentence(busiest.zone)
        if not self.dp:
            sentences += self._stay_sentence(busiest)
        sentences.append(self._sureness_sentence(busiest, groups, suppressed))
        return " ".join(sentences)

    def _origins_sentence(self, zone: str) -> list[str]:
        values, observed, _ = origin_sums(self.release, zone, self.class_, None)
        total = sum(values.values())
        if total <= 0:
            return []
        of_what = "devices seen" if observed else self._people()
        # The residual pools every origin too small to show: it is no place of origin.
        pooled = values.pop("other", 0.0)
        if not values:
            return [
                f"Where its {of_what} came from cannot be shown: every group by origin was "
                "too small, and all are pooled."
            ]
        top = sorted(values, key=lambda origin: (-values[origin], origin))[:3]
        parts = [f"{self.names.origin(o)} ({100 * values[o] / total:.0f} %)" for o in top]
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        sentence = f"The largest groups of its {of_what} came from {listed}"
        if pooled:
            sentence += f"; {100 * pooled / total:.0f} % came from origins too small to show apart"
        return [sentence + "."]

    def _stay_sentence(self, series: ZoneSeries) -> list[str]:
        released = series.released
        visits = sum(row["visits"] or 0 for row in released)
        dwell = sum(row["dwell_s"] or 0 for row in released)
        if visits <= 0:
            return []
        sentence = f"A visit there lasted {_duration(dwell / visits)} on average"
        short = [row["band_0_1h"] for row in released]
        if short and None not in short:
            sentence += f", and {100 * sum(short) / visits:.0f} % of visits were under an hour"
        return [sentence + "."]

    def _sureness_sentence(self, busiest: ZoneSeries, groups: int, suppressed: int) -> str:
        peak = busiest.peak(self.measure)
        seen = "" if peak is None else f" from the {_count(peak['devices'])} phones seen there"
        if not self.measure.estimated:
            text = (
                "These are phones of the operator's customers seen, not estimates of all "
                "people: the release has no extrapolation."
            )
        elif self.dp:
            text = (
                f"These are estimates{seen}, scaled up to the whole population, with random "
                "noise added to every figure to protect privacy; the likely range includes "
                "that noise and the chance in who is a customer."
            )
        else:
            text = (
                f"These are estimates{seen}, scaled up to the whole population; the likely "
                "range covers only the chance in who is a customer."
            )
        text += (
            " Phone positions are approximate, so small zones are undercounted "
            "(see How sure are these numbers)."
        )
        if suppressed and not self.dp:
            per = "" if self.kind == "period" else f" per {self.kind}"
            text += (
                f" {_count(suppressed)} of the {_count(groups)} figures (zones and "
                f"categories{per}) are {self._withheld()}."
            )
        return text

    # -- zones at a glance ------------------------------------------------------------------

    def _glance(self) -> list[str]:
        if not self.series:
            return []
        parts = [
            "<section id='zones-at-a-glance'>",
            f"<h2>Zones at a glance ({_e(plural(self.class_))})</h2>",
            self._glance_table(self.zones),
        ]
        if self.kind != "period":
            parts.append(
                f"<p class='note'>People are counted once per {_e(self.kind)}: they do not "
                f"add up across {_e(self.kind)}s. Visits do: the visits column is the sum "
                f"over the published {_e(self.kind)}s.</p>"
            )
        if self.categories:
            parts += [
                "<h3>Categories</h3>",
                "<p class='note'>A category combines every zone of its kind: someone who "
                "visits two of its zones counts once, so categories do not add up with "
                "the zones.</p>",
                self._glance_table(self.categories),
            ]
        parts.append("</section>")
        return parts

    def _glance_table(self, series: Sequence[ZoneSeries]) -> str:
        period = self.kind == "period"
        people = self._people()
        counted = f"{people.capitalize()} (estimate)" if self.measure.estimated else "Devices seen"
        if not period:
            counted = f"{people.capitalize()} on the busiest {self.kind}"
        header = ["Zone", counted]
        if self.measure.estimated:
            header.append("Likely range (95 %)")
        if not period:
            header.append(f"Busiest {self.kind}")
        header.append("Visits")
        # Under differential privacy, dwell carries noise of hours a visit: an average
        # stay from it would mislead.
        if not self.dp:
            header.append("Average stay")
        if not period:
            header.append(f"{self.kind.capitalize()}s published")
        shown_small = self.shapes is not None and not series[0].is_category
        if shown_small:
            header.append("Size")
        rows: list[list[_Cell]] = []
        for s in series:
            name = _Cell(self.names.zone(s.zone), "name")
            peak = s.peak(self.measure)
            size: list[_Cell] = []
            if shown_small:
                size = [_Cell(self._size_text(s.zone), "small" if self._small(s.zone) else "")]
            if peak is None:
                every = "" if period else f" every {self.kind}"
                span = len(header) - 1 - len(size)
                rows.append([name, _Cell(f"{self._withheld()}{every}", "withheld", span), *size])
                continue
            released = s.released
            visits = _sum_or_none(
                [row["est_visits" if self.measure.estimated else "visits"] for row in released]
            )
            visit_count = sum(row["visits"] or 0 for row in released)
            dwell = sum(row["dwell_s"] or 0 for row in released)
            row = [name, _Cell(_whole(peak[self.measure.column]), "num")]
            if self.measure.estimated:
                row.append(_Cell(_range(peak), "num"))
            if not period:
                row.append(_Cell(bucket_text(peak["bucket_start"], self.kind), ""))
            row.append(_Cell(_whole(visits), "num"))
            if not self.dp:
                stay = _short_duration(dwell / visit_count) if visit_count and dwell > 0 else ""
                row.append(_Cell(stay, ""))
            if not period:
                row.append(_Cell(f"{len(released)} of {len(s.rows)}", "num"))
            rows.append(row + size)
        return _scroll(_cell_table(header, rows), "Zones at a glance")

    def _width_text(self, zone: str) -> str:
        width = self._width(zone)
        return "" if width is None else f"about {_round_to(width, 50):,.0f} m across"

    def _size_text(self, zone: str) -> str:
        text = self._width_text(zone)
        return text + ": likely undercounted" if self._small(zone) else text

    # -- figures --------------------------------------------------------------------------

    def _figures(self) -> list[str]:
        if not self.series:
            return []
        try:
            importlib.import_module("matplotlib")
        except ImportError:
            return [
                "<section id='figures'><h2>Figures</h2>",
                "<p class='note'>Figures need matplotlib, which is not installed: "
                "pip install crowdtally[plot]</p></section>",
            ]
        plot = self.release.plot
        per = "in the period" if self.kind == "period" else f"per {self.kind}"
        parts = ["<section id='figures'>"]
        for cls in self.classes:
            people = plural(cls) if self.measure.estimated else "devices seen"
            parts.append(f"<h2>{_e(people.capitalize())} {_e(per)} in every zone</h2>")
            if self.kind != "period":
                grey = (
                    ""
                    if self.dp
                    else f"; grey marks a {_e(self.kind)} whose figure is {_e(self._withheld())}"
                )
                line = "The line is the estimate, the shaded band its likely range"
                if not self.measure.estimated:
                    line = "The line is the devices seen"
                parts.append(
                    f"<p class='note'>One panel a zone, all on the same scale. {line}{grey}.</p>"
                )
            zones_figure = plot.zones(class_=cls)
            parts.append(_figure_html(zones_figure, f"{people} {per} in every zone"))
            if self.categories:
                parts.append(f"<h3>Categories: {_e(people)} {_e(per)}</h3>")
                figure = plot.zones(categories=True, class_=cls)
                parts.append(_figure_html(figure, f"{people} {per} in every category"))
        parts.append("</section>")
        return parts

    def _maps(self) -> list[str]:
        if not self.series:
            return []
        parts = ["<section id='maps'>", "<h2>Map</h2>"]
        if self.shapes is None or self.geography is None:
            return [*parts, f"<p class='note'>{_e(self.map_note)}</p>", "</section>"]
        try:
            importlib.import_module("matplotlib")
        except ImportError:
            return [*parts, "<p class='note'>Maps need matplotlib.</p>", "</section>"]
        plot = self.release.plot
        figure = plot.zone_map(self.geography, class_=self.class_)
        parts.append(_figure_html(figure, "map of the zones"))
        return [*parts, "</section>"]

    def _zone_detail(self) -> list[str]:
        zone = self.zone
        if zone is None or not self.series:
            return []
        name = self.names.zone(zone)
        parts = [
            "<section id='zone-detail'>",
            f"<h2>{_e(name)}: where visitors came from and how long they stayed</h2>",
        ]
        try:
            importlib.import_module("matplotlib")
        except ImportError:
            return [*parts, "<p class='note'>Figures need matplotlib.</p>", "</section>"]
        plot = self.release.plot
        if self.shapes is not None and self.geography is not None:
            figure = plot.origin_map(self.geography, zone, class_=self.class_)
            parts.append(_figure_html(figure, f"map of where the visitors to {name} came from"))
            parts.append(self._not_on_the_map(zone))
        parts.append(_figure_html(plot.top_origins(zone, class_=self.class_), "top origins"))
        parts.append(_figure_html(plot.dwell_bands(zone, class_=self.class_), "visits by dwell"))
        return [*parts, "</section>"]

    def _not_on_the_map(self, zone: str) -> str:
        assert self.shapes is not None
        values, _, _ = origin_sums(self.release, zone, self.class_, None)
        mapped = self.shapes.origin_areas(values)
        elsewhere = sorted(
            (origin for origin in values if origin not in mapped),
            key=lambda origin: (-values[origin], origin),
        )
        if not elsewhere:
            return ""
        listed = "; ".join(f"{self.names.origin(o)}: {_whole(values[o])}" for o in elsewhere)
        return f"<p class='note'>Not on the map: {_e(listed)}.</p>"

    # -- how sure -------------------------------------------------------------------------

    def _how_sure(self) -> list[str]:
        items = [
            "<strong>Small zones are undercounted.</strong> A phone's position is known only "
            "roughly (often to within a hundred metres or more), so a short visit to a zone "
            "smaller than that error is often seen just outside it and missed. On a synthetic "
            "test city with 150 m of position error, zones a few hundred metres across came "
            "out 10 to 37 % too low, while a zone 1.5 km across was within 1 %. The likely "
            "range does not include this error: read the figures of small zones as lower "
            "bounds."
        ]
        if self.shapes is not None:
            small = [s.zone for s in self.zones if self._small(s.zone)]
            if small:
                listed = ", ".join(
                    f"{_e(self.names.zone(z))} ({_e(self._width_text(z))})" for z in small
                )
                items.append(
                    f"Zones under {_SMALL_ZONE_M:,.0f} m across in this release: {listed}."
                )
        if self.dp:
            items.append(
                "Every figure carries random noise, added on purpose to protect privacy "
                "(differential privacy): small figures, and differences between them, may be "
                "due to the noise alone."
            )
        elif self.k is not None:
            items.append(
                f"A figure is shown only when at least {self.k} of the operator's phones were "
                f"seen; otherwise it is {_e(self._withheld())}. Suppressed does not mean zero."
            )
        items += [_e(caveat) for caveat in strings(self.report.get("caveats"))]
        body = "".join(f"<li>{item}</li>" for item in items)
        return [
            "<section id='how-sure'>",
            "<h2>How sure are these numbers?</h2>",
            f"<ul>{body}</ul>",
            "</section>",
        ]

    # -- the table in full ----------------------------------------------------------------

    def _full_table(self, max_rows: int) -> list[str]:
        parts = ["<section id='table'>", "<h2>All figures</h2>"]
        total = len(self.release)
        shown = min(max_rows, total)
        if total == 0:
            return [*parts, "<p class='note'>The release has no rows.</p>", "</section>"]
        note = (
            "One row for each zone"
            + ("" if self.kind == "period" else f" and {self.kind}")
            + " (from: all origins), followed by its rows by origin."
        )
        if shown < total:
            note += (
                f" The first {shown:,} of {total:,} rows; the full table is in the release "
                "file (CSV or Parquet)."
            )
        note += " The table scrolls, sideways too."
        parts.append(f"<p class='note'>{_e(note)}</p>")
        parts.append(_scroll(self._rows_table(max_rows), "All figures", tall=True))
        return [*parts, "</section>"]

    def _rows_table(self, limit: int) -> str:
        table = self.release._arrow_table(_WHAT)
        rows = table.slice(0, limit).select(list(COLUMNS)).to_pylist()
        several = len({row["class"] for row in rows}) > 1 or len(self.classes) > 1
        header = ["Zone"]
        if self.kind != "period":
            header.append(self.kind.capitalize())
        if several:
            header.append("Group")
        header += ["From", "People (estimate)", "Likely range (95 %)", "Devices seen"]
        header += ["Visits (estimate)", "Visits seen", "Average stay"]
        header += [f"Visits {label}" for _, label in BANDS]
        cells: list[list[_Cell]] = []
        for row in rows:
            line = [_Cell(self.names.zone(row["zone"]), "name")]
            if self.kind != "period":
                line.append(_Cell(bucket_text(row["bucket_start"], self.kind), "when"))
            if several:
                line.append(_Cell(plural(row["class"]), ""))
            is_total = row["origin"] == "*"
            line.append(_Cell(self.names.origin(row["origin"]), "total" if is_total else ""))
            if row["suppressed"] or row["devices"] is None:
                span = len(header) - len(line)
                line.append(_Cell(self._withheld(), "withheld", span))
                cells.append(line)
                continue
            visits = row["visits"] or 0
            line += [
                _Cell(_whole(row["est_devices"]), "num"),
                _Cell(_range(row), "num"),
                _Cell(_count(row["devices"]), "num"),
                _Cell(_whole(row["est_visits"]), "num"),
                _Cell(_count(row["visits"]), "num"),
                _Cell(
                    _short_duration(row["dwell_s"] / visits) if visits and row["dwell_s"] else "",
                    "",
                ),
            ]
            for column, _ in BANDS:
                value = row[column]
                # Bands are given on total rows only; a null band there is withheld.
                text = "" if not is_total else ("withheld" if value is None else _count(value))
                line.append(_Cell(text, "num"))
            cells.append(line)
        return _cell_table(header, cells)

    # -- the appendix ---------------------------------------------------------------------

    def _appendix(self) -> list[str]:
        return [
            "<section id='appendix'>",
            "<h2>Appendix: how the figures were made</h2>",
            "<h3>Settings</h3>",
            _scroll(
                _explained_table(
                    ["Setting", "Value", "What it means"], _setting_rows(self.parameters)
                ),
                "Settings",
            ),
            "<h3>Data quality</h3>",
            _scroll(
                _explained_table(["", "Number", "What it means"], _quality_rows(self.report)),
                "Data quality",
            ),
            *_protection_html(self.report, _h3, explained=True),
            f"<p class='note'>Made with crowdtally {_e(_text(self.report.get('version')))}.</p>",
            "</section>",
        ]


# -- where visitors spend ---------------------------------------------------------------------


class _SpendSection:
    """The section "Where visitors spend" of the page: the card spend of a spend table
    joined to the page's release, by zone and, for the page's zone, by shop category;
    what was withheld to protect the shops; and what card spend does not tell."""

    def __init__(self, page: _Page, spend: Spend) -> None:
        parameters = mapping(spend.report.get("parameters"))
        _check_same_release(page.parameters, parameters)
        self.page = page
        self.report = spend.report
        self.kind = page.kind
        self.class_ = str(parameters.get("class") or page.class_)
        self.by = strings(parameters.get("by"))
        self.p = parameters.get("p")
        self.min_merchants = parameters.get("min_merchants")
        pyarrow = require("pyarrow", _WHAT, "pyarrow")
        compute = importlib.import_module("pyarrow.compute")
        table = pyarrow.table(spend.table)
        totals = table.filter(compute.equal(table["origin"], TOTAL))
        columns = ["zone", "bucket_start", "category", "spend", "merchants", "suppressed"]
        rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for row in totals.select(columns).to_pylist():
            rows.setdefault(row["zone"], {}).setdefault(row["category"], []).append(row)
        visitors: dict[tuple[str, str], tuple[float, float, float] | None] = {}
        for row in page.release._rows(
            _WHAT,
            ["zone", "bucket_start", "suppressed", "est_devices", "est_low", "est_high"],
            class_=self.class_,
            total=True,
        ):
            estimate = (row["est_devices"], row["est_low"], row["est_high"])
            known = not row["suppressed"] and None not in estimate
            visitors[(row["zone"], row["bucket_start"])] = estimate if known else None
        self.lines = {
            zone: {category: _SpendLine.of(found, visitors) for category, found in by.items()}
            for zone, by in rows.items()
        }

    # -- words ------------------------------------------------------------------------------

    def _per_visitor(self) -> str:
        return "per visitor" if self.kind == "period" else f"per visitor {_a(self.kind)}"

    def _over(self) -> str:
        return "in the period" if self.kind == "period" else "over the period"

    def _withheld_text(self, line: _SpendLine) -> str:
        if self.kind == "period":
            return "withheld"
        return f"withheld on {line.withheld:,} of {line.buckets:,} {self.kind}s"

    # -- the section -----------------------------------------------------------------------

    def html(self) -> list[str]:
        zones = [zone for zone in self.lines if not zone.startswith(CATEGORY_PREFIX)]
        categories = [zone for zone in self.lines if zone.startswith(CATEGORY_PREFIX)]
        parts = [
            "<section id='spend'>",
            "<h2>Where visitors spend</h2>",
            self._warnings(),
            f"<p class='summary'>{_e(self._summary(zones))}</p>",
        ]
        if zones:
            parts += [
                f"<p class='note'>{_e(self._zones_note())}</p>",
                self._zone_table(zones, "Card spend by zone"),
            ]
        if categories:
            parts += [
                "<h3>Categories of zones</h3>",
                "<p class='note'>A category takes in the shops of all its zones.</p>",
                self._zone_table(categories, "Card spend by category of zones"),
            ]
        parts += self._shop_categories()
        parts += self._withheld()
        parts += self._caveats()
        parts.append("</section>")
        return parts

    def _warnings(self) -> str:
        return _warnings_html(strings(self.report.get("warnings")))

    def _summary(self, zones: Sequence[str]) -> str:
        totals = {zone: self.lines[zone][TOTAL] for zone in zones if TOTAL in self.lines[zone]}
        ranked = [(zone, line) for zone, line in totals.items() if line.per_visitor is not None]
        every = "" if self.kind == "period" else f" for every {self.kind}"
        if ranked:
            zone, top = max(ranked, key=lambda item: item[1].per_visitor or 0.0)
            name = self.page.names.zone(zone)
            if len(ranked) == 1:
                sentence = f"Card spend per visitor could be given for one zone only, {name}:"
            elif len(ranked) == len(totals):
                sentence = f"Of the {len(ranked)} zones, {name} had the highest card spend "
                sentence += "per visitor:"
            else:
                sentence = (
                    f"Of the {len(ranked)} zones (of {len(totals)}) whose card spend per "
                    f"visitor could be given, {name} had the highest:"
                )
            shops = "" if self.kind != "period" else f" at {_count(top.merchants)} shops"
            over = self._over()
            if top.published < top.buckets:
                over = f"on the {_count(top.published)} {self.kind}s published"
            sentence += (
                f" about {_euro_cents(top.per_visitor)} {self._per_visitor()} (likely "
                f"{_euro_cents(top.low)} to {_euro_cents(top.high)}), from "
                f"{_euros(top.published_spend)} paid by card{shops} {over}."
            )
            if self.page._small(zone):
                sentence += (
                    f" {name} is small, so its visitors are undercounted and its spend per "
                    "visitor reads high."
                )
            return sentence + (
                " These are card payments only, cash not included, and residents' card "
                "payments count too: read them with the limits below."
            )
        published = [zone for zone, line in totals.items() if line.spend is not None]
        if published:
            return (
                f"Card spend is published{every} for {len(published)} of the {len(totals)} "
                "zones, but the release has no visitor estimates to divide it by, so no spend "
                "per visitor can be given."
            )
        return (
            f"No zone's card spend can be published{every}: the figures are withheld to "
            "protect the visitors or the shops (see what is withheld below)."
        )

    def _zones_note(self) -> str:
        note = (
            "Card spend is what was paid by card at the zone's shops; per visitor divides it "
            f"by the zone's estimated {plural(self.class_)}, and its likely range is that of "
            "the visitor estimate."
        )
        if self.page.shapes is not None:
            note += (
                f" Zones under {_SMALL_ZONE_M:,.0f} m across have their visitors undercounted "
                "(see How sure are these numbers), so their spend per visitor is likely too "
                "high."
            )
        if self.kind == "period":
            return note
        kind = self.kind
        # The period's figures are shown only when every bucket is published: a sum over
        # the published buckets alone would read as the period's and be too low.
        return note + (
            f" Over the period, card spend adds up the {kind}s, and is shown only when every "
            f"{kind} is published. People are counted once per {kind}, so spend per visitor "
            f"{_a(kind)} divides the card spend of the {kind}s whose spend and "
            f"{plural(self.class_)} are both published by their {plural(self.class_)} added "
            f"up (someone who came on two {kind}s counts twice); its likely range adds up "
            f"the {kind}s' ranges, so it is wider than it need be. Shops: the most with card "
            f"sales on one {kind}."
        )

    def _header(self, first: str) -> list[str]:
        shops = "Shops" if self.kind == "period" else f"Shops (most on one {self.kind})"
        spend = "Card spend" if self.kind == "period" else "Card spend over the period"
        return [first, spend, f"Spend {self._per_visitor()}", "Likely range (95 %)", shops]

    def _row(self, name: str, line: _SpendLine, width: int) -> list[_Cell]:
        first = _Cell(name, "name")
        if line.spend is None and line.per_visitor is None:
            return [first, _Cell(self._withheld_text(line), "withheld", width - 1)]
        spread = ""
        if line.low is not None and line.high is not None:
            spread = f"{_euro_cents(line.low)} to {_euro_cents(line.high)}"
        per_visitor = _euro_cents(line.per_visitor)
        if line.per_visitor is not None and line.published < line.buckets:
            per_visitor += f" (the {_count(line.published)} {self.kind}s published)"
        spend = (
            _Cell(_euros(line.spend), "num")
            if line.spend is not None
            else _Cell(self._withheld_text(line), "withheld")
        )
        return [
            first,
            spend,
            _Cell(per_visitor, "num"),
            _Cell(spread, "num"),
            _Cell(_count(line.merchants), "num"),
        ]

    def _zone_table(self, zones: Sequence[str], label: str) -> str:
        header = self._header("Zone")
        # Visitors of small zones are undercounted (see How sure are these numbers), so
        # their spend per visitor reads high: the other way round from their counts.
        sized = self.page.shapes is not None and not zones[0].startswith(CATEGORY_PREFIX)
        rows = []
        for zone in zones:
            if TOTAL not in self.lines[zone]:
                continue
            line = self.lines[zone][TOTAL]
            row = self._row(self.page.names.zone(zone), line, len(header))
            if sized:
                flagged = self.page._small(zone) and line.per_visitor is not None
                text = self.page._width_text(zone)
                if flagged:
                    text += ": per visitor likely too high"
                row.append(_Cell(text, "small" if flagged else ""))
            rows.append(row)
        if sized:
            header.append("Size")
        return _scroll(_cell_table(header, rows), label)

    def _shop_categories(self) -> list[str]:
        zone = self.page.zone
        if zone is None:
            return []
        shops = {c: line for c, line in self.lines.get(zone, {}).items() if c != TOTAL}
        if not shops:
            return []
        name = self.page.names.zone(zone)
        parts = [f"<h3>{_e(name)}: card spend by type of shop</h3>"]
        if all(line.spend is None for line in shops.values()):
            return [
                *parts,
                f"<p class='note'>Every type of shop's figure of {_e(name)} is withheld to "
                "protect the shops (see what is withheld below).</p>",
            ]
        header = self._header("Type of shop")
        rows = [
            self._row(category[:1].upper() + category[1:], line, len(header))
            for category, line in shops.items()
        ]
        return [
            *parts,
            "<p class='note'>Spend per visitor of a type of shop divides its card spend by "
            "all the zone's visitors, so, where all are published, the types add up to the "
            "zone's figure.</p>",
            _scroll(_cell_table(header, rows), f"{name}: card spend by type of shop"),
        ]

    def _withheld(self) -> list[str]:
        protection = mapping(self.report.get("protection"))
        fewest = _count(self.min_merchants)
        cut = ["zone"]
        if self.kind != "period":
            cut.append(self.kind)
        if "origin" in self.by:
            cut.append("origin")
        if "category" in self.by:
            cut.append("type of shop")
        every = ", ".join(cut[:-1]) + " and " + cut[-1] if len(cut) > 1 else cut[0]
        rows = [
            (
                "spend figures",
                _count(protection.get("cells")),
                f"Figures of card spend: one for every {every}.",
            ),
            (
                "published",
                _count(protection.get("released")),
                "Figures shown; one without any card payment is shown as zero.",
            ),
            (
                "withheld because the visitor figure is withheld",
                _count(protection.get("suppressed_visitor_row")),
                "Too few phones were seen for the visitor figure of the same zone, time and "
                "origin, so its spend is withheld with it.",
            ),
            (
                f"withheld because fewer than {fewest} shops had card sales",
                _count(protection.get("suppressed_few_merchants")),
                f"With fewer than {fewest} shops, a shop's own sales would show.",
            ),
            (
                "withheld because one shop dominates",
                _count(protection.get("suppressed_dominance")),
                f"The shops after the two largest sold less than {_number(self.p)} % of what "
                "the largest did, so the second largest could work out the largest's sales.",
            ),
            (
                "withheld so the others cannot be worked out",
                _count(protection.get("suppressed_complementary")),
                "Withheld too, so that no withheld figure can be worked out from the "
                "published figures and their totals.",
            ),
        ]
        return [
            "<h3>What is withheld to protect the shops</h3>",
            "<p class='note'>A shop's sales are confidential: a figure is published only "
            "when it cannot reveal one shop's sales.</p>",
            _scroll(
                _explained_table(["", "Figures", "What it means"], rows), "Spend figures withheld"
            ),
        ]

    def _caveats(self) -> list[str]:
        caveats = strings(self.report.get("caveats"))
        if not caveats:
            return []
        items = "".join(f"<li>{_e(caveat)}</li>" for caveat in caveats)
        return ["<h3>What card spend does not tell</h3>", f"<ul>{items}</ul>"]


@dataclass(frozen=True)
class _SpendLine:
    """The card spend of one zone and type of shop (from all origins) over the release's
    buckets: its total only when every bucket's is published; its spend per visitor over
    the buckets whose spend and visitors are both published."""

    buckets: int
    withheld: int
    spend: float | None = None
    merchants: int | None = None
    per_visitor: float | None = None
    low: float | None = None
    high: float | None = None
    # The buckets the spend per visitor is over, and their card spend.
    published: int = 0
    published_spend: float | None = None

    @classmethod
    def of(
        cls,
        rows: Sequence[Mapping[str, Any]],
        visitors: Mapping[tuple[str, str], tuple[float, float, float] | None],
    ) -> _SpendLine:
        shown = [row for row in rows if not row["suppressed"] and row["spend"] is not None]
        withheld = len(rows) - len(shown)
        if not shown:
            return cls(len(rows), withheld)
        # A total over the published buckets alone would read as the period's and be too
        # low: the total is given only when every bucket is published.
        spend = float(sum(row["spend"] for row in shown)) if not withheld else None
        merchants = max(int(row["merchants"] or 0) for row in shown)
        pairs = [
            (row, visitors.get((row["zone"], row["bucket_start"])))
            for row in shown
            if visitors.get((row["zone"], row["bucket_start"])) is not None
        ]
        # People are counted once per bucket: over several buckets the divisor is the
        # buckets' visitors added up, and the range adds up their ranges, which is at
        # least as wide as the sum's own (with one bucket, it is the table's figure). A
        # ratio over the published buckets is a ratio of published figures: it hides
        # nothing withheld.
        paid = float(sum(row["spend"] for row, _ in pairs))
        devices = sum(estimate[0] for _, estimate in pairs if estimate is not None)
        low = sum(estimate[1] for _, estimate in pairs if estimate is not None)
        high = sum(estimate[2] for _, estimate in pairs if estimate is not None)
        if not pairs or devices <= 0 or low <= 0:
            return cls(len(rows), withheld, spend, merchants)
        return cls(
            len(rows),
            withheld,
            spend,
            merchants,
            paid / devices,
            paid / high,
            paid / low,
            len(pairs),
            paid,
        )


def _warnings_html(warnings: Sequence[str]) -> str:
    """A report's warnings, first on the page or its section; nothing without any."""
    if not warnings:
        return ""
    lines = "".join(f"<p><strong>Warning:</strong> {_e(w)}</p>" for w in warnings)
    return f"<div class='warnings' role='alert'>{lines}</div>"


def _check_same_release(release: Mapping[str, Any], spend: Mapping[str, Any]) -> None:
    """Refuses a spend table joined to another release than the page's: its spend would
    be divided by other visitors, or be of other times."""
    for key in ("bucket", "period", "tz", "level"):
        if key in release and key in spend and release[key] != spend[key]:
            raise ValueError(
                f"the spend table was joined to another release: its {key} is "
                f"{_text(spend[key])}, this release's {_text(release[key])}"
            )


def _a(kind: str) -> str:
    """``a day``, ``an hour``."""
    return "an hour" if kind == "hour" else f"a {kind}"


def _euros(value: float | None) -> str:
    """An amount in whole euros: ``€12,345``; empty when there is none."""
    return "" if value is None else f"€{round(value):,}"


def _euro_cents(value: float | None) -> str:
    """An amount in euros and cents: ``€12.35``; empty when there is none."""
    return "" if value is None else f"€{value:,.2f}"


# -- how unique the traces are ----------------------------------------------------------------


class _RiskSection:
    """The section "How unique are the traces behind these figures?", for a data
    protection officer: how many phones a few places and times of their own trace single
    out in the per-phone data, how many their home and work regions do, and their visits;
    and what that means for the per-phone data and for the published figures. Counts and
    shares only: the audit holds no phone's pseudonym."""

    def __init__(self, page: _Page, risk: Risk) -> None:
        self.page = page
        self.report = risk.report
        parameters = mapping(self.report.get("parameters"))
        self.spatial = str(parameters.get("spatial") or "cell")
        self.temporal = str(parameters.get("temporal") or "hour")
        k = parameters.get("k")
        self.fewer_than_k = f"fewer than {_count(k)}" if isinstance(k, int) else "fewer than k"
        devices, sampled = self.report.get("devices"), self.report.get("devices_sampled")
        self.devices = devices if isinstance(devices, int) else 0
        self.sampled = sampled if isinstance(sampled, int) else self.devices
        rows = risk.rows()
        self.unicity = [row for row in rows if row["measure"] == "unicity"]
        self.home_work = [row for row in rows if row["measure"] == "home_work"]
        self.visits = next((row for row in rows if row["measure"] == "visit_pattern"), None)

    # -- words ------------------------------------------------------------------------------

    def _sample(self) -> bool:
        return self.sampled < self.devices

    def _known(self, points: int | None = None) -> str:
        """``places and hours``; with ``points``, ``4 places and hours``, ``1 place and
        hour``, ``2 municipalities and days``."""
        one = points == 1
        if self.spatial in ("cell", "zone"):
            place = "place" if self.spatial == "cell" else "zone"
            places = place + "s"
        else:
            place = self.spatial.removeprefix("region:").replace("_", " ")
            places = place[:-1] + "ies" if place.endswith("y") else place + "s"
        time, times = {"hour": ("hour", "hours"), "day": ("day", "days")}.get(
            self.temporal, ("part of day", "parts of day")
        )
        words = f"{place} and {time}" if one else f"{places} and {times}"
        return words if points is None else f"{points:,} {words}"

    def _what_a_point_is(self) -> str:
        if self.spatial == "cell":
            place = "A place is a cell of the map grid the pings are located on"
        elif self.spatial == "zone":
            place = "A place is one of the study's zones"
        else:
            place = f"A place is a {self.spatial.removeprefix('region:').replace('_', ' ')}"
        time = {
            "hour": "a time a clock hour of a given day",
            "day": "a time a given day",
        }.get(self.temporal, "a time the daytime (6:00 to 22:00) or the night of a given day")
        return f"{place}, {time}."

    def _too_few(self, points: int) -> int:
        count = mapping(self.report.get("too_few_points")).get(str(points))
        return count if isinstance(count, int) else 0

    # -- the section -----------------------------------------------------------------------

    def html(self) -> list[str]:
        return [
            "<section id='risk'>",
            "<h2>How unique are the traces behind these figures?</h2>",
            f"<p class='summary'>{_e(self._summary())}</p>",
            "<p class='note'>Measured by the operator on the per-phone data these figures "
            "are made from (cleaned pings, with pseudonyms in place of phone numbers), "
            "before anything left the operator. It counts phones: no phone, pseudonym or "
            "person is shown.</p>",
            *self._unicity(),
            *self._home_work(),
            *self._visits(),
            *self._meaning(),
            "</section>",
        ]

    def _headline(self) -> Mapping[str, Any] | None:
        """The unicity of 4 points, or of the most points measured."""
        measured = [row for row in self.unicity if row["devices"]]
        four = [row for row in measured if row["points"] == 4]
        return four[0] if four else max(measured, key=lambda row: row["points"], default=None)

    def _summary(self) -> str:
        row = self._headline()
        if row is None:
            return f"No phone's trace holds enough {self._known()} to measure."
        points = int(row["points"])
        known = f"With {self._known(points)} of their own trace, "
        share = _percent(row["share_unique"])
        if self._sample():
            likely = f"{_percent(row['share_low'])} to {_percent(row['share_high'])}"
            sentence = (
                f"{known}{share} (likely {likely}) of the phones are the only ones that "
                f"match, in a sample of {_count(self.sampled)} phones drawn at random from "
                f"{_count(self.devices)}."
            )
        else:
            among = f"the {_count(row['devices'])} phones"
            if self._too_few(points):
                among += f" with at least {points:,}"
            sentence = f"{known}{share} of {among} are the only ones that match."
        if row["unique"]:
            sentence += (
                " Whoever knows that much of where and when a person was (met at a café, "
                "seen in a photo posted online) could pick out that person's trace, and "
                "with it all their other movements, although it holds no name."
            )
        return sentence

    def _unicity(self) -> list[str]:
        if not self.unicity:
            return []
        sample = self._sample()
        short = any(self._too_few(int(row["points"])) for row in self.unicity)
        header = [f"{self._known().capitalize()} known", "Phones measured", "Singled out"]
        if sample:
            header.append("Likely range (95 %)")
        if short:
            header.append("Too few in their trace")
        rows = []
        for row in self.unicity:
            points = int(row["points"])
            cells = [_Cell(f"{points:,}", "num"), _Cell(_count(row["devices"]), "num")]
            if not row["devices"]:
                cells.append(_Cell("no trace holds that many", "withheld", 2 if sample else 1))
            else:
                cells.append(_Cell(_percent(row["share_unique"], 1), "num"))
                if sample:
                    low, high = _percent(row["share_low"], 1), _percent(row["share_high"], 1)
                    cells.append(_Cell(f"{low} to {high}", "num"))
            if short:
                cells.append(_Cell(_count(self._too_few(points)), "num"))
            rows.append(cells)
        if sample:
            drawn = (
                f"Measured on {_count(self.sampled)} phones drawn at random from "
                f"{_count(self.devices)}; the likely range allows for that draw."
            )
        else:
            drawn = f"Measured on every phone, {_count(self.devices)} in all."
        if short:
            drawn += f" Phones with fewer {self._known()} in their trace are not measured."
        note = (
            f"For each phone, that many {self._known()} are drawn at random from its own "
            "trace; it is singled out when no other phone was at all of them. "
            f"{self._what_a_point_is()} {drawn}"
        )
        return [
            "<h3>Places and times that single a phone out</h3>",
            f"<p class='note'>{_e(note)}</p>",
            _scroll(_cell_table(header, rows), "Phones singled out by places and times"),
        ]

    def _home_work(self) -> list[str]:
        if not self.home_work:
            return []
        header = [
            "Regions",
            "Phones with a home and a work region",
            "The only ones with their pair",
            f"Pair shared by {self.fewer_than_k}",
        ]
        rows = [
            [
                _Cell(str(row["granularity"]).replace("_", " ").capitalize(), "name"),
                _Cell(_count(row["devices"]), "num"),
                _Cell(_share_of(row["unique"], row["devices"]), "num"),
                _Cell(_share_of(row["below_k"], row["devices"]), "num"),
            ]
            for row in self.home_work
        ]
        return [
            "<h3>Home and work</h3>",
            "<p class='note'>A phone's home is the region where it spends the most nights, "
            "its work region the one where it is seen most on weekdays from 9:00 to 17:00. "
            "If someone knows the region where a person lives and the one where they work, "
            "how many phones does that leave? Below, for regions from the smallest to the "
            "largest: the phones that are the only ones with their pair of regions, and "
            f"those whose pair is shared by {_e(self.fewer_than_k)} phones.</p>",
            _scroll(_cell_table(header, rows), "Phones singled out by home and work"),
        ]

    def _visits(self) -> list[str]:
        row = self.visits
        if row is None:
            return []
        if not row["devices"]:
            sentence = "No phone was seen visiting a zone."
        else:
            sentence = (
                f"Of the {_count(row['devices'])} phones seen visiting a zone, "
                f"{_percent(row['share_unique'])} are the only ones with their set of zones "
                f"and days visited, and {_percent(_ratio(row['below_k'], row['devices']))} "
                f"share it with {self.fewer_than_k} phones, themselves included."
            )
        return ["<h3>Visits to the zones</h3>", f"<p>{_e(sentence)}</p>"]

    def _meaning(self) -> list[str]:
        if self.page.dp:
            protection = (
                "every figure carries random noise of a known size (differential privacy), "
                "so that no one phone's presence can be told from them"
            )
        else:
            fewest = _count(self.page.k) if self.page.k is not None else "k"
            protection = (
                f"no figure counts fewer than {fewest} phones; smaller groups are withheld "
                "or pooled (k-anonymity)"
            )
        items = [
            "The per-phone data (located pings, profiles of phones and their visits) are "
            "personal data, even without names or phone numbers: a few places and times "
            "where a person was seen can single out their phone, as above.",
            f"The published figures are protected by their own rule: {protection}. The "
            "numbers in this section are about the per-phone data; they do not change that "
            "protection.",
            "Never publish or hand over the per-phone data, under pseudonyms or not: only "
            "the figures leave the operator.",
        ]
        lines = "".join(f"<li>{_e(item)}</li>" for item in items)
        return [
            "<h3>What it means for a data protection impact assessment</h3>",
            f"<ul>{lines}</ul>",
        ]


def _ratio(part: Any, whole: Any) -> float:
    return part / whole if isinstance(part, int) and isinstance(whole, int) and whole else 0.0


def _share_of(part: Any, whole: Any) -> str:
    """``9 (0.3 %)``."""
    return f"{_count(part)} ({_percent(_ratio(part, whole), 1)})"


def _percent(share: float, digits: int = 0) -> str:
    """A share as a percentage for people, never rounded to 0 or 100 when it is neither:
    ``97 %``, ``under 1 %``, ``over 99.9 %``."""
    value = 100 * share
    text = f"{value:.{digits}f}"
    step = 10.0**-digits
    if value > 0 and float(text) == 0:
        return f"under {step:g} %"
    if value < 100 and float(text) == 100:
        return f"over {100 - step:g} %"
    return f"{text} %"


# -- the notebook view ----------------------------------------------------------------------


def repr_html(release: Release) -> str:
    """The notebook view of a release (`Release._repr_html_`): its warnings first."""
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
    warnings = strings(release.report.get("warnings"))
    parts = ['<div class="crowdtally-release">']
    parts += [
        f'<p style="color:#8a1c00"><strong>Warning:</strong> {_e(warning)}</p>'
        for warning in warnings
    ]
    parts += [
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
        parts.append(_rows_preview(release, _PREVIEW_ROWS))
    if not warnings:
        parts.append("<p>No warnings.</p>")
    parts.append("</div>")
    return "\n".join(parts)


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
    withheld = "suppressed"
    rows: list[list[Any]] = []
    for line in lines:
        if line.devices is None:
            rows.append(
                [
                    release._zone_name(line.zone),
                    line.class_,
                    f"{line.buckets:,} ({line.suppressed:,})",
                    "",
                    withheld,
                    withheld,
                    withheld,
                    withheld,
                ]
            )
            continue
        rows.append(
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
        )
    return _html_table(header, rows, _count)


def _rows_preview(release: Release, limit: int) -> str:
    table = release._arrow_table("showing the rows")
    rows = table.slice(0, limit).to_pylist()
    return _html_table(COLUMNS, [[row.get(name) for name in COLUMNS] for row in rows], _raw)


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


# -- the appendix's explanations ------------------------------------------------------------


def _setting_rows(parameters: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    dp = parameters.get("privacy") == "differential_privacy"
    rows = []
    for key, value in parameters.items():
        explain = _SETTINGS.get(str(key))
        sentence = (
            explain(value, dp)
            if explain is not None
            else "A setting of the method (see the method document)."
        )
        label = _SETTING_LABELS.get(str(key))
        shown = f"{label} ({key})" if label else str(key)
        rows.append((shown, _setting_value(str(key), value), sentence))
    return rows


def _setting_value(key: str, value: Any) -> str:
    if key == "period":
        period = _period_dates({"period": value})
        return "the days of the data" if period is None else _short_range(*period)
    if key == "privacy":
        return str(value).replace("_", " ").replace("k anonymity", "k-anonymity")
    if key == "classes":
        return ", ".join(plural(cls) for cls in strings(value)) or "none"
    if key in ("max_gap", "min_dwell", "max_dwell_s") and isinstance(value, int | float):
        return _duration(float(value), exact=True)
    if key == "roaming_factors" and isinstance(value, Mapping):
        return ", ".join(f"{code}: {_factor(f)}" for code, f in value.items()) or "none"
    return _text(value)


def _period_sentence(value: Any) -> str:
    period = _period_dates({"period": value})
    if period is None:
        return "The figures cover the days of the data."
    return f"The figures cover {date_range(*period)}, both days included."


def _classes_sentence(value: Any, dp: bool) -> str:
    names = []
    for cls in strings(value):
        if cls == "visitor":
            names.append("visitors (day visitors and overnight visitors together)")
        elif cls == "regular":
            names.append("regular visitors (commuters, students: in the city often)")
        else:
            names.append(plural(cls))
    return "The figures count " + (" and ".join(names) or "every class") + "."


def _short_range(first: dt.date, last: dt.date) -> str:
    """``1 Jul 2026 to 14 Jul 2026``."""
    return f"{short_date(first)} to {short_date(last)}"


_SETTING_LABELS = {
    "tz": "time zone",
    "period": "period",
    "period_label": "pseudonym period",
    "resolution": "grid",
    "home_country": "operator's country",
    "privacy": "privacy protection",
    "k": "threshold",
    "roll_up": "pool small origins",
    "max_gap": "longest gap in a visit",
    "min_dwell": "shortest visit",
    "min_nights": "nights for a home",
    "usual_env_min_days": "days for a regular",
    "bucket": "time unit",
    "level": "origins by",
    "classes": "who is counted",
    "subscribers": "customers per region",
    "roaming_factors": "roaming factors",
    "rho": "privacy budget",
    "countries": "countries apart",
    "max_partitions": "most zones and times",
    "max_visits": "most visits",
    "max_dwell_s": "most time",
}

_SETTINGS: dict[str, Callable[[Any, bool], str]] = {
    "tz": lambda v, dp: f"Days, nights and hours are local time in {v}.",
    "period": lambda v, dp: _period_sentence(v),
    "period_label": lambda v, dp: (
        f"Phones are known only by pseudonyms that change every period; this period's label is {v}."
    ),
    "resolution": lambda v, dp: (
        "Positions are placed on a grid of hexagons"
        + (f" of about {_HEX_AREA[v]} each" if v in _HEX_AREA else "")
        + f" (H3 resolution {v})."
    ),
    "home_country": lambda v, dp: (
        f"Phones of the country {v} are the operator's own customers; phones from other "
        "countries are roamers."
    ),
    "privacy": lambda v, dp: (
        "Privacy is protected by adding random noise to every figure (differential privacy)."
        if dp
        else "Privacy is protected by suppressing every figure about too few phones."
    ),
    "k": lambda v, dp: (
        "Not used: this release is protected by noise instead."
        if dp
        else f"A figure is published only when it concerns at least {v} phones."
    ),
    "roll_up": lambda v, dp: (
        "Origins with too few phones are pooled into their wider region (other places "
        "in ...) rather than left out."
        if v
        else "Origins with too few phones are left out, not pooled into wider regions."
    ),
    "max_gap": lambda v, dp: (
        f"Two sightings in a zone more than {_duration(float(v), exact=True)} apart are "
        "two separate visits."
    ),
    "min_dwell": lambda v, dp: (
        "Every visit counts, however short."
        if not v
        else f"Visits shorter than {_duration(float(v), exact=True)} are not counted."
    ),
    "min_nights": lambda v, dp: (
        f"A phone's home is where it spends the most nights, if that is at least {v} nights."
    ),
    "usual_env_min_days": lambda v, dp: (
        f"Non-residents seen in the city on {v} days or more are regular visitors "
        "(commuters, students) rather than visitors."
    ),
    "bucket": lambda v, dp: (
        "Figures are given for the period as a whole."
        if v == "period"
        else f"Figures are given per {v}; a phone counts once per {v}."
    ),
    "level": lambda v, dp: (
        f"Where visitors came from is given by {v}."
        if v
        else "Where visitors came from is given by the finest region."
    ),
    "classes": _classes_sentence,
    "subscribers": lambda v, dp: (
        "The operator's customers per home region were counted in the data itself."
        if v == "detected"
        else "The operator's customers per home region were given (from its billing)."
    ),
    "roaming_factors": lambda v, dp: (
        "How many visitors each roaming phone from a country stands for (* is any other country)."
    ),
    "rho": lambda v, dp: (
        "The privacy budget this release spends: the smaller, the more noise and privacy."
    ),
    "countries": lambda v, dp: (
        "Countries whose roamers have rows of their own; other countries are pooled."
    ),
    "max_partitions": lambda v, dp: (
        "The most zone and time combinations one phone counts in (none: the default)."
    ),
    "max_visits": lambda v, dp: "The most visits one phone counts in one zone and time.",
    "max_dwell_s": lambda v, dp: (
        "The most time one phone counts in one zone and time (none: the default)."
    ),
}

# The average area of an H3 cell by resolution, rounded for people.
_HEX_AREA: dict[int, str] = {
    5: "250 km²",
    6: "36 km²",
    7: "5 km²",
    8: "0.7 km²",
    9: "0.1 km²",
    10: "15,000 m²",
    11: "2,000 m²",
    12: "300 m²",
}

_DROPPED = {
    "opt_out": ("opted out", "Pings of subscribers who asked not to be counted."),
    "bad_subscriber": ("no valid subscriber", "Pings without a valid subscriber id."),
    "bad_position": ("no valid position", "Pings without a valid position."),
    "bad_ts": ("no valid time", "Pings without a valid time."),
    "outside_period": ("outside the period", "Pings before or after the period."),
    "duplicate": (
        "repeated",
        "Pings repeating another ping of the same phone at the same second.",
    ),
}


def _quality_rows(report: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    pings = mapping(report.get("pings"))
    dropped = mapping(pings.get("dropped"))
    opt_out = mapping(report.get("opt_out"))
    devices = mapping(report.get("devices"))
    by_class = mapping(devices.get("by_class"))
    extrapolation = mapping(report.get("extrapolation"))
    rows: list[tuple[str, str, str]] = [
        ("pings read", _count(pings.get("read")), "Location records of phones read."),
        ("pings kept", _count(pings.get("kept")), "Pings kept after cleaning."),
    ]
    # Reports written before these counts existed lack them.
    rows += [
        (label, _count(pings[key]), sentence)
        for key, label, sentence in (
            ("in_regions", "pings kept in a region", "Kept pings inside the map's regions."),
            ("in_study_area", "pings kept in the study area", "Kept pings in the study area."),
            ("in_zones", "pings kept in a zone", "Kept pings inside one of the zones."),
        )
        if key in pings
    ]
    for reason, n in dropped.items():
        label, sentence = _DROPPED.get(reason, (reason.replace("_", " "), "Pings dropped."))
        rows.append((f"pings dropped: {label}", _count(n), sentence))
    rows += [
        ("opt-out: pings", _count(opt_out.get("pings")), "Pings dropped at the opt-out."),
        (
            "opt-out: subscribers",
            _count(opt_out.get("subscribers")),
            "Subscribers who asked not to be counted and were in the data.",
        ),
        (
            "pseudonym collisions",
            _count(report.get("pseudonym_collisions")),
            "Phones that got the same pseudonym (expected: none).",
        ),
        ("devices", _count(devices.get("total")), "Phones seen in the cleaned data."),
    ]
    rows += [
        (f"devices: {plural(cls)}", _count(n), f"Phones classed as {plural(cls)}.")
        for cls, n in by_class.items()
    ]
    rows += [
        ("devices: roamers", _count(devices.get("roamers")), "Phones from abroad."),
        (
            "domestic devices with unknown home",
            _count(devices.get("domestic_unknown_home")),
            "Customers' phones whose home could not be found (too few nights).",
        ),
        (
            "customers per region",
            _text(extrapolation.get("subscribers")),
            "Counted in the data (detected) or given by the operator.",
        ),
        (
            "national factor",
            _factor(extrapolation.get("national_factor")),
            "On average, one customer's phone stands for this many inhabitants.",
        ),
    ]
    factors = mapping(extrapolation.get("roaming_factors"))
    if factors:
        used = ", ".join(f"{code}: {_factor(f)}" for code, f in factors.items())
        rows.append(("roaming factors", used, "One roaming phone stands for this many visitors."))
    known = {"subscribers", "national_factor", "roaming_factors"}
    rows += [
        (key.replace("_", " "), _text(value), "A figure of the extrapolation.")
        for key, value in extrapolation.items()
        if key not in known
    ]
    return rows


# -- the protection section (shared by the page and the notebook view) ------------------------


def _disclosure_rows(disclosure: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    return [
        ("k", _count(disclosure.get("k")), "The fewest phones a published figure concerns."),
        ("groups", _count(disclosure.get("groups")), "Figures of a zone, time and group."),
        (
            "groups suppressed",
            _count(disclosure.get("groups_suppressed")),
            "Of these, suppressed because too few phones were seen.",
        ),
        (
            "of which with a suppressed member zone",
            _count(disclosure.get("groups_suppressed_as_unions")),
            "Categories suppressed so that a suppressed zone in them cannot be worked out.",
        ),
        ("rows released", _count(disclosure.get("rows_released")), "Rows of the table."),
        (
            "origin rows rolled up",
            _count(disclosure.get("origin_rows_rolled_up")),
            "Origins with too few phones pooled into their wider region.",
        ),
        (
            "origin rows moved into the residual",
            _count(disclosure.get("origin_rows_moved_to_residual")),
            "Origins moved into the pooled rest so that it has enough phones.",
        ),
        (
            "dwell bands withheld",
            _count(disclosure.get("bands_withheld")),
            "Lengths of stay withheld because too few phones had them.",
        ),
    ]


def _dp_rows(privacy: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    sigma = mapping(privacy.get("sigma"))
    bounds = mapping(privacy.get("bounds"))
    dropped = mapping(privacy.get("dropped_by_bounding"))
    noise = "The typical size of the noise added to each figure of {}."
    return [
        (
            "rho (zCDP) of this release",
            _text(privacy.get("rho")),
            "The privacy budget spent: the smaller, the more noise and privacy.",
        ),
        (
            "epsilon at delta",
            f"{_number(privacy.get('epsilon'))} at {_text(privacy.get('delta'))}",
            "The same budget in the more common (epsilon, delta) terms.",
        ),
        *(
            (f"noise sigma of {measure}", _number(sigma.get(measure)), noise.format(measure))
            for measure in ("devices", "visits", "dwell_s", "bands")
        ),
        (
            "most (zone, bucket) pairs a device counts in",
            _count(bounds.get("max_partitions")),
            "A phone counts in at most this many zones and times.",
        ),
        (
            "most visits a device counts in a pair",
            _count(bounds.get("max_visits")),
            "A phone counts at most this many visits in one zone and time.",
        ),
        (
            "most dwell a device counts in a pair",
            f"{_count(bounds.get('max_dwell_s'))} s",
            "A phone counts at most this much time in one zone and time.",
        ),
        (
            "declared countries",
            _text(privacy.get("countries")),
            "Countries whose roamers have rows of their own.",
        ),
        (
            "pairs dropped by the bounds",
            _count(dropped.get("pairs")),
            "Zone and time combinations not counted because of the bounds.",
        ),
        (
            "visits dropped by the bounds",
            _count(dropped.get("visits")),
            "Visits not counted because of the bounds.",
        ),
    ]


def _h2(title: str) -> str:
    return f"<h2>{_e(title)}</h2>"


def _h3(title: str) -> str:
    return f"<h3>{_e(title)}</h3>"


def _strong(title: str) -> str:
    return f"<p><strong>{_e(title)}</strong></p>"


def _protection_html(
    report: Mapping[str, Any], heading: Callable[[str], str] = _h2, *, explained: bool = False
) -> list[str]:
    """The section on how the table is protected: its k-anonymity counts, or the
    differential privacy it carries, and the ledger's account of the period; with a
    sentence for each line when ``explained``."""
    privacy = mapping(report.get("privacy"))
    if privacy.get("mode") == "differential_privacy":
        title, rows = "Differential privacy", _dp_rows(privacy)
    else:
        title = "Disclosure control (k-anonymity)"
        rows = _disclosure_rows(mapping(report.get("disclosure")))
    table = (
        _scroll(_explained_table(["", "Number", "What it means"], rows), title)
        if explained
        else _kv_table([(key, value) for key, value, _ in rows])
    )
    return [heading(title), table, _ledger_html(privacy)]


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


# -- formatting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    """A table cell: its text, its class (``num``, ``withheld``, ...) and its span."""

    text: str
    kind: str = ""
    span: int = 1


def _cell_table(header: Sequence[str], rows: Iterable[Sequence[_Cell]]) -> str:
    head = "".join(f"<th scope='col'>{_e(name)}</th>" for name in header)
    lines = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for row in rows:
        cells = []
        for cell in row:
            attributes = f' class="{cell.kind}"' if cell.kind else ""
            attributes += f' colspan="{cell.span}"' if cell.span > 1 else ""
            cells.append(f"<td{attributes}>{_e(cell.text)}</td>")
        lines.append(f"<tr>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _explained_table(header: Sequence[str], rows: Iterable[tuple[str, str, str]]) -> str:
    # The label is a row header and the value follows it directly (`<th>…</th><td>…</td>`),
    # as in the notebook view: one reading for people and for tests.
    head = "".join(f"<th scope='col'>{_e(name)}</th>" for name in header)
    body = "".join(
        f"<tr><th>{_e(key)}</th><td>{_e(value)}</td><td class='explain'>{_e(sentence)}</td></tr>"
        for key, value, sentence in rows
    )
    return f"<table class='explained'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _scroll(table: str, label: str, *, tall: bool = False) -> str:
    """A table in a box of the page's width that scrolls, so that no table is wider than
    the page (keyboard users reach it with tab)."""
    kind = "scroll tall" if tall else "scroll"
    return f"<div class='{kind}' role='region' aria-label='{_e(label)}' tabindex='0'>{table}</div>"


def _figure_html(figure: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></figure>'


def _classes(release: Release) -> list[str]:
    """The release's classes, the default first (``visitor`` when it has it)."""
    classes = strings(release._parameters().get("classes"))
    if not classes and len(release):
        classes = sorted({str(row["class"]) for row in release._rows(_WHAT, ["class"])})
    return sorted(classes, key=lambda cls: cls != "visitor")


def _period_dates(parameters: Mapping[str, Any]) -> tuple[dt.date, dt.date] | None:
    """The period's first and last day (its end date is excluded, method §1.4)."""
    period = parameters.get("period")
    if not isinstance(period, Mapping):
        return None
    try:
        first = dt.date.fromisoformat(str(period.get("start")))
        last = dt.date.fromisoformat(str(period.get("end"))) - dt.timedelta(days=1)
    except ValueError:
        return None
    return first, last


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
    if isinstance(value, float):
        return _number(value)
    return str(value)


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


def _whole(value: Any) -> str:
    """Estimated people, rounded to whole people; empty when there is none."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"{round(value):,}"
    return ""


def _range(row: Mapping[str, Any]) -> str:
    low, high = row.get("est_low"), row.get("est_high")
    if low is None or high is None:
        return ""
    return f"{_whole(low)} to {_whole(high)}"


def _people_range(row: Mapping[str, Any], measure: Measure) -> str:
    value = _whole(row[measure.column])
    if not measure.estimated:
        return value
    spread = _range(row)
    return f"about {value}" + (f" (likely {spread})" if spread else "")


def _sum_or_none(values: Sequence[Any]) -> float | None:
    if not values or any(value is None for value in values):
        return None
    return float(sum(values))


def _duration(seconds: float, *, exact: bool = False) -> str:
    """``3 hours 20 minutes``, ``45 minutes``; rounded to 5 minutes unless ``exact``."""
    minutes = round(seconds / 60) if exact else 5 * round(seconds / 300)
    if exact and seconds % 60:
        return f"{seconds:g} seconds"
    hours, rest = divmod(int(minutes), 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour" + ("s" if hours > 1 else ""))
    if rest or not hours:
        parts.append(f"{rest} minute" + ("s" if rest != 1 else ""))
    return " ".join(parts)


def _short_duration(seconds: float) -> str:
    """``3 h 15 min``, ``45 min``: a duration for a table cell, to 5 minutes."""
    hours, rest = divmod(5 * round(seconds / 300), 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" + (f" {rest} min" if rest else "")


def _round_to(value: float, step: float) -> float:
    return max(step, step * round(value / step))


def _factor(value: Any) -> str:
    """An extrapolation factor for people: ``2.53``, ``3.33``, ``2``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return "n/a"


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


def _number(value: Any) -> str:
    """A measured real for people: three significant digits; null is ``n/a``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return "n/a"


_STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; line-height: 1.5;
  margin: 0 auto; padding: 1.5rem 1rem 3rem; max-width: 68rem; color: #1d1d1d; }
h1 { margin: 0 0 0.1em; font-size: 1.9rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.period { margin: 0 0 1rem; color: #444; font-size: 1.1rem; }
.warnings { background: #fff1e6; border-left: 0.35rem solid #c2410c; padding: 0.4rem 0.9rem;
  margin: 0.8rem 0; }
.warnings p { margin: 0.3rem 0; overflow-wrap: anywhere; }
.summary { font-size: 1.15rem; max-width: 48rem; }
.note { color: #555; max-width: 48rem; }
.scroll { max-width: 100%; overflow-x: auto; margin: 0.5rem 0 1rem; }
.scroll.tall { max-height: 70vh; overflow-y: auto; border: 1px solid #ddd; }
.scroll:focus { outline: 2px solid #1f5fa8; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #d6d6d6; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
thead th { background: #f2f2f2; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.withheld { color: #666; font-style: italic; }
td.small { color: #8a1c00; }
td.total { font-weight: 600; }
.scroll.tall td { white-space: nowrap; }
table.explained td.explain { color: #444; min-width: 16rem; }
figure { margin: 1rem 0; }
img { max-width: 100%; height: auto; }
ul li { margin-bottom: 0.4em; max-width: 52rem; }
@media print { .scroll.tall { max-height: none; overflow: visible; } }
"""


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
{body}
</body>
</html>
"""
