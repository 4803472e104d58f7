//! Test guest: returns no records at all.

use test_guests::{Op, SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let _ = Op::Replace;
        let mut event = event;
        event.records.clear();
        Ok(event)
    }
}

/// Returns the event with one record `result` = `value`.
#[allow(dead_code)]
fn event_with_result(mut event: SyncEvent, value: u64) -> Result<SyncEvent, TriggerError> {
    event.records.push(test_guests::added("result", &value.to_string()));
    Ok(event)
}

#[allow(dead_code)]
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let buf = std::hint::black_box([n; 64]);
    if n == 0 { buf[0] } else { recurse(std::hint::black_box(n + 1)) + buf[3] }
}

test_guests::export_trigger!(Guest);
