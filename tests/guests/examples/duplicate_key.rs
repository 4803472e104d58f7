//! Test guest: returns the first record twice.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let mut event = event;
        if let Some(first) = event.records.first().cloned() {
            event.records.push(first);
        }
        Ok(event)
    }
}

test_guests::export_trigger!(Guest);
