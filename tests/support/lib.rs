//! Shared fixtures for the workspace tests, examples and benches.
//!
//! The fixture geography is a small piece of West Flanders around Kortrijk. Its cells are
//! written out as constants so that this library needs no H3 implementation of its own;
//! `tests/ingest.rs` checks them against h3o.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{Field, Schema};
use crowdtally::geo::{RegionCellTable, RegionTable, ZoneCellTable, ZoneTable};
use crowdtally::{Config, Geography, Key, Period, PingColumns, Prepared, RunOptions, Study};

/// A small synthetic city (about 3,000 people, scale 0.001) over `days` days from
/// 2026-07-01, with its seed.
///
/// # Panics
/// Never: the parameters are valid.
#[must_use]
pub fn small_city(days: u16, seed: u64) -> crowdtally::synth::Scenario {
    let mut config = crowdtally::synth::ScenarioConfig::default();
    config.scale = 0.001;
    config.days = days;
    config.seed = seed;
    crowdtally::synth::Scenario::new(config).expect("a valid scenario")
}

/// A scenario's pings as batches of `people` people each.
///
/// # Panics
/// Never: a scenario's batches always build.
#[must_use]
pub fn city_batches(scenario: &crowdtally::synth::Scenario, people: usize) -> Vec<RecordBatch> {
    scenario
        .batches(people)
        .collect::<Result<_, _>>()
        .expect("batches")
}

/// The `bucket_start` text of bucket `bucket` of an aggregate (Brussels time).
///
/// # Panics
/// When the bucket is not in the aggregate's grid.
#[must_use]
pub fn label_of(aggregate: &crowdtally::Aggregate, bucket: u32) -> String {
    let b0 =
        jiff::Timestamp::from_second(aggregate.spec().bounds[bucket as usize]).expect("an instant");
    let zone = brussels_zone();
    let local = zone.to_datetime(b0);
    let offset = zone.to_offset(b0).seconds();
    format!(
        "{}T{:02}:{:02}:{:02}{}{:02}:{:02}",
        local.date(),
        local.hour(),
        local.minute(),
        local.second(),
        if offset < 0 { '-' } else { '+' },
        offset.abs() / 3600,
        offset.abs() % 3600 / 60
    )
}

/// The pseudonymization key of the fixtures (32 bytes).
pub const KEY: &[u8] = b"fixture key: 32 bytes of secret!";

/// The analysis resolution of the fixture geography.
pub const RESOLUTION: u8 = 9;

/// The resolution-7 cell of the leaf `kortrijk`.
pub const KORTRIJK_CELL: u64 = 0x0871_94d3_a0ff_ffff;
/// The resolution-7 cell of the leaf `menen`, a neighbour of [`KORTRIJK_CELL`].
pub const MENEN_CELL: u64 = 0x0871_94d3_a6ff_ffff;

/// A resolution-9 cell of `menen` that is not [`STATION_CELL`]: a quiet place outside
/// every fixture zone.
///
/// # Panics
/// Never: the fixture cells are valid.
#[must_use]
pub fn quiet_menen_cell() -> u64 {
    h3o::CellIndex::try_from(MENEN_CELL)
        .expect("valid fixture cell")
        .children(h3o::Resolution::Nine)
        .map(u64::from)
        .find(|&c| c != STATION_CELL)
        .expect("a resolution-7 cell has 49 children")
}

/// The other five resolution-7 neighbours of [`KORTRIJK_CELL`] (not `menen`'s), in
/// increasing index: free cells for tests that need more leaves next to the city.
///
/// # Panics
/// Never: the fixture cells are valid.
#[must_use]
pub fn free_neighbours_of_kortrijk() -> Vec<u64> {
    let kortrijk = h3o::CellIndex::try_from(KORTRIJK_CELL).expect("valid fixture cell");
    let mut ring: Vec<u64> = kortrijk
        .grid_disk::<Vec<_>>(1)
        .into_iter()
        .map(u64::from)
        .filter(|&c| c != KORTRIJK_CELL && c != MENEN_CELL)
        .collect();
    ring.sort_unstable();
    ring
}

