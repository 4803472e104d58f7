//! Test guest: tries to read a host file.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        test_guests::with_result(event, text.len() as u64)
    }
}

test_guests::export_trigger!(Guest);
