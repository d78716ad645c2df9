"""Quick start: clean, pseudonymize and locate a handful of pings from Python."""

import crowdtally as ct

geography = ct.Geography.from_tables(
    regions={
        "region_id": ["BE", "kortrijk"],
        "level": ["country", "municipality"],
        "parent_id": [None, "BE"],
        "population": [None, 80_000],
    },
    region_cells={"cell": ["87194a4cdffffff"], "region_id": ["kortrijk"]},
    zones={"zone_id": ["grote-markt"], "name": ["Grote Markt"], "category": ["culture"]},
    zone_cells={"zone_id": ["grote-markt"], "cell": ["89194a4cd2bffff"]},
    study_area=["kortrijk"],
)
config = ct.Config(key=b"use a long random secret here", opt_out=["206010000000009"])
pings = {
    "subscriber": ["206010000000001", "206010000000001", "206010000000009", None],
    "ts": ["2026-07-01 10:00:00", "2026-07-01 11:00:00", "2026-07-01 10:00:00", "2026-07-01"],
    "lat": [50.828, 50.829, 50.828, 50.828],
    "lon": [3.265, 3.266, 3.265, 3.265],
}
prepared = ct.prepare(pings, geography, config)
print(prepared)
print(prepared.report["dropped"])
assert prepared.report["pings_kept"] == 2
