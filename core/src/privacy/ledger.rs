//! The privacy ledger: every release of a period, kept in a file the operator names.
//!
//! Thresholds protect one table, not a series of them (method §7), and a ρ-zCDP budget
//! only means something if what was spent is remembered across runs (method §10). Per
//! period label and fingerprint (an *account*: the study's keyed digest of its key and
//! the label, so one pseudonym space) the ledger records every release
//! (mode, spec, ρ, time), and refuses a release with other subscribers or roaming factors
//! than the period's first one, a differentially private release past the budget, and a
//! k-anonymity release cut differently from an earlier one unless differencing is allowed.
//! Fingerprints and factors are keyed digests computed by the caller: nothing in the file
//! is secret.
//!
//! Every change happens under an exclusive lock on a sidecar file `<ledger>.lock`, and the
//! new ledger is written to a temporary file in the same directory, synced and renamed
//! over the old one: two processes recording at once both land, and a crash leaves the old
//! or the new ledger, never a mix. The ledger file itself is not locked because the rename
//! replaces it: a lock on it would guard an inode nobody reads any more. A ledger that
//! cannot be parsed is an error, never a reset: forgetting what was spent would hand the
//! budget out again.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// The format tag of the ledger files this version reads and writes.
pub const FORMAT: &str = "crowdtally-ledger/1";

/// The relative tolerance of the budget comparison. Spent ρ is a sum of floating-point
/// numbers, and such sums drift by a few units in the last place (ten releases at 0.1 add
/// up to 0.9999999999999999, not 1): a release is refused only when it passes the budget
/// by more than this fraction of it, so that an exact split of the budget is honoured.
const RELATIVE_TOLERANCE: f64 = 1e-9;

/// The privacy mode of a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PrivacyMode {
    /// Disclosure control by thresholds (method §7).
    #[serde(rename = "k_anonymity")]
    KAnonymity,
    /// Differential privacy with a ρ-zCDP budget (method §10).
    #[serde(rename = "differential_privacy")]
    DifferentialPrivacy,
}

/// One recorded release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The release's privacy mode.
    pub mode: PrivacyMode,
    /// The release's parameters, in the caller's canonical form. Two k-anonymity releases
    /// of a period are the same cut exactly when their specs are equal.
    pub spec: Value,
    /// The ρ (zCDP) the release spent; differential privacy only.
    pub rho: Option<f64>,
    /// When the release was recorded, UTC, RFC 3339.
    pub time: String,
    /// Whether the caller allowed a k-anonymity release cut differently from earlier ones.
    pub allow_differencing: bool,
}

/// The releases of one period of one data set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The period label (the one that rotates the pseudonyms).
    pub label: String,
    /// The caller's keyed digest of its pseudonym space (the study's key and the label),
    /// in lowercase hex.
    pub fingerprint: String,
    /// The keyed digest of the subscribers and roaming factors fixed by the period's first
    /// release, in lowercase hex.
    pub factors: String,
    /// The budget (total ρ) fixed by the period's first differentially private release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<f64>,
    /// The releases, oldest first.
    pub releases: Vec<Entry>,
}

impl Account {
    /// The ρ spent by the account's differentially private releases.
    #[must_use]
    pub fn spent(&self) -> f64 {
        self.releases
            .iter()
            .filter(|entry| entry.mode == PrivacyMode::DifferentialPrivacy)
            .filter_map(|entry| entry.rho)
            .sum()
    }
}

/// The whole content of a ledger file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// The accounts, in the order of their first release.
    pub periods: Vec<Account>,
}

impl Default for LedgerFile {
    fn default() -> Self {
        Self {
            format: FORMAT.to_owned(),
            periods: Vec::new(),
        }
    }
}

impl LedgerFile {
    /// The account of a period label and fingerprint, if it has any release.
    #[must_use]
    pub fn account(&self, label: &str, fingerprint: &str) -> Option<&Account> {
        self.periods
            .iter()
            .find(|account| account.label == label && account.fingerprint == fingerprint)
    }
}

