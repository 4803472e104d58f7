//! Test guest: returns no records at all.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let mut event = event;
        event.records.clear();
        Ok(event)
    }
}

test_guests::export_trigger!(Guest);
