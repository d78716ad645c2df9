"""crowdtally: visitor statistics from mobile-network pings, done right.

Keyed and rotated pseudonyms with opt-out, H3 location, cleaning that accounts for every
row, homes and classes, visits and dwell, aggregation with disclosure control, and
extrapolation with honest intervals. Every number is defined by the method document
shipped with the project.

Quick start::

    import crowdtally as ct

    config = ct.Config(key=b"a secret of at least 16 bytes")
    geography = ct.Geography.from_tables(
        regions=..., region_cells=..., zones=..., zone_cells=..., study_area=["kortrijk"]
    )
    study = ct.Study(geography, config)  # every verb of the method runs through it
    release = study.release(pings, bucket="day")  # the protected table, in one call
    release.report_html("2026Q3.html")

    prepared = study.prepare(pings)  # read once, then release as many tables as needed
    prepared.report  # pings read, kept, dropped by reason
    by_day, by_hour = prepared.releases([ct.ReleaseSpec(bucket="day"), {"bucket": "hour"}])
    devices = prepared.profile()  # home, class, origin per device
    visits = prepared.visits()  # visits to zones, with dwell

Machine settings never change a number and are given per call:
``study.release(pings, engine=ct.Engine(threads=2, memory_limit="4GiB"))``. The
module-level ``ct.analyze``, ``ct.prepare``, ``ct.profile`` and ``ct.visits`` are
shortcuts of a ``Study``.

On a Spark cluster, ``crowdtally.spark.analyze(df, geography, config, ...)`` gives the
same release (``pip install 'crowdtally[spark]'``); the executors find the key with
``ct.KeyFromEnv``, ``ct.KeyFromFile`` or ``ct.ShipKey``.

Where visitors spend: ``ct.spend(release, payments, geography, config)`` joins
card-payment aggregates to a release, protecting each merchant's turnover (the p % rule
and complementary suppression).

Only the release (and its spend table) is fit to publish. The per-device tables are
microdata: pseudonymous, not anonymous. Never publish them; ``ct.risk(prepared)``
measures how unique their traces are, for the data protection officer.
"""

from crowdtally._api import analyze, prepare, profile, visits
from crowdtally._crowdtally import (
    DP,
    Config,
    ConfigError,
    CrowdtallyError,
    Engine,
    Geography,
    GeographyError,
    InputError,
    LedgerError,
    Prepared,
    Progress,
    ReleaseSpec,
    Study,
    Table,
    __version__,
    pseudonymize,
)
from crowdtally.distributed import KeyFromEnv, KeyFromFile, ShipKey
from crowdtally.release import CrowdtallyWarning, Release
from crowdtally.risk import Risk, risk
from crowdtally.spend import Spend, spend

__all__ = [
    "DP",
    "Config",
    "ConfigError",
    "CrowdtallyError",
    "CrowdtallyWarning",
    "Engine",
    "Geography",
    "GeographyError",
    "InputError",
    "KeyFromEnv",
    "KeyFromFile",
    "LedgerError",
    "Prepared",
    "Progress",
    "Release",
    "ReleaseSpec",
    "Risk",
    "ShipKey",
    "Spend",
    "Study",
    "Table",
    "__version__",
    "analyze",
    "prepare",
    "profile",
    "pseudonymize",
    "risk",
    "spend",
    "visits",
]
