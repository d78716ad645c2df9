"""The re-identification risk audit as users meet it: shares of phones singled out that
can be worked out by hand on a few traces, the same numbers for the same seed, mistakes
refused by name, on the synthetic city the shape one expects (more points single out
more phones, coarser places and times fewer), and the report page's section for a data
protection officer. Counts and shares only: no subscriber id and no pseudonym is shown."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import h3
import numpy as np
import pyarrow as pa
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

import crowdtally as ct
from conftest import KEY, geography_tables
from crowdtally import synth
from crowdtally.risk import RISK_COLUMNS

# Between place and time in a granularity, as in "cell" TIMES "hour".
TIMES = "\N{MULTIPLICATION SIGN}"
HEADING = "How unique are the traces behind these figures?"

# The conftest geography: BE > WVL > kortrijk (seven cells of resolution 7) and menen
# (one); the Grote Markt and the station, one cell of resolution 9 each, in Kortrijk.
TABLES = geography_tables()
PLACES = {
    "grote-markt": TABLES["zone_cells"]["cell"][0],
    "station": TABLES["zone_cells"]["cell"][1],
    # A cell of Kortrijk away from both zones: a street of houses.
    "kortrijk": TABLES["region_cells"]["cell"][1],
    "menen": TABLES["region_cells"]["cell"][-1],
}


def study(**config: Any) -> ct.Study:
    """The conftest geography over the week from Monday 6 July 2026, with k = 2 and a
    home from a single night, for a handful of phones."""
    settings: dict[str, Any] = {"period": ("2026-07-06", "2026-07-13"), "k": 2, "min_nights": 1}
    geography = ct.Geography.from_tables(**TABLES, study_area=["kortrijk"])
    return ct.Study(geography, ct.Config(key=KEY, **{**settings, **config}))


def pings(seen: list[tuple[str, str, str]]) -> dict[str, list[Any]]:
    """Pings from (subscriber, local time, place) triples, at the centre of the place."""
    where = {name: h3.cell_to_latlng(cell) for name, cell in PLACES.items()}
    return {
        "subscriber": [subscriber for subscriber, _, _ in seen],
        "ts": [ts for _, ts, _ in seen],
        "lat": [where[place][0] for _, _, place in seen],
        "lon": [where[place][1] for _, _, place in seen],
    }


def rows(audit: ct.Risk, measure: str) -> list[dict[str, Any]]:
    return [r for r in audit.rows() if r["measure"] == measure]


def unicity(audit: ct.Risk, points: int) -> dict[str, Any]:
    (found,) = [r for r in rows(audit, "unicity") if r["points"] == points]
    return found


def home_work(audit: ct.Risk) -> dict[str, dict[str, Any]]:
    return {r["granularity"]: r for r in rows(audit, "home_work")}


def visit_pattern(audit: ct.Risk) -> dict[str, Any]:
    (found,) = rows(audit, "visit_pattern")
    return found


def section(page: str) -> str:
    """The page's risk section."""
    start = page.index("<section id='risk'>")
    return page[start : page.index("</section>", start) + len("</section>")]


# -- traces made by hand ------------------------------------------------------------------


def few_phones() -> ct.Prepared:
    """Two phones at the Grote Markt in the same hour (10:00 and 10:40), a third at the
    station at 10:00 and 12:00: with one point, only the third is alone."""
    return study().prepare(
        pings(
            [
                ("206010000000001", "2026-07-06 10:00:00", "grote-markt"),
                ("206010000000002", "2026-07-06 10:40:00", "grote-markt"),
                ("206010000000003", "2026-07-06 10:00:00", "station"),
                ("206010000000003", "2026-07-06 12:00:00", "station"),
            ]
        )
    )


