"""Spend per visitor as users meet it: card payments joined to a release, the merchants
protected (fewest merchants, the p % rule, complementary suppression), bad rows counted
and never fatal, mistakes refused with the fix, and on the synthetic city, the spend
matching the truth."""

from __future__ import annotations

import json
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import h3
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import crowdtally as ct
from conftest import CENTRE, KEY, MENEN
from crowdtally import synth
from crowdtally.spend import SPEND_COLUMNS

LAT, LON = CENTRE
DAY = "2026-07-01"
# Merchant ids that must never be shown: not in the table, the report, repr or the page.
SECRET = "MERCHANT-SECRET"

# Merchants' cells as H3 numbers: the Grote Markt's cell at the analysis resolution (9),
# as conftest draws it; a finer cell inside it (read as its parent); the cell of Kortrijk
# at resolution 7, too coarse to place a merchant; a cell of Menen, in no zone.
MARKT = h3.str_to_int(h3.latlng_to_cell(*CENTRE, 9))
MARKT_FINE = h3.str_to_int(h3.latlng_to_cell(*CENTRE, 11))
KORTRIJK_CELL = h3.str_to_int(h3.latlng_to_cell(*CENTRE, 7))
MENEN_CELL = h3.str_to_int(h3.latlng_to_cell(*MENEN, 9))


def config() -> ct.Config:
    """One day, and k = 2 for the handful of devices below."""
    return ct.Config(key=KEY, period=(DAY, "2026-07-02"), k=2)


def pings() -> dict[str, list[Any]]:
    """Four devices on the Grote Markt on 1 July, hourly from 8:00 to 17:00."""
    n = 40
    return {
        "subscriber": [f"2060100000000{i % 4:02d}" for i in range(n)],
        "ts": [f"{DAY}T{8 + i // 4:02d}:00:00" for i in range(n)],
        "lat": [LAT] * n,
        "lon": [LON] * n,
    }


@pytest.fixture
def release(geography: ct.Geography) -> ct.Release:
    """The day's release: the Grote Markt's visitors released, the station's not."""
    return ct.analyze(pings(), geography, config(), bucket="day", subscribers={"kortrijk": 8_000})


def payments(rows: list[tuple[str, int, str, int]]) -> dict[str, list[Any]]:
    """Payments of 1 July: (merchant, cell, category, cents). Without an origin column,
    as the devices above have no known home: every payment goes to their row `unknown`."""
    return {
        "merchant_id": [merchant for merchant, _, _, _ in rows],
        "merchant_cell": [cell for _, cell, _, _ in rows],
        "category": [category for _, _, category, _ in rows],
        "day": [DAY] * len(rows),
        "amount": [cents for _, _, _, cents in rows],
        "transactions": [max(1, cents // 2_500) for _, _, _, cents in rows],
    }


def market_payments() -> dict[str, list[Any]]:
    """On the Grote Markt: three cafés of equal sales (horeca), a big shop selling hundreds
    of times what three small ones sell together (retail), and two museums (culture)."""
    return payments(
        [
            *((f"{SECRET}-{k}", MARKT, "horeca", 10_000) for k in range(1, 4)),
            (f"{SECRET}-BIG", MARKT_FINE, "retail", 1_000_000),
            *((f"{SECRET}-SMALL-{k}", MARKT, "retail", 1_000) for k in range(1, 4)),
            *((f"{SECRET}-MUSEUM-{k}", MARKT, "culture", 5_000) for k in range(1, 3)),
        ]
    )


def cells(spend: ct.Spend, zone: str, origin: str = "*") -> dict[str, dict[str, Any]]:
    """The spend rows of a zone and origin, by shop category."""
    rows = spend.to_arrow().to_pylist()
    return {row["category"]: row for row in rows if (row["zone"], row["origin"]) == (zone, origin)}


def crowdtally_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, ct.CrowdtallyWarning)]


# -- protection ----------------------------------------------------------------------------


