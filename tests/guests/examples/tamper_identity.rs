//! Test guest: changes the read-only identityId.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let mut event = event;
        event.identity_id.push_str("-evil");
        Ok(event)
    }
}

test_guests::export_trigger!(Guest);