/// A release asking to be recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The period label.
    pub label: String,
    /// The caller's keyed digest of its pseudonym space (the study's key and the label),
    /// in lowercase hex.
    pub fingerprint: String,
    /// The keyed digest of the subscribers and roaming factors, in lowercase hex. `None`
    /// only for a [`Ledger::check`] made before the data are read, when they are not known
    /// yet; [`Ledger::record`] requires it.
    pub factors: Option<String>,
    /// The release's privacy mode.
    pub mode: PrivacyMode,
    /// The release's parameters, canonical (see [`Entry::spec`]).
    pub spec: Value,
    /// The ρ the release spends: required, finite and above 0 for differential privacy;
    /// must be `None` for k-anonymity.
    pub rho: Option<f64>,
    /// The period's total ρ: required, finite and above 0 for differential privacy.
    /// Optional for k-anonymity, where it only fills [`Recorded::remaining`].
    pub budget: Option<f64>,
    /// Allows a k-anonymity release cut differently from the period's earlier ones.
    pub allow_differencing: bool,
}

/// What a release did to its account, for the release report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recorded {
    /// The ρ the account has spent, this release included.
    pub spent: f64,
    /// The ρ left of the budget after this release, when a budget was given.
    pub remaining: Option<f64>,
    /// The number of the account's releases, this one included.
    pub releases: usize,
    /// Whether the release was made with `allow_differencing`.
    pub allow_differencing: bool,
    /// Whether the period has releases of both modes, this one included: the exact counts
    /// of its k-anonymity releases are outside the differential-privacy guarantee.
    pub mixed_modes: bool,
}

/// A privacy ledger file. Holds only its path: every operation opens, locks and reads the
/// file afresh, so separate `Ledger`s on one path, in threads or processes, see each
/// other's releases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ledger {
    path: PathBuf,
}

impl Ledger {
    /// A ledger at `path`. Nothing is opened until it is used; a missing file is an empty
    /// ledger, created by the first [`record`](Self::record).
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The ledger file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every account of the ledger, read under a shared lock.
    ///
    /// # Errors
    /// [`Error::Ledger`] when the lock cannot be taken or the file cannot be read, or is
    /// damaged (it is then left as it is).
    pub fn read(&self) -> Result<LedgerFile> {
        let _lock = self.lock(LockMode::Shared)?;
        self.load()
    }

    /// The ρ spent by the account of `label` and `fingerprint` (0 when it has no release).
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn spent(&self, label: &str, fingerprint: &str) -> Result<f64> {
        Ok(self
            .read()?
            .account(label, fingerprint)
            .map_or(0.0, Account::spent))
    }

    /// A dry run of [`record`](Self::record): the same checks against the ledger as it is
    /// now, nothing written. Returns what `record` would return. With `factors` unknown
    /// (`None`), they are not checked: `record` checks them when the release is committed.
    ///
    /// # Errors
    /// As [`record`](Self::record), except for the missing factors.
    pub fn check(&self, request: &Request) -> Result<Recorded> {
        let mut recorded = self.check_all(std::slice::from_ref(request))?;
        Ok(recorded.remove(0))
    }

    /// A dry run of recording `requests` one after the other: each is checked against
    /// the ledger as it is now plus the requests before it (their ρ adds up; their cuts
    /// must agree), nothing written. Returns what each `record` would return.
    ///
    /// # Errors
    /// As [`check`](Self::check), for the first request refused.
    pub fn check_all(&self, requests: &[Request]) -> Result<Vec<Recorded>> {
        for request in requests {
            self.validate(request)?;
        }
        let mut file = self.read()?;
        requests
            .iter()
            .map(|request| {
                let recorded = self.admit(&file, request)?;
                // Factors still unknown (detected from the data) are left open.
                append(&mut file, request, request.factors.as_deref().unwrap_or(""));
                Ok(recorded)
            })
            .collect()
    }

    /// Records a release, if the period's account allows it: under an exclusive lock,
    /// reads the ledger, checks the request, appends it and writes the ledger atomically.
    ///
    /// The checks, in order: the factors must be the account's (the first release fixes
    /// them); a differentially private release must stay within the budget; a k-anonymity
    /// release must have the spec of the account's earlier k-anonymity releases, unless it
    /// allows differencing. Differentially private and k-anonymity releases never block
    /// each other by spec.
    ///
    /// # Errors
    /// [`Error::Ledger`], the ledger left as it was, when: the request is malformed (empty
    /// label, fingerprint or factors not lowercase hex, factors missing, ρ or budget missing
    /// or not a finite number above 0 in differential privacy, ρ given in k-anonymity);
    /// a check refuses the release; the ledger is damaged; or the lock, the read or the
    /// write fails.
    pub fn record(&self, request: &Request) -> Result<Recorded> {
        self.validate(request)?;
        let Some(factors) = &request.factors else {
            return Err(self.refuse(
                "a release is recorded with the digest of its subscribers and roaming \
                 factors, and none was given",
            ));
        };
        let _lock = self.lock(LockMode::Exclusive)?;
        let mut file = self.load()?;
        let recorded = self.admit(&file, request)?;
        append(&mut file, request, factors);
        self.store(&file)?;
        Ok(recorded)
    }

