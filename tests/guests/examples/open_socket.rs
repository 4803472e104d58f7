//! Test guest: tries to connect to a TCP port.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let ok = std::net::TcpStream::connect("127.0.0.1:1").is_ok();
        test_guests::with_result(event, ok as u64)
    }
}

test_guests::export_trigger!(Guest);