def test_one_point_shared_by_two_phones_singles_out_only_the_third() -> None:
    audit = ct.risk(few_phones(), points=(1, 2, 3))
    one = unicity(audit, 1)
    assert one["granularity"] == f"cell{TIMES}hour"
    assert (one["devices"], one["unique"]) == (3, 1)
    assert one["share_unique"] == pytest.approx(1 / 3)
    # Every phone measured: the share is exact, its interval itself.
    assert one["share_low"] == one["share_high"] == one["share_unique"]
    assert one["below_k"] is None
    # Only the third has two points, and nobody else was at the station.
    assert (unicity(audit, 2)["devices"], unicity(audit, 2)["unique"]) == (1, 1)
    # Nobody has three: not measured, and counted as too short.
    assert (unicity(audit, 3)["devices"], unicity(audit, 3)["unique"]) == (0, 0)
    assert audit.report["too_few_points"] == {"1": 0, "2": 2, "3": 3}
    assert audit.unicity() == {1: pytest.approx(1 / 3), 2: 1.0}
    assert audit.report["devices"] == audit.report["devices_sampled"] == 3
    assert audit.report["points_in_traces"] == 4
    assert audit.report["parameters"] == {
        "points": [1, 2, 3],
        "spatial": "cell",
        "temporal": "hour",
        "samples": None,
        "seed": 0,
        "k": 2,
    }


def test_coarser_places_and_times_single_out_fewer_phones() -> None:
    prepared = few_phones()
    # By zone and day, the station is still the third phone's alone.
    by_zone = ct.risk(prepared, points=(1,), spatial="zone", temporal="day")
    assert unicity(by_zone, 1)["granularity"] == f"zone{TIMES}day"
    assert (unicity(by_zone, 1)["devices"], unicity(by_zone, 1)["unique"]) == (3, 1)
    # By municipality and day, all three were in Kortrijk on Monday.
    by_town = ct.risk(prepared, points=(1,), spatial="region:municipality", temporal="day")
    assert unicity(by_town, 1)["granularity"] == f"region:municipality{TIMES}day"
    assert (unicity(by_town, 1)["devices"], unicity(by_town, 1)["unique"]) == (3, 0)
    # By part of day: the same point (Kortrijk, Monday's daytime) for all three.
    by_part = ct.risk(prepared, points=(1,), spatial="region:province", temporal="part")
    assert unicity(by_part, 1)["unique"] == 0


def working_week() -> ct.Prepared:
    """Four phones, Monday to Friday; homes from 03:00 pings, work from 11:00 pings.

    - P and Q live in Kortrijk (in no zone) and work in Menen; P passes the Grote Markt
      at 18:00 every day (a visit, not work: after 17:00);
    - R lives in Menen and works at the Grote Markt;
    - S lives in Kortrijk, works at the Grote Markt, and goes to the station on Saturday.
    """
    seen: list[tuple[str, str, str]] = []

    def person(subscriber: str, home: str, work: str, *extra: tuple[str, str]) -> None:
        for day in range(5):
            seen.append((subscriber, f"2026-07-{7 + day:02d} 03:00:00", home))
            seen.append((subscriber, f"2026-07-{6 + day:02d} 11:00:00", work))
        seen.extend((subscriber, ts, place) for ts, place in extra)

    evenings = [(f"2026-07-{6 + day:02d} 18:00:00", "grote-markt") for day in range(5)]
    person("206010000000011", "kortrijk", "menen", *evenings)
    person("206010000000012", "kortrijk", "menen")
    person("206010000000013", "menen", "grote-markt")
    person("206010000000014", "kortrijk", "grote-markt", ("2026-07-11 11:00:00", "station"))
    return study().prepare(pings(seen))


def test_home_and_work_pairs_at_each_level_of_regions() -> None:
    audit = ct.risk(working_week(), points=(1,))
    levels = home_work(audit)
    # Finest first. Municipalities: (Kortrijk, Menen) twice, (Menen, Kortrijk) and
    # (Kortrijk, Kortrijk) once each: two phones alone, the two below k = 2.
    assert list(levels) == ["municipality", "province", "country"]
    town = levels["municipality"]
    assert (town["devices"], town["unique"], town["below_k"]) == (4, 2, 2)
    assert town["share_unique"] == town["share_low"] == town["share_high"] == 0.5
    assert town["points"] is None
    # Everyone lives and works in West Flanders, and in Belgium.
    for level in ("province", "country"):
        assert (levels[level]["unique"], levels[level]["below_k"]) == (0, 0)
    assert audit.report["home_work_set_sizes"] == {
        "municipality": {"1": 2, "2-4": 2},
        "province": {"2-4": 4},
        "country": {"2-4": 4},
    }
    # k = 5: every set of the municipalities is smaller.
    assert home_work(ct.risk(working_week(), points=(1,), k=5))["municipality"]["below_k"] == 4


