//! The `synctrig-wasm` command: thin; one module per subcommand.

mod commands;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    // Diagnostics go to stderr (stdout carries results); RUST_LOG overrides the level.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    cli.command.run()
}
