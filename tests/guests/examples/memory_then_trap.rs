//! Test guest: is refused memory, copes with it, then traps for an unrelated reason (an
//! out-of-bounds read): the outcome is the trap, not the memory limit.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let mut v: Vec<u8> = Vec::new();
        // black_box: an allocation nobody uses may be optimised away.
        let refused = std::hint::black_box(&mut v).try_reserve(1 << 30).is_err();
        std::hint::black_box(&v);
        test_guests::log(test_guests::Level::Info, &format!("1 GiB refused: {refused}"));
        // Far past the end of a 64 MiB memory.
        let value = unsafe { std::ptr::read_volatile(0xFFFF_FFF0usize as *const u64) };
        test_guests::with_result(event, value)
    }
}

test_guests::export_trigger!(Guest);