    /// Checks the request on its own, before the ledger is read.
    fn validate(&self, request: &Request) -> Result<()> {
        let label = &request.label;
        let differential = request.mode == PrivacyMode::DifferentialPrivacy;
        let problem = if label.is_empty() {
            "a release needs a period label, and it is empty".to_owned()
        } else if !is_lower_hex(&request.fingerprint) {
            "the account's fingerprint must be a digest in lowercase hex digits".to_owned()
        } else if request.factors.as_deref().is_some_and(|f| !is_lower_hex(f)) {
            "the subscribers and roaming factors must be given as a digest in lowercase hex \
             digits, never in clear"
                .to_owned()
        } else if differential && !request.rho.is_some_and(is_positive) {
            format!(
                "a differentially private release of period {label} needs a ρ that is a \
                 finite number above 0"
            )
        } else if differential && !request.budget.is_some_and(is_positive) {
            format!(
                "a differentially private release recorded in a ledger needs the budget of \
                 period {label} (its total ρ, a finite number above 0); there is no default"
            )
        } else if !differential && request.rho.is_some() {
            "a k-anonymity release spends no ρ, and a ρ was given with it".to_owned()
        } else {
            return Ok(());
        };
        Err(self.refuse(problem))
    }

    /// Checks the request against its account in `file`, and returns the account's state
    /// after the release.
    fn admit(&self, file: &LedgerFile, request: &Request) -> Result<Recorded> {
        let account = file.account(&request.label, &request.fingerprint);
        let label = &request.label;

        if let (Some(account), Some(factors)) = (account, &request.factors)
            && !account.factors.is_empty()
            && account.factors != *factors
        {
            return Err(self.refuse(format!(
                "refused: the period {label} was first released with other subscribers or \
                 roaming factors; a release with other ones could decode pooled rows"
            )));
        }

        if let (Some(fixed), PrivacyMode::DifferentialPrivacy, Some(budget)) = (
            account.and_then(|account| account.budget),
            request.mode,
            request.budget,
        ) && (budget - fixed).abs() > fixed * RELATIVE_TOLERANCE
        {
            return Err(self.refuse(format!(
                "refused: the budget of period {label} was fixed at {} by its first \
                 differentially private release, and this one asks with a budget of {}",
                plain(fixed),
                plain(budget)
            )));
        }

        let spent_before = account.map_or(0.0, Account::spent);
        let spent = match (request.mode, request.rho, request.budget) {
            (PrivacyMode::DifferentialPrivacy, Some(rho), Some(budget)) => {
                if spent_before + rho > budget * (1.0 + RELATIVE_TOLERANCE) {
                    return Err(self.refuse(format!(
                        "refused: this differentially private release would take period \
                         {label} past its privacy budget (ρ, zCDP): spent {}, asked {}, \
                         budget {}",
                        plain(spent_before),
                        plain(rho),
                        plain(budget)
                    )));
                }
                spent_before + rho
            }
            _ => spent_before,
        };

        if request.mode == PrivacyMode::KAnonymity && !request.allow_differencing {
            let earlier: Vec<&Value> = account
                .into_iter()
                .flat_map(|account| &account.releases)
                .filter(|entry| entry.mode == PrivacyMode::KAnonymity)
                .map(|entry| &entry.spec)
                .collect();
            // A cut already released, even next to allowed other ones, yields the same
            // table again from the same data: it adds nothing to subtract.
            let repeat = earlier.iter().any(|spec| **spec == request.spec);
            let differing: BTreeSet<String> = earlier
                .iter()
                .flat_map(|spec| differing_keys(spec, &request.spec))
                .collect();
            if !repeat && !differing.is_empty() {
                let keys = differing.into_iter().collect::<Vec<_>>().join(", ");
                return Err(self.refuse(format!(
                    "refused: period {label} was already released with k-anonymity under \
                     other parameters (differing: {keys}); two tables of one period cut \
                     differently can be subtracted to reveal groups below k. Passing \
                     allow_differencing=True overrides this, and is recorded in the ledger \
                     and the report"
                )));
            }
        }

        let has_mode = |mode| {
            request.mode == mode
                || account.is_some_and(|account| account.releases.iter().any(|e| e.mode == mode))
        };
        Ok(Recorded {
            spent,
            remaining: request.budget.map(|budget| (budget - spent).max(0.0)),
            releases: account.map_or(0, |account| account.releases.len()) + 1,
            allow_differencing: request.allow_differencing,
            mixed_modes: has_mode(PrivacyMode::KAnonymity)
                && has_mode(PrivacyMode::DifferentialPrivacy),
        })
    }

