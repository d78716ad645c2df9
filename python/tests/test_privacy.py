"""Privacy across releases on the synthetic city (method §7 revised, §10): the attacks
that broke one-table k-anonymity as regression tests, the differential-privacy mode
from outside, and the ledger.

The attacks: a second release of a period with crafted factors (decoding a pooled row
from its estimate), dwell bands counting visits of fewer than k devices, a suppressed
zone read off as its category minus the other zones, and differencing two releases.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import crowdtally as ct
from crowdtally import synth

K = 30
BAND_COLUMNS = ("band_0_1h", "band_1_2h", "band_2_4h", "band_4_8h", "band_8h_plus")
BAND_BOUNDS = (0, 3_600, 7_200, 14_400, 28_800)
HUGE_RHO = 1e15


@pytest.fixture(scope="module")
def city() -> synth.SyntheticCity:
    return synth.scenario(persons=20_000, days=14, seed=5)


@pytest.fixture(scope="module")
def prepared(city: synth.SyntheticCity) -> ct.Prepared:
    return ct.prepare(city.pings, city.geography, city.config())


def billing(prepared: ct.Prepared) -> dict[str, int]:
    """Subscribers per leaf as an operator's billing would give them (here: the devices
    whose home is the leaf, read once, outside the release)."""
    devices = pa.table(prepared.profile())
    homes = [home for home in devices["home"].to_pylist() if home is not None]
    counts: dict[str, int] = {}
    for home in homes:
        counts[home] = counts.get(home, 0) + 1
    return counts


KEY = b"ledger test key, 32 bytes long!!"


def ledger_config(city: synth.SyntheticCity, ledger: Path | str | None, **fields: Any) -> ct.Config:
    """The city's period under a fixed key, recording into `ledger` (None: no ledger)."""
    return ct.Config(key=KEY, period=city.config().period, ledger=ledger, **fields)


def never_read() -> Iterator[pa.RecordBatch]:
    raise AssertionError("the pings were read")
    yield  # pragma: no cover - makes this a generator


def rows(release: ct.Release) -> list[dict[str, Any]]:
    return pa.table(release).to_pylist()  # type: ignore[no-any-return]


def visitor_visits(prepared: ct.Prepared) -> list[dict[str, Any]]:
    """The qualifying visits of visitors (the release class), with their device."""
    classes = {row["device"]: row["class"] for row in pa.table(prepared.profile()).to_pylist()}
    return [
        visit
        for visit in pa.table(prepared.visits()).to_pylist()
        if visit["qualifies"] and classes[visit["device"]] in ("day_visitor", "overnight_visitor")
    ]


# -- k-anonymity, revised ---------------------------------------------------------------


def test_no_released_band_counts_visits_of_1_to_k_minus_1_devices(
    prepared: ct.Prepared,
) -> None:
    release = prepared.release()  # one period bucket: every visit counts in it
    devices_by_band: dict[tuple[str, int], set[int]] = {}
    for visit in visitor_visits(prepared):
        band = max(i for i, lower in enumerate(BAND_BOUNDS) if visit["dwell_s"] >= lower)
        devices_by_band.setdefault((visit["zone"], band), set()).add(visit["device"])
    withheld = 0
    for row in rows(release):
        if row["origin"] != "*":
            assert all(row[band] is None for band in BAND_COLUMNS), row
            continue
        if row["suppressed"]:
            continue
        shown = [row[band] for band in BAND_COLUMNS]
        assert shown.count(None) != 1, row
        withheld += shown.count(None)
        for band, value in enumerate(shown):
            devices = len(devices_by_band.get((row["zone"], band), ()))
            if value is not None:
                assert not 1 <= devices < K, (row["zone"], band, devices)
    assert withheld > 0, "the synthetic city has bands of few devices"
    assert release.report["disclosure"]["bands_withheld"] == withheld


