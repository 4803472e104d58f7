//! What the store keeps of recorded trigger invocations: a function's recording settings
//! (off unless its tenant turns them on), and the last invocations of it with everything
//! needed to run them again bit for bit — the event it was given, the response it gave
//! (or its error), its randomness seed and frozen clock — plus, when a shadow version
//! runs beside it, what that version answered on the same input.
//!
//! Recordings hold users' data, so they are bounded (a count and an age per function),
//! visible only to the function's tenant, deleted when recording is turned off, with their
//! pool, or on request, and never exported.

use serde::Serialize;

/// Most invocations a function keeps recorded.
pub const MAX_RECORDINGS: i64 = 1_000;
/// The longest a recording is kept, in seconds (30 days).
pub const MAX_RECORDING_AGE_SECS: i64 = 30 * 86_400;
/// How long a recording is kept unless its tenant says otherwise (7 days).
pub const DEFAULT_RECORDING_AGE_SECS: i64 = 7 * 86_400;

/// A function's recording settings; a function without them records nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingSettings {
    /// The most recordings kept: older ones are dropped as new ones come (1 to 1,000).
    pub max_count: i64,
    /// The oldest a recording may be, in seconds (60 to 30 days).
    pub max_age_secs: i64,
    /// A version run beside every recorded invocation on the same input and entropy, its
    /// answer kept with the recording and otherwise discarded.
    pub shadow_version: Option<i64>,
}

/// One recorded invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    /// Its id, increasing (0 before it is stored).
    pub id: i64,
    /// When it ran (epoch milliseconds).
    pub at_ms: i64,
    /// The pool, identity and dataset it ran for.
    pub pool: String,
    pub identity: String,
    pub dataset: String,
    /// The version that ran.
    pub version: i64,
    /// `ok` or the error outcome.
    pub outcome: String,
    /// The event given (JSON).
    pub input: String,
    /// The validated response (JSON), when it gave one.
    pub output: Option<String>,
    /// Its error as the API answered it (`{"name", "message"}` JSON), when it failed.
    pub error: Option<String>,
    /// The invocation's randomness seed (hex, 32 bytes) and frozen clock.
    pub seed: String,
    pub clock_secs: i64,
    pub wall_us: i64,
    pub fuel: i64,
    /// The shadow version's run on the same input, if one ran.
    pub shadow: Option<ShadowRun>,
}

/// A shadow version's run beside a recorded invocation: its result was discarded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShadowRun {
    pub version: i64,
    pub outcome: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub wall_us: i64,
    pub fuel: i64,
}

/// Why recording settings were not changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordingRefused {
    /// The function has no version.
    NoFunction,
    /// The shadow version does not exist.
    NoShadowVersion(i64),
}