    /// Reads and parses the ledger; the caller holds the lock.
    fn load(&self) -> Result<LedgerFile> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(LedgerFile::default());
            }
            Err(error) => return Err(Error::ledger_io(&self.path, "cannot read it", error)),
        };
        // The parser's own message is not passed on: it quotes the file's content.
        serde_json::from_slice::<LedgerFile>(&bytes)
            .ok()
            .filter(is_consistent)
            .ok_or_else(|| {
                self.refuse(format!(
                    "the ledger is damaged (or not a {FORMAT} file) and will not be reset; \
                     restore it from a backup, or move it aside deliberately to start anew"
                ))
            })
    }

    /// Writes the whole ledger atomically; the caller holds the exclusive lock.
    fn store(&self, file: &LedgerFile) -> Result<()> {
        let directory = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let mut text = serde_json::to_vec_pretty(file)
            .map_err(|error| Error::ledger_io(&self.path, "cannot write it", error.into()))?;
        text.push(b'\n');

        let write_error = |error| Error::ledger_io(&self.path, "cannot write it", error);
        // A name that says what the file is, should a crash leave it behind; nothing reads
        // it but the rename below.
        let prefix = format!(
            ".{}.",
            self.path
                .file_name()
                .map_or_else(|| "ledger".into(), |name| name.to_string_lossy())
        );
        let mut temporary = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .tempfile_in(directory)
            .map_err(write_error)?;
        // The new file replaces the old one: it keeps the permissions the operator gave it.
        if let Ok(metadata) = fs::metadata(&self.path) {
            fs::set_permissions(temporary.path(), metadata.permissions()).map_err(write_error)?;
        }
        temporary.write_all(&text).map_err(write_error)?;
        temporary.as_file().sync_all().map_err(write_error)?;
        temporary
            .persist(&self.path)
            .map_err(|error| write_error(error.error))?;
        sync_directory(directory).map_err(write_error)
    }

    /// Opens the sidecar lock file and takes the lock, held until the guard is dropped.
    fn lock(&self, mode: LockMode) -> Result<LockGuard> {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            // A reader may lack write access to the directory: an existing lock file,
            // opened for reading, still takes a shared lock.
            .or_else(|error| File::open(&lock_path).map_err(|_| error))
            .map_err(|error| Error::ledger_io(&self.path, "cannot open its lock file", error))?;
        let locked = match mode {
            LockMode::Shared => file.lock_shared(),
            LockMode::Exclusive => file.lock(),
        };
        locked.map_err(|error| Error::ledger_io(&self.path, "cannot lock it", error))?;
        Ok(LockGuard(file))
    }

    fn refuse(&self, message: impl std::fmt::Display) -> Error {
        Error::ledger(&self.path, message)
    }
}

/// Appends an admitted request to its account in `file` (opened with `factors` and, for
/// differential privacy, the request's budget); factors or a budget the account does not
/// know yet are fixed by this request.
fn append(file: &mut LedgerFile, request: &Request, factors: &str) {
    let entry = Entry {
        mode: request.mode,
        spec: request.spec.clone(),
        rho: request.rho,
        time: now_utc(),
        allow_differencing: request.allow_differencing,
    };
    let budget = match request.mode {
        PrivacyMode::DifferentialPrivacy => request.budget,
        PrivacyMode::KAnonymity => None,
    };
    let existing = file.periods.iter_mut().find(|account| {
        account.label == request.label && account.fingerprint == request.fingerprint
    });
    match existing {
        Some(account) => {
            if account.factors.is_empty() {
                factors.clone_into(&mut account.factors);
            }
            account.budget = account.budget.or(budget);
            account.releases.push(entry);
        }
        None => file.periods.push(Account {
            label: request.label.clone(),
            fingerprint: request.fingerprint.clone(),
            factors: factors.to_owned(),
            budget,
            releases: vec![entry],
        }),
    }
}

