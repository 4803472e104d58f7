//! The seed's sample Sync Trigger: modify `SampleKey1`, remove `SampleKey2`, and add
//! `SampleKey3` when it is absent.

use synctrig_guest::{Rejection, SyncEvent};

/// Handles one sync event exactly as the Lambda blueprint's sample function does.
pub fn handle(mut event: SyncEvent) -> Result<SyncEvent, Rejection> {
    synctrig_guest::info!(
        "SyncTrigger for {} / {}: {} records",
        event.identity_id(),
        event.dataset_name(),
        event.len()
    );
    // The blueprint only acts on SyncTrigger events; anything else passes through.
    if event.event_type() == "SyncTrigger" {
        if event.contains("SampleKey1") {
            event.replace("SampleKey1", "ModifyValue1");
        }
        event.remove("SampleKey2");
        event.add("SampleKey3", "ModifyValue3");
    }
    Ok(event)
}

synctrig_guest::trigger!(handle);

#[cfg(test)]
mod tests {
    use super::*;
    use synctrig_guest::Op;

    #[test]
    fn does_what_the_blueprint_does() {
        let event = SyncEvent::builder("us-east-1:pool", "us-east-1:id", "ds")
            .changed("SampleKey1", Some("oldValue1"), "newValue1")
            .changed("SampleKey2", Some("oldValue2"), "newValue2")
            .build();
        let out = handle(event).unwrap();
        assert_eq!(out.value("SampleKey1"), Some("ModifyValue1"));
        assert_eq!(out.get("SampleKey1").unwrap().op, Op::Replace);
        assert_eq!(out.get("SampleKey2").unwrap().op, Op::Remove);
        assert_eq!(out.value("SampleKey3"), Some("ModifyValue3"));
        let logs = synctrig_guest::log::take_test_logs();
        assert_eq!(logs.len(), 1);
        assert!(logs[0].1.contains("2 records"));
    }

    #[test]
    fn keeps_an_existing_sample_key3() {
        let event = SyncEvent::builder("us-east-1:pool", "us-east-1:id", "ds").stored("SampleKey3", "mine").build();
        let out = handle(event).unwrap();
        assert_eq!(out.value("SampleKey3"), Some("mine"));
        assert!(!out.contains("SampleKey1"));
        assert!(!out.contains("SampleKey2"));
    }
}
