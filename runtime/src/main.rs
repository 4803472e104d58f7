//! The `synctrig-wasm` command: thin; one module per subcommand.

mod commands;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    cli.command.run()
}