#[derive(Clone, Copy)]
enum LockMode {
    Shared,
    Exclusive,
}

/// A held lock on the sidecar file. Closing the file would release it too; unlocking
/// first makes the release explicit.
struct LockGuard(File);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Whether a parsed ledger makes sense: a wrong format tag, a duplicate account, a digest
/// that is not hex, a differentially private entry without a usable ρ or an entry without
/// a valid time would make the budget or the checks wrong, so the file counts as damaged.
fn is_consistent(file: &LedgerFile) -> bool {
    let mut accounts = BTreeSet::new();
    file.format == FORMAT
        && file.periods.iter().all(|account| {
            !account.label.is_empty()
                && is_lower_hex(&account.fingerprint)
                && is_lower_hex(&account.factors)
                && account.budget.is_none_or(is_positive)
                && accounts.insert((&account.label, &account.fingerprint))
                && account.releases.iter().all(|entry| {
                    let rho_ok = match entry.mode {
                        PrivacyMode::DifferentialPrivacy => entry.rho.is_some_and(is_positive),
                        PrivacyMode::KAnonymity => entry.rho.is_none(),
                    };
                    rho_ok && entry.time.parse::<jiff::Timestamp>().is_ok()
                })
        })
}

/// The top-level keys on which two specs differ, by name only: the values may be long
/// and say nothing a data protection officer needs. Specs that are not objects differ
/// as a whole.
fn differing_keys(earlier: &Value, asked: &Value) -> Vec<String> {
    if earlier == asked {
        return Vec::new();
    }
    match (earlier, asked) {
        (Value::Object(earlier), Value::Object(asked)) => earlier
            .keys()
            .chain(asked.keys())
            .filter(|key| earlier.get(*key) != asked.get(*key))
            .cloned()
            .collect(),
        _ => vec!["the whole spec".to_owned()],
    }
}

