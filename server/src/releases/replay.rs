//! Replay: a candidate (a deployed version, or code not yet deployed) run on recorded
//! invocations with their recorded randomness and clock, so that what differs is the
//! code; and the comparison of each run with what was recorded — the same result,
//! different records (a per-record diff), now rejects, now fails, now succeeds — with the
//! fuel and time it took. A shadow version's runs beside live traffic are compared the
//! same way. Nothing here writes a dataset: a replayed response is compared and dropped.

use crate::wire::{
    RecordDiff, RecordState, ReplayError, ReplayReport, ReplayResult, ReplaySummary, ReplayedInvocation,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use synctrig_runtime::SyncEvent;
use synctrig_runtime::invoker::Invoker;
use synctrig_runtime::pipeline::stored_from_event;
use synctrig_runtime::sandbox::{Entropy, Trigger};
use synctrig_store::Recording;

/// Most invocations whose record diffs a report shows (every one is counted).
pub const MAX_DIFFS_SHOWN: usize = 100;

/// A run's answer, as recorded or as replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// `ok` or the error outcome (`rejected`, `timeout`, `trap`, …).
    pub outcome: String,
    /// The validated response (JSON), when it gave one.
    pub output: Option<String>,
    /// Its error as the API answers it (`{"__type", "message"}` JSON), when it failed.
    pub error: Option<String>,
    pub wall_us: i64,
    pub fuel: i64,
}

impl Answer {
    /// A pipeline outcome as an answer.
    pub fn of(outcome: &synctrig_runtime::pipeline::Outcome) -> Answer {
        let (label, output, error) = match &outcome.result {
            Ok(applied) => ("ok", Some(applied.response.to_json()), None),
            Err(e) => (e.outcome(), None, Some(e.to_json().to_string())),
        };
        Answer {
            outcome: label.to_owned(),
            output,
            error,
            wall_us: outcome.stats.wall_us as i64,
            fuel: outcome.stats.fuel_consumed as i64,
        }
    }

    /// What a recording says its invocation answered.
    pub fn recorded(r: &Recording) -> Answer {
        Answer {
            outcome: r.outcome.clone(),
            output: r.output.clone(),
            error: r.error.clone(),
            wall_us: r.wall_us,
            fuel: r.fuel,
        }
    }
}

/// A recording's entropy, as it ran.
pub fn entropy_of(r: &Recording) -> Option<Entropy> {
    let seed: [u8; 32] = hex::decode(&r.seed).ok()?.try_into().ok()?;
    Some(Entropy { seed, clock_secs: u64::try_from(r.clock_secs).ok()? })
}

/// The entropy as a recording keeps it: the seed in hex, the clock.
pub fn entropy_columns(e: &Entropy) -> (String, i64) {
    (hex::encode(e.seed), i64::try_from(e.clock_secs).unwrap_or(i64::MAX))
}

/// The records of a response, by key: (op, new value).
fn records(output: &str) -> Option<BTreeMap<String, RecordState>> {
    let event = SyncEvent::from_json(output.as_bytes()).ok()?;
    Some(event.dataset_records.into_iter().map(|r| (r.key, RecordState { op: r.op, new_value: r.new_value })).collect())
}

/// The records whose op or new value differ between two responses, by key.
pub fn diff(recorded: &str, replayed: &str) -> Vec<RecordDiff> {
    let (Some(before), Some(after)) = (records(recorded), records(replayed)) else {
        return Vec::new();
    };
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| RecordDiff { key: k.clone(), recorded: before.get(k).cloned(), replayed: after.get(k).cloned() })
        .collect()
}

/// An error as a run keeps it (`{"__type", "message"}` JSON), as the API shows it.
pub fn error_of(error: Option<&str>) -> Option<ReplayError> {
    let json: serde_json::Value = serde_json::from_str(error?).ok()?;
    Some(ReplayError {
        name: json.get("__type")?.as_str()?.to_owned(),
        message: json.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_owned(),
    })
}

