"""crowdtally: visitor statistics from mobile-network pings, done right.

Keyed and rotated pseudonyms with opt-out, H3 location, cleaning that accounts for every
row, and (in later stages) visits, disclosure control and extrapolation. Every number is
defined by the method document shipped with the project.

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

The per-device tables are microdata: pseudonymous, not anonymous. Never publish them.
"""

from crowdtally._crowdtally import (
    Config,
    ConfigError,
    CrowdtallyError,
    Geography,
    GeographyError,
    InputError,
    Prepared,
    Table,
    __version__,
    prepare,
    profile,
    pseudonymize,
    visits,
)

__all__ = [
    "Config",
    "ConfigError",
    "CrowdtallyError",
    "Geography",
    "GeographyError",
    "InputError",
    "Prepared",
    "Table",
    "__version__",
    "prepare",
    "profile",
    "pseudonymize",
    "visits",
]