def test_visit_patterns_of_the_working_week() -> None:
    pattern = visit_pattern(ct.risk(working_week(), points=(1,)))
    # P (evenings) and R (work) were at the Grote Markt Monday to Friday; S too, and at
    # the station on Saturday; Q visited no zone and has no pattern.
    assert pattern["granularity"] == f"zone{TIMES}day"
    assert (pattern["devices"], pattern["unique"], pattern["below_k"]) == (3, 1, 1)
    assert pattern["share_unique"] == pytest.approx(1 / 3)


# -- the synthetic city --------------------------------------------------------------------


@pytest.fixture(scope="module")
def city() -> synth.SyntheticCity:
    return synth.scenario(scale=0.004, days=28)


@pytest.fixture(scope="module")
def prepared(city: synth.SyntheticCity) -> ct.Prepared:
    return ct.prepare(city.pings, city.geography, city.config())


@pytest.fixture(scope="module")
def audit(prepared: ct.Prepared) -> ct.Risk:
    return ct.risk(prepared)


def test_more_points_single_out_more_phones(audit: ct.Risk) -> None:
    shares = audit.unicity()
    assert list(shares) == [1, 2, 3, 4, 5]
    assert all(0.0 <= share <= 1.0 for share in shares.values())
    # Each number of points draws its own points: the shares rise up to the draws' chance.
    assert all(shares[p] <= shares[p + 1] + 0.01 for p in range(1, 5)), shares
    # A place and hour of one's own is already rare in a city.
    assert shares[1] > 0.5
    for r in audit.rows():
        assert 0.0 <= r["share_low"] <= r["share_unique"] <= r["share_high"] <= 1.0
        assert r["unique"] <= r["devices"]
        if r["measure"] == "unicity":
            too_short = audit.report["too_few_points"][str(r["points"])]
            assert r["devices"] + too_short == audit.report["devices"]


def test_home_work_levels_run_from_the_finest_to_the_whole_country(audit: ct.Risk) -> None:
    levels = list(home_work(audit).values())
    assert [r["granularity"] for r in levels] == [
        "municipality",
        "arrondissement",
        "province",
        "country",
    ]
    assert len({r["devices"] for r in levels}) == 1
    # Larger regions merge the groups: never more phones alone or below k.
    for finer, coarser in itertools.pairwise(levels):
        assert coarser["unique"] <= finer["unique"]
        assert coarser["below_k"] <= finer["below_k"]
    assert levels[-1]["unique"] == 0
    sizes = audit.report["home_work_set_sizes"]
    assert list(sizes) == [r["granularity"] for r in levels]
    for r in levels:
        assert sum(sizes[r["granularity"]].values()) == r["devices"]
        assert sizes[r["granularity"]].get("1", 0) == r["unique"]


def test_municipalities_and_days_single_out_fewer_phones_than_cells_and_hours(
    prepared: ct.Prepared, audit: ct.Risk
) -> None:
    coarse = ct.risk(prepared, points=(1,), spatial="region:municipality", temporal="day")
    assert coarse.unicity()[1] < audit.unicity()[1]
    # The home-work and visit rows do not depend on the points' granularity.
    assert rows(coarse, "home_work") == rows(audit, "home_work")
    assert rows(coarse, "visit_pattern") == rows(audit, "visit_pattern")


def test_the_same_seed_gives_the_same_table(prepared: ct.Prepared) -> None:
    first = ct.risk(prepared, points=(1, 2, 3), samples=300, seed=7)
    again = ct.risk(prepared, points=(1, 2, 3), samples=300, seed=7)
    assert first.to_arrow().equals(again.to_arrow())
    assert first.report == again.report
    assert first.report["devices_sampled"] == 300
    assert first.report["devices"] > 300
    for r in rows(first, "unicity"):
        assert r["devices"] <= 300
        assert r["share_low"] <= r["share_unique"] <= r["share_high"]
        # Sampled: the interval says how far the share of all phones may be.
        assert r["share_high"] - r["share_low"] > 0


def test_prepared_pings_audit_themselves_as_the_module_function(
    prepared: ct.Prepared,
) -> None:
    by_method = prepared.risk(points=(1, 2), spatial="zone", temporal="day", seed=3)
    by_function = ct.risk(prepared, points=(1, 2), spatial="zone", temporal="day", seed=3)
    assert by_method.to_arrow().equals(by_function.to_arrow())
    assert by_method.report == by_function.report
    assert prepared.risk().unicity().keys() == {1, 2, 3, 4, 5}


