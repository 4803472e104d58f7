//! Test guest: writes 1 MiB each to stdout, stderr and the log import.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        use std::io::Write;
        let chunk = "flood ".repeat(1000);
        for _ in 0..175 {
            let _ = std::io::stdout().write_all(chunk.as_bytes());
            let _ = std::io::stderr().write_all(chunk.as_bytes());
            test_guests::log(test_guests::Level::Info, &chunk);
        }
        Ok(event)
    }
}

test_guests::export_trigger!(Guest);