/// How a run compares with the recorded one.
pub fn compare(id: i64, recorded_version: i64, recorded: &Answer, now: &Answer) -> ReplayedInvocation {
    let mut changed = Vec::new();
    let result = match (recorded.outcome.as_str(), now.outcome.as_str()) {
        ("ok", "ok") => {
            let (before, after) = (recorded.output.as_deref().unwrap_or(""), now.output.as_deref().unwrap_or(""));
            // Byte-equal responses are the same; otherwise the records say how they differ
            // (two encodings of equal records are the same too).
            changed = if before == after { Vec::new() } else { diff(before, after) };
            if changed.is_empty() && (before == after || records(before) == records(after)) {
                ReplayResult::Same
            } else {
                ReplayResult::Different
            }
        }
        (was, is) if was == is && recorded.error == now.error => ReplayResult::Same,
        // The same outcome with another message (a rejection for another reason).
        (was, is) if was == is => ReplayResult::Different,
        (_, "ok") => ReplayResult::NowSucceeds,
        (_, "rejected") => ReplayResult::NowRejects,
        _ => ReplayResult::NowFails,
    };
    ReplayedInvocation {
        recording_id: id,
        recorded_version,
        result,
        recorded_outcome: recorded.outcome.clone(),
        outcome: now.outcome.clone(),
        fuel_delta: now.fuel - recorded.fuel,
        wall_micros_delta: now.wall_us - recorded.wall_us,
        error: if now.outcome == "ok" { None } else { error_of(now.error.as_deref()) },
        diff: changed,
    }
}

/// The report on a set of compared runs; `skipped` were not run (the time budget ran out).
pub fn report(function: &str, candidate: String, mut runs: Vec<ReplayedInvocation>, skipped: usize) -> ReplayReport {
    let mut s = ReplaySummary { replayed: runs.len(), skipped, ..Default::default() };
    for r in &runs {
        match r.result {
            ReplayResult::Same => s.same += 1,
            ReplayResult::Different => s.different += 1,
            ReplayResult::NowRejects => s.now_rejects += 1,
            ReplayResult::NowFails => s.now_fails += 1,
            ReplayResult::NowSucceeds => s.now_succeeds += 1,
        }
        s.fuel_delta += r.fuel_delta;
        s.wall_micros_delta += r.wall_micros_delta;
    }
    let mut shown = 0;
    for r in &mut runs {
        if !r.diff.is_empty() {
            shown += 1;
            if shown > MAX_DIFFS_SHOWN {
                r.diff.clear();
                s.diffs_not_shown += 1;
            }
        }
    }
    ReplayReport { function_name: function.to_owned(), candidate, summary: s, invocations: runs }
}