def test_a_suppressed_zone_is_not_its_category_minus_the_others(
    city: synth.SyntheticCity, prepared: ct.Prepared
) -> None:
    # Daily buckets make small groups; each released category group must hold 0 or at
    # least k devices of its suppressed member zones (same day and class).
    release = prepared.release(bucket="day")
    tables = city.geography.to_tables()
    zones = pa.table(tables["zones"]).to_pylist()
    members: dict[str, list[str]] = {}
    for zone in zones:
        if zone["category"] is not None:
            members.setdefault(f"category:{zone['category']}", []).append(zone["zone_id"])
    totals = {(r["zone"], r["bucket_start"]): r for r in rows(release) if r["origin"] == "*"}
    days = sorted({bucket for _, bucket in totals})
    in_zone: dict[tuple[str, str], set[int]] = {}
    for visit in visitor_visits(prepared):
        for day in days:
            start = pa.scalar(day, pa.string()).cast(pa.timestamp("s", "UTC")).as_py()
            end = start.timestamp() + 86_400  # July has no DST change
            begins, finishes = visit["start"].timestamp(), visit["end"].timestamp()
            overlaps = begins < end and finishes > start.timestamp()
            if begins == finishes:
                overlaps = start.timestamp() <= begins < end
            if overlaps:
                in_zone.setdefault((visit["zone"], day), set()).add(visit["device"])
    checked = 0
    for category, zone_ids in members.items():
        for day in days:
            if totals[(category, day)]["suppressed"]:
                continue
            hidden: set[int] = set()
            for zone in zone_ids:
                if totals[(zone, day)]["suppressed"]:
                    hidden |= in_zone.get((zone, day), set())
            assert not 1 <= len(hidden) < K, (category, day, len(hidden))
            checked += 1
    assert checked > 0


def test_a_second_release_with_crafted_factors_is_refused_by_the_ledger(
    city: synth.SyntheticCity, prepared: ct.Prepared, tmp_path: Path
) -> None:
    config = ledger_config(city, None)
    config_with_ledger = ledger_config(city, tmp_path / "ledger.json")
    subscribers = billing(prepared)
    first = ct.analyze(city.pings, city.geography, config_with_ledger, subscribers=subscribers)
    assert first.report["privacy"]["ledger"]["releases"] == 1
    # One leaf's factor made huge, the others 1: its count inside a pooled row would be
    # decoded from the estimate. The ledger fixed the period's factors at its first
    # release, so the crafted release is refused.
    crafted = {leaf: 10**6 for leaf in subscribers}
    leaf = next(iter(subscribers))
    crafted[leaf] = 1
    with pytest.raises(ct.LedgerError, match="other subscribers or roaming factors") as error:
        ct.analyze(city.pings, city.geography, config_with_ledger, subscribers=crafted)
    assert error.value.field == str(tmp_path / "ledger.json")
    with pytest.raises(ct.LedgerError):
        ct.analyze(
            city.pings,
            city.geography,
            config_with_ledger,
            subscribers=subscribers,
            roaming_factors={"FR": 1000.0},
        )
    # Without a ledger nothing is recorded, and the report says so.
    assert ct.analyze(city.pings, city.geography, config).report["privacy"]["ledger"] is None


def test_another_cut_of_a_released_period_needs_allow_differencing(
    city: synth.SyntheticCity, tmp_path: Path
) -> None:
    config = ledger_config(city, tmp_path / "ledger.json")
    study = ct.Study(city.geography, config)
    study.release(city.pings, bucket="day")
    study.release(city.pings, bucket="day")  # the same cut adds nothing
    with pytest.raises(ct.LedgerError, match="allow_differencing"):
        study.release(city.pings, bucket="week")
    with pytest.raises(ct.LedgerError, match="allow_differencing"):
        study.release(city.pings, bucket="day", level="province")
    allowed = study.release(city.pings, bucket="week", allow_differencing=True)
    assert allowed.report["privacy"]["allow_differencing"] is True


# -- differential privacy ---------------------------------------------------------------


def dp_release(
    study: ct.Study, pings: Any, subscribers: dict[str, int], rho: float, **spec: Any
) -> ct.Release:
    return study.release(
        pings,
        privacy=ct.DP(rho=rho, countries=["FR", "NL", "DE"]),
        subscribers=subscribers,
        roaming_factors={"*": 3.0},
        **spec,
    )


def test_a_huge_rho_gives_the_exact_counts(
    city: synth.SyntheticCity, prepared: ct.Prepared
) -> None:
    subscribers = billing(prepared)
    study = ct.Study(city.geography, city.config())
    # Bounds that bound nothing here: every pair, visit and second counts. Dwell's
    # sensitivity is then 30 days * 100 s, so rho must be larger still for no noise.
    unbounded = ct.DP(rho=1e24, max_partitions=10_000, max_visits=10_000, max_dwell_s="30d")
    noiseless = study.release(
        prepared, privacy=unbounded, subscribers=subscribers, roaming_factors={"*": 3.0}
    )
    exact = ct.Study(city.geography, ct.Config(key=b"x" * 32, period=city.config().period, k=2))
    plain = exact.release(city.pings, subscribers=subscribers, roaming_factors={"*": 3.0})
    released = {r["zone"]: r for r in rows(plain) if r["origin"] == "*" and not r["suppressed"]}
    assert released
    for row in rows(noiseless):
        if row["origin"] == "*" and row["zone"] in released:
            for measure in ("devices", "visits", "dwell_s"):
                assert row[measure] == released[row["zone"]][measure], (row["zone"], measure)
    privacy = noiseless.report["privacy"]
    assert privacy["mode"] == "differential_privacy"
    assert privacy["dropped_by_bounding"] == {"pairs": 0, "visits": 0}


