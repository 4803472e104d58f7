//! Test guest: reports what WASI's random interfaces and wall clock give it.

use test_guests::{SyncEvent, TriggerError};

struct Guest;

impl test_guests::Guest for Guest {
    fn handle(mut event: SyncEvent) -> Result<SyncEvent, TriggerError> {
        let secure = wasip2::random::random::get_random_u64();
        let insecure = wasip2::random::insecure::get_insecure_random_u64();
        let (seed_lo, seed_hi) = wasip2::random::insecure_seed::insecure_seed();
        let clock = wasip2::clocks::wall_clock::now().seconds;
        for (key, value) in [
            ("secure", secure.to_string()),
            ("insecure", insecure.to_string()),
            ("seed", format!("{seed_lo}:{seed_hi}")),
            ("clock", clock.to_string()),
        ] {
            event.records.push(test_guests::added(key, &value));
        }
        Ok(event)
    }
}

test_guests::export_trigger!(Guest);