def test_the_table_reads_as_pandas_polars_and_arrow(audit: ct.Risk) -> None:
    assert tuple(audit.to_arrow().column_names) == RISK_COLUMNS
    assert list(audit.to_pandas().columns) == list(RISK_COLUMNS)
    assert audit.to_polars().columns == list(RISK_COLUMNS)
    assert pa.table(audit).num_rows == len(audit) == 5 + 4 + 1


def test_nothing_shown_names_a_phone(
    city: synth.SyntheticCity, prepared: ct.Prepared, audit: ct.Risk
) -> None:
    shown = repr(audit)
    assert shown.startswith(f"Risk({audit.report['devices']} devices")
    assert len(shown.splitlines()) == 1 + len(audit)
    subscribers = pa.table(city.pings)["subscriber"].drop_null().unique().to_pylist()[:200]
    pseudonyms = prepared.to_arrow()["device"].unique().to_pylist()[:200]
    assert subscribers
    assert pseudonyms
    for text in (shown, json.dumps(audit.report), json.dumps(audit.rows())):
        assert not [s for s in subscribers if str(s) in text]
        assert not [d for d in pseudonyms if str(d) in text]


def test_the_plot_draws_unicity_with_its_interval(audit: ct.Risk) -> None:
    figure = audit.plot()
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    (errorbar,) = axes.containers
    assert isinstance(errorbar, ErrorbarContainer)
    line, _, _ = errorbar.lines
    assert np.asarray(line.get_xdata()).tolist() == [1, 2, 3, 4, 5]
    shares = [100 * share for share in audit.unicity().values()]
    assert np.asarray(line.get_ydata()).tolist() == pytest.approx(shares)


# -- mistakes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"points": (0,)}, "points"),
        ({"points": ()}, "points"),
        ({"samples": 0}, "samples"),
        ({"spatial": "street"}, "spatial"),
        ({"spatial": "region:"}, "spatial"),
        ({"spatial": "region:gemeente"}, "spatial"),
        ({"temporal": "minute"}, "temporal"),
    ],
    ids=["no point", "no numbers", "no sample", "street", "no level", "unknown level", "minute"],
)
def test_invalid_parameters_are_refused_by_name(arguments: dict[str, Any], field: str) -> None:
    with pytest.raises(ct.ConfigError) as refused:
        ct.risk(few_phones(), **arguments)
    assert refused.value.field == field


def test_another_studys_geography_or_config_is_refused() -> None:
    prepared = few_phones()
    menen = ct.Geography.from_tables(**TABLES, study_area=["menen"])
    with pytest.raises(ValueError, match="geography"):
        ct.risk(prepared, menen)
    with pytest.raises(ValueError, match="config"):
        ct.risk(prepared, config=ct.Config(key=KEY, k=5))
    # Its own are accepted.
    own = prepared.study
    assert len(ct.risk(prepared, own.geography, own.config, points=(1,))) == 1 + 3 + 1


def test_raw_pings_need_their_geography_and_config() -> None:
    raw = pings([("206010000000001", "2026-07-06 10:00:00", "station")])
    with pytest.raises(TypeError, match=r"need their geography and config.*got dict alone"):
        ct.risk(raw)


def test_raw_pings_read_in_shards_give_the_audit_of_the_prepared(
    city: synth.SyntheticCity, prepared: ct.Prepared, tmp_path: Path
) -> None:
    # A small budget: the pings are read in several shards, spilled to disk.
    engine = ct.Engine(memory_limit="8MiB", spill_dir=tmp_path)
    for samples in (None, 200):
        in_memory = ct.risk(prepared, samples=samples, seed=2)
        by_shards = ct.risk(
            city.pings, city.geography, city.config(), samples=samples, seed=2, engine=engine
        )
        assert by_shards.to_arrow().equals(in_memory.to_arrow())
        assert by_shards.report == in_memory.report
    assert not list(tmp_path.iterdir())


# -- the report page -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def release(city: synth.SyntheticCity, prepared: ct.Prepared) -> ct.Release:
    return ct.analyze(
        prepared, city.geography, city.config(), bucket="period", roaming_factors={"*": 3.0}
    )