def test_sigma_in_the_report_is_the_noise_observed_and_differencing_is_noisy(
    city: synth.SyntheticCity, prepared: ct.Prepared
) -> None:
    subscribers = billing(prepared)
    study = ct.Study(city.geography, city.config())
    # At the country level a group has few keys (BE, unknown, three countries,
    # other:abroad), so its total row's noise, the sum of its keys', stays small.
    spec: dict[str, Any] = {"bucket": "day", "level": "country"}
    exact = dp_release(study, prepared, subscribers, HUGE_RHO, **spec)
    noisy = dp_release(study, prepared, subscribers, 64.0, **spec)
    sigma = noisy.report["privacy"]["sigma"]["devices"]
    assert sigma == pytest.approx(1.0)  # sqrt(m / (2 * 0.5 * rho)), m = 64, rho = 64
    table = rows(noisy)
    keys = next(i for i, r in enumerate(table[1:], 1) if r["origin"] == "*") - 1
    assert keys == 6
    # A total row's noise has variance keys * sigma^2; only totals far from 0 are
    # compared, so that none was clamped.
    far = 4 * sigma * math.sqrt(keys)
    differences = [
        a["devices"] - b["devices"]
        for a, b in zip(table, rows(exact), strict=True)
        if a["origin"] == "*" and b["devices"] > far
    ]
    assert len(differences) > 100
    assert any(differences), "the noise is there"
    observed = sum(d * d for d in differences) / len(differences)
    assert 0.6 < observed / (keys * sigma**2) < 1.6, (observed, keys * sigma**2)
    # Differencing two releases (visitors minus their two parts, the attack that gave
    # away suppressed day totals) leaves noise of the stated sigma, not the exact count.
    classes = ["day_visitor", "overnight_visitor"]
    parts = dp_release(study, prepared, subscribers, 64.0, classes=classes, **spec)
    by_key = {(r["zone"], r["bucket_start"], r["class"], r["origin"]): r for r in rows(parts)}
    gaps = []
    for r in table:
        if r["origin"] != "*":
            continue
        day = by_key[(r["zone"], r["bucket_start"], "day_visitor", "*")]["devices"]
        night = by_key[(r["zone"], r["bucket_start"], "overnight_visitor", "*")]["devices"]
        if min(r["devices"], day, night) > far:  # no total clamped at 0
            gaps.append(r["devices"] - day - night)
    assert len(gaps) > 50
    spread = sum(g * g for g in gaps) / len(gaps)
    assert 0.5 < spread / (3 * keys * sigma**2) < 2.0, (spread, 3 * keys * sigma**2)


def test_the_dp_mode_refuses_detected_subscribers_and_a_missing_period(
    city: synth.SyntheticCity,
) -> None:
    study = ct.Study(city.geography, city.config())
    with pytest.raises(ct.ConfigError) as error:
        study.release(city.pings, privacy=ct.DP(rho=1.0))
    assert error.value.field == "subscribers"
    no_period = ct.Study(city.geography, ct.Config(key=b"y" * 32))
    with pytest.raises(ct.ConfigError) as error:
        no_period.release(city.pings, privacy=ct.DP(rho=1.0), subscribers={"kortrijk": 10})
    assert error.value.field == "period"
    with pytest.raises(ct.ConfigError) as error:
        ct.DP(rho=0.0)
    assert error.value.field == "rho"
    with pytest.raises(ct.ConfigError) as error:
        ct.DP(rho=1.0, countries=["France"])
    assert error.value.field == "countries"


def test_the_report_of_a_dp_release_states_its_privacy(
    city: synth.SyntheticCity, prepared: ct.Prepared, tmp_path: Path
) -> None:
    config = ledger_config(city, tmp_path / "ledger.json", budget=2.0)
    study = ct.Study(city.geography, config)
    release = dp_release(study, city.pings, billing(prepared), 0.5, bucket="week")
    privacy = release.report["privacy"]
    assert privacy["rho"] == 0.5
    assert privacy["delta"] == 1e-9
    assert privacy["epsilon"] == pytest.approx(0.5 + 2 * math.sqrt(0.5 * math.log(1e9)))
    assert set(privacy["sigma"]) == {"devices", "visits", "dwell_s", "bands"}
    assert privacy["rho_by_measure"] == pytest.approx(
        {"devices": 0.25, "visits": 0.1, "dwell_s": 0.075, "bands": 0.075}
    )
    assert privacy["bounds"]["max_visits"] == 3
    assert privacy["bounds"]["max_dwell_s"] == 12 * 3600
    assert set(privacy["dropped_by_bounding"]) == {"pairs", "visits"}
    assert privacy["ledger"]["spent_rho"] == 0.5
    assert privacy["ledger"]["remaining_rho"] == 1.5
    assert release.report["disclosure"] is None
    assert not any(r["suppressed"] for r in rows(release))
    # Bands on total rows only; every count an integer, none negative.
    for row in rows(release):
        assert row["devices"] >= 0
        if row["origin"] != "*":
            assert all(row[band] is None for band in BAND_COLUMNS)


