//! The numbers a run gives what it reads: subscribers (their raw ids, held only until
//! they are pseudonymized), country codes, and the values of Arrow dictionaries.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::located::NO_COUNTRY;
use crate::config::{OptOutSet, opt_out_digest};
use crate::error::{Error, Result};
use crate::pseudonym::{Key, Pseudonymizer};

/// The numbers given to the values of the last dictionary a column came in. Parquet
/// readers give every batch of a column chunk the chunk's dictionary: each value is
/// numbered once, when a row first refers to it, and the numbers are kept until the
/// dictionary changes.
pub(crate) struct DictionaryNumbers<T>(Option<(arrow_array::ArrayRef, Vec<Option<T>>)>);

impl<T> Default for DictionaryNumbers<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T: Copy> DictionaryNumbers<T> {
    /// The number of each of `values` (`None` until a row refers to it), kept from the
    /// last call if `values` is the same dictionary.
    pub(crate) fn of(&mut self, values: &arrow_array::ArrayRef) -> &mut [Option<T>] {
        if !matches!(&self.0, Some((known, _)) if Arc::ptr_eq(known, values)) {
            self.0 = None;
        }
        &mut self
            .0
            .get_or_insert_with(|| (Arc::clone(values), vec![None; values.len()]))
            .1
    }
}

/// A raw subscriber id as a hash-map key. Ids of up to 31 bytes (IMSIs, MSISDNs,
/// 128-bit hashes) are held in the entry itself, so that a look-up among millions of
/// subscribers reads the entry's cache line and no pointer beyond it. No `Debug`: it
/// holds a raw id. It hashes and compares as its bytes, so maps of it are looked up by
/// `&[u8]` without building a key.
pub(crate) enum IdKey {
    Inline(u8, [u8; 31]),
    Boxed(Box<[u8]>),
}

impl IdKey {
    fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= 31 {
            let mut inline = [0; 31];
            inline[..bytes.len()].copy_from_slice(bytes);
            Self::Inline(bytes.len() as u8, inline)
        } else {
            Self::Boxed(bytes.into())
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Self::Inline(len, inline) => &inline[..*len as usize],
            Self::Boxed(bytes) => bytes,
        }
    }
}

impl PartialEq for IdKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for IdKey {}

impl std::hash::Hash for IdKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes().hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for IdKey {
    fn borrow(&self) -> &[u8] {
        self.bytes()
    }
}

/// Distinct subscribers seen, as their §3 bytes, numbered in order of appearance.
pub(crate) struct Subscribers {
    number_of: FxHashMap<IdKey, u32>,
    pub(crate) opted_out: Vec<bool>,
    /// Whether the subscriber has a ping that passed every per-row rule.
    pub(crate) has_row: Vec<bool>,
    /// The last id looked up and its number (`u32::MAX`: none yet).
    last: (Vec<u8>, u32),
    /// Pseudonyms given as subscribers are first seen, when the period label is known
    /// before the input is read (the mapper of a distributed run).
    pub(crate) named: Option<Named>,
}

/// Each subscriber's pseudonym and tag (0 for an opted-out one), and the opt-out
/// digests of the opted-out ones, by subscriber number.
pub(crate) struct Named {
    pseudonymizer: Pseudonymizer,
    key: Key,
    pub(crate) device_tag: Vec<(u64, u64)>,
    pub(crate) opted_out_digests: Vec<[u8; 16]>,
}

impl Named {
    pub(crate) fn new(pseudonymizer: Pseudonymizer, key: Key) -> Self {
        Self {
            pseudonymizer,
            key,
            device_tag: Vec::new(),
            opted_out_digests: Vec::new(),
        }
    }
}

impl Default for Subscribers {
    fn default() -> Self {
        Self {
            number_of: FxHashMap::default(),
            opted_out: Vec::new(),
            has_row: Vec::new(),
            last: (Vec::new(), u32::MAX),
            named: None,
        }
    }
}