/// A resolution-9 cell in `kortrijk`, in the zones `grote-markt` and `shopping`.
pub const MARKT_CELL: u64 = 0x0891_94d3_a003_ffff;
/// The centre of [`MARKT_CELL`], as (lat, lon).
pub const MARKT_POINT: (f64, f64) = (50.832_280_134_793_38, 3.272_952_225_614_569);
/// A resolution-9 cell in `kortrijk`, in the zones `shopping` and `museum`.
pub const STREET_CELL: u64 = 0x0891_94d3_a01b_ffff;
/// The centre of [`STREET_CELL`], as (lat, lon).
pub const STREET_POINT: (f64, f64) = (50.834_841_589_035_01, 3.270_266_013_247_514_5);
/// A resolution-9 cell in `kortrijk` and in no zone.
pub const QUIET_CELL: u64 = 0x0891_94d3_a00b_ffff;
/// The centre of [`QUIET_CELL`], as (lat, lon).
pub const QUIET_POINT: (f64, f64) = (50.832_185_143_618_99, 3.268_521_870_362_553);
/// A resolution-9 cell in `menen`, the zone `station`.
pub const STATION_CELL: u64 = 0x0891_94d3_a603_ffff;
/// The centre of [`STATION_CELL`], as (lat, lon).
pub const STATION_POINT: (f64, f64) = (50.850_209_359_165_44, 3.254_142_187_858_75);
/// A resolution-9 cell in no leaf region and no zone.
pub const OUTSIDE_CELL: u64 = 0x0891_fa68_f1c3_ffff;
/// The centre of [`OUTSIDE_CELL`], as (lat, lon).
pub const OUTSIDE_POINT: (f64, f64) = (50.500_370_629_545_14, 3.997_661_403_276_028_5);

/// `2026-07-01T10:00:00+02:00` (Brussels summer time), in epoch seconds.
pub const T0: i64 = 1_782_892_800;

/// A geography assembled table by table, for tests that need a variation of the fixture.
#[derive(Clone, Debug, Default)]
pub struct GeographyBuilder {
    /// The region tree.
    pub regions: RegionTable,
    /// The cell → leaf table.
    pub region_cells: RegionCellTable,
    /// The zones.
    pub zones: ZoneTable,
    /// The cells of each zone.
    pub zone_cells: ZoneCellTable,
    /// The analysis resolution.
    pub resolution: u8,
    /// The regions of the study area.
    pub study_area: Vec<String>,
}

impl GeographyBuilder {
    /// An empty geography at the given analysis resolution.
    #[must_use]
    pub fn new(resolution: u8) -> Self {
        Self {
            resolution,
            ..Self::default()
        }
    }

    /// Adds a region.
    #[must_use]
    pub fn region(
        mut self,
        id: &str,
        level: &str,
        parent: Option<&str>,
        population: Option<i64>,
    ) -> Self {
        self.regions.region_id.push(id.to_owned());
        self.regions.level.push(level.to_owned());
        self.regions.parent_id.push(parent.map(str::to_owned));
        self.regions.population.push(population);
        self
    }

    /// Gives a region added before a display name.
    ///
    /// # Panics
    /// If no region `id` was added.
    #[must_use]
    pub fn region_name(mut self, id: &str, name: &str) -> Self {
        let row = self
            .regions
            .region_id
            .iter()
            .position(|known| known == id)
            .expect("a region added before");
        self.regions.name.resize(self.regions.region_id.len(), None);
        self.regions.name[row] = Some(name.to_owned());
        self
    }

    /// Maps cells to a leaf region.
    #[must_use]
    pub fn region_cells(mut self, id: &str, cells: &[u64]) -> Self {
        for &cell in cells {
            self.region_cells.cell.push(cell);
            self.region_cells.region_id.push(id.to_owned());
        }
        self
    }

    /// Adds a zone with its cells; its name is its id with dashes as spaces.
    #[must_use]
    pub fn zone(mut self, id: &str, category: Option<&str>, cells: &[u64]) -> Self {
        self.zones.zone_id.push(id.to_owned());
        self.zones.name.push(Some(id.replace('-', " ")));
        self.zones.category.push(category.map(str::to_owned));
        for &cell in cells {
            self.zone_cells.zone_id.push(id.to_owned());
            self.zone_cells.cell.push(cell);
        }
        self
    }

    /// Sets the study area.
    #[must_use]
    pub fn study_area(mut self, ids: &[&str]) -> Self {
        self.study_area = ids.iter().map(|&id| id.to_owned()).collect();
        self
    }

