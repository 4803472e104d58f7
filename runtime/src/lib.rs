//! synctrig-wasm: a self-hostable Cognito Sync service whose Sync Triggers are
//! untrusted WebAssembly components run in a wasmtime sandbox.
//!
//! - [`event`]: the Sync Trigger event and its JSON codec;
//! - [`merge`]: validation and merge of a trigger's response, pure functions;
//! - [`sandbox`]: loading and running trigger components under limits;
//! - [`Error`]: every outcome, mapped to the Cognito Sync API's error names.

pub mod error;
pub mod event;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod invoker;
pub mod limits;
pub mod merge;
pub mod pipeline;
pub mod sandbox;
pub mod server;

pub use error::Error;
pub use event::SyncEvent;
pub use sandbox::{Invocation, Limits, Prepared, Runtime, RuntimeConfig, Stats, Trigger};
