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
    prepared = ct.prepare(pings, geography, config)
    prepared.report  # pings read, kept, dropped by reason
    devices = ct.profile(prepared, geography, config)  # home, class, origin per device
    visits = ct.visits(prepared, geography, config)  # visits to zones, with dwell
    release = ct.analyze(pings, geography, config, bucket="day")  # the protected table
    release.report_html("2026Q3.html")

Only the release is fit to publish. The per-device tables are microdata: pseudonymous,
not anonymous. Never publish them.
"""

from crowdtally._crowdtally import (
    Config,
    ConfigError,
    CrowdtallyError,
    Geography,
    GeographyError,
    InputError,
    Prepared,
    Progress,
    Table,
    __version__,
    prepare,
    profile,
    pseudonymize,
    visits,
)
from crowdtally.release import Release, analyze

__all__ = [
    "Config",
    "ConfigError",
    "CrowdtallyError",
    "Geography",
    "GeographyError",
    "InputError",
    "Prepared",
    "Progress",
    "Release",
    "Table",
    "__version__",
    "analyze",
    "prepare",
    "profile",
    "pseudonymize",
    "visits",
]