fn is_lower_hex(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_positive(value: f64) -> bool {
    value.is_finite() && value > 0.0
}

/// A ρ as people write it: at most nine decimals, trailing zeros dropped, so that a sum
/// such as ten times 0.1 reads `1` and not `0.9999999999999999`.
fn plain(value: f64) -> String {
    if value != 0.0 && value.abs() < 1e-9 {
        return format!("{value:e}");
    }
    let text = format!("{value:.9}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The current time, UTC, RFC 3339, in whole seconds (finer adds nothing for a reader).
fn now_utc() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

/// Makes the rename durable: without it, a crash right after could bring back the old
/// directory entry, and with it the old ledger.
#[cfg(unix)]
fn sync_directory(directory: &Path) -> io::Result<()> {
    File::open(directory)?.sync_all()
}

/// Elsewhere a directory cannot be opened as a file; the rename is what the system offers.
#[cfg(not(unix))]
fn sync_directory(_directory: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;

    const FINGERPRINT: &str = "0123456789abcdef";
    const FACTORS: &str = "facade";
    const WRITER_VARIABLE: &str = "CROWDTALLY_LEDGER_TEST_WRITER";

    fn dp(label: &str, rho: f64, budget: f64) -> Request {
        Request {
            label: label.to_owned(),
            fingerprint: FINGERPRINT.to_owned(),
            factors: Some(FACTORS.to_owned()),
            mode: PrivacyMode::DifferentialPrivacy,
            spec: json!({"bucket": "hour", "level": "municipality"}),
            rho: Some(rho),
            budget: Some(budget),
            allow_differencing: false,
        }
    }

    fn k_anonymity(spec: Value) -> Request {
        Request {
            label: "2026Q3".to_owned(),
            fingerprint: FINGERPRINT.to_owned(),
            factors: Some(FACTORS.to_owned()),
            mode: PrivacyMode::KAnonymity,
            spec,
            rho: None,
            budget: None,
            allow_differencing: false,
        }
    }

    fn spec() -> Value {
        json!({"bucket": "hour", "level": "municipality", "classes": ["resident"], "zones": ["a"]})
    }

    fn entries(ledger: &Ledger) -> usize {
        ledger
            .read()
            .unwrap()
            .periods
            .iter()
            .map(|account| account.releases.len())
            .sum()
    }

    fn close(value: f64, expected: f64) -> bool {
        (value - expected).abs() < 1e-9
    }

    fn message(error: &Error) -> String {
        error.to_string()
    }

    #[test]
    fn budget_allows_exact_splits_and_refuses_beyond() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path().join("ledger.json"));
        for i in 1..=4 {
            let recorded = ledger.record(&dp("2026Q3", 0.5, 2.0)).unwrap();
            assert_eq!(recorded.releases, i);
            assert!(close(recorded.spent, 0.5 * i as f64));
        }
        let before = fs::read(ledger.path()).unwrap();
        let refused = message(&ledger.record(&dp("2026Q3", 0.5, 2.0)).unwrap_err());
        assert!(
            refused.contains("spent 2, asked 0.5, budget 2"),
            "{refused}"
        );
        assert!(refused.contains(&ledger.path().display().to_string()));
        assert_eq!(fs::read(ledger.path()).unwrap(), before);
        assert_eq!(entries(&ledger), 4);
        assert!(ledger.check(&dp("2026Q3", 0.5, 2.0)).is_err());

        for _ in 0..10 {
            let recorded = ledger.record(&dp("2026Q4", 0.1, 1.0)).unwrap();
            assert!(recorded.remaining.unwrap() >= 0.0);
        }
        let refused = message(&ledger.record(&dp("2026Q4", 0.1, 1.0)).unwrap_err());
        assert!(
            refused.contains("spent 1, asked 0.1, budget 1"),
            "{refused}"
        );
        assert!(close(ledger.spent("2026Q4", FINGERPRINT).unwrap(), 1.0));
    }

    #[test]
    fn differential_privacy_needs_a_budget_and_a_positive_rho() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path().join("ledger.json"));
        let mut no_budget = dp("2026Q3", 0.5, 1.0);
        no_budget.budget = None;
        assert!(message(&ledger.record(&no_budget).unwrap_err()).contains("no default"));
        for rho in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(ledger.record(&dp("2026Q3", rho, 1.0)).is_err(), "rho {rho}");
        }
        let mut no_rho = dp("2026Q3", 0.5, 1.0);
        no_rho.rho = None;
        assert!(ledger.record(&no_rho).is_err());
        assert!(ledger.record(&dp("2026Q3", 0.5, f64::NAN)).is_err());
        assert!(!ledger.path().exists());
    }

    #[test]
    fn accounts_have_separate_budgets() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path().join("ledger.json"));
        ledger.record(&dp("2026Q3", 1.0, 1.0)).unwrap();
        assert!(ledger.record(&dp("2026Q3", 0.1, 1.0)).is_err());
        ledger.record(&dp("2026Q4", 1.0, 1.0)).unwrap();
        let mut other_data = dp("2026Q3", 1.0, 1.0);
        other_data.fingerprint = "ffff".to_owned();
        ledger.record(&other_data).unwrap();
        let file = ledger.read().unwrap();
        assert_eq!(file.format, FORMAT);
        assert_eq!(file.periods.len(), 3);
        assert!(close(ledger.spent("2026Q3", "ffff").unwrap(), 1.0));
        assert!(close(ledger.spent("2027Q1", FINGERPRINT).unwrap(), 0.0));
    }

    #[test]
    fn k_anonymity_refuses_another_cut_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path().join("ledger.json"));
        ledger.record(&k_anonymity(spec())).unwrap();
        ledger.record(&k_anonymity(spec())).unwrap();

        let mut other = spec();
        other["bucket"] = json!("day");
        other["zones"] = json!(["a", "b"]);
        let before = fs::read(ledger.path()).unwrap();
        let refused = message(&ledger.record(&k_anonymity(other.clone())).unwrap_err());
        assert!(refused.contains("differing: bucket, zones"), "{refused}");
        assert!(refused.contains("allow_differencing=True"));
        assert!(!refused.contains("day"), "values are not shown: {refused}");
        assert_eq!(fs::read(ledger.path()).unwrap(), before);

        // A dry run refuses the same way and, allowed, writes nothing.
        assert!(ledger.check(&k_anonymity(other.clone())).is_err());
        let mut allowed = k_anonymity(other);
        allowed.allow_differencing = true;
        let dry = ledger.check(&allowed).unwrap();
        assert_eq!(dry.releases, 3);
        assert_eq!(fs::read(ledger.path()).unwrap(), before);

        let recorded = ledger.record(&allowed).unwrap();
        assert!(recorded.allow_differencing);
        assert_eq!(recorded, dry);
        let file = ledger.read().unwrap();
        let last = file.periods[0].releases.last().unwrap();
        assert!(last.allow_differencing);
        assert_eq!(last.rho, None);
        assert!(last.time.ends_with('Z'));
        assert!(
            fs::read_to_string(ledger.path())
                .unwrap()
                .contains("\"k_anonymity\"")
        );

        // Either cut already released may be released again; a third one is refused,
        // naming every key on which it differs from any of them.
        ledger.record(&k_anonymity(spec())).unwrap();
        let mut third = spec();
        third["level"] = json!("province");
        let refused = message(&ledger.record(&k_anonymity(third)).unwrap_err());
        assert!(
            refused.contains("differing: bucket, level, zones"),
            "{refused}"
        );
        assert_eq!(entries(&ledger), 4);
    }

    #[test]
    fn dp_does_not_block_k_anonymity_by_spec() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path().join("ledger.json"));
        ledger.record(&dp("2026Q3", 0.5, 1.0)).unwrap();
        ledger.record(&k_anonymity(spec())).unwrap();
        let mut other = dp("2026Q3", 0.5, 1.0);
        other.spec = json!({"bucket": "day"});
        ledger.record(&other).unwrap();
        assert_eq!(entries(&ledger), 3);
    }

    #[test]
    fn check_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path().join("ledger.json"));
        let mut early = k_anonymity(spec());
        early.factors = None;
        assert_eq!(ledger.check(&early).unwrap().releases, 1);
        assert!(close(
            ledger.check(&dp("2026Q3", 0.5, 2.0)).unwrap().spent,
            0.5
        ));
        assert!(!ledger.path().exists());
        // Committing needs the factors.
        assert!(ledger.record(&early).is_err());
        assert!(!ledger.path().exists());
    }

    #[test]
    fn factors_are_fixed_by_the_first_release() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path().join("ledger.json"));
        ledger.record(&k_anonymity(spec())).unwrap();
        for mut request in [k_anonymity(spec()), dp("2026Q3", 0.1, 1.0)] {
            request.factors = Some("beef".to_owned());
            let refused = message(&ledger.record(&request).unwrap_err());
            assert!(
                refused.contains("other subscribers or roaming factors"),
                "{refused}"
            );
            assert!(ledger.check(&request).is_err());
            request.allow_differencing = true;
            assert!(ledger.record(&request).is_err());
        }
        // Factors in clear are not taken.
        let mut clear = k_anonymity(spec());
        clear.factors = Some("kortrijk=1.7".to_owned());
        assert!(ledger.record(&clear).is_err());
        assert_eq!(entries(&ledger), 1);
        assert!(!fs::read_to_string(ledger.path()).unwrap().contains("beef"));
    }

    #[test]
    fn a_damaged_ledger_is_an_error_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let valid = Ledger::new(dir.path().join("valid.json"));
        valid.record(&dp("2026Q3", 0.5, 2.0)).unwrap();
        valid.record(&k_anonymity(spec())).unwrap();
        let text = fs::read_to_string(valid.path()).unwrap();

        let cases = [
            ("empty", String::new()),
            ("truncated", text[..text.len() / 2].to_owned()),
            ("format", text.replace(FORMAT, "crowdtally-ledger/9")),
            ("unknown-top", text.replacen('{', "{\"surprise\": 1,", 1)),
            (
                "unknown-entry",
                text.replace(
                    "\"allow_differencing\"",
                    "\"surprise\": 1, \"allow_differencing\"",
                ),
            ),
            ("dp-without-rho", text.replacen("0.5", "null", 1)),
            ("not-json", "surprise".to_owned()),
        ];
        for (name, content) in cases {
            let ledger = Ledger::new(dir.path().join(format!("{name}.json")));
            fs::write(ledger.path(), &content).unwrap();
            let failures = [
                ledger.record(&dp("2026Q3", 0.1, 2.0)).map(drop),
                ledger.record(&k_anonymity(spec())).map(drop),
                ledger.check(&dp("2026Q3", 0.1, 2.0)).map(drop),
                ledger.read().map(drop),
                ledger.spent("2026Q3", FINGERPRINT).map(drop),
            ];
            for failure in failures {
                let refused = message(&failure.unwrap_err());
                assert!(
                    refused.contains(&ledger.path().display().to_string()),
                    "{name}"
                );
                assert!(refused.contains("damaged"), "{name}: {refused}");
                assert!(refused.contains("will not be reset"), "{name}: {refused}");
                assert!(!refused.contains("surprise"), "{name}: {refused}");
            }
            assert_eq!(
                fs::read_to_string(ledger.path()).unwrap(),
                content,
                "{name}"
            );
        }
    }

    #[test]
    fn threads_with_their_own_handles_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        std::thread::scope(|scope| {
            for thread in 0..8 {
                let path = path.clone();
                scope.spawn(move || {
                    let ledger = Ledger::new(path);
                    for i in 0..25 {
                        let mut request = dp("2026Q3", 0.01, 10.0);
                        request.spec = json!({"thread": thread, "i": i});
                        ledger.record(&request).unwrap();
                    }
                });
            }
        });
        let ledger = Ledger::new(&path);
        assert_eq!(entries(&ledger), 200);
        assert!(close(ledger.spent("2026Q3", FINGERPRINT).unwrap(), 2.0));
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["ledger.json", "ledger.json.lock"]);
    }

    /// The writer of [`two_processes_lose_nothing`], run in a second process; does nothing
    /// in an ordinary test run.
    #[test]
    fn second_process_ledger_writer() {
        let Some(path) = std::env::var_os(WRITER_VARIABLE) else {
            return;
        };
        let path = PathBuf::from(path);
        wait_for(&start_signal(&path));
        let ledger = Ledger::new(path);
        for i in 0..50 {
            let mut request = dp("2026Q3", 0.01, 10.0);
            request.spec = json!({"writer": "child", "i": i});
            ledger.record(&request).unwrap();
        }
    }

    #[test]
    fn two_processes_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["second_process_ledger_writer", "--test-threads=1"])
            .env(WRITER_VARIABLE, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Both writers start on the same signal, so their records interleave.
        fs::write(start_signal(&path), b"").unwrap();
        let ledger = Ledger::new(&path);
        for i in 0..50 {
            let mut request = dp("2026Q3", 0.01, 10.0);
            request.spec = json!({"writer": "parent", "i": i});
            ledger.record(&request).unwrap();
        }
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let file = ledger.read().unwrap();
        let releases = &file.periods[0].releases;
        assert_eq!(releases.len(), 100);
        let by_child = releases
            .iter()
            .filter(|entry| entry.spec["writer"] == "child")
            .count();
        assert_eq!(by_child, 50);
    }

    fn start_signal(path: &Path) -> PathBuf {
        path.with_extension("start")
    }

    fn wait_for(path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !path.exists() {
            assert!(Instant::now() < deadline, "no start signal");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_leftover_temporary_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path().join("ledger.json"));
        ledger.record(&dp("2026Q3", 0.5, 2.0)).unwrap();
        // What a crash between creating the temporary file and the rename leaves behind.
        let leftover = dir.path().join(".ledger.json.a1b2c3.tmp");
        fs::write(&leftover, "{\"format\": \"crowdtally-ledger/1\", \"peri").unwrap();
        assert_eq!(entries(&ledger), 1);
        ledger.record(&dp("2026Q3", 0.5, 2.0)).unwrap();
        assert_eq!(entries(&ledger), 2);
        assert!(close(ledger.spent("2026Q3", FINGERPRINT).unwrap(), 1.0));
        assert!(fs::read_to_string(&leftover).unwrap().ends_with("peri"));
    }

    #[test]
    fn numbers_read_plainly() {
        assert_eq!(plain(2.0), "2");
        assert_eq!(plain(0.5), "0.5");
        assert_eq!(plain(0.1 * 3.0), "0.3");
        assert_eq!(plain(0.0), "0");
        assert_eq!(plain(1e-12), "1e-12");
    }
}
