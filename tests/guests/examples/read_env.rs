//! Test guest: reports how many environment variables and arguments it sees.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let n = std::env::vars().count() + std::env::args().count();
        test_guests::with_result(event, n as u64)
    }
}

test_guests::export_trigger!(Guest);