impl Subscribers {
    pub(crate) fn number(&mut self, bytes: &[u8], opt_out: &OptOutSet) -> u32 {
        // Feeds often list a subscriber's pings together: the last id is the likeliest.
        if self.last.1 != u32::MAX && self.last.0 == bytes {
            return self.last.1;
        }
        let number = if let Some(&number) = self.number_of.get(bytes) {
            number
        } else {
            let number = self.opted_out.len() as u32;
            let opted_out = opt_out.contains(bytes);
            self.opted_out.push(opted_out);
            self.has_row.push(false);
            if let Some(named) = &mut self.named {
                if opted_out {
                    named.device_tag.push((0, 0));
                    named
                        .opted_out_digests
                        .push(opt_out_digest(&named.key, bytes));
                } else {
                    named
                        .device_tag
                        .push(named.pseudonymizer.device_and_tag(bytes));
                }
            }
            self.number_of.insert(IdKey::new(bytes), number);
            number
        };
        self.last.0.clear();
        self.last.0.extend_from_slice(bytes);
        self.last.1 = number;
        number
    }

    /// The raw ids and their numbers, taken out: from then on no raw id is held here.
    pub(crate) fn take_ids(&mut self) -> FxHashMap<IdKey, u32> {
        self.last = (Vec::new(), u32::MAX);
        std::mem::take(&mut self.number_of)
    }
}

/// Country codes seen, upper-cased; number 0 is "none".
pub(crate) struct Countries {
    /// Numbers of the spellings seen (before trimming and upper-casing).
    number_of: FxHashMap<String, u16>,
    /// Numbers of the upper-cased codes, so that a new spelling costs one look-up.
    number_of_code: FxHashMap<String, u16>,
    pub(crate) codes: Vec<String>,
    /// The last spelling looked up and its number: most pings are of one country.
    last: (String, u16),
}

impl Default for Countries {
    fn default() -> Self {
        Self {
            number_of: FxHashMap::default(),
            number_of_code: FxHashMap::default(),
            codes: vec![String::new()],
            last: (String::new(), NO_COUNTRY),
        }
    }
}

impl Countries {
    pub(crate) fn number(&mut self, raw: &str, column: &str) -> Result<u16> {
        if self.last.0 == raw {
            return Ok(self.last.1);
        }
        let n = self.look_up(raw, column)?;
        self.last.0.clear();
        self.last.0.push_str(raw);
        self.last.1 = n;
        Ok(n)
    }

    fn look_up(&mut self, raw: &str, column: &str) -> Result<u16> {
        let code = raw.trim();
        if code.is_empty() {
            return Ok(NO_COUNTRY);
        }
        if let Some(&n) = self.number_of.get(code) {
            return Ok(n);
        }
        let upper = code.to_ascii_uppercase();
        let n = if let Some(&n) = self.number_of_code.get(&upper) {
            n
        } else {
            let n = u16::try_from(self.codes.len())
                .map_err(|_| Error::input(column, "has more than 65,535 distinct country codes"))?;
            self.number_of_code.insert(upper.clone(), n);
            self.codes.push(upper);
            n
        };
        self.number_of.insert(code.to_owned(), n);
        Ok(n)
    }
}
/// The output country number of a country rank: ranks start at 1, "none" is 0.
pub(crate) fn output_country(rank: u16) -> u16 {
    if rank == u16::MAX {
        NO_COUNTRY
    } else {
        rank + 1
    }
}

/// The rank of each country number in byte order of the codes, "none" last.
pub(crate) fn country_ranks(codes: &[String]) -> Vec<u16> {
    let mut order: Vec<u16> = (1..codes.len() as u16).collect();
    order.sort_unstable_by(|&a, &b| codes[a as usize].cmp(&codes[b as usize]));
    let mut rank = vec![u16::MAX; codes.len()];
    for (r, &n) in order.iter().enumerate() {
        rank[n as usize] = r as u16;
    }
    rank
}