/// Runs `trigger` on each recording with its entropy, through `queue`'s share of the
/// invoker (at most `parallel` at once), until `budget` has passed; the runs, oldest
/// recording first, and how many were not run.
pub async fn run(
    invoker: &Invoker,
    queue: &str,
    trigger: &Trigger,
    recordings: &[Recording],
    parallel: usize,
    budget: Duration,
) -> (Vec<ReplayedInvocation>, usize) {
    use futures_util::StreamExt;
    let deadline = Instant::now() + budget;
    let one = |r: &Recording| {
        let (trigger, input) = (trigger.clone(), SyncEvent::from_json(r.input.as_bytes()));
        let entropy = entropy_of(r);
        let recorded = Answer::recorded(r);
        let (id, version) = (r.id, r.version);
        async move {
            let (Ok(input), Some(entropy)) = (input, entropy) else {
                let broken =
                    Answer { outcome: "invalid_recording".into(), output: None, error: None, wall_us: 0, fuel: 0 };
                return Some(compare(id, version, &recorded, &broken));
            };
            let reservation = loop {
                if Instant::now() >= deadline {
                    return None;
                }
                match invoker.reserve(queue).await {
                    Ok(r) => break r,
                    // The queue's share is taken (by this tenant's own work): wait a turn.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            let stored = stored_from_event(&input);
            let outcome = reservation.run_with(trigger, stored, input, entropy).await;
            Some(compare(id, version, &recorded, &Answer::of(&outcome)))
        }
    };
    let results: Vec<Option<ReplayedInvocation>> =
        futures_util::stream::iter(recordings.iter().map(one)).buffered(parallel.max(1)).collect().await;
    let skipped = results.iter().filter(|r| r.is_none()).count();
    (results.into_iter().flatten().collect(), skipped)
}

/// The shadow report: each recording with a shadow run, compared with what went live.
pub fn shadow_report(function: &str, recordings: &[Recording]) -> ReplayReport {
    let mut versions = std::collections::BTreeSet::new();
    let runs = recordings
        .iter()
        .filter_map(|r| {
            let s = r.shadow.as_ref()?;
            versions.insert(s.version);
            let shadow = Answer {
                outcome: s.outcome.clone(),
                output: s.output.clone(),
                error: s.error.clone(),
                wall_us: s.wall_us,
                fuel: s.fuel,
            };
            Some(compare(r.id, r.version, &Answer::recorded(r), &shadow))
        })
        .collect();
    let candidate = versions.iter().map(|v| format!("version {v}")).collect::<Vec<_>>().join(", ");
    report(function, format!("shadow: {candidate}"), runs, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use synctrig_runtime::event::Op;

    fn answer(outcome: &str, output: Option<&str>) -> Answer {
        Answer { outcome: outcome.into(), output: output.map(Into::into), error: None, wall_us: 10, fuel: 100 }
    }

    fn event(records: &str) -> String {
        format!(
            r#"{{"version":2,"eventType":"SyncTrigger","region":"us-east-1","identityPoolId":"p","identityId":"i",
            "datasetName":"d","datasetRecords":{{{records}}}}}"#
        )
    }

    #[test]
    fn equal_responses_are_the_same_and_changed_records_are_listed_by_key() {
        let a = event(r#""k1":{"newValue":"1","op":"replace"},"k2":{"newValue":"2","op":"replace"}"#);
        let b = event(
            r#""k1":{"newValue":"1","op":"replace"},"k2":{"newValue":null,"op":"remove"},"k3":{"newValue":"3","op":"replace"}"#,
        );
        let same = compare(1, 1, &answer("ok", Some(&a)), &answer("ok", Some(&a)));
        assert_eq!((same.result, same.diff.len()), (ReplayResult::Same, 0));
        let different = compare(2, 1, &answer("ok", Some(&a)), &answer("ok", Some(&b)));
        assert_eq!(different.result, ReplayResult::Different);
        assert_eq!(
            different.diff,
            vec![
                RecordDiff {
                    key: "k2".into(),
                    recorded: Some(RecordState { op: Op::Replace, new_value: Some("2".into()) }),
                    replayed: Some(RecordState { op: Op::Remove, new_value: None }),
                },
                RecordDiff {
                    key: "k3".into(),
                    recorded: None,
                    replayed: Some(RecordState { op: Op::Replace, new_value: Some("3".into()) }),
                },
            ]
        );
    }

    #[test]
    fn outcomes_are_classed_from_the_recorded_to_the_new() {
        let ok = answer("ok", Some(&event("")));
        let class = |a: &Answer, b: &Answer| compare(1, 1, a, b).result;
        assert_eq!(class(&ok, &answer("rejected", None)), ReplayResult::NowRejects);
        assert_eq!(class(&ok, &answer("timeout", None)), ReplayResult::NowFails);
        assert_eq!(class(&answer("trap", None), &ok), ReplayResult::NowSucceeds);
        assert_eq!(class(&answer("rejected", None), &answer("rejected", None)), ReplayResult::Same);
        let mut other = answer("rejected", None);
        other.error = Some(r#"{"__type":"InvalidParameterException","message":"no"}"#.into());
        assert_eq!(class(&answer("rejected", None), &other), ReplayResult::Different);
        assert_eq!(class(&answer("rejected", None), &answer("trap", None)), ReplayResult::NowFails);
        let mut slower = ok.clone();
        (slower.fuel, slower.wall_us) = (150, 7);
        let run = compare(1, 1, &ok, &slower);
        assert_eq!((run.fuel_delta, run.wall_micros_delta), (50, -3));
    }

    #[test]
    fn a_report_counts_every_run_and_shows_a_bounded_number_of_diffs() {
        let (a, b) = (event(r#""k":{"newValue":"1","op":"replace"}"#), event(r#""k":{"newValue":"2","op":"replace"}"#));
        let runs: Vec<_> = (0..MAX_DIFFS_SHOWN as i64 + 5)
            .map(|i| compare(i, 1, &answer("ok", Some(&a)), &answer("ok", Some(&b))))
            .chain([compare(999, 1, &answer("ok", Some(&a)), &answer("ok", Some(&a)))])
            .collect();
        let r = report("f", "version 2".into(), runs, 3);
        assert_eq!(
            (r.summary.replayed, r.summary.different, r.summary.same),
            (MAX_DIFFS_SHOWN + 6, MAX_DIFFS_SHOWN + 5, 1)
        );
        assert_eq!((r.summary.diffs_not_shown, r.summary.skipped), (5, 3));
        assert_eq!(r.invocations.iter().filter(|i| !i.diff.is_empty()).count(), MAX_DIFFS_SHOWN);
    }
}
