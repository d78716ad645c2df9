"""The quarterly visitor release of the synthetic ``kortrijk`` scenario (``make demo``).

Generates a summer quarter of pings for a scaled-down Kortrijk and its country (only the
operator's customers ping, hourly with jitter, missing pings, position noise and dirty
rows), prepares them once, and releases visitors for the whole period and per day at
the municipality level, then joins the city's card payments to the daily release (where
visitors spend). It prints the top-line numbers, compares the extrapolated totals and
the card spend with the scenario's truth, and writes the release tables, the reports,
the spend table and a self-contained HTML report under ``out/``, with a screenshot of it
(``report.png``) when Debian's ``chromium`` is installed.

    python examples/kortrijk.py [--scale 0.01] [--days 92] [--out out]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

import crowdtally as ct
from crowdtally import synth


def print_spend_against_truth(spend: ct.Spend, truth_cents: dict[str, int]) -> None:
    """Each zone's card spend over the period (its days added up, when every day is
    published) beside the true spend of the scenario."""
    table = spend.to_arrow()
    totals = table.filter(pc.and_(pc.equal(table["origin"], "*"), pc.equal(table["category"], "*")))
    days: dict[str, list[float | None]] = {}
    for row in totals.select(["zone", "spend"]).to_pylist():
        days.setdefault(row["zone"], []).append(row["spend"])
    print(f"{'zone':<22} {'card spend':>12} {'truth':>12}")
    for zone, spent in days.items():
        true_euros = truth_cents.get(zone, 0) / 100
        withheld = sum(value is None for value in spent)
        if withheld:
            print(
                f"{zone:<22} {'withheld':>12} {true_euros:>12,.0f}  "
                f"(on {withheld} of {len(spent)} days)"
            )
            continue
        print(f"{zone:<22} {sum(v or 0.0 for v in spent):>12,.0f} {true_euros:>12,.0f}")


def screenshot(page: Path, width: int = 1280) -> Path | None:
    """A PNG of the whole page beside it, as headless Chromium shows it ``width`` pixels
    wide; None when chromium is not installed."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        browser = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
        browser.append(f"--user-data-dir={scratch}")
        # The page's height first, from a copy that writes it into its DOM once loaded.
        probe = Path(scratch) / "height.html"
        script = (
            "<script>addEventListener('load', () => { const out = document.createElement('pre');"
            " out.id = 'page-height'; out.textContent = document.documentElement.scrollHeight;"
            " document.body.append(out); });</script>"
        )
        probe.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + script, 1))
        dom = subprocess.run(
            [*browser, f"--window-size={width},1000", "--dump-dom", probe.as_uri()],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found = re.search(r'<pre id="page-height">(\d+)</pre>', dom)
        height = int(found.group(1)) if found else 4000
        png = page.with_suffix(".png")
        size, target = f"--window-size={width},{height}", f"--screenshot={png.resolve()}"
        subprocess.run(
            [*browser, size, target, page.resolve().as_uri()],
            capture_output=True,
            check=True,
        )
    return png


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.01, help="share of the population")
    parser.add_argument("--days", type=int, default=92, help="days from 2026-07-01")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    city = synth.scenario(scale=args.scale, days=args.days, seed=2026)
    config = city.config()
    pings = city.pings
    print(f"{city!r}: {len(pings):,} pings generated")

    prepared = ct.prepare(pings, city.geography, config)
    # Inbound roamers are the operator's roaming share of each country's visitors.
    roaming_factors = {code: 1 / 0.3 for code in ("FR", "NL", "DE")}
    common: dict[str, Any] = {"level": "municipality", "roaming_factors": roaming_factors}
    period = ct.analyze(prepared, city.geography, config, bucket="period", **common)
    daily = ct.analyze(prepared, city.geography, config, bucket="day", **common)
    report = period.report
    print(
        f"pings read {report['pings']['read']:,}, kept {report['pings']['kept']:,}; "
        f"devices {report['devices']['total']:,} by class {report['devices']['by_class']}"
    )

    table = period.to_arrow()
    totals = table.filter(pc.equal(table["origin"], "*"))
    truth = city.true_visitors()
    print()
    print(f"{'zone':<22} {'observed':>9} {'estimate':>10} {'95% interval':>19} {'truth':>8} error")
    for row in totals.to_pylist():
        zone, true_count = row["zone"], truth.get(row["zone"], 0)
        if row["suppressed"]:
            print(f"{zone:<22} suppressed (fewer than k = {report['disclosure']['k']} devices)")
            continue
        estimate, low, high = row["est_devices"], row["est_low"], row["est_high"]
        error = 100 * (estimate - true_count) / max(true_count, 1)
        mean_dwell_h = row["dwell_s"] / max(row["visits"], 1) / 3600
        print(
            f"{zone:<22} {row['devices']:>9,} {estimate:>10,.0f} "
            f"{low:>9,.0f}-{high:<9,.0f} {true_count:>8,} {error:+5.1f}%  "
            f"(mean dwell {mean_dwell_h:.1f} h)"
        )

    centre = table.filter(
        pc.and_(pc.equal(table["zone"], "city-centre"), pc.not_equal(table["origin"], "*"))
    ).sort_by([("devices", "descending")])
    print()
    print("top origins of city-centre visitors:")
    for row in centre.slice(0, 5).to_pylist():
        print(
            f"  {row['origin']:<16} {row['devices']:>7,} observed, {row['est_devices']:>9,.0f} est."
        )

    for name, release in (("period", period), ("daily", daily)):
        d = release.report["disclosure"]
        print(
            f"{name}: {d['groups']} groups, {d['groups_suppressed']} suppressed; "
            f"{d['origin_rows_rolled_up']} origin rows pooled, "
            f"{d['origin_rows_moved_to_residual']} moved into the residual"
        )
    for warning in report["warnings"]:
        print(f"warning: {warning}")

    # Where visitors spend: the card payments of the city's people (summed per merchant,
    # day and cardholder origin, as card schemes deliver them) joined to the daily
    # release, with each merchant's turnover protected.
    spend = ct.spend(daily, city.payments["payments"], city.geography, config)
    print(f"\n{spend!r}")
    print_spend_against_truth(spend, city.payments["spend_by_zone"])

    args.out.mkdir(parents=True, exist_ok=True)
    for name, release in (("period", period), ("daily", daily)):
        release.write(args.out / f"visitors_{name}.parquet")
        release.write(args.out / f"visitors_{name}.csv")
        release.write_report(args.out / f"report_{name}.json")
    spend.write(args.out / "spend.parquet")
    html = daily.report_html(
        args.out / "report.html", zone="city-centre", geography=city.geography, spend=spend
    )
    print(f"\nwrote the tables and {html} in {time.perf_counter() - started:.0f} s")
    png = screenshot(html)
    print(f"wrote {png}" if png else "no screenshot of the report: chromium is not installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
