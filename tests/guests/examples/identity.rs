//! Test guest: returns the event unchanged.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        Ok(event)
    }
}

test_guests::export_trigger!(Guest);
