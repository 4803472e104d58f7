//! What the store keeps of trigger releases: aliases (named pointers to a function's
//! versions, optionally sending a share of invocations to a second version), rollouts
//! that promote or roll back that second version by themselves, the figures each version
//! earns behind an alias, and the decisions rollouts made.
//!
//! An alias's `epoch` counts its changes: figures are kept per epoch, so a rollout is
//! judged on what happened since it began, and a decision applies only to the epoch it
//! judged (two nodes judging at once cannot both decide).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which version of a function a SyncTrigger mapping selects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Qualifier {
    /// The latest version (an unqualified name, or Lambda's `$LATEST`).
    Latest,
    /// A version number.
    Version(i64),
    /// An alias.
    Alias(String),
}

/// A share of an alias's invocations sent to a second version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    /// The second version.
    pub version: i64,
    /// Its share, in basis points (1 to 5,000: at most half).
    pub weight_bp: i64,
}

/// The most of an alias's invocations a second version may take, in basis points.
pub const MAX_WEIGHT_BP: i64 = 5_000;

/// A rollout's rules: when the second version is promoted, and when it is rolled back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSettings {
    /// Promote once the candidate has run this many times.
    pub promote_after_invocations: Option<i64>,
    /// Promote once this many seconds have passed (and it has run `min_invocations`).
    pub promote_after_seconds: Option<i64>,
    /// Roll back when the candidate's error+timeout rate exceeds the primary's by more than
    /// this, in basis points.
    pub error_margin_bp: i64,
    /// Also roll back when its reject rate exceeds the primary's by more than this.
    pub reject_margin_bp: Option<i64>,
    /// Nothing is judged before the candidate has run this many times.
    pub min_invocations: i64,
}

/// An alias of a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    /// The alias's name (`live`, `beta`, …).
    pub alias: String,
    /// The function it belongs to.
    pub function: String,
    /// The version it points to (the primary).
    pub version: i64,
    /// A share sent to a second version, if any.
    pub routing: Option<Routing>,
    /// The rollout in progress, if any (then `routing` is its candidate).
    pub rollout: Option<RolloutSettings>,
    /// Its changes so far: figures and decisions are per epoch.
    pub epoch: i64,
    /// When the current epoch began (seconds since the epoch).
    pub epoch_started: i64,
    pub description: String,
    pub created: i64,
    pub modified: i64,
}

/// What an alias should become.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasChange {
    pub version: i64,
    pub routing: Option<Routing>,
    pub rollout: Option<RolloutSettings>,
    pub description: String,
}

/// Whether a put may create the alias, replace it, or either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutMode {
    Create,
    Update,
}

/// Why an alias change was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AliasRefused {
    /// The function has no such version.
    NoVersion(i64),
    /// Create: the alias exists already.
    Exists,
    /// Update or delete: there is no such alias.
    Missing,
    /// The function has as many aliases as it may.
    TooMany,
    /// Delete: a pool's SyncTrigger names it.
    InUse { pool: String },
    /// The change was asked for the alias as of an epoch it has moved past.
    Changed { epoch: i64 },
}

/// The most aliases one function may have.
pub const MAX_ALIASES_PER_FUNCTION: i64 = 100;

/// A function version a sync may run: its number and its component's digest.
pub use crate::FunctionHead as Head;

/// What a SyncTrigger mapping resolves to now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The version that serves invocations not routed elsewhere.
    pub primary: Head,
    /// Through an alias: its name, epoch and second version.
    pub alias: Option<AliasRoute>,
    /// The function's recording settings, if it records.
    pub recording: Option<crate::RecordingSettings>,
}

/// The alias a mapping went through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasRoute {
    pub alias: String,
    pub epoch: i64,
    /// The second version and its share in basis points.
    pub candidate: Option<(Head, i64)>,
}

/// How a version's invocations ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    pub ok: i64,
    /// The trigger refused the update on purpose (`LambdaRejectedException`).
    pub rejected: i64,
    /// It failed: a trap, out of fuel or memory, an invalid answer, a failed load.
    pub error: i64,
    /// It ran past its deadline.
    pub timeout: i64,
}

