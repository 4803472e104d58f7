//! Test guest: calls the log import forever.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let _ = event;
        loop {
            test_guests::log(test_guests::Level::Debug, "again");
        }
    }
}

test_guests::export_trigger!(Guest);