    /// Validates and builds the geography.
    ///
    /// # Errors
    /// As [`Geography::from_tables`].
    pub fn build(&self) -> crowdtally::Result<Geography> {
        Geography::from_tables(
            &self.regions,
            &self.region_cells,
            &self.zones,
            &self.zone_cells,
            self.resolution,
            &self.study_area,
        )
    }
}

/// The fixture tables: `BE` (country) → `wvl` (province) → `kortrijk`, `menen`
/// (municipalities, one resolution-7 cell each), and `BE` → `brussel` (a municipality
/// without cells); zones `grote-markt` (culture), `shopping` (retail, overlapping
/// `grote-markt`), `museum` (culture) and `station` (no category); study area `kortrijk`.
#[must_use]
pub fn fixture_builder() -> GeographyBuilder {
    GeographyBuilder::new(RESOLUTION)
        .region("BE", "country", None, None)
        .region("wvl", "province", Some("BE"), None)
        .region("kortrijk", "municipality", Some("wvl"), Some(80_000))
        .region("menen", "municipality", Some("wvl"), Some(33_000))
        .region("brussel", "municipality", Some("BE"), Some(1_200_000))
        .region_cells("kortrijk", &[KORTRIJK_CELL])
        .region_cells("menen", &[MENEN_CELL])
        .zone("grote-markt", Some("culture"), &[MARKT_CELL])
        .zone("shopping", Some("retail"), &[MARKT_CELL, STREET_CELL])
        .zone("museum", Some("culture"), &[STREET_CELL])
        .zone("station", None, &[STATION_CELL])
        .study_area(&["kortrijk"])
}

/// The fixture geography of [`fixture_builder`].
///
/// # Panics
/// Never: the fixture is valid (the tests check it).
#[must_use]
pub fn fixture_geography() -> Geography {
    fixture_builder()
        .build()
        .expect("the fixture geography is valid")
}

/// A configuration with the method's defaults and the fixture [`KEY`].
#[must_use]
pub fn config() -> Config {
    Config::new(Key::new(KEY.to_vec()))
}

/// A record batch from named columns; every field is nullable and typed as its array.
///
/// # Panics
/// When the columns have different lengths (a mistake in the test itself).
#[must_use]
pub fn record_batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, array)| array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("columns of one length")
}

/// One input row of the default ping columns, any of whose values may be missing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ping {
    /// The raw subscriber id (text).
    pub subscriber: Option<String>,
    /// The time in epoch seconds.
    pub ts: Option<i64>,
    /// The latitude.
    pub lat: Option<f64>,
    /// The longitude.
    pub lon: Option<f64>,
    /// The H3 cell, used instead of `lat`/`lon` where given.
    pub cell: Option<u64>,
    /// The SIM's home country.
    pub country: Option<String>,
}

impl Ping {
    /// A ping of `subscriber` at `ts` at a (lat, lon) point.
    #[must_use]
    pub fn at(subscriber: &str, ts: i64, (lat, lon): (f64, f64)) -> Self {
        Self {
            subscriber: Some(subscriber.to_owned()),
            ts: Some(ts),
            lat: Some(lat),
            lon: Some(lon),
            ..Self::default()
        }
    }

    /// A ping of `subscriber` at `ts` in an H3 cell.
    #[must_use]
    pub fn in_cell(subscriber: &str, ts: i64, cell: u64) -> Self {
        Self {
            subscriber: Some(subscriber.to_owned()),
            ts: Some(ts),
            cell: Some(cell),
            ..Self::default()
        }
    }

    /// The same ping with a country.
    #[must_use]
    pub fn country(mut self, country: &str) -> Self {
        self.country = Some(country.to_owned());
        self
    }
}