impl Outcomes {
    pub fn total(&self) -> i64 {
        self.ok + self.rejected + self.error + self.timeout
    }

    pub fn add(&mut self, other: &Outcomes) {
        self.ok += other.ok;
        self.rejected += other.rejected;
        self.error += other.error;
        self.timeout += other.timeout;
    }
}

/// Counts of values in log-scale buckets, four per doubling: bucket `b` holds the values
/// `v` with `floor(4 · log2(v + 1)) = b`, so a quantile read from it is within 19% of
/// the truth, and a histogram is at most a few dozen numbers whatever it counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    pub buckets: BTreeMap<i64, i64>,
}

impl Histogram {
    pub fn bucket(value: u64) -> i64 {
        ((value as f64 + 1.0).log2() * 4.0).floor() as i64
    }

    /// The largest value bucket `b` holds.
    pub fn upper(bucket: i64) -> u64 {
        // v + 1 < 2^((b + 1) / 4): the largest such integer v.
        (((bucket as f64 + 1.0) / 4.0).exp2().ceil() as u64).saturating_sub(2)
    }

    pub fn record(&mut self, value: u64) {
        *self.buckets.entry(Self::bucket(value)).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (b, n) in &other.buckets {
            *self.buckets.entry(*b).or_default() += n;
        }
    }

    pub fn count(&self) -> i64 {
        self.buckets.values().sum()
    }

    /// The `q` quantile (0 to 1), as its bucket's largest value; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as i64).max(1);
        let mut seen = 0;
        for (b, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some(Self::upper(*b));
            }
        }
        self.buckets.keys().next_back().map(|b| Self::upper(*b))
    }
}

/// What one version earned behind an alias in one epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionFigures {
    pub version: i64,
    pub outcomes: Outcomes,
    /// Wall time of each invocation, microseconds.
    pub wall_us: Histogram,
    /// Fuel each invocation consumed.
    pub fuel: Histogram,
}

impl VersionFigures {
    pub fn merge(&mut self, other: &VersionFigures) {
        self.outcomes.add(&other.outcomes);
        self.wall_us.merge(&other.wall_us);
        self.fuel.merge(&other.fuel);
    }
}

/// Figures to add to an alias's epoch (a node's invocations since its last flush).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiguresDelta {
    pub tenant: String,
    pub function: String,
    pub alias: String,
    pub epoch: i64,
    pub figures: VersionFigures,
}

/// What a rollout ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The candidate becomes the alias's version.
    Promote,
    /// The candidate is dropped; the primary serves everything again.
    RollBack,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Promote => "promoted",
            Verdict::RollBack => "rolled back",
        }
    }
}

/// A decision a rollout made, with the figures it was made on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub at: i64,
    pub alias: String,
    pub epoch: i64,
    /// `promoted` or `rolled back`.
    pub decision: String,
    pub primary: i64,
    pub candidate: i64,
    pub reason: String,
    /// The figures judged, as JSON (the server's shape, kept as it was shown).
    pub figures: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        assert_eq!(Histogram::bucket(0), 0);
        assert_eq!(Histogram::bucket(1), 4);
        for v in [0u64, 1, 2, 3, 7, 100, 1_000, 123_456, 5_000_000, u32::MAX as u64] {
            let b = Histogram::bucket(v);
            assert!(Histogram::upper(b) >= v, "{v} in bucket {b} whose upper is {}", Histogram::upper(b));
            assert!(b == 0 || Histogram::upper(b - 1) < v, "{v}: bucket {b} is not the first that holds it");
        }
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=100u64 {
            h.record(v * 10);
        }
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!((500..=600).contains(&p50), "{p50}");
        assert!((990..=1_200).contains(&p99), "{p99}");
        let mut twice = h.clone();
        twice.merge(&h);
        assert_eq!(twice.count(), 200);
        assert_eq!(twice.quantile(0.5), h.quantile(0.5));
    }
}
