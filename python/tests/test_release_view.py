"""The Release view: files, reprs, plots and the HTML report, on a hand-written release."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import crowdtally as ct
from crowdtally.release import COLUMNS, Release

DAY1 = "2026-07-01T00:00:00+02:00"
DAY2 = "2026-07-02T00:00:00+02:00"
NASTY = "<script>alert('x')</script> Markt"
DOLLARS = "Station $1-$2"  # not mathtext in plots

SCHEMA = pa.schema(
    [
        ("zone", pa.utf8()),
        ("bucket_start", pa.utf8()),
        ("class", pa.utf8()),
        ("origin", pa.utf8()),
        ("devices", pa.uint64()),
        ("visits", pa.uint64()),
        ("dwell_s", pa.int64()),
        ("band_0_1h", pa.uint64()),
        ("band_1_2h", pa.uint64()),
        ("band_2_4h", pa.uint64()),
        ("band_4_8h", pa.uint64()),
        ("band_8h_plus", pa.uint64()),
        ("suppressed", pa.bool_()),
        ("est_devices", pa.float64()),
        ("est_visits", pa.float64()),
        ("est_low", pa.float64()),
        ("est_high", pa.float64()),
    ]
)

# zone, bucket, origin, devices, visits, dwell_s, bands, suppressed, estimates
_ROWS: list[tuple[Any, ...]] = [
    # grote-markt, day 1: three origin rows (a leaf, a roaming country, the residual).
    ("grote-markt", DAY1, "*", 120, 150, 300_000, (60, 40, 30, 15, 5), False,
     (300.0, 380.0, 280.0, 320.0)),
    ("grote-markt", DAY1, "kortrijk", 50, 60, 120_000, (25, 15, 12, 6, 2), False,
     (150.0, 180.0, 140.0, 160.0)),
    ("grote-markt", DAY1, "country:FR", 40, 50, 100_000, (20, 15, 10, 4, 1), False,
     (80.0, 100.0, 75.0, 85.0)),
    ("grote-markt", DAY1, "other", 30, 40, 80_000, (15, 10, 8, 5, 2), False,
     (70.0, 100.0, 60.0, 80.0)),
    # grote-markt, day 2: no estimates.
    ("grote-markt", DAY2, "*", 80, 90, 200_000, (40, 25, 15, 7, 3), False, None),
    ("grote-markt", DAY2, "menen", 45, 50, 110_000, (22, 14, 8, 4, 2), False, None),
    ("grote-markt", DAY2, "other", 35, 40, 90_000, (18, 11, 7, 3, 1), False, None),
    # station, day 1: suppressed.
    ("station", DAY1, "*", None, None, None, (None,) * 5, True, None),
    # station, day 2: the residual only.
    ("station", DAY2, "*", 40, 44, 50_000, (30, 10, 4, 0, 0), False,
     (100.0, 110.0, 90.0, 110.0)),
    ("station", DAY2, "other", 40, 44, 50_000, (30, 10, 4, 0, 0), False,
     (100.0, 110.0, 90.0, 110.0)),
]  # fmt: skip


def release_table(rows: list[tuple[Any, ...]] = _ROWS) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for zone, bucket, origin, devices, visits, dwell, bands, suppressed, est in rows:
        values = [zone, bucket, "visitor", origin, devices, visits, dwell, *bands, suppressed]
        values += list(est) if est is not None else [None] * 4
        for name, value in zip(COLUMNS, values, strict=True):
            columns[name].append(value)
    return pa.table(columns, schema=SCHEMA)


def release_report() -> dict[str, Any]:
    return {
        "version": "0.1.0",
        "parameters": {
            "tz": "Europe/Brussels",
            "period": {"start": "2026-07-01", "end": "2026-07-03"},
            "period_label": "2026Q3",
            "resolution": 9,
            "home_country": "BE",
            "k": 30,
            "roll_up": True,
            "max_gap": 10800,
            "min_dwell": 0,
            "min_nights": 3,
            "usual_env_min_days": 23,
            "bucket": "day",
            "level": "municipality",
            "classes": ["visitor"],
            "subscribers": "detected",
            "roaming_factors": {"FR": 2.0},
        },
        "pings": {
            "read": 10_000,
            "kept": 9_000,
            "dropped": {
                "opt_out": 100,
                "bad_subscriber": 200,
                "bad_position": 300,
                "bad_ts": 150,
                "outside_period": 125,
                "duplicate": 125,
            },
        },
        "opt_out": {"pings": 100, "subscribers": 2},
        "pseudonym_collisions": 0,
        "devices": {
            "total": 500,
            "by_class": {
                "resident": 200,
                "regular": 50,
                "overnight_visitor": 70,
                "day_visitor": 180,
            },
            "roamers": 40,
            "domestic_unknown_home": 7,
        },
        "disclosure": {
            "k": 30,
            "groups": 4,
            "groups_suppressed": 1,
            "rows_released": 10,
            "origin_rows_rolled_up": 3,
            "origin_rows_moved_to_residual": 1,
        },
        "extrapolation": {
            "subscribers": "detected",
            "subscribers_total": 300,
            "national_factor": 2.5,
        },
        "zones": {"grote-markt": NASTY, "station": DOLLARS},
        "warnings": ["roamer country DE has no roaming factor"],
        "caveats": ["Estimates assume customers are a random sample of the population."],
    }


@pytest.fixture
def release() -> Release:
    return Release(release_table(), release_report())


def test_properties_and_conversions(release: Release) -> None:
    assert len(release) == len(_ROWS)
    assert release.report["disclosure"]["groups"] == 4
    assert release.to_arrow().equals(release_table())
    assert release.to_pandas()["origin"].tolist()[:2] == ["*", "kortrijk"]
    assert release.to_polars().columns == list(COLUMNS)


def test_wrong_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="must have the columns zone, bucket_start"):
        Release(release_table().drop_columns(["dwell_s"]), release_report())
    with pytest.raises(TypeError, match="__arrow_c_stream__"):
        Release([1, 2], release_report())  # type: ignore[arg-type]


def test_repr(release: Release) -> None:
    # The warnings come first, a line each.
    assert repr(release) == (
        "warning: roamer country DE has no roaming factor\n"
        "Release(bucket=day, level=municipality, classes=visitor: 10 rows, 4 groups, 1 suppressed)"
    )
    report = release_report()
    report["warnings"] = []
    assert repr(Release(release_table(), report)) == (
        "Release(bucket=day, level=municipality, classes=visitor: 10 rows, 4 groups, 1 suppressed)"
    )


def test_repr_html(release: Release) -> None:
    page = release._repr_html_()
    # The warnings come first.
    assert page.index("roamer country DE has no roaming factor") < page.index("<strong>Release")
    for text in ("day", "municipality", "Europe/Brussels", "2026-07-01 to 2026-07-02"):
        assert text in page
    assert "<th>groups suppressed</th><td>1</td>" in page
    assert "<th>origin rows moved into the residual</th><td>1</td>" in page
    assert "roamer country DE has no roaming factor" in page
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Markt (grote-markt)" in page
    # The busiest bucket of the busiest zone comes first, then the ten first rows.
    assert page.index("grote-markt") < page.index(f"{DOLLARS} (station)")
    assert page.count("<tr><td>") == 2 + 10


@pytest.mark.parametrize("name", ["out.parquet", "OUT.PQ"])
def test_write_parquet(release: Release, tmp_path: Path, name: str) -> None:
    path = release.write(tmp_path / name)
    assert path == tmp_path / name
    assert pq.read_table(path).equals(release_table())


def test_write_csv(release: Release, tmp_path: Path) -> None:
    path = release.write(str(tmp_path / "out.CSV"))
    options = pacsv.ConvertOptions(column_types=SCHEMA, strings_can_be_null=True)
    assert pacsv.read_csv(path, convert_options=options).equals(release_table())
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == list(COLUMNS)
    suppressed = rows[1 + 7]
    assert suppressed[:4] == ["station", DAY1, "visitor", "*"]
    assert suppressed[4:12] == [""] * 8
    assert suppressed[12] == "true"
    assert suppressed[13:] == [""] * 4


class PolarsTable:
    """A table that exports through polars only, like crowdtally.Table without pyarrow."""

    def __init__(self, table: pa.Table) -> None:
        import polars as pl

        self._frame = pl.DataFrame(table)
        self.column_names = list(COLUMNS)

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self._frame.__arrow_c_stream__(requested_schema)

    def __len__(self) -> int:
        return len(self._frame)

    def to_polars(self) -> Any:
        return self._frame


def test_write_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = Release(PolarsTable(release_table()), release_report())
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "pyarrow", None)
        patch.setitem(sys.modules, "pyarrow.parquet", None)
        release.write(tmp_path / "out.csv")
        release.write(tmp_path / "out.parquet")
    options = pacsv.ConvertOptions(column_types=SCHEMA, strings_can_be_null=True)
    read = pacsv.read_csv(tmp_path / "out.csv", convert_options=options)
    assert read.equals(release_table())
    # polars exports text as string views, and the file keeps the types it was given.
    written = pq.read_table(tmp_path / "out.parquet")
    assert written.cast(SCHEMA).equals(release_table())


def test_write_parquet_names_an_unwritable_path(release: Release, tmp_path: Path) -> None:
    path = tmp_path / "no-such-directory" / "out.parquet"
    with pytest.raises(ct.InputError) as error:
        release.write(path)
    assert str(path) in str(error.value)
    assert not path.exists()


def test_write_parquet_leaves_nothing_when_the_table_fails(tmp_path: Path) -> None:
    class FailingStream:
        """A table whose stream breaks after its schema: a reader error mid-write."""

        column_names = COLUMNS

        def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
            def batches() -> Any:
                yield from release_table().to_batches()
                raise OSError("the source went away")

            reader = pa.RecordBatchReader.from_batches(release_table().schema, batches())
            return reader.__arrow_c_stream__(requested_schema)

    path = tmp_path / "out.parquet"
    with pytest.raises(ct.InputError, match="the source went away"):
        Release(cast(Any, FailingStream()), release_report()).write(path)
    assert not path.exists()


def test_write_bad_extension(release: Release, tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    with pytest.raises(ValueError, match=re.escape(str(path))) as error:
        release.write(path)
    assert ".parquet" in str(error.value)
    assert ".csv" in str(error.value)
    assert not path.exists()


def test_write_report(release: Release, tmp_path: Path) -> None:
    path = release.write_report(tmp_path / "report.json")
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == release_report()
    assert NASTY in text  # UTF-8 text, not escaped: it is JSON, not HTML
    assert text.startswith('{\n  "version"')


def _bars(figure: Figure) -> list[float]:
    axes = figure.axes[0]
    return [
        patch.get_height() if patch.get_width() < 1 else patch.get_width()
        for patch in axes.patches
        if isinstance(patch, Rectangle)
    ]


def _line(figure: Figure, label: str) -> list[float]:
    [line] = [line for line in figure.axes[0].get_lines() if line.get_label() == label]
    return [float(value) for value in np.asarray(line.get_ydata(), dtype=float)]


def _same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True)
    )


def test_visitors_per_bucket(release: Release) -> None:
    figure = release.plot.visitors_per_bucket()  # grote-markt: the most devices
    assert isinstance(figure, Figure)
    assert _same(_line(figure, "people estimated"), [300.0, math.nan])
    assert _same(_line(figure, "devices observed"), [120.0, 80.0])
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["1 Jul", "2 Jul"]
    assert "suppressed" not in axes.get_title()

    station = release.plot.visitors_per_bucket("station")
    assert _same(_line(station, "devices observed"), [math.nan, 40.0])
    assert _same(_line(station, "people estimated"), [math.nan, 100.0])
    assert station.axes[0].get_title().startswith(r"Station \$1-\$2: visitors per day")
    assert "1 of 2 buckets suppressed" in station.axes[0].get_title()
    station.savefig(io.BytesIO(), format="png")


def test_top_origins(release: Release) -> None:
    figure = release.plot.top_origins()
    axes = figure.axes[0]
    # kortrijk 150 (estimated), other 70 + 35 (the second day has no estimates),
    # country:FR 80, menen 45 (observed only).
    assert _bars(figure) == [150.0, 105.0, 80.0, 45.0]
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert labels == [
        "kortrijk",
        "other origins (pooled) (partly observed)",
        "France",
        "menen (observed)",
    ]
    assert _bars(release.plot.top_origins(n=2)) == [150.0, 105.0]
    assert _bars(release.plot.top_origins(bucket_start=DAY2)) == [45.0, 35.0]
    station = release.plot.top_origins("station")
    assert _bars(station) == [100.0]
    assert "suppressed" in station.axes[0].get_title()
    with pytest.raises(ValueError, match="n must be at least 1"):
        release.plot.top_origins(n=0)


def test_dwell_bands(release: Release) -> None:
    assert _bars(release.plot.dwell_bands()) == [100.0, 65.0, 45.0, 22.0, 8.0]
    station = release.plot.dwell_bands("station")
    assert _bars(station) == [30.0, 10.0, 4.0, 0.0, 0.0]
    assert "1 of 2 buckets suppressed (below k = 30)" in station.axes[0].get_title()


def test_plot_unknown_zone(release: Release) -> None:
    with pytest.raises(ValueError, match=r"'nowhere'.*zones: grote-markt, station"):
        release.plot.dwell_bands("nowhere")


def test_plots_without_matplotlib(release: Release, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for plot in (
        release.plot.visitors_per_bucket,
        release.plot.top_origins,
        release.plot.dwell_bands,
        release.plot.zones,
    ):
        with pytest.raises(ImportError, match=re.escape("pip install crowdtally[plot]")):
            plot()


def _external(page: str) -> list[str]:
    """Anything that could load from the network, once the inline images are left out."""
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    return re.findall(r"http|//[a-z]|<script|<link|@import", text)


def _text(page: str) -> str:
    """The page without its inline images."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)