/// The rows as one batch with the default column names: `subscriber` (text), `ts`
/// (int64 epoch seconds), `lat`, `lon` (float64), `cell` (uint64) and `country` (text).
#[must_use]
pub fn batch(rows: &[Ping]) -> RecordBatch {
    let texts = |f: &dyn Fn(&Ping) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    record_batch(vec![
        ("subscriber", texts(&|p| p.subscriber.as_deref())),
        (
            "ts",
            Arc::new(rows.iter().map(|p| p.ts).collect::<Int64Array>()),
        ),
        (
            "lat",
            Arc::new(rows.iter().map(|p| p.lat).collect::<Float64Array>()),
        ),
        (
            "lon",
            Arc::new(rows.iter().map(|p| p.lon).collect::<Float64Array>()),
        ),
        (
            "cell",
            Arc::new(rows.iter().map(|p| p.cell).collect::<UInt64Array>()),
        ),
        ("country", texts(&|p| p.country.as_deref())),
    ])
}

/// Runs [`Study::prepare`] on batches with the default column names, on every core.
///
/// # Errors
/// As [`Study::new`] and [`Study::prepare`].
pub fn prepare(
    batches: Vec<RecordBatch>,
    geography: &Geography,
    config: &Config,
) -> crowdtally::Result<Prepared> {
    Study::new(geography.clone(), config.clone())?
        .prepare(batches.into_iter().map(Ok), &RunOptions::default())
}

/// Runs [`Study::prepare`] on any batches with the given column names, on every core.
///
/// # Errors
/// As [`Study::new`] and [`Study::prepare`].
pub fn prepare_with<I>(
    batches: I,
    geography: &Geography,
    config: &Config,
    columns: &PingColumns,
) -> crowdtally::Result<Prepared>
where
    I: IntoIterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>,
{
    Study::new(geography.clone(), config.clone())?
        .with_columns(columns.clone())
        .prepare(batches, &RunOptions::default())
}

/// A text column.
#[must_use]
pub fn texts(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

/// An int64 column.
#[must_use]
pub fn ints(values: &[Option<i64>]) -> ArrayRef {
    Arc::new(Int64Array::from(values.to_vec()))
}

/// A uint64 column.
#[must_use]
pub fn uints(values: &[Option<u64>]) -> ArrayRef {
    Arc::new(UInt64Array::from(values.to_vec()))
}

/// A float64 column.
#[must_use]
pub fn floats(values: &[Option<f64>]) -> ArrayRef {
    Arc::new(Float64Array::from(values.to_vec()))
}

/// The period from the Brussels local date of `first` to the Brussels local date of
/// `end` (exclusive).
///
/// # Panics
/// When `end` falls on or before the local date of `first`.
#[must_use]
pub fn brussels_period(first: i64, end: i64) -> Period {
    let date = |instant: i64| {
        brussels_zone()
            .to_datetime(jiff::Timestamp::from_second(instant).expect("an instant of the calendar"))
            .date()
    };
    Period::new(date(first), date(end)).expect("an increasing period")
}

fn brussels_zone() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Europe/Brussels").expect("a known zone")
}

/// The instant (epoch seconds) of a time written `YYYY-MM-DD HH:MM:SS`: Brussels local
/// time read by the method's rules (§1.4: the earlier instant in the autumn fold, moved
/// forward by the gap in the spring gap), or the instant itself when the text ends in
/// `Z` or an offset `±HH:MM` (to name the second 02:30 of the autumn fold).
///
/// # Panics
/// When the text is not such a time.
#[must_use]
pub fn brussels(text: &str) -> i64 {
    if let Ok(instant) = text.parse::<jiff::Timestamp>() {
        return instant.as_second();
    }
    let local: jiff::civil::DateTime = text
        .parse()
        .unwrap_or_else(|_| panic!("not a time: {text:?}"));
    brussels_zone()
        .to_ambiguous_timestamp(local)
        .compatible()
        .expect("a time of the calendar")
        .as_second()
}

