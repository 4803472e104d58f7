//! One Sync Trigger step end to end: invoke the trigger in the sandbox, then validate
//! and merge its response. Shared by `synctrig-wasm run` and `serve`.

use crate::error::Error;
use crate::event::SyncEvent;
use crate::merge::{self, Dataset, Write};
use crate::sandbox::{Entropy, Runtime, Stats, Trigger};

/// A trigger's accepted response and the writes it implies.
#[derive(Debug)]
pub struct Applied {
    /// The trigger's response, validated.
    pub response: SyncEvent,
    /// The records to write, one per record whose value changes.
    pub writes: Vec<Write>,
}

/// The outcome of a trigger step, with its stats and log.
#[derive(Debug)]
pub struct Outcome {
    /// The validated result, or the error that stops the update.
    pub result: Result<Applied, Error>,
    /// Figures for the invocation.
    pub stats: Stats,
    /// The trigger's bounded log.
    pub log: String,
    /// The invocation's randomness and clock: given again, it does exactly the same.
    pub entropy: Entropy,
}

/// Runs `trigger` on `input` (built from `stored` plus the user's patches) and merges
/// the response into `stored`.
pub fn run_trigger(runtime: &Runtime, trigger: &Trigger, stored: &Dataset, input: &SyncEvent) -> Outcome {
    run_trigger_with(runtime, trigger, stored, input, Entropy::fresh())
}

/// [`run_trigger`] with given randomness and clock (a recorded invocation's, to replay it).
pub fn run_trigger_with(
    runtime: &Runtime,
    trigger: &Trigger,
    stored: &Dataset,
    input: &SyncEvent,
    entropy: Entropy,
) -> Outcome {
    let invocation = runtime.invoke_with(trigger, input, entropy);
    let result = invocation.result.and_then(|response| {
        let writes = merge::merge(stored, input, &response).map_err(|e| Error::InvalidOutput(e.0))?;
        Ok(Applied { response, writes })
    });
    Outcome { result, stats: invocation.stats, log: invocation.log, entropy: invocation.entropy }
}

/// The stored dataset an event describes: every record with an `oldValue`.
pub fn stored_from_event(event: &SyncEvent) -> Dataset {
    event.dataset_records.iter().filter_map(|r| Some((r.key.clone(), r.old_value.clone()?))).collect()
}
