//! Test guest: spins forever.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let _ = event;
        #[allow(clippy::empty_loop)]
        loop {
            std::hint::black_box(());
        }
    }
}

test_guests::export_trigger!(Guest);
