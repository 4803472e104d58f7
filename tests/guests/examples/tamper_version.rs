//! Test guest: changes the read-only version.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let mut event = event;
        event.version = 3;
        Ok(event)
    }
}

test_guests::export_trigger!(Guest);
