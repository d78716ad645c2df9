//! Keyed, rotated pseudonyms for subscribers (method §3).
//!
//! `device = first 8 bytes, big-endian, of HMAC-SHA-256(key, "crowdtally/v1\0" ||
//! period_label || "\0" || subscriber_bytes)`. The period label rotates the pseudonyms, so
//! devices cannot be linked across releases that use different labels.
//!
//! The key is held in a [`Key`], which never prints, serialises or compares its bytes and
//! is wiped when dropped.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

/// The domain-separation prefix of every pseudonym.
pub const DOMAIN: &[u8] = b"crowdtally/v1\x00";

/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// A secret pseudonymization key. Its bytes never appear in `Debug`, errors or output.
#[derive(Clone, Default)]
pub struct Key(Vec<u8>, CollisionMask);

/// The bits of a pseudonym that are kept: all of them, except in the crate's own tests,
/// which force collisions by keeping a few.
#[derive(Clone, Copy)]
struct CollisionMask(u64);

impl Default for CollisionMask {
    fn default() -> Self {
        Self(u64::MAX)
    }
}

impl Key {
    /// Wraps secret bytes. Length is checked by [`Key::validate`] and by the
    /// configuration's `validate()`.
    #[must_use]
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into(), CollisionMask::default())
    }

    /// The same key, with pseudonyms cut to their `bits` low bits so that subscribers
    /// collide: how tests reach the rare path of §3's collisions.
    #[cfg(test)]
    #[must_use]
    pub(crate) fn colliding(mut self, bits: u32) -> Self {
        self.1 = CollisionMask((1_u64 << bits) - 1);
        self
    }

    /// The key's length in bytes (the only fact about it that may be shown).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks the key is at least 16 bytes long.
    ///
    /// # Errors
    /// [`Error::Config`] naming `key`.
    pub fn validate(&self) -> Result<()> {
        if self.0.len() < MIN_KEY_BYTES {
            return Err(Error::config(
                "key",
                format!(
                    "must be at least {MIN_KEY_BYTES} bytes long, got {} bytes",
                    self.0.len()
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret bytes themselves: only for handing the key on deliberately (to the
    /// workers of a distributed run that are given it with their job). Nothing the
    /// library writes or shows uses this.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq for Key {
    /// Compares in time that depends on the lengths only, not on where the keys differ.
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .fold(0_u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(<{} secret bytes>)", self.0.len())
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // Best effort: overwrite the secret before the allocation is released.
        for byte in &mut self.0 {
            // SAFETY-free volatile-like wipe: `black_box` keeps the writes from being elided.
            *byte = std::hint::black_box(0);
        }
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Self::new(s.into_bytes()))
    }
}

/// Computes pseudonyms for one key and period label.
///
/// The HMAC state after the key, the domain prefix and the label is computed once and
/// cloned per subscriber.
#[derive(Clone)]
pub struct Pseudonymizer {
    prefixed: HmacSha256,
    mask: u64,
}

impl Pseudonymizer {
    /// Prepares pseudonymization under `key` for `period_label`.
    ///
    /// # Errors
    /// [`Error::Config`] naming `key` when it is shorter than 16 bytes, or naming
    /// `period_label` when the label is empty or contains a NUL byte (which would make
    /// the encoding ambiguous).
    pub fn new(key: &Key, period_label: &str) -> Result<Self> {
        key.validate()?;
        validate_period_label(period_label)?;
        let mut prefixed = HmacSha256::new_from_slice(key.expose())
            .map_err(|_| Error::config("key", "is not usable as an HMAC key"))?;
        prefixed.update(DOMAIN);
        prefixed.update(period_label.as_bytes());
        prefixed.update(b"\x00");
        Ok(Self {
            prefixed,
            mask: key.1.0,
        })
    }

    /// The pseudonym of one subscriber, given by its bytes: the UTF-8 string, the binary
    /// value as it is, or the 8 big-endian bytes of a non-negative integer id.
    #[must_use]
    pub fn device(&self, subscriber_bytes: &[u8]) -> u64 {
        self.device_and_tag(subscriber_bytes).0
    }

    /// The pseudonym of one subscriber and its *tag*, the next 8 bytes of the same HMAC:
    /// together 128 bits that tell apart subscribers whose 64-bit pseudonyms collide,
    /// where their raw ids are no longer at hand (a distributed run).
    #[must_use]
    pub fn device_and_tag(&self, subscriber_bytes: &[u8]) -> (u64, u64) {
        let mut mac = self.prefixed.clone();
        mac.update(subscriber_bytes);
        let digest = mac.finalize().into_bytes();
        let word = |from: usize| {
            let mut bytes = [0_u8; 8];
            bytes.copy_from_slice(&digest[from..from + 8]);
            u64::from_be_bytes(bytes)
        };
        (word(0) & self.mask, word(8))
    }

    /// The pseudonym of an integer subscriber id.
    #[must_use]
    pub fn device_of_integer(&self, subscriber: u64) -> u64 {
        self.device(&subscriber.to_be_bytes())
    }
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pseudonymizer(<keyed>)")
    }
}

/// Checks a period label: non-empty and free of NUL bytes.
///
/// # Errors
/// [`Error::Config`] naming `period_label`.
pub fn validate_period_label(label: &str) -> Result<()> {
    if label.is_empty() {
        return Err(Error::config("period_label", "must not be empty"));
    }
    if label.contains('\0') {
        return Err(Error::config(
            "period_label",
            "must not contain a NUL character",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        use std::fmt::Write;
        bytes.iter().fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    }

    fn hmac(key: &[u8], data: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(key).unwrap();
        mac.update(data);
        hex(&mac.finalize().into_bytes())
    }

    // RFC 4231, test cases 1 to 7 (case 5 checks the first 128 bits only).
    #[test]
    fn rfc4231_vectors() {
        assert_eq!(
            hmac(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hmac(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hmac(&[0xaa; 20], &[0xdd; 50]),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
        );
        let key4: Vec<u8> = (1..=25).collect();
        assert_eq!(
            hmac(&key4, &[0xcd; 50]),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"
        );
        assert_eq!(
            &hmac(&[0x0c; 20], b"Test With Truncation")[..32],
            "a3b6167473100ee06e0c796c2955552b"
        );
        assert_eq!(
            hmac(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert_eq!(
            hmac(
                &[0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."
            ),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
        );
    }

    #[test]
    fn device_is_the_method_construction() {
        let key = Key::new(b"0123456789abcdef".to_vec());
        let pseudonymizer = Pseudonymizer::new(&key, "2026Q3").unwrap();
        let mut message = DOMAIN.to_vec();
        message.extend_from_slice(b"2026Q3\x00");
        message.extend_from_slice(b"206010123456789");
        let full = hmac(b"0123456789abcdef", &message);
        let expected = u64::from_str_radix(&full[..16], 16).unwrap();
        assert_eq!(pseudonymizer.device(b"206010123456789"), expected);
        // "42" and 42 are different subscribers.
        assert_ne!(
            pseudonymizer.device(b"42"),
            pseudonymizer.device_of_integer(42)
        );
        // The label rotates the pseudonym.
        let other = Pseudonymizer::new(&key, "2026Q4").unwrap();
        assert_ne!(other.device(b"42"), pseudonymizer.device(b"42"));
    }

    #[test]
    fn short_keys_and_bad_labels_name_their_field() {
        let short = Key::new(b"short".to_vec());
        let err = Pseudonymizer::new(&short, "2026Q3").unwrap_err();
        assert_eq!(err.field(), Some("key"));
        assert!(!err.to_string().contains("short"));
        let key = Key::new(vec![7; 16]);
        assert_eq!(
            Pseudonymizer::new(&key, "").unwrap_err().field(),
            Some("period_label")
        );
        assert_eq!(
            Pseudonymizer::new(&key, "a\0b").unwrap_err().field(),
            Some("period_label")
        );
    }

    #[test]
    fn key_debug_shows_no_bytes() {
        let key = Key::new(b"super-secret-key-material".to_vec());
        let shown = format!("{key:?}");
        assert!(!shown.contains("super"));
        assert_eq!(shown, "Key(<25 secret bytes>)");
    }
}