def test_the_report_page_says_how_unique_the_traces_are(
    release: ct.Release, audit: ct.Risk, tmp_path: Path
) -> None:
    page = release.report_html(tmp_path / "risk.html", risk=audit).read_text("utf-8")
    shown = section(page)
    assert shown.startswith(f"<section id='risk'>\n<h2>{HEADING}</h2>")
    # Near the end: after the table's rows, before the appendix.
    assert page.index("<section id='risk'>") > page.index("How sure are these numbers?")
    assert page.index("<section id='risk'>") < page.index("<section id='appendix'>")
    # The headline: four places and hours single out every phone with that many (one
    # phone of this city has fewer).
    four = unicity(audit, 4)
    assert four["unique"] == four["devices"] == audit.report["devices"] - 1
    assert (
        f"With 4 places and hours of their own trace, 100 % of the {four['devices']:,} "
        "phones with at least 4 are the only ones that match." in shown
    )
    # A row per number of points, per level of regions, and the visits. A share is never
    # rounded up to 100 %.
    for r in rows(audit, "unicity"):
        percent = f"{100 * r['share_unique']:.1f} %"
        if r["unique"] < r["devices"] and percent == "100.0 %":
            percent = "over 99.9 %"
        cells = (r["points"], f"{r['devices']:,}", percent)
        assert "<tr>" + "".join(f'<td class="num">{cell}</td>' for cell in cells) in shown
    for level in ("Municipality", "Arrondissement", "Province", "Country"):
        assert f'<td class="name">{level}</td>' in shown
    visits = visit_pattern(audit)
    assert f"Of the {visits['devices']:,} phones seen visiting a zone" in shown
    # What it means, in plain words; the release's own protection named.
    assert "personal data, even without names" in shown
    assert "no figure counts fewer than 30 phones" in shown
    assert "Never publish or hand over the per-phone data" in shown
    # Every phone was measured: no interval.
    assert "Likely range" not in shown


def test_without_an_audit_the_page_is_unchanged(
    release: ct.Release, audit: ct.Risk, tmp_path: Path
) -> None:
    plain = release.report_html(tmp_path / "plain.html").read_text("utf-8")
    audited = release.report_html(tmp_path / "audited.html", risk=audit).read_text("utf-8")
    assert "<section id='risk'>" not in plain
    assert audited.replace(section(audited) + "\n", "") == plain
    assert release.report_html(tmp_path / "none.html", risk=None).read_text("utf-8") == plain


def test_a_sampled_audit_shows_its_likely_range(
    release: ct.Release, prepared: ct.Prepared, tmp_path: Path
) -> None:
    sampled = ct.risk(prepared, points=(1, 2), samples=200, seed=1)
    page = release.report_html(tmp_path / "sampled.html", risk=sampled).read_text("utf-8")
    shown = section(page)
    assert "Likely range (95 %)" in shown
    assert "in a sample of 200 phones drawn at random from" in shown
    # No four points measured: the headline is of two.
    assert "With 2 places and hours of their own trace" in shown


def test_the_page_shows_no_subscriber_or_pseudonym(
    city: synth.SyntheticCity,
    prepared: ct.Prepared,
    release: ct.Release,
    audit: ct.Risk,
    tmp_path: Path,
) -> None:
    page = release.report_html(tmp_path / "risk.html", risk=audit).read_text("utf-8")
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    subscribers = pa.table(city.pings)["subscriber"].drop_null().unique().to_pylist()[:200]
    pseudonyms = prepared.to_arrow()["device"].unique().to_pylist()[:200]
    assert not [s for s in subscribers if str(s) in text]
    assert not [d for d in pseudonyms if str(d) in text]


def test_a_differentially_private_release_is_said_to_be_protected_by_noise(
    city: synth.SyntheticCity, prepared: ct.Prepared, audit: ct.Risk, tmp_path: Path
) -> None:
    with pytest.warns(ct.CrowdtallyWarning, match="no ledger records this release"):
        noisy = prepared.release(
            privacy=ct.DP(rho=1.0, countries=["FR", "NL", "DE"]),
            subscribers=city.subscribers(),
            roaming_factors={"*": 3.0},
        )
    page = noisy.report_html(tmp_path / "dp.html", risk=audit).read_text("utf-8")
    assert "random noise of a known size (differential privacy)" in section(page)


def test_a_wrong_audit_is_refused(release: ct.Release, audit: ct.Risk, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"crowdtally\.Risk, got dict"):
        release.report_html(tmp_path / "risk.html", risk=audit.report)  # type: ignore[arg-type]
