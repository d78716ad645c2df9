//! One device's contribution to the rows of a release (§6), gathered before it is added:
//! the (zone, bucket) pairs its qualifying visits overlap, with their dwell, and the
//! visits starting in each bucket, with their band. In the differential-privacy mode the
//! contribution is bounded here, device by device, before any sum (§10).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::band_of;
use super::buckets::Buckets;
use crate::privacy::ContributionBounds;
use crate::pseudonym::Key;

/// The domain of the order in which a device's pairs are kept (§10).
const DP_DOMAIN: &[u8] = b"crowdtally/dp\x00";

/// The place of every (zone, bucket) pair in the keyed order of §10: a device with more
/// pairs than it may count in keeps those that come first. The order depends on the key
/// and the period label only, never on the data or the input order.
pub(crate) struct PairRanks {
    buckets: usize,
    rank: Vec<u32>,
}

impl PairRanks {
    /// The ranks of `zones` × the buckets labelled `labels` (`bucket_start` texts).
    pub(crate) fn new(key: &Key, period_label: &str, zones: &[String], labels: &[String]) -> Self {
        let mut digests: Vec<([u8; 32], u32)> = Vec::with_capacity(zones.len() * labels.len());
        for zone in zones {
            for label in labels {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(key.expose()).expect("HMAC takes any key");
                for part in [
                    DP_DOMAIN,
                    period_label.as_bytes(),
                    b"\x00",
                    zone.as_bytes(),
                    b"\x00",
                    label.as_bytes(),
                ] {
                    mac.update(part);
                }
                let pair = digests.len() as u32;
                digests.push((mac.finalize().into_bytes().into(), pair));
            }
        }
        digests.sort_unstable();
        let mut rank = vec![0; digests.len()];
        for (place, &(_, pair)) in digests.iter().enumerate() {
            rank[pair as usize] = place as u32;
        }
        Self {
            buckets: labels.len(),
            rank,
        }
    }

    fn of(&self, zone: u32, bucket: u32) -> u32 {
        self.rank[zone as usize * self.buckets + bucket as usize]
    }
}

/// A visit starting in the grid: its zone, bucket, start instant and band.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Start {
    pub(super) zone: u32,
    pub(super) bucket: u32,
    pub(super) at: i64,
    pub(super) band: u8,
}

/// One device's contribution; its buffers are kept from device to device.
#[derive(Default)]
pub(super) struct Contribution {
    /// (zone, bucket, seconds) per visit and bucket it overlaps, folded into `pairs`.
    overlaps: Vec<(u32, u32, i64)>,
    /// The pairs the device counts in, sorted, with their dwell.
    pub(super) pairs: Vec<(u32, u32, i64)>,
    /// The visits the device counts, sorted by pair then start.
    pub(super) starts: Vec<Start>,
    /// What bounding dropped: pairs, and visits (those of dropped pairs, and those
    /// beyond `max_visits` in kept ones).
    pub(super) pairs_dropped: u64,
    pub(super) visits_dropped: u64,
}

impl Contribution {
    pub(super) fn clear(&mut self) {
        self.overlaps.clear();
        self.pairs.clear();
        self.starts.clear();
        self.pairs_dropped = 0;
        self.visits_dropped = 0;
    }

    /// Adds a qualifying visit to `zone` over `[start, end)` with whole dwell `dwell`.
    pub(super) fn add_visit(
        &mut self,
        zone: u32,
        start: i64,
        end: i64,
        dwell: i64,
        buckets: &Buckets,
    ) {
        for b in buckets.overlapped(start, end) {
            let (b0, b1) = buckets.interval(b);
            self.overlaps
                .push((zone, b as u32, end.min(b1) - start.max(b0)));
        }
        if let Some(b) = buckets.bucket_of(start) {
            self.starts.push(Start {
                zone,
                bucket: b as u32,
                at: start,
                band: band_of(dwell) as u8,
            });
        }
    }

    /// Folds the visits into pairs and, with bounds, keeps what the device may count:
    /// its first `max_partitions` pairs in the keyed order, in each the first
    /// `max_visits` visits by start, and at most `max_dwell_s` of dwell.
    pub(super) fn finish(&mut self, bounded: Option<(&ContributionBounds, &PairRanks)>) {
        self.overlaps
            .sort_unstable_by_key(|&(zone, bucket, _)| (zone, bucket));
        for &(zone, bucket, seconds) in &self.overlaps {
            match self.pairs.last_mut() {
                Some(last) if (last.0, last.1) == (zone, bucket) => last.2 += seconds,
                _ => self.pairs.push((zone, bucket, seconds)),
            }
        }
        self.starts.sort_unstable();
        if let Some((bounds, ranks)) = bounded {
            self.bound(bounds, ranks);
        }
    }

    fn bound(&mut self, bounds: &ContributionBounds, ranks: &PairRanks) {
        let keep = bounds.max_partitions as usize;
        if self.pairs.len() > keep {
            self.pairs_dropped = (self.pairs.len() - keep) as u64;
            self.pairs
                .sort_unstable_by_key(|&(zone, bucket, _)| ranks.of(zone, bucket));
            self.pairs.truncate(keep);
            self.pairs
                .sort_unstable_by_key(|&(zone, bucket, _)| (zone, bucket));
        }
        for pair in &mut self.pairs {
            pair.2 = pair.2.min(bounds.max_dwell_s);
        }
        // Visits of a dropped pair go with it; of a kept pair, the first ones by start.
        let pairs = &self.pairs;
        let before = self.starts.len();
        self.starts.retain(|s| {
            pairs
                .binary_search_by_key(&(s.zone, s.bucket), |&(zone, bucket, _)| (zone, bucket))
                .is_ok()
        });
        let mut kept = 0;
        let mut run: Option<(u32, u32, u32)> = None;
        let max_visits = bounds.max_visits;
        self.starts.retain(|s| {
            let count = match run {
                Some((zone, bucket, count)) if (zone, bucket) == (s.zone, s.bucket) => count + 1,
                _ => 1,
            };
            run = Some((s.zone, s.bucket, count));
            let keep = count <= max_visits;
            kept += usize::from(keep);
            keep
        });
        self.visits_dropped = (before - kept) as u64;
    }

    /// Whether the device counts in pair `(zone, bucket)`.
    pub(super) fn has_pair(&self, zone: u32, bucket: u32) -> bool {
        self.pairs
            .binary_search_by_key(&(zone, bucket), |&(z, b, _)| (z, b))
            .is_ok()
    }
}