def test_report_html(release: Release, tmp_path: Path) -> None:
    path = release.report_html(tmp_path / "report.html")
    assert path == tmp_path / "report.html"
    assert [entry.name for entry in tmp_path.iterdir()] == ["report.html"]
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<h1>Visitor statistics 2026Q3</h1>" in page
    assert "Wednesday 1 July to Thursday 2 July 2026" in page
    # Small multiples of the zones, the busiest zone's origins and dwell; no map without
    # the geography, and the page says how to get one.
    assert page.count("data:image/png;base64,") == 3
    assert "No map: the release does not hold the geography" in page
    assert 'src="http' not in page
    assert _external(page) == []
    assert "<script>" not in page
    # Names are escaped; the page shows names, not ids.
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Markt" in page
    for caveat in release_report()["caveats"]:
        assert caveat in page
    assert "Small zones are undercounted" in page
    for text in ("no valid position", "domestic devices with unknown home", "FR: 2"):
        assert text in page
    assert "<th>pings dropped: repeated</th><td>125</td>" in page
    assert "<th>devices: day visitors</th><td>180</td>" in page
    assert "<th>groups suppressed</th><td>1</td>" in page


def test_report_html_reads_as_plain_language(release: Release, tmp_path: Path) -> None:
    report = release_report()
    report["extrapolation"]["national_factor"] = 2.5030723488602575
    report["parameters"]["roaming_factors"] = {"FR": 3.3333333333333335}
    page = Release(release_table(), report).report_html(tmp_path / "report.html").read_text()
    text = _text(page)
    # The warning is the first thing after the title, before the summary.
    warning = "roamer country DE has no roaming factor"
    assert text.index("<h1>") < text.index(warning) < text.index("id='summary'")
    summary = text[text.index("<p class='summary'>") : text.index("</section>")]
    assert "the busiest day was Wednesday 1 July 2026" in summary
    assert "about 300 (likely 280 to 320) visitors" in summary
    # kortrijk 150, FR 80 and menen 45 of 380, the pooled 105 apart.
    assert "kortrijk (39 %), France (21 %) and menen (12 %)" in summary
    assert "28 % came from origins too small to show apart" in summary
    assert "lasted 35 minutes on average, and 42 % of visits were under an hour" in summary
    assert "from the 120 phones seen there" in summary
    assert "1 of the 4 figures (zones and categories per day) are suppressed" in summary
    # Human dates, whole numbers, names and explained keys; no raw form of any.
    assert "Thursday 2 July 2026" in text
    assert DAY1 not in text
    assert DAY2 not in text
    assert re.findall(r"\d\.\d{3,}", text) == []
    assert "2.5" in text
    assert "FR: 3.33" in text
    for raw in ("bad_subscriber", "bad_position", "country:FR", "day_visitor", "k_anonymity"):
        assert raw not in text
    # A suppressed group says so, and why, rather than showing zeros.
    assert "suppressed (fewer than 30 devices)</td>" in text
    # Every table scrolls in a box of the page's width.
    assert text.count("<table") == text.count("<div class='scroll")
    # Every setting is in the appendix with a sentence saying what it means.
    settings = text[text.index("<h3>Settings</h3>") : text.index("<h3>Data quality</h3>")]
    explained = re.findall(
        r"<tr><th>([^<]+)</th><td>[^<]*</td><td class='explain'>[^<]+</td>", settings
    )
    assert len(explained) == len(report["parameters"])
    for key in report["parameters"]:
        assert any(row.endswith(f"({key})") or row == key for row in explained), key


