//! The runtime's error type: one variant per outcome a caller must tell apart, each
//! mapped to exactly one Cognito Sync API error name.

use std::time::Duration;

/// Everything that can go wrong loading or invoking a trigger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The trigger ran past its wall-clock deadline (epoch interruption).
    #[error("trigger did not respond within its deadline of {} ms", .deadline.as_millis())]
    Timeout {
        /// The deadline it missed.
        deadline: Duration,
    },
    /// The trigger used up its fuel (deterministic instruction budget).
    #[error("trigger exceeded its fuel budget of {budget}")]
    OutOfFuel {
        /// The budget it had.
        budget: u64,
    },
    /// The trigger tried to grow its linear memory past the cap.
    #[error("trigger exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// The cap in bytes.
        limit: usize,
    },
    /// The trigger overflowed its wasm stack.
    #[error("trigger overflowed its stack of {limit} bytes")]
    StackOverflow {
        /// The max wasm stack in bytes.
        limit: usize,
    },
    /// The trigger panicked.
    #[error("trigger panicked: {message}")]
    Panic {
        /// The panic message, from the trigger's stderr.
        message: String,
    },
    /// The trigger trapped (e.g. `unreachable`, an out-of-bounds access).
    #[error("trigger trapped: {message}")]
    Trap {
        /// What trapped.
        message: String,
    },
    /// A host function the trigger called failed (e.g. it exhausted its resource table or
    /// asked for more random bytes than allowed).
    #[error("a host call of the trigger failed: {message}")]
    HostCallFailed {
        /// What failed.
        message: String,
    },
    /// The trigger called `exit`.
    #[error("trigger exited with status {code} instead of returning")]
    Exited {
        /// The exit status.
        code: i32,
    },
    /// The trigger's output is larger than the output cap.
    #[error("trigger's output is too large: {0}")]
    OutputTooLarge(String),
    /// The trigger's output breaks a rule of the Sync Trigger contract.
    #[error("{0}")]
    InvalidOutput(String),
    /// The trigger refused the update, with a reason for the client.
    #[error("update rejected by the sync trigger: {reason}")]
    Rejected {
        /// The trigger's reason.
        reason: String,
    },
    /// The pool's trigger is still being loaded (compiled) on this server.
    #[error("the identity pool's sync trigger is still being compiled on this server; retry")]
    TriggerNotReady,
    /// Too many invocations of this pool's trigger are already running.
    #[error("too many concurrent sync trigger invocations for this identity pool; retry")]
    Throttled,
    /// The component cannot be used as a trigger (not our world, forbidden imports,
    /// too large, not a component).
    #[error("{0}")]
    InvalidComponent(String),
    /// The event given to the trigger is not a valid sync event.
    #[error("invalid sync event: {0}")]
    InvalidEvent(String),
    /// A fault of the host, not of the trigger.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The Cognito Sync API error name (`__type`) this outcome is reported as.
    pub fn api_name(&self) -> &'static str {
        match self {
            Error::Timeout { .. } => "LambdaSocketTimeoutException",
            Error::OutOfFuel { .. }
            | Error::MemoryLimit { .. }
            | Error::StackOverflow { .. }
            | Error::Panic { .. }
            | Error::Trap { .. }
            | Error::HostCallFailed { .. }
            | Error::Exited { .. }
            | Error::OutputTooLarge(_)
            | Error::InvalidOutput(_) => "InvalidLambdaFunctionOutputException",
            Error::Rejected { .. } | Error::InvalidEvent(_) => "InvalidParameterException",
            Error::Throttled | Error::TriggerNotReady => "LambdaThrottledException",
            Error::InvalidComponent(_) => "InvalidConfigurationException",
            Error::Internal(_) => "InternalErrorException",
        }
    }

    /// The HTTP status the API answers this outcome with.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Throttled | Error::TriggerNotReady => 429,
            Error::Internal(_) => 500,
            _ => 400,
        }
    }

    /// A short stable label for metrics (`timeout`, `out_of_fuel`, …).
    pub fn outcome(&self) -> &'static str {
        match self {
            Error::Timeout { .. } => "timeout",
            Error::OutOfFuel { .. } => "out_of_fuel",
            Error::MemoryLimit { .. } => "memory_limit",
            Error::StackOverflow { .. } => "stack_overflow",
            Error::Panic { .. } => "panic",
            Error::Trap { .. } => "trap",
            Error::HostCallFailed { .. } => "host_call_failed",
            Error::Exited { .. } => "exited",
            Error::OutputTooLarge(_) => "output_too_large",
            Error::InvalidOutput(_) => "invalid_output",
            Error::Rejected { .. } => "rejected",
            Error::Throttled => "throttled",
            Error::TriggerNotReady => "not_ready",
            Error::InvalidComponent(_) => "invalid_component",
            Error::InvalidEvent(_) => "invalid_event",
            Error::Internal(_) => "internal",
        }
    }

    /// The error as the API's JSON body: `{"__type": ..., "message": ...}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "__type": self.api_name(), "message": self.to_string() })
    }
}
