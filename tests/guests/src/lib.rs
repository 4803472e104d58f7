//! Guest programs that only tests use: each example is one component that breaks a
//! rule or attacks the sandbox. They use raw wit-bindgen bindings, not the SDK, so they
//! can do what the SDK forbids (e.g. change a read-only field).

#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "sync-trigger",
        pub_export_macro: true,
        export_macro_name: "export_trigger",
        default_bindings_module: "test_guests::bindings",
    });
}

pub use bindings::synctrig::trigger::log::{Level, log};
pub use bindings::synctrig::trigger::types::{DatasetRecord, Op, SyncEvent, TriggerError};
pub use bindings::{Guest, export_trigger};

/// Shorthand for a record the trigger adds.
pub fn added(key: &str, value: &str) -> DatasetRecord {
    DatasetRecord { key: key.into(), old_value: None, new_value: Some(value.into()), op: Op::Replace }
}

/// The event with one added record `result` = `value`: how guests report what they saw.
pub fn with_result(mut event: SyncEvent, value: u64) -> Result<SyncEvent, TriggerError> {
    event.records.push(added("result", &value.to_string()));
    Ok(event)
}
