//! Test guest: returns 5 MiB of values, over the output cap.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let mut event = event;
        for i in 0..5 {
            event.records.push(test_guests::added(&format!("big{i}"), &"x".repeat(1 << 20)));
        }
        Ok(event)
    }
}

test_guests::export_trigger!(Guest);
