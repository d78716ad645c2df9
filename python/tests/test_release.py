"""analyze(): the release table end to end (method §6-9).

Basics on a hand-built input, every invalid parameter named, nothing secret in any
output, the disclosure-control and extrapolation invariants on random inputs, and the
accuracy of the estimates on the synthetic city's truth.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import h3
import hypothesis.strategies as st
import pandas as pd
import polars as pl
import polars.testing
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import event, given, settings

import crowdtally as ct
from crowdtally import synth

# -- a small geography: BE > two provinces > five municipalities, two zones ---------------

TZ = ZoneInfo("Europe/Brussels")
KEY = b"release-test-key-0123456789abcdef"
PERIOD = ("2026-07-01", "2026-07-04")  # Wednesday to Friday: three days, one ISO week
BUCKETS = {"hour": 72, "day": 3, "week": 1, "period": 1}

# municipality: (province, population, position)
LEAVES: dict[str, tuple[str, int, tuple[float, float]]] = {
    "kortrijk": ("WVL", 80_000, (50.828, 3.265)),
    "menen": ("WVL", 33_000, (50.797, 3.122)),
    "waregem": ("WVL", 38_000, (50.889, 3.425)),
    "gent": ("OVL", 265_000, (51.054, 3.717)),
    "aalst": ("OVL", 89_000, (50.937, 4.039)),
}
LEVELS: dict[str | None, set[str]] = {
    None: set(LEAVES),
    "municipality": set(LEAVES),
    "province": {"WVL", "OVL"},
    "country": {"BE"},
}


def _cell7(name: str) -> str:
    return str(h3.latlng_to_cell(*LEAVES[name][2], 7))


KORTRIJK7: list[str] = list(h3.grid_disk(_cell7("kortrijk"), 1))
MARKT: str = h3.latlng_to_cell(*LEAVES["kortrijk"][2], 9)
STATION: str = h3.grid_ring(MARKT, 2)[0]
HOTEL: str = h3.grid_ring(MARKT, 5)[0]
KORTRIJK_HOME: str = h3.grid_ring(MARKT, 7)[3]
ZONES = ("markt", "station", "category:centre")

# The cells pings are made of, by place.
PLACES: dict[str, int] = {
    "markt": h3.str_to_int(MARKT),
    "station": h3.str_to_int(STATION),
    "hotel": h3.str_to_int(HOTEL),
    "kortrijk": h3.str_to_int(KORTRIJK_HOME),
    **{
        name: h3.str_to_int(h3.cell_to_center_child(_cell7(name), 9))
        for name in LEAVES
        if name != "kortrijk"
    },
    "nowhere": h3.str_to_int(h3.latlng_to_cell(50.63, 3.06, 9)),  # Lille: no leaf
}
HOMES = ("kortrijk", "menen", "waregem", "gent", "aalst", "nowhere")


def geography() -> ct.Geography:
    others = [name for name in LEAVES if name != "kortrijk"]
    assert not {_cell7(name) for name in others} & set(KORTRIJK7)
    for cell in (MARKT, STATION, HOTEL, KORTRIJK_HOME):
        assert h3.cell_to_parent(cell, 7) in KORTRIJK7
    return ct.Geography.from_tables(
        regions={
            "region_id": ["BE", "WVL", "OVL", *LEAVES],
            "level": ["country", "province", "province"] + ["municipality"] * len(LEAVES),
            "parent_id": [None, "BE", "BE"] + [province for province, _, _ in LEAVES.values()],
            "population": [None, None, None] + [population for _, population, _ in LEAVES.values()],
        },
        region_cells={
            "cell": KORTRIJK7 + [_cell7(name) for name in others],
            "region_id": ["kortrijk"] * len(KORTRIJK7) + others,
        },
        zones={
            "zone_id": ["markt", "station"],
            "name": ["Markt", "Station"],
            "category": ["centre", "centre"],
        },
        zone_cells={"zone_id": ["markt", "station"], "cell": [MARKT, STATION]},
        study_area=["kortrijk"],
    )


GEOGRAPHY = geography()


def config(k: int = 2, **overrides: Any) -> ct.Config:
    return ct.Config(key=KEY, k=k, period=PERIOD, min_nights=1, **overrides)


# -- pings from device behaviours ----------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    day: int  # 0..2
    zone: str  # "markt" or "station"
    hour: int  # local hour of the first ping
    minute: int
    pings: int  # hourly pings in the zone


@dataclass(frozen=True)
class Device:
    home: str  # one of HOMES
    nights: tuple[str | None, ...]  # per night of the period: None, "home" or "hotel"
    visits: tuple[Visit, ...]
    country: str | None = None
    copies: int = 1  # devices behaving alike, each with its own id


def _epoch(day: int, hour: int, minute: int) -> int:
    start = dt.date.fromisoformat(PERIOD[0]) + dt.timedelta(days=day)
    return int(dt.datetime(start.year, start.month, start.day, hour, minute, tzinfo=TZ).timestamp())


def pings_table(devices: Iterable[Device], prefix: str = "dev") -> pa.Table:
    """One row per ping: subscriber, ts (epoch seconds), cell (uint64), country."""
    subscribers: list[str] = []
    stamps: list[int] = []
    cells: list[int] = []
    countries: list[str | None] = []

    def ping(subscriber: str, ts: int, place: str, country: str | None) -> None:
        subscribers.append(subscriber)
        stamps.append(ts)
        cells.append(PLACES[place])
        countries.append(country)

    for number, device in enumerate(devices):
        for copy in range(device.copies):
            subscriber = f"{prefix}-{number}-{copy}"
            for day, night in enumerate(device.nights):
                if night is not None:
                    place = device.home if night == "home" else "hotel"
                    ping(subscriber, _epoch(day, 23, 10 + copy % 40), place, device.country)
            for visit in device.visits:
                for i in range(visit.pings):
                    ts = _epoch(visit.day, visit.hour + i, visit.minute)
                    ping(subscriber, ts, visit.zone, device.country)
                after = visit.hour + visit.pings
                if after < 22:
                    ping(subscriber, _epoch(visit.day, after, visit.minute), device.home, None)
    return pa.table(
        {
            "subscriber": pa.array(subscribers, pa.string()),
            "ts": pa.array(stamps, pa.int64()),
            "cell": pa.array(cells, pa.uint64()),
            "country": pa.array(countries, pa.string()),
        }
    )


def visitor(home: str, *visits: Visit, copies: int = 1, country: str | None = None) -> Device:
    """Spends every night at home and visits the zones by day."""
    return Device(home, ("home",) * 3, visits, country, copies)


def hand_built() -> pa.Table:
    """Eleven devices: day visitors from three municipalities, a tourist, roamers and
    residents, some visiting both zones."""
    return pings_table(
        [
            visitor("menen", Visit(0, "markt", 10, 5, 3), Visit(1, "station", 15, 0, 1), copies=3),
            visitor("gent", Visit(1, "markt", 9, 30, 6), copies=2),
            visitor("aalst", Visit(2, "station", 12, 0, 2)),
            Device("gent", (None, "hotel", "home"), (Visit(1, "markt", 11, 0, 2),)),
            visitor("nowhere", Visit(0, "markt", 13, 0, 1), copies=2, country="FR"),
            visitor("kortrijk", Visit(0, "markt", 8, 0, 9), copies=2),
        ]
    )


def rows(release: ct.Release) -> list[dict[str, Any]]:
    return list(release.to_arrow().to_pylist())


def groups(release: ct.Release) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows(release):
        grouped.setdefault((row["zone"], row["bucket_start"], row["class"]), []).append(row)
    return grouped


MEASURES = (
    "devices",
    "visits",
    "dwell_s",
    "band_0_1h",
    "band_1_2h",
    "band_2_4h",
    "band_4_8h",
    "band_8h_plus",
)
COUNTS = MEASURES[:3]
BAND_COLUMNS = MEASURES[3:]
ESTIMATES = ("est_devices", "est_visits", "est_low", "est_high")
REPORT_KEYS = {
    "version",
    "parameters",
    "pings",
    "opt_out",
    "pseudonym_collisions",
    "devices",
    "disclosure",
    "extrapolation",
    "zones",
    "warnings",
    "caveats",
}


# -- 1. end to end ------------------------------------------------------------------------


def test_every_input_kind_gives_the_same_release() -> None:
    table = hand_built()
    expected = ct.analyze(table, GEOGRAPHY, config()).to_arrow()
    assert expected.num_rows > len(ZONES)  # some origin rows are released
    prepared = ct.prepare(table, GEOGRAPHY, config())
    for pings in (table.to_pandas(), pl.from_arrow(table), prepared):
        assert ct.analyze(pings, GEOGRAPHY, config()).to_arrow().equals(expected)
    release = ct.analyze(table, GEOGRAPHY, config(), classes="visitor")
    assert release.to_arrow().equals(expected)
    # The leaves are the municipalities: naming their level changes nothing in the table.
    by_level = ct.analyze(table, GEOGRAPHY, config(), level="municipality")
    assert by_level.to_arrow().equals(expected)
    pd.testing.assert_frame_equal(release.to_pandas(), expected.to_pandas())
    polars.testing.assert_frame_equal(release.to_polars(), pl.DataFrame(expected))


def test_columns_and_types_follow_the_method() -> None:
    release = ct.analyze(hand_built(), GEOGRAPHY, config())
    schema = release.to_arrow().schema
    expected = (
        [(name, pa.utf8()) for name in ("zone", "bucket_start", "class", "origin")]
        + [("devices", pa.uint64()), ("visits", pa.uint64()), ("dwell_s", pa.int64())]
        + [(name, pa.uint64()) for name in MEASURES[3:]]
        + [("suppressed", pa.bool_())]
        + [(name, pa.float64()) for name in ESTIMATES]
        + [("bucket_ts", pa.timestamp("ms", tz="Europe/Brussels"))]
        + [("zone_name", pa.utf8()), ("origin_name", pa.utf8())]
    )
    assert [(field.name, field.type) for field in schema] == expected
    assert pa.table(release.table).column_names == [name for name, _ in expected]
    assert len(release) == release.to_arrow().num_rows


def test_one_total_row_per_group_over_the_full_grid() -> None:
    for bucket, buckets in BUCKETS.items():
        classes = ("day_visitor", "overnight_visitor", "resident")
        release = ct.analyze(hand_built(), GEOGRAPHY, config(), bucket=bucket, classes=classes)
        grouped = groups(release)
        assert len(grouped) == len(ZONES) * buckets * len(classes)
        assert {zone for zone, _, _ in grouped} == set(ZONES)
        assert {cls for _, _, cls in grouped} == set(classes)
        for group in grouped.values():
            assert [row["origin"] for row in group].count("*") == 1
        assert release.report["disclosure"]["groups"] == len(grouped)
    release = ct.analyze(hand_built(), GEOGRAPHY, config(), bucket="day")
    starts = sorted({start for _, start, _ in groups(release)})
    assert starts == [f"2026-07-0{day}T00:00:00+02:00" for day in (1, 2, 3)]


def test_the_report_has_every_section() -> None:
    release = ct.analyze(hand_built(), GEOGRAPHY, config(), bucket="day", level="province")
    report = release.report
    assert set(report) >= REPORT_KEYS
    json.dumps(report)  # plain JSON types only
    assert report["parameters"]["bucket"] == "day"
    assert report["parameters"]["level"] == "province"
    assert report["parameters"]["classes"] == ["visitor"]
    assert report["parameters"]["k"] == 2
    assert report["devices"]["total"] == 11
    assert report["devices"]["roamers"] == 2
    assert report["devices"]["by_class"]["resident"] == 2
    assert report["pings"]["read"] == hand_built().num_rows
    assert set(report["zones"]) == set(ZONES)


# -- 2. errors name their field -------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("bucket", {"bucket": "fortnight"}),
        ("level", {"level": "galaxy"}),
        ("classes", {"classes": ["visitor", "day_visitor"]}),
        ("classes", {"classes": ["tourist"]}),
        ("classes", {"classes": "tourist"}),
        ("classes", {"classes": ["visitor", "visitor"]}),
        ("subscribers", {"subscribers": {"atlantis": 100}}),
        ("roaming_factors", {"roaming_factors": {"FR": 0.0}}),
        ("roaming_factors", {"roaming_factors": {"FR": math.nan}}),
        ("roaming_factors", {"roaming_factors": {"FR": -2.0}}),
        ("subscribers", {"subscribers": ["menen"]}),
        ("subscribers", {"subscribers": [("menen", 100)]}),
        ("roaming_factors", {"roaming_factors": ["FR"]}),
    ],
)
def test_each_invalid_parameter_is_named(field: str, overrides: dict[str, Any]) -> None:
    for pings in (hand_built(), {"subscriber": ["unreadable: no ts"]}):  # before any work
        with pytest.raises(ct.ConfigError) as caught:
            ct.analyze(pings, GEOGRAPHY, config(), **overrides)
        assert caught.value.field == field
        assert field in str(caught.value)


# -- 3. privacy ------------------------------------------------------------------------------

SECRET_KEY = b"SECRET-KEY-do-not-leak-7f3a9c"
SECRET_IDS = [f"SECRET-IMSI-{name}-000{i}" for i, name in enumerate(["ALICE", "BOB", "CAROL"])]
OPTED_OUT = "SECRET-IMSI-MALLORY-0009"


def test_no_raw_id_or_key_in_any_output(tmp_path: Path) -> None:
    devices = [
        visitor("menen", Visit(0, "markt", 10, 0, 3), copies=4),
        visitor("gent", Visit(1, "station", 14, 0, 2), copies=3),
    ]
    base = pings_table(devices)
    subscribers = base.column("subscriber").to_pylist()
    # Replace the generated ids by recognisable secrets, and add an opted-out subscriber.
    renamed = {
        old: SECRET_IDS[i % len(SECRET_IDS)] + f"-{i}"
        for i, old in enumerate(sorted(set(subscribers)))
    }
    ids = sorted(set(renamed.values()))
    pings = base.set_column(0, "subscriber", pa.array([renamed[s] for s in subscribers]))
    pings = pa.concat_tables(
        [pings, pings.slice(0, 2).set_column(0, "subscriber", pa.array([OPTED_OUT] * 2))]
    )
    cfg = ct.Config(key=SECRET_KEY, k=2, period=PERIOD, min_nights=1, opt_out=[OPTED_OUT])
    release = ct.analyze(pings, GEOGRAPHY, cfg, bucket="day", subscribers={"menen": 2, "gent": 3})
    table = release.to_arrow()
    assert not all(table.column("suppressed").to_pylist())  # there is something to leak into
    assert release.report["opt_out"]["pings"] == 2

    texts = [
        "\n".join(str(value) for column in table.columns for value in column.to_pylist()),
        json.dumps(release.report),
        repr(release),
        release._repr_html_(),
        release.write(tmp_path / "release.csv").read_text(encoding="utf-8"),
        release.write_report(tmp_path / "report.json").read_text(encoding="utf-8"),
        release.report_html(tmp_path / "report.html").read_text(encoding="utf-8"),
    ]
    parquet = release.write(tmp_path / "release.parquet").read_bytes()
    blob = "\n".join(texts)
    pseudonyms = ct.pseudonymize(ids, key=SECRET_KEY, period_label="2026Q3").tolist()
    secrets = [*ids, OPTED_OUT, *(raw.encode().hex() for raw in [*ids, OPTED_OUT])]
    secrets += [SECRET_KEY.decode(), SECRET_KEY.decode()[:16], SECRET_KEY.hex()]
    secrets += [SECRET_KEY.hex().upper(), repr(SECRET_KEY), str(list(SECRET_KEY))]
    secrets += [str(p) for p in pseudonyms] + [f"{p:016x}" for p in pseudonyms]
    for secret in secrets:
        assert secret not in blob
        assert secret.encode() not in parquet
    assert "SECRET" not in blob


# -- 4. invariants on random inputs -----------------------------------------------------------

VISITS = st.builds(
    Visit,
    day=st.integers(0, 2),
    zone=st.sampled_from(["markt", "station"]),
    hour=st.integers(6, 20),
    minute=st.integers(0, 59),
    pings=st.integers(1, 4),
)
DEVICES = st.builds(
    Device,
    home=st.sampled_from(HOMES),
    nights=st.tuples(*[st.sampled_from([None, "home", "home", "hotel"])] * 3),
    visits=st.lists(VISITS, max_size=3).map(tuple),
    country=st.sampled_from([None, None, None, "BE", "be", "", "FR", "NL"]),
    copies=st.integers(1, 6),
)


@dataclass(frozen=True)
class Case:
    pings: pa.Table
    k: int
    bucket: str
    level: str | None
    classes: tuple[str, ...]
    roaming_factors: Mapping[str, float] | None
    roll_up: bool

    def analyze(self, pings: pa.Table | None = None) -> ct.Release:
        return ct.analyze(
            self.pings if pings is None else pings,
            GEOGRAPHY,
            config(self.k),
            bucket=self.bucket,
            level=self.level,
            classes=self.classes,
            roaming_factors=self.roaming_factors,
            roll_up=self.roll_up,
        )


CASES = st.builds(
    Case,
    pings=st.lists(DEVICES, min_size=1, max_size=12).map(pings_table),
    k=st.integers(2, 5),
    bucket=st.sampled_from(list(BUCKETS)),
    level=st.sampled_from(list(LEVELS)),
    classes=st.sampled_from(
        [("visitor",), ("day_visitor", "overnight_visitor"), ("visitor", "resident")]
    ),
    roaming_factors=st.sampled_from([None, {"FR": 3.0}, {"FR": 2.5, "NL": 1.5}]),
    roll_up=st.booleans(),
)
PROPERTIES = settings(max_examples=30, deadline=None, derandomize=True, database=None)


@PROPERTIES
@given(CASES)
def test_disclosure_and_extrapolation_invariants(case: Case) -> None:
    release = case.analyze()
    grouped = groups(release)
    assert len(grouped) == len(ZONES) * BUCKETS[case.bucket] * len(case.classes)
    allowed = LEVELS[case.level] | {"*", "unknown", "other", "other:abroad"}
    allowed |= {"country:FR", "country:NL"} | {f"other:{r}" for r in ("WVL", "OVL", "BE")}
    released = 0
    for group in grouped.values():
        total, *origins = sorted(group, key=lambda row: row["origin"] != "*")
        assert total["origin"] == "*"
        assert [row["origin"] for row in origins].count("*") == 0
        for row in group:
            assert row["origin"] in allowed
            if row["suppressed"]:
                assert all(row[name] is None for name in MEASURES + ESTIMATES)
            else:
                assert row["devices"] is not None
                assert row["devices"] >= case.k
                assert all(row[name] is not None for name in COUNTS)
                if row["est_low"] is not None:
                    # The threshold is never applied to estimates, and est >= devices.
                    assert row["devices"] <= row["est_low"] <= row["est_devices"]
                    assert row["est_devices"] <= row["est_high"]
                    assert row["est_visits"] >= row["visits"]
                else:
                    assert all(row[name] is None for name in ESTIMATES)
        if total["suppressed"]:
            assert origins == []  # the group is its total row alone
            continue
        released += 1
        assert origins, "a released group is partitioned by its origin rows"
        assert not any(row["suppressed"] for row in origins)
        for name in COUNTS:
            assert sum(row[name] for row in origins) == total[name], name
        # Bands are a breakdown of the group: on its total row only, and never exactly
        # one withheld, which would be `visits` minus the others (method §7 step 6).
        assert all(row[name] is None for row in origins for name in BAND_COLUMNS)
        shown = [total[name] for name in BAND_COLUMNS if total[name] is not None]
        assert len(BAND_COLUMNS) - len(shown) != 1
        assert sum(shown) <= total["visits"]
        if total["est_devices"] is None:
            assert any(row["est_devices"] is None for row in origins)
        else:
            for name in ("est_devices", "est_visits"):
                assert math.fsum(row[name] for row in origins) == pytest.approx(total[name])
    assert release.report["disclosure"]["groups_suppressed"] == len(grouped) - released
    event(f"released groups: {'some' if released else 'none'}")


@PROPERTIES
@given(CASES, st.randoms(use_true_random=False))
def test_row_order_does_not_matter(case: Case, rng: random.Random) -> None:
    order = list(range(case.pings.num_rows))
    rng.shuffle(order)
    shuffled = case.pings.take(pa.array(order, pa.int64()))
    first, second = case.analyze(), case.analyze(shuffled)
    assert second.to_arrow().equals(first.to_arrow())
    assert second.report == first.report


def test_threshold_applies_to_devices_never_to_estimates() -> None:
    # One visitor with a factor of 33,000 (33,000 inhabitants, one subscriber) is still
    # one device: below k = 2, every group is suppressed and has no estimate.
    one = pings_table([visitor("menen", Visit(0, "markt", 10, 0, 3))])
    release = ct.analyze(one, GEOGRAPHY, config(2), subscribers={"menen": 1})
    assert len(release) == len(ZONES)
    for row in rows(release):
        assert row["origin"] == "*"
        assert row["suppressed"]
        assert all(row[name] is None for name in MEASURES + ESTIMATES)

    # Two visitors from menen (factor 16,500) and one from gent (factor 265,000): the
    # gent device is never a row of its own, and the estimates follow method §8.
    three = pings_table(
        [
            visitor("menen", Visit(0, "markt", 10, 0, 3), copies=2),
            visitor("gent", Visit(0, "markt", 12, 0, 2)),
        ]
    )
    subscribers = {"menen": 2, "gent": 1}
    release = ct.analyze(three, GEOGRAPHY, config(2), subscribers=subscribers)
    markt = groups(release)[("markt", "2026-07-01T00:00:00+02:00", "visitor")]
    assert "gent" not in {row["origin"] for row in markt}
    for row in markt:
        assert not row["suppressed"]
        assert row["devices"] >= 2
        assert row["est_low"] >= row["devices"]
    total = markt[0]
    assert total["origin"] == "*"
    assert total["devices"] == 3
    factors = [33_000 / 2] * 2 + [265_000 / 1]
    estimate = sum(factors)
    half_width = 1.96 * math.sqrt(sum(f * (f - 1) for f in factors))
    assert total["est_devices"] == pytest.approx(estimate)
    assert total["est_low"] == pytest.approx(max(3, estimate - half_width))
    assert total["est_high"] == pytest.approx(estimate + half_width)


# -- 5. accuracy on synthetic truth -------------------------------------------------------------

VISITOR_CLASSES = ("day_visitor", "overnight_visitor")
ROAMING_FACTORS = {code: 1 / 0.3 for code in ("FR", "NL", "DE")}


def true_visitors(truth: Mapping[str, Any], zone: str) -> tuple[int, dict[str, int]]:
    """Distinct true visitors of `zone` over the period, in all and by origin."""
    persons = pa.table(truth["persons"]).select(["person", "class", "origin"])
    persons = persons.filter(pc.is_in(persons["class"], pa.array(VISITOR_CLASSES)))
    zone_days = pa.table(truth["zone_days"])
    zone_days = zone_days.set_column(1, "zone", pc.cast(zone_days["zone"], pa.string()))
    visited = zone_days.filter(pc.equal(zone_days["zone"], zone)).select(["person"])
    visitors = visited.join(persons, "person", join_type="inner")
    total = len(set(visitors.column("person").to_pylist()))
    by_origin = visitors.group_by("origin").aggregate([("person", "count_distinct")])
    counts = dict(
        zip(
            by_origin["origin"].to_pylist(),
            by_origin["person_count_distinct"].to_pylist(),
            strict=True,
        )
    )
    return total, counts


def is_leaf_origin(origin: str) -> bool:
    return origin not in ("*", "other", "unknown") and not origin.startswith(("other", "country:"))


def test_estimates_match_the_synthetic_truth() -> None:
    city = synth.scenario(scale=0.004, days=28, seed=2026)
    prepared = ct.prepare(city.pings, city.geography, city.config())
    common: dict[str, Any] = {
        "bucket": "period",
        "level": "municipality",
        "roaming_factors": ROAMING_FACTORS,
    }
    truth, by_origin = true_visitors(city.truth, "city-centre")

    release = ct.analyze(prepared, city.geography, city.config(), **common)
    table = release.to_arrow()
    (total,) = table.filter(
        pc.and_(pc.equal(table["zone"], "city-centre"), pc.equal(table["origin"], "*"))
    ).to_pylist()
    error = (total["est_devices"] - truth) / truth
    print(
        f"\ncity-centre visitors: truth {truth}, observed {total['devices']}, estimated "
        f"{total['est_devices']:.0f} [{total['est_low']:.0f}, {total['est_high']:.0f}], "
        f"error {100 * error:+.1f} %"
    )
    assert abs(error) <= 0.05
    assert total["est_low"] <= total["est_devices"] <= total["est_high"]

    # At k = 30 no municipality of this small city reaches k: release at k = 5 (same
    # period and nights, another key) to judge the intervals of leaf-origin rows.
    parameters = city.config().to_dict()
    low_k = ct.Config(
        key=b"accuracy-test-key-0123456789",
        k=5,
        period=(parameters["period"]["start"], parameters["period"]["end"]),
        min_nights=parameters["min_nights"],
    )
    table = ct.analyze(city.pings, city.geography, low_k, **common).to_arrow()
    centre = table.filter(pc.equal(table["zone"], "city-centre")).to_pylist()
    leaves = [row for row in centre if not row["suppressed"] and is_leaf_origin(row["origin"])]
    covered = [
        row
        for row in leaves
        if row["est_low"] <= by_origin.get(row["origin"], 0) <= row["est_high"]
    ]
    share = len(covered) / len(leaves)
    print(
        f"leaf-origin intervals covering the truth: {len(covered)} of {len(leaves)} ({share:.0%})"
    )
    assert len(leaves) >= 10
    assert share >= 0.8