/// Checks the invariants every prepared result holds: the report adds up and agrees with
/// the pings, and the pings are grouped by device in increasing pseudonym, sorted by
/// time, one per device and second.
///
/// # Panics
/// When an invariant does not hold.
pub fn assert_consistent(prepared: &Prepared) {
    let report = prepared.report();
    let pings = prepared.pings();
    assert_eq!(
        report.pings_read,
        report.pings_kept + report.dropped.total(),
        "{report:?}"
    );
    assert_eq!(report.pings_kept, pings.len() as u64);
    assert_eq!(report.devices, pings.devices().len() as u64);
    assert_eq!(report.opt_out.pings, report.dropped.opt_out);
    assert!(report.opt_out.subscribers <= report.opt_out.pings);
    assert_eq!(report.period, pings.period);
    assert_eq!(report.period_label, pings.period_label);
    assert_eq!(report.version, crowdtally::VERSION);
    assert!(
        pings.devices().windows(2).all(|w| w[0] < w[1]),
        "devices ascend"
    );
    let mut covered = 0;
    for (i, &device) in pings.devices().iter().enumerate() {
        let rows = pings.device_rows(i);
        assert_eq!(rows.start, covered, "device rows are contiguous");
        assert!(!rows.is_empty(), "a device has pings");
        covered = rows.end;
        assert!(pings.device()[rows.clone()].iter().all(|&d| d == device));
        assert!(
            pings.ts()[rows].windows(2).all(|w| w[0] < w[1]),
            "time ascends, no duplicates"
        );
    }
    assert_eq!(covered, pings.len());
    for column_len in [
        pings.device().len(),
        pings.cell().len(),
        pings.leaf().len(),
        pings.zone_set().len(),
        pings.country().len(),
    ] {
        assert_eq!(column_len, pings.len());
    }
}

/// The shares of each kind of row [`dirty_pings`] makes, in percent of the rows.
#[derive(Clone, Copy, Debug)]
pub struct DirtyMix {
    /// Rows whose position is an H3 cell (at, above or below the analysis resolution, or
    /// no cell at all).
    pub cells: u8,
    /// Rows at one of a few points that recur (antennas, grid points).
    pub repeated: u8,
    /// Rows with a bad lat/lon (NaN, infinite, out of range, null).
    pub bad_positions: u8,
    /// Rows with a null subscriber, a null time or a time in milliseconds.
    pub bad_other: u8,
}

impl Default for DirtyMix {
    fn default() -> Self {
        Self {
            cells: 20,
            repeated: 30,
            bad_positions: 5,
            bad_other: 3,
        }
    }
}

/// splitmix64: small, fast and good enough for test data.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// A point in a box around both fixture leaves, reaching outside them.
    fn point(&mut self) -> (f64, f64) {
        (50.78 + 0.10 * self.unit(), 3.18 + 0.14 * self.unit())
    }

    fn pick<T: Clone>(&mut self, values: &[T]) -> T {
        values[self.below(values.len())].clone()
    }
}

/// `rows` deterministic, varied pings from `seed`: a few hundred subscribers over three
/// days from a day before [`T0`], on a five-minute grid (so that duplicates happen), at
/// random points around Kortrijk and Menen (some outside every leaf), recurring points,
/// cells of several resolutions, bad positions, bad subscribers and times, and countries
/// in several spellings; the rest is lat/lon drawn at random.
///
/// # Panics
/// Never: the fixture cells are valid.
#[must_use]
pub fn dirty_pings(rows: usize, seed: u64, mix: DirtyMix) -> Vec<Ping> {
    let mut rng = SplitMix(seed);
    let subscribers = 50 + rng.below(400);
    let palette: Vec<(f64, f64)> = (0..12)
        .map(|_| rng.point())
        .chain([
            MARKT_POINT,
            STREET_POINT,
            QUIET_POINT,
            STATION_POINT,
            OUTSIDE_POINT,
        ])
        .collect();
    let markt = h3o::CellIndex::try_from(MARKT_CELL).expect("valid fixture cell");
    let cells = [
        MARKT_CELL,
        STREET_CELL,
        QUIET_CELL,
        STATION_CELL,
        OUTSIDE_CELL,
        quiet_menen_cell(),
        u64::from(markt.center_child(h3o::Resolution::Twelve).expect("finer")),
        // Coarser than the analysis resolution, and no cell at all: bad positions.
        u64::from(markt.parent(h3o::Resolution::Eight).expect("coarser")),
        1,
    ];
    let bad_points = [
        (Some(f64::NAN), Some(3.2)),
        (Some(91.0), Some(3.2)),
        (Some(50.8), Some(f64::INFINITY)),
        (Some(50.8), Some(-180.5)),
        (None, Some(3.2)),
        (Some(50.8), None),
    ];
    let countries = COUNTRY_SPELLINGS;
    let cells_to = usize::from(mix.cells);
    let repeated_to = cells_to + usize::from(mix.repeated);
    let bad_to = repeated_to + usize::from(mix.bad_positions);
    (0..rows)
        .map(|_| {
            let mut ping = Ping {
                subscriber: Some(format!("2060100{:08}", rng.below(subscribers))),
                ts: Some(T0 - 86_400 + 300 * rng.below(3 * 288) as i64),
                ..Ping::default()
            };
            let kind = rng.below(100);
            if kind < cells_to {
                ping.cell = Some(rng.pick(&cells));
            } else if kind < repeated_to {
                let (lat, lon) = rng.pick(&palette);
                (ping.lat, ping.lon) = (Some(lat), Some(lon));
            } else if kind < bad_to {
                (ping.lat, ping.lon) = rng.pick(&bad_points);
            } else {
                let (lat, lon) = rng.point();
                (ping.lat, ping.lon) = (Some(lat), Some(lon));
            }
            if rng.below(100) < usize::from(mix.bad_other) {
                match rng.below(3) {
                    0 => ping.subscriber = None,
                    1 => ping.ts = None,
                    _ => ping.ts = ping.ts.map(|t| t * 1_000),
                }
            }
            ping.country = rng.pick(&countries).map(str::to_owned);
            ping
        })
        .collect()
}