def test_four_releases_spend_the_budget_and_the_fifth_is_refused_before_reading(
    city: synth.SyntheticCity, prepared: ct.Prepared, tmp_path: Path
) -> None:
    config = ledger_config(city, tmp_path / "ledger.json", budget=2.0)
    study = ct.Study(city.geography, config)
    subscribers = billing(prepared)
    mine = study.prepare(city.pings)  # read once; each release still spends its rho
    for _ in range(4):
        dp_release(study, mine, subscribers, 0.5)

    with pytest.raises(ct.LedgerError, match=r"spent 2, asked 0\.5, budget 2"):
        dp_release(study, never_read(), subscribers, 0.5)


def test_several_releases_at_once_are_checked_together_before_reading(
    city: synth.SyntheticCity, prepared: ct.Prepared, tmp_path: Path
) -> None:
    study = ct.Study(city.geography, ledger_config(city, tmp_path / "ledger.json", budget=1.0))
    spec = ct.ReleaseSpec(
        bucket="day",
        subscribers=billing(prepared),
        privacy=ct.DP(rho=0.6),
        roaming_factors={"*": 3.0},
    )
    with pytest.raises(ct.LedgerError, match=r"spent 0\.6, asked 0\.6, budget 1"):
        study.releases(never_read(), [spec, spec])
    with pytest.raises(ct.LedgerError, match="allow_differencing"):
        study.releases(never_read(), [{"bucket": "day"}, {"bucket": "week"}])
    assert not (tmp_path / "ledger.json").exists()


def release_into(ledger: str, count: int) -> int:
    """`count` differentially private releases of a tiny city into `ledger`, from one
    process; returns how many were recorded."""
    city = synth.scenario(persons=60, days=2, seed=1)
    config = ledger_config(city, ledger, budget=100.0)
    study = ct.Study(city.geography, config)
    recorded = 0
    for _ in range(count):
        release = dp_release(study, city.pings, {"kortrijk": 100}, 0.01)
        recorded = max(recorded, release.report["privacy"]["ledger"]["releases"])
    return recorded


def test_two_processes_recording_at_once_lose_nothing(tmp_path: Path) -> None:
    ledger = str(tmp_path / "ledger.json")
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        pool.starmap(release_into, [(ledger, 15), (ledger, 15)])
    import json

    account = json.loads(Path(ledger).read_text())["periods"]
    assert len(account) == 1
    assert len(account[0]["releases"]) == 30
    assert sum(entry["rho"] for entry in account[0]["releases"]) == pytest.approx(0.3)


def test_the_views_of_a_dp_release_state_its_privacy(
    city: synth.SyntheticCity, prepared: ct.Prepared, tmp_path: Path
) -> None:
    study = ct.Study(city.geography, ledger_config(city, tmp_path / "ledger.json", budget=3.0))
    release = dp_release(study, city.pings, billing(prepared), 1.0, bucket="week")
    assert repr(release).endswith(f"{len(release)} rows, differential privacy, rho=1.0)")
    sigma = release.report["privacy"]["sigma"]["devices"]
    for page in (
        release._repr_html_(),
        release.report_html(tmp_path / "report.html").read_text(encoding="utf-8"),
    ):
        assert "Differential privacy" in page
        assert "Disclosure control" not in page
        assert f"<th>noise sigma of devices</th><td>{sigma:,.3g}</td>" in page
        assert "<th>most visits a device counts in a pair</th><td>3</td>" in page
        assert "<th>declared countries</th><td>DE, FR, NL</td>" in page
        assert "rho spent 1, remaining 2" in page
    kanon = study.release(
        city.pings, bucket="week", subscribers=billing(prepared), roaming_factors={"*": 3.0}
    )
    page = kanon._repr_html_()
    assert "Disclosure control (k-anonymity)" in page
    assert "<th>dwell bands withheld</th>" in page
    assert "The ledger records 2 release(s) of 2026Q3" in page
