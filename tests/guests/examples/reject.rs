//! Test guest: rejects every update with a reason.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let _ = event;
        Err(TriggerError::Reject("level may not go down".into()))
    }
}

test_guests::export_trigger!(Guest);