/// Country values as operators spell them: missing, empty, lower case, padded.
pub const COUNTRY_SPELLINGS: [Option<&str>; 6] = [
    None,
    Some(""),
    Some("be"),
    Some("NL"),
    Some(" fr "),
    Some("nl"),
];

/// Splits rows into batches at the given cut points (clamped to the rows, in any order).
#[must_use]
pub fn batches(rows: &[Ping], cuts: &[usize]) -> Vec<RecordBatch> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(rows.len())).collect();
    cuts.sort_unstable();
    let mut batches = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([rows.len()]) {
        batches.push(batch(&rows[start..cut]));
        start = cut;
    }
    batches
}

/// The period of local dates `[start, end)` in Brussels, written `YYYY-MM-DD`.
///
/// # Panics
/// When a date is malformed or `end` is not after `start`.
#[must_use]
pub fn local_period(start: &str, end: &str) -> Period {
    brussels_period(
        brussels(&format!("{start} 00:00:00")),
        brussels(&format!("{end} 00:00:00")),
    )
}

/// A four-level region tree (without zones) around [`KORTRIJK_CELL`]:
///
/// ```text
/// BE (country)
/// ├── ovl (province)
/// │   └── arr-gent (arrondissement): gent [600], aalst [500]
/// ├── wvl (province)
/// │   ├── arr-kortrijk (arrondissement): kortrijk [300], menen [100]
/// │   └── arr-brugge (arrondissement): brugge [400]
/// └── brussel (municipality, directly under the country) [1000]
/// ```
///
/// `gent`, `aalst`, `brugge` and `brussel` take the first four cells of
/// [`free_neighbours_of_kortrijk`]; the study area is `kortrijk`. Regions are listed so
/// that `gent` has a smaller index than `brugge` (index order and byte order disagree).
#[must_use]
pub fn four_level_tree() -> GeographyBuilder {
    let ring = free_neighbours_of_kortrijk();
    GeographyBuilder::new(RESOLUTION)
        .region("BE", "country", None, None)
        .region("ovl", "province", Some("BE"), None)
        .region("wvl", "province", Some("BE"), None)
        .region("arr-gent", "arrondissement", Some("ovl"), None)
        .region("arr-kortrijk", "arrondissement", Some("wvl"), None)
        .region("arr-brugge", "arrondissement", Some("wvl"), None)
        .region("gent", "municipality", Some("arr-gent"), Some(600))
        .region("aalst", "municipality", Some("arr-gent"), Some(500))
        .region("kortrijk", "municipality", Some("arr-kortrijk"), Some(300))
        .region("menen", "municipality", Some("arr-kortrijk"), Some(100))
        .region("brugge", "municipality", Some("arr-brugge"), Some(400))
        .region("brussel", "municipality", Some("BE"), Some(1_000))
        .region_cells("kortrijk", &[KORTRIJK_CELL])
        .region_cells("menen", &[MENEN_CELL])
        .region_cells("gent", &[ring[0]])
        .region_cells("aalst", &[ring[1]])
        .region_cells("brugge", &[ring[2]])
        .region_cells("brussel", &[ring[3]])
        .study_area(&["kortrijk"])
}