def test_a_dominant_merchant_is_withheld_and_equal_merchants_are_published(
    release: ct.Release, geography: ct.Geography
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spend = ct.spend(release, market_payments(), geography, config())
    assert crowdtally_warnings(caught) == []
    assert tuple(spend.to_arrow().column_names) == SPEND_COLUMNS

    market = cells(spend, "grote-markt")
    assert list(market) == ["*", "culture", "horeca", "retail"]
    cafes = market["horeca"]
    assert not cafes["suppressed"]
    assert cafes["spend"] == pytest.approx(300.0)
    assert cafes["merchants"] == 3
    assert cafes["transactions"] == 12
    # Divided by the visitors of the same release row, with their interval.
    visitors = [
        row
        for row in release.to_arrow().to_pylist()
        if (row["zone"], row["origin"], row["class"]) == ("grote-markt", "*", "visitor")
    ]
    assert len(visitors) == 1
    assert not visitors[0]["suppressed"]
    estimate = visitors[0]
    assert cafes["spend_per_visitor"] == pytest.approx(300.0 / estimate["est_devices"])
    assert cafes["spend_per_visitor_low"] == pytest.approx(300.0 / estimate["est_high"])
    assert cafes["spend_per_visitor_high"] == pytest.approx(300.0 / estimate["est_low"])

    # The second largest shop, taking its own sales from the total, would learn the big
    # one's to within p %: the p % rule withholds retail, and the zone's total with it.
    for withheld in (market["retail"], market["*"]):
        assert withheld["suppressed"]
        assert withheld["spend"] is None
        assert withheld["merchants"] is None
        assert withheld["spend_per_visitor"] is None
    # Two museums are too few: either's sales would be the other's to work out.
    assert market["culture"]["suppressed"]

    protection = spend.report["protection"]
    assert protection["suppressed_dominance"] >= 2
    assert protection["suppressed_few_merchants"] >= 1
    # The station has no visitor figure: its spend cells are withheld with it.
    assert protection["suppressed_visitor_row"] >= 1
    assert all(row["suppressed"] for row in cells(spend, "station").values())
    assert (
        protection["cells"]
        == len(spend)
        == sum(
            protection[key]
            for key in (
                "released",
                "suppressed_visitor_row",
                "suppressed_few_merchants",
                "suppressed_dominance",
                "suppressed_complementary",
            )
        )
    )
    assert spend.report["payments"]["merchants"] == 9
    assert spend.report["parameters"]["p"] == 10.0
    assert spend.report["parameters"]["min_merchants"] == 3
    assert spend.report["parameters"]["class"] == "visitor"


def test_a_lower_p_publishes_what_a_higher_one_withholds(
    release: ct.Release, geography: ct.Geography
) -> None:
    # The small shops hold 0.2 % of the big one's sales: under p = 0.1 the rule passes.
    spend = ct.spend(release, market_payments(), geography, config(), p=0.1)
    retail = cells(spend, "grote-markt")["retail"]
    assert not retail["suppressed"]
    assert retail["spend"] == pytest.approx(10_030.0)
    assert retail["merchants"] == 4


def test_merchants_placed_by_zone_count_as_by_cell(
    release: ct.Release, geography: ct.Geography
) -> None:
    by_cell = market_payments()
    by_zone = dict(by_cell)
    del by_zone["merchant_cell"]
    by_zone["zone"] = ["grote-markt"] * len(by_cell["merchant_id"])
    first = ct.spend(release, by_cell, geography, config())
    second = ct.spend(release, by_zone, geography, config())
    assert first.to_arrow().equals(second.to_arrow())


def test_a_study_joins_spend_as_the_module_function(
    release: ct.Release, geography: ct.Geography
) -> None:
    study = ct.Study(geography, config())
    by_study = study.spend(release, market_payments(), p=0.1, by=("zone", "bucket", "category"))
    by_function = ct.spend(
        release, market_payments(), geography, config(), p=0.1, by=("zone", "bucket", "category")
    )
    assert by_study.to_arrow().equals(by_function.to_arrow())
    assert by_study.report == by_function.report


def test_decimal_amounts_are_read_as_currency_and_rounded_to_the_cent(
    release: ct.Release, geography: ct.Geography
) -> None:
    data = payments([(f"{SECRET}-{k}", MARKT, "horeca", 10_000) for k in range(1, 4)])
    cents = ct.spend(release, data, geography, config()).to_arrow()
    euros = {**data, "amount": pa.array([Decimal("100.004")] * 3, pa.decimal128(9, 3))}
    assert ct.spend(release, euros, geography, config()).to_arrow().equals(cents)


# -- bad input -----------------------------------------------------------------------------


def test_bad_rows_are_counted_by_reason_and_never_fatal(
    release: ct.Release, geography: ct.Geography
) -> None:
    data = market_payments()
    good = len(data["merchant_id"])
    data["origin"] = [None] * good
    bad_rows: list[tuple[str, str, Any]] = [
        ("missing_merchant", "merchant_id", None),
        ("bad_location", "merchant_cell", None),
        # A cell coarser than the analysis resolution (7 < 9) places no merchant.
        ("bad_location", "merchant_cell", KORTRIJK_CELL),
        ("bad_time", "day", "1 July"),
        ("outside_period", "day", "2026-07-02"),
        ("missing_category", "category", None),
        ("unknown_origin", "origin", "atlantis"),
        ("bad_amount", "amount", -500),
        ("bad_amount", "amount", None),
        ("bad_transactions", "transactions", -1),
    ]
    for _, column, value in bad_rows:
        for name, values in data.items():
            values.append(value if name == column else values[0])
    # Each reason is over 5 % of these few rows: each is warned of.
    with pytest.warns(ct.CrowdtallyWarning) as warned:
        spend = ct.spend(release, data, geography, config())
    said = crowdtally_warnings(list(warned))
    assert "2 of 19 payment rows (11 %) were dropped as bad_location" in said
    assert len(said) == len({reason for reason, _, _ in bad_rows})

    counted = spend.report["payments"]
    expected: dict[str, int] = {}
    for reason, _, _ in bad_rows:
        expected[reason] = expected.get(reason, 0) + 1
    assert {reason: n for reason, n in counted["dropped"].items() if n} == expected
    # Every reason is listed, zero included.
    assert counted["dropped"]["unknown_zone"] == 0
    assert counted["rows_read"] == good + len(bad_rows)
    assert counted["rows_kept"] == good
    assert counted["outside_zones"] == 0
    # The good rows make the same table as without the bad ones.
    clean = ct.spend(release, market_payments(), geography, config())
    assert spend.to_arrow().equals(clean.to_arrow())


def test_a_float_amount_is_refused_naming_the_column(
    release: ct.Release, geography: ct.Geography
) -> None:
    data = market_payments()
    data["amount"] = [cents / 100 for cents in data["amount"]]
    with pytest.raises(ct.InputError, match=r"payments\.amount") as refused:
        ct.spend(release, data, geography, config())
    assert "decimal" in str(refused.value)


def test_a_csv_path_says_how_to_read_it(
    release: ct.Release, geography: ct.Geography, tmp_path: Path
) -> None:
    path = tmp_path / "payments.csv"
    path.write_text("merchant_id,merchant_cell\nm,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is CSV: read it first"):
        ct.spend(release, str(path), geography, config())


def test_a_parquet_path_reads_as_the_table(
    release: ct.Release, geography: ct.Geography, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    table = pa.table(market_payments())
    pq.write_table(table, tmp_path / "payments.parquet")
    from_file = ct.spend(release, tmp_path / "payments.parquet", geography, config())
    assert from_file.to_arrow().equals(ct.spend(release, table, geography, config()).to_arrow())


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"p": -1.0}, "p"),
        ({"p": 101.0}, "p"),
        ({"min_merchants": 1}, "min_merchants"),
        ({"by": ("zone", "category")}, "by"),
        ({"by": ("zone", "bucket", "merchant")}, "by"),
    ],
    ids=["negative p", "p above 100", "one merchant", "by without bucket", "unknown by"],
)
def test_invalid_parameters_are_refused(
    release: ct.Release, geography: ct.Geography, arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(ct.ConfigError) as refused:
        ct.spend(release, market_payments(), geography, config(), **arguments)
    assert refused.value.field == field


def test_merchants_outside_every_zone_are_warned_of(
    release: ct.Release, geography: ct.Geography
) -> None:
    data = payments([(f"{SECRET}-{k}", MENEN_CELL, "horeca", 10_000) for k in range(1, 4)])
    with pytest.warns(ct.CrowdtallyWarning, match="merchant_cell") as warned:
        spend = ct.spend(release, data, geography, config())
    assert len(crowdtally_warnings(list(warned))) == len(spend.report["warnings"]) == 1
    assert spend.report["payments"]["outside_zones"] == 3
    # Nothing was paid in any zone: a released visitor row has an empty spend of zero.
    assert cells(spend, "grote-markt")["*"]["spend"] == 0.0


# -- the spend object ----------------------------------------------------------------------


def test_write_and_read_give_the_same_spend(
    release: ct.Release, geography: ct.Geography, tmp_path: Path
) -> None:
    spend = ct.spend(release, market_payments(), geography, config())
    path = spend.write(tmp_path / "spend.parquet")
    back = ct.Spend.read(path)
    assert back.to_arrow().equals(spend.to_arrow())
    assert back.report == spend.report
    assert len(back) == len(spend)
    assert list(back.to_pandas().columns) == list(SPEND_COLUMNS)
    assert back.to_polars().columns == list(SPEND_COLUMNS)
    with pytest.raises(ValueError, match=r"\.parquet"):
        spend.write(tmp_path / "spend.csv")
    # A release file is no spend table.
    release.write(tmp_path / "visitors.parquet")
    with pytest.raises(ValueError, match="not a spend table"):
        ct.Spend.read(tmp_path / "visitors.parquet")


def test_no_merchant_id_is_shown_anywhere(
    release: ct.Release, geography: ct.Geography, tmp_path: Path
) -> None:
    spend = ct.spend(release, market_payments(), geography, config())
    shown = repr(spend)
    assert f"{len(spend)} rows" in shown
    protection = spend.report["protection"]
    assert f"cells released {protection['released']}" in shown
    assert f"dominance {protection['suppressed_dominance']}" in shown
    page = release.report_html(tmp_path / "report.html", spend=spend).read_text("utf-8")
    values = json.dumps(spend.to_arrow().to_pylist())
    for text in (shown, json.dumps(spend.report), values, page):
        assert SECRET not in text


# -- the report page -----------------------------------------------------------------------


def test_the_report_page_shows_where_visitors_spend(
    release: ct.Release, geography: ct.Geography, tmp_path: Path
) -> None:
    spend = ct.spend(release, market_payments(), geography, config())
    page = release.report_html(tmp_path / "spend.html", spend=spend).read_text("utf-8")
    assert "<h2>Where visitors spend</h2>" in page
    # Before "How sure are these numbers?".
    assert page.index("Where visitors spend") < page.index("How sure are these numbers?")
    # The cafés' spend, in whole euros; per visitor in euros and cents.
    cafes = cells(spend, "grote-markt")["horeca"]
    assert "€300<" in page
    assert f"€{cafes['spend_per_visitor']:,.2f}" in page
    # Each rule in plain words, and the caveats.
    for words in (
        "withheld because one shop dominates",
        "withheld because fewer than 3 shops had card sales",
        "withheld because the visitor figure is withheld",
        "withheld so the others cannot be worked out",
    ):
        assert words in page
    for caveat in spend.report["caveats"]:
        assert f"<li>{caveat}</li>" in page.replace("&#x27;", "'")
    # The station's visitors are withheld, and its spend with them.
    assert 'Station</td><td class="withheld" colspan="4">withheld on 1 of 1 days</td>' in page
    # Without spend, the page has no such section.
    plain = release.report_html(tmp_path / "plain.html").read_text("utf-8")
    assert "Where visitors spend" not in plain


def test_the_report_page_names_the_zone_of_spend_per_visitor(
    release: ct.Release, geography: ct.Geography, tmp_path: Path
) -> None:
    data = payments([(f"{SECRET}-{k}", MARKT, "horeca", 10_000) for k in range(1, 4)])
    spend = ct.spend(release, data, geography, config())
    total = cells(spend, "grote-markt")["*"]
    assert not total["suppressed"]
    page = release.report_html(tmp_path / "spend.html", spend=spend).read_text("utf-8")
    low, high = total["spend_per_visitor_low"], total["spend_per_visitor_high"]
    assert (
        "Card spend per visitor could be given for one zone only, Grote Markt: about "
        f"€{total['spend_per_visitor']:,.2f} per visitor a day (likely €{low:,.2f} to "
        f"€{high:,.2f}), from €300 paid by card over the period."
    ) in page.replace("&#x27;", "'")


def test_the_report_page_refuses_the_spend_of_another_release(
    release: ct.Release, geography: ct.Geography, tmp_path: Path
) -> None:
    period = ct.analyze(
        pings(), geography, config(), bucket="period", subscribers={"kortrijk": 8_000}
    )
    spend = ct.spend(period, market_payments(), geography, config())
    with pytest.raises(ValueError, match="another release: its bucket is period"):
        release.report_html(tmp_path / "report.html", spend=spend)
    assert not (tmp_path / "report.html").exists()
    with pytest.raises(TypeError, match=r"crowdtally\.Spend"):
        release.report_html(tmp_path / "report.html", spend=spend.to_arrow())


# -- the synthetic city --------------------------------------------------------------------


@pytest.fixture(scope="module")
def city_spend() -> dict[str, Any]:
    """A small synthetic city's period release and its spend."""
    city = synth.scenario(scale=0.004, days=28, seed=2026)
    config = city.config()
    release = ct.analyze(
        city.pings,
        city.geography,
        config,
        bucket="period",
        level="municipality",
        subscribers=city.subscribers(),
        roaming_factors={code: 1 / 0.3 for code in ("FR", "NL", "DE")},
    )
    spend = ct.spend(release, city.payments["payments"], city.geography, config)
    return {"city": city, "release": release, "spend": spend}


def test_the_synthetic_spend_adds_up_to_the_truth(city_spend: dict[str, Any]) -> None:
    city, spend = city_spend["city"], city_spend["spend"]
    truth_cents: dict[str, int] = city.payments["spend_by_zone"]
    totals = cells_by_zone(spend)
    released = {zone: row for zone, row in totals.items() if not row["suppressed"]}
    assert len(released) >= len(totals) // 2
    for zone, row in released.items():
        assert row["spend"] == pytest.approx(truth_cents.get(zone, 0) / 100, abs=0.005), zone
    assert spend.report["payments"]["rows_kept"] == len(city.payments["payments"])
    assert spend.report["payments"]["outside_zones"] == 0
    assert spend.report["warnings"] == []


def test_the_synthetic_spend_per_visitor_brackets_the_truth(city_spend: dict[str, Any]) -> None:
    city, spend = city_spend["city"], city_spend["spend"]
    truth_cents: dict[str, int] = city.payments["spend_by_zone"]
    visitors = city.true_visitors()
    true_per_visitor = {
        zone: truth_cents.get(zone, 0) / 100 / visitors[zone]
        for zone in visitors
        if visitors[zone] >= 300
    }
    rows = {
        zone: row
        for zone, row in cells_by_zone(spend).items()
        if zone in true_per_visitor and row["spend_per_visitor"] is not None
    }
    assert len(rows) >= 5
    # The city centre, wide against the phones' position error, has its visitors
    # estimated without bias (docs/METHOD.md, "Estimates against the truth"): the
    # interval covers the true spend per visitor.
    for zone in ("city-centre", "category:retail"):
        low, high = rows[zone]["spend_per_visitor_low"], rows[zone]["spend_per_visitor_high"]
        assert low <= true_per_visitor[zone] <= high, (zone, low, true_per_visitor[zone], high)
    # Smaller zones' visitors are undercounted (short visits seen just outside them), so
    # their spend per visitor reads high: the truth is never above the interval.
    for zone, row in rows.items():
        assert true_per_visitor[zone] <= row["spend_per_visitor_high"], zone


def test_the_hypermarket_is_protected_by_the_p_rule(city_spend: dict[str, Any]) -> None:
    spend = city_spend["spend"]
    assert spend.report["protection"]["suppressed_dominance"] > 0
    table = spend.to_arrow()
    ring = [
        row
        for row in table.to_pylist()
        if (row["zone"], row["origin"], row["category"]) == ("ring-shopping", "*", "retail")
    ]
    assert len(ring) == 1
    assert ring[0]["suppressed"]
    merchants = pa.table(city_spend["city"].payments["merchants"])["merchant_id"].to_pylist()
    shown = repr(spend) + json.dumps(spend.report) + json.dumps(table.to_pylist())
    assert not [merchant for merchant in merchants if str(merchant) in shown]


def test_the_synthetic_report_page_ranks_zones_and_flags_small_ones(
    city_spend: dict[str, Any], tmp_path: Path
) -> None:
    city, release, spend = city_spend["city"], city_spend["release"], city_spend["spend"]
    path = release.report_html(tmp_path / "report.html", geography=city.geography, spend=spend)
    page = path.read_text("utf-8").replace("&#x27;", "'")
    names = release.report["zones"]
    zones = {
        zone: row for zone, row in cells_by_zone(spend).items() if not zone.startswith("category:")
    }
    top = max(
        (row for row in zones.values() if row["spend_per_visitor"] is not None),
        key=lambda row: row["spend_per_visitor"],
    )
    assert f"{names[top['zone']]} had the highest" in page
    assert f"about €{top['spend_per_visitor']:,.2f} per visitor (likely" in page
    # Withheld zones say so; small zones (340 m across) are flagged, as their visitors
    # are undercounted.
    for zone, row in zones.items():
        withheld = f'{names[zone]}</td><td class="withheld" colspan="4">withheld</td>'
        assert (withheld in page) == row["suppressed"], zone
    assert "m across: per visitor likely too high</td>" in page


def cells_by_zone(spend: ct.Spend) -> dict[str, dict[str, Any]]:
    """The total cell (origin and category `*`) of every zone, for a period release."""
    table = spend.to_arrow()
    totals = table.filter(pc.and_(pc.equal(table["origin"], "*"), pc.equal(table["category"], "*")))
    return {row["zone"]: row for row in totals.to_pylist()}