def test_report_html_caps_rows(release: Release, tmp_path: Path) -> None:
    page = release.report_html(tmp_path / "report.html", max_rows=3).read_text()
    assert "The first 3 of 10 rows" in page
    rows = page.split("<h2>All figures</h2>")[1]
    days = ("Wednesday 1 July 2026</td>", "Thursday 2 July 2026</td>")
    assert sum(rows.count(day) for day in days) == 3


def test_report_html_without_matplotlib(
    release: Release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    page = release.report_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "pip install crowdtally[plot]" in page
    assert "data:image" not in page
    assert DOLLARS in page


def test_empty_release(tmp_path: Path) -> None:
    report = release_report()
    report["parameters"]["period"] = None
    report["parameters"]["period_label"] = None
    release = Release(release_table().slice(0, 0), report)
    assert len(release) == 0
    assert "<th>period</th><td>not given" in release._repr_html_()
    page = release.report_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h1>Visitor statistics</h1>" in page
    assert "the release holds no figures" in page
    assert "data:image" not in page
    with pytest.raises(ValueError, match="no rows of class 'visitor'"):
        release.plot.dwell_bands()


# -- names from the table, categories, and a release with nothing to show ----------------

CULTURE = "category:culture"

_CATEGORY_ROWS: list[tuple[Any, ...]] = [
    (CULTURE, DAY1, "*", 130, 160, 310_000, (65, 40, 30, 15, 10), False,
     (320.0, 400.0, 300.0, 340.0)),
    (CULTURE, DAY2, "*", None, None, None, (None,) * 5, True, None),
]  # fmt: skip

ZONE_NAMES = {"grote-markt": "Grote Markt", "station": "Station", CULTURE: "Culture and heritage"}
ORIGIN_NAMES = {"kortrijk": "Kortrijk", "menen": "Menen", "country:FR": "France (roaming)"}


class StreamTable:
    """A table read through its Arrow stream only, like a release table read back from
    a file by another tool; its columns may follow the fixed ones."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self._table.__arrow_c_stream__(requested_schema)

    def __len__(self) -> int:
        return len(self._table)


def named_release() -> Release:
    """The release with a category, and with the columns for people after the fixed
    ones: a timestamp of the bucket, the zone's and the origin's names."""
    table = release_table(_ROWS + _CATEGORY_ROWS)
    starts = [dt.datetime.fromisoformat(s) for s in table["bucket_start"].to_pylist()]
    table = table.append_column("bucket_ts", pa.array(starts, pa.timestamp("s", tz="UTC")))
    zones = table["zone"].to_pylist()
    table = table.append_column("zone_name", pa.array([ZONE_NAMES[z] for z in zones]))
    origins = [ORIGIN_NAMES.get(o) for o in table["origin"].to_pylist()]
    table = table.append_column("origin_name", pa.array(origins, pa.utf8()))
    return Release(StreamTable(table), release_report())


def test_report_html_names_from_the_table(tmp_path: Path) -> None:
    release = named_release()
    page = _text(release.report_html(tmp_path / "report.html").read_text(encoding="utf-8"))
    # The table's names win over the report's and over ids.
    assert "Grote Markt" in page
    assert "alert(" not in page
    assert "France (roaming)" in page
    assert "Kortrijk" in page
    assert "category:" not in page
    assert "country:FR" not in page
    # Categories are shown apart from zones, after them, in a table and a figure of
    # their own.
    categories = page.index("<h3>Categories</h3>")
    assert page.index("Culture and heritage") > categories
    assert page.index("<h3>Categories: visitors per day</h3>") > categories
    full = release.report_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert full.count("data:image/png;base64,") == 4


def test_names_fall_back_to_readable_ids(release: Release) -> None:
    from crowdtally._plots import Names

    names = Names(release, {"A3": "Kortrijk arrondissement"})
    assert names.zone("grote-markt") == NASTY
    assert names.zone("nowhere") == "nowhere"
    assert names.zone("category:retail") == "Retail"
    assert names.origin("country:FR") == "France"
    assert names.origin("country:ZZ") == "country ZZ"
    assert names.origin("other:A3") == "other places in Kortrijk arrondissement"
    assert names.origin("other:abroad") == "other countries"
    assert names.origin("other") == "other origins (pooled)"
    assert names.origin("unknown") == "home unknown"
    assert names.origin("menen") == "menen"


def test_dates_for_people() -> None:
    from crowdtally._plots import bucket_text, bucket_tick, date_range, long_date

    assert long_date(dt.date(2026, 8, 23)) == "Sunday 23 August 2026"
    assert date_range(dt.date(2026, 7, 1), dt.date(2026, 7, 14)) == (
        "Wednesday 1 July to Tuesday 14 July 2026"
    )
    assert date_range(dt.date(2026, 12, 28), dt.date(2027, 1, 3)) == (
        "Monday 28 December 2026 to Sunday 3 January 2027"
    )
    start = "2026-08-23T14:00:00+02:00"
    assert bucket_text(start, "day") == "Sunday 23 August 2026"
    assert bucket_text(start, "hour") == "Sunday 23 August 2026, 14:00"
    assert bucket_text("2026-08-17T00:00:00+02:00", "week") == "week of Monday 17 August 2026"
    assert bucket_text("2026-07-01T00:00:00+02:00", "month") == "July 2026"
    assert bucket_text("2026-07-01T00:00:00+02:00", "quarter") == "July to September 2026"
    assert bucket_text(start, "period") == "the whole period"
    assert bucket_tick(start, "day") == "23 Aug"
    assert bucket_tick(start, "hour") == "23 Aug 14h"


def suppressed_release() -> Release:
    rows = [
        (zone, day, "*", None, None, None, (None,) * 5, True, None)
        for zone in ("grote-markt", "station")
        for day in (DAY1, DAY2)
    ]
    report = release_report()
    report["disclosure"] |= {"groups": 4, "groups_suppressed": 4, "rows_released": 4}
    return Release(release_table(rows), report)


def test_nothing_released_says_so(tmp_path: Path) -> None:
    release = suppressed_release()
    # No plot draws made-up axes around nothing: no ticks, and the reason in the middle.
    for figure in (
        release.plot.visitors_per_bucket("station"),
        release.plot.top_origins("station"),
        release.plot.dwell_bands("station"),
    ):
        axes = figure.axes[0]
        assert list(axes.get_yticks()) == []
        texts = [text.get_text() for text in axes.texts]
        assert texts == ["Nothing to show: all 2 day buckets suppressed (fewer than 30 devices)"]
    panels = release.plot.zones()
    for axes in panels.axes:
        assert list(axes.get_yticks()) == []
        assert [t.get_text() for t in axes.texts] == [
            "suppressed every day\n(fewer than 30 devices)"
        ]
    page = _text(release.report_html(tmp_path / "report.html").read_text(encoding="utf-8"))
    assert "no zone figure could be published" in page
    assert "suppressed (fewer than 30 devices) every day</td>" in page
    assert re.findall(r"<td class=\"num\">0</td>", page) == []


def test_zones_small_multiples(release: Release) -> None:
    figure = release.plot.zones()
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title(loc="left") for axes in panels] == [NASTY, r"Station \$1-\$2"]
    # The estimate per bucket: grote-markt's second day has no estimate, station's first
    # is suppressed (and greyed).
    lines = [panel.get_lines() for panel in panels]
    assert [len(line) for line in lines] == [1, 1]
    assert _same([float(v) for v in np.asarray(lines[0][0].get_ydata())], [300.0, math.nan])
    assert _same([float(v) for v in np.asarray(lines[1][0].get_ydata())], [math.nan, 100.0])
    assert panels[0].get_ylim() == panels[1].get_ylim()  # one scale for every zone
    with pytest.raises(ValueError, match="no categories"):
        release.plot.zones(categories=True)


def test_zone_bars_for_a_period_release() -> None:
    rows = [row for row in _ROWS if row[1] == DAY1]
    report = release_report()
    report["parameters"]["bucket"] = "period"
    release = Release(release_table(rows), report)
    figure = release.plot.zones()
    assert _bars(figure) == [300.0]
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert "  suppressed (fewer than 30 devices)" in texts
    assert " 300" in texts


# -- maps, from the geography -----------------------------------------------------------


def test_report_html_with_geography(
    release: Release, geography: ct.Geography, tmp_path: Path
) -> None:
    path = release.report_html(tmp_path / "report.html", geography=geography)
    page = _text(path.read_text(encoding="utf-8"))
    # Two more images: the map of the zones and of where grote-markt's visitors came from.
    assert path.read_text(encoding="utf-8").count("data:image/png;base64,") == 5
    assert "No map" not in page
    assert "Not on the map: other origins (pooled): 105; France: 80." in page
    # One cell of resolution 9 is some 350 m across: flagged, and listed in the caveat.
    assert page.count("about 350 m across: likely undercounted") == 2
    assert "Zones under 1,000 m across in this release:" in page


def test_zone_map(release: Release, geography: ct.Geography) -> None:
    figure = release.plot.zone_map(geography)
    axes, key = figure.axes[0], figure.axes[1]
    # The study area and the two zones, numbered on the map and named in the key.
    assert len(axes.patches) == 3
    numbers = [text.get_text() for text in axes.texts if not text.get_text().endswith(" m")]
    assert sorted(numbers) == ["1", "2"]  # and the scale bar's length
    shown = [text.get_text() for text in key.texts]
    assert shown[:4] == ["Zones", "1", NASTY[:27] + "...", "300"]  # long names shortened
    assert shown[4:] == ["2", r"Station \$1-\$2", "100"]
    figure.savefig(io.BytesIO(), format="png")


def test_origin_map(release: Release, geography: ct.Geography) -> None:
    figure = release.plot.origin_map(geography)
    axes, key = figure.axes[0], figure.axes[1]
    # Every region in grey, kortrijk and menen coloured, the study area outlined.
    assert len(axes.patches) == 4
    shown = [text.get_text() for text in key.texts]
    # kortrijk 150, other 105, FR 80, menen 45; those not on the map marked.
    assert shown[1:] == [
        "", "kortrijk", "150",
        "*", "other origins (pooled)", "105",
        "*", "France", "80",
        "", "menen", "45",
        "*", "not on the map", "",
    ]  # fmt: skip
    figure.savefig(io.BytesIO(), format="png")


def test_pooled_origins_cover_what_no_other_row_covers(geography: ct.Geography) -> None:
    from crowdtally._plots import GeographyShapes

    shapes = GeographyShapes(geography)
    menen = shapes.region_cells("menen")
    kortrijk = shapes.region_cells("kortrijk")
    areas = shapes.origin_areas(["kortrijk", "other:WVL", "country:FR", "other"])
    assert sorted(areas) == ["kortrijk", "other:WVL"]
    assert sorted(areas["kortrijk"]) == sorted(kortrijk)
    assert sorted(areas["other:WVL"]) == sorted(menen)
    # A deeper pool takes its cells before the wider one.
    areas = shapes.origin_areas(["other:WVL", "other:BE"])
    assert sorted(areas) == ["other:WVL"]


def test_report_html_maps_need_h3(
    release: Release, geography: ct.Geography, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "h3.api.basic_int", None)
    page = release.report_html(tmp_path / "report.html", geography=geography).read_text()
    assert "No map: drawing the maps needs the h3 package" in page
    assert page.count("data:image/png;base64,") == 3
