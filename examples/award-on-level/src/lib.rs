//! "Issue an award when a player reaches a new level" (from the Sync Trigger docs).
//!
//! When the user raises `level`, the trigger adds `award:level-N` for every level
//! reached that has no award yet and updates `awards` (a count). A lowered or
//! non-numeric level is left alone.

use synctrig_guest::{Rejection, SyncEvent};

fn level(value: Option<&str>) -> Option<u32> {
    value?.trim().parse().ok()
}

/// Grants the awards for the levels the player just reached.
pub fn handle(mut event: SyncEvent) -> Result<SyncEvent, Rejection> {
    let Some(record) = event.get("level").filter(|r| r.is_changed()) else {
        return Ok(event);
    };
    let (Some(new), old) = (level(record.value()), level(record.old_value()).unwrap_or(0)) else {
        synctrig_guest::warn!("level {:?} is not a number; no award", record.value());
        return Ok(event);
    };
    let mut granted = 0;
    for reached in old + 1..=new {
        if event.add(&format!("award:level-{reached}"), format!("Reached level {reached}")) {
            granted += 1;
        }
    }
    if granted > 0 {
        let total = event.records().filter(|(k, r)| k.starts_with("award:level-") && r.value().is_some()).count();
        event.replace("awards", total.to_string());
        synctrig_guest::info!("granted {granted} award(s) for reaching level {new}");
    }
    Ok(event)
}

synctrig_guest::trigger!(handle);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaching_a_new_level_grants_its_award() {
        let event = SyncEvent::builder("us-east-1:p", "us-east-1:i", "game")
            .changed("level", Some("1"), "3")
            .stored("award:level-1", "Reached level 1")
            .build();
        let out = handle(event).unwrap();
        assert_eq!(out.value("award:level-2"), Some("Reached level 2"));
        assert_eq!(out.value("award:level-3"), Some("Reached level 3"));
        assert_eq!(out.value("awards"), Some("3"));
    }

    #[test]
    fn first_level_from_nothing() {
        let event = SyncEvent::builder("us-east-1:p", "us-east-1:i", "game").changed("level", None, "1").build();
        let out = handle(event).unwrap();
        assert_eq!(out.value("award:level-1"), Some("Reached level 1"));
        assert_eq!(out.value("awards"), Some("1"));
    }

    #[test]
    fn unchanged_lowered_or_garbage_levels_grant_nothing() {
        for (old, new) in [("5", "5"), ("5", "2"), ("5", "five")] {
            let event =
                SyncEvent::builder("us-east-1:p", "us-east-1:i", "game").changed("level", Some(old), new).build();
            let out = handle(event.clone()).unwrap();
            assert_eq!(out, event, "{old} -> {new}");
        }
    }
}
