//! Why an invocation failed: a wasmtime error classified into the runtime's [`Error`]
//! (out of fuel, past its deadline, out of memory, a trap, a panic's message), with the
//! messages a guest controls capped.

use super::*;

/// Where an invocation failed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Instantiate,
    Call,
}

/// Most bytes of a message that comes from a trigger (a reject reason, a panic message)
/// kept in an error; the rest is cut with a marker.
pub const MAX_MESSAGE_BYTES: usize = 4 << 10;

/// `message` cut to at most `max` bytes (on a character boundary), with a marker saying
/// how much was dropped.
pub(crate) fn capped(mut message: String, max: usize) -> String {
    if message.len() <= max {
        return message;
    }
    let mut cut = max;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let dropped = message.len() - cut;
    message.truncate(cut);
    message.push_str(&format!("… [synctrig: {dropped} more bytes truncated]"));
    message
}

/// Turns a failed instantiate or call into the outcome that explains it.
pub(crate) fn classify(e: wasmtime::Error, phase: Phase, state: &HostState, limits: &Limits) -> Error {
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Error::Exited { code: exit.0 };
    }
    if e.downcast_ref::<super::host::WaitPastDeadline>().is_some() {
        return Error::Timeout { deadline: limits.deadline };
    }
    let trap = e.downcast_ref::<Trap>().copied();
    let log = state.log.contents();
    match trap {
        Some(Trap::OutOfFuel) => Error::OutOfFuel { budget: state.fuel_budget.unwrap_or(0) },
        Some(Trap::Interrupt) => Error::Timeout { deadline: limits.deadline },
        Some(Trap::StackOverflow) => Error::StackOverflow { limit: limits.max_wasm_stack },
        // An allocator that got no memory reports it and aborts (`unreachable`): the denied
        // memory.grow is the cause worth reporting. A denial the guest coped with does not
        // explain a later, unrelated trap.
        Some(Trap::UnreachableCodeReached) if state.limiter.memory_denied && log.contains("memory allocation of") => {
            Error::MemoryLimit { limit: limits.memory_bytes }
        }
        Some(trap) => match panic_message(&log) {
            Some(message) if trap == Trap::UnreachableCodeReached => {
                Error::Panic { message: capped(message, MAX_MESSAGE_BYTES) }
            }
            _ => Error::Trap { message: trap.to_string() },
        },
        None => {
            let message = capped(format!("{e:#}"), MAX_MESSAGE_BYTES);
            if state.limiter.limit_hit || message.contains("resource limit exceeded") {
                Error::InvalidOutput(format!("trigger exceeded a sandbox limit: {message}"))
            } else if phase == Phase::Instantiate {
                // Not the trigger's doing (e.g. the host is out of address space).
                Error::Internal(format!("cannot instantiate the trigger: {message}"))
            } else if matches!(
                e.downcast_ref::<wasmtime::component::ResourceTableError>(),
                Some(wasmtime::component::ResourceTableError::Full)
            ) {
                // Said in the trigger's terms, not the table's.
                Error::HostCallFailed {
                    message: format!(
                        "the trigger held more than {} host resources (streams, pollables, timers) at once, \
                         the sandbox's limit: drop each when done with it",
                        host::MAX_RESOURCES
                    ),
                }
            } else if e.downcast_ref::<wasmtime::WasmBacktrace>().is_some() {
                // The error unwound through the guest's frames: a host function it called
                // failed while it ran. Its own message says what; the backtrace does not.
                Error::HostCallFailed { message: capped(e.root_cause().to_string(), MAX_MESSAGE_BYTES) }
            } else {
                // Raised after the guest returned: its return value could not be lifted
                // (bad UTF-8, an out-of-range discriminant, an out-of-bounds pointer).
                Error::InvalidOutput(format!(
                    "trigger returned a value that does not match the WIT interface: {message}"
                ))
            }
        }
    }
}

/// The panic message Rust's default hook wrote to stderr, if any.
pub(crate) fn panic_message(log: &str) -> Option<String> {
    let at = log.find("panicked at ")?;
    let rest = &log[at + "panicked at ".len()..];
    // "panicked at src/lib.rs:5:5:\nmessage\nnote: ..."
    let mut lines = rest.lines();
    let location = lines.next()?.trim_end_matches(':');
    let message: Vec<&str> = lines.take_while(|l| !l.starts_with("note:")).collect();
    Some(format!("{} (at {location})", message.join(" ").trim()))
}
