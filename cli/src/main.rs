//! The `synctrig-wasm` command: thin; one module per subcommand.

mod commands;

use clap::Parser;
use std::process::ExitCode;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// mimalloc rather than the system allocator: a sync allocates and frees hundreds of small
/// strings and buffers across threads (a tenth of a busy server's CPU was glibc's malloc).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    // Diagnostics go to stderr (stdout carries results). RUST_LOG overrides the level:
    // `info`, or per target, `warn,synctrig_server=debug`.
    let default = || Targets::new().with_default(tracing::Level::WARN);
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) => v.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!("warning: RUST_LOG={v:?} is ignored ({e}); it takes `level` or `target=level,...`");
            default()
        }),
        Err(_) => default(),
    };
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
    cli.command.run()
}
