//! Subcommands and the flags they share.

mod admin;
mod code;
mod run;
mod serve;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use synctrig_runtime::sandbox::{Allocation, Compiler, DEFAULT_FUEL, DEFAULT_MEMORY_BYTES, DEFAULT_SCRIPT_FUEL};
use synctrig_runtime::{Limits, RuntimeConfig};

/// synctrig-wasm: Cognito Sync datasets with Sync Triggers as sandboxed WebAssembly.
#[derive(Parser)]
#[command(version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Subcommand)]
pub enum Command {
    // Boxed: serve has many more flags than the other commands.
    Serve(Box<serve::ServeArgs>),
    Run(run::RunArgs),
    Admin(admin::AdminArgs),
    /// The compile worker: reads a component on stdin, writes its compiled artifact on
    /// stdout. Started by the other commands; not for people.
    #[command(hide = true)]
    Compile {
        /// The engine settings the artifact must match.
        #[arg(long)]
        settings: String,
    },
}

impl Command {
    pub fn run(self) -> ExitCode {
        match self {
            Command::Serve(args) => serve::run(*args),
            Command::Run(args) => run::run(args),
            Command::Admin(args) => admin::run(args),
            Command::Compile { settings } => synctrig_runtime::sandbox::worker::main(&settings),
        }
    }
}

/// Sandbox limits, shared by every subcommand that runs triggers.
#[derive(Args, Clone, Debug)]
pub struct SandboxArgs {
    /// Wall-clock deadline of one invocation, in milliseconds (enforced by epoch
    /// interruption; a trigger past it fails with LambdaSocketTimeoutException).
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub deadline_ms: u64,
    /// Fuel budget of one invocation: a deterministic instruction cap (a trigger that
    /// exhausts it fails with InvalidLambdaFunctionOutputException).
    #[arg(long, value_name = "UNITS", default_value_t = DEFAULT_FUEL, conflicts_with = "no_fuel")]
    pub fuel: u64,
    /// Fuel budget of one invocation of a JavaScript trigger (QuickJS spends 50-100 wasm
    /// instructions per JavaScript operation; the default is about 1.7 s of work).
    #[arg(long, value_name = "UNITS", default_value_t = DEFAULT_SCRIPT_FUEL, conflicts_with = "no_fuel")]
    pub script_fuel: u64,
    /// Turn fuel metering off; only the deadline then bounds CPU time.
    #[arg(long)]
    pub no_fuel: bool,
    /// Cap on the trigger's linear memory, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MEMORY_BYTES >> 20)]
    pub memory_mib: usize,
    /// Directory for precompiled components, so later runs skip compilation.
    #[arg(long, value_name = "DIR", env = "SYNCTRIG_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl SandboxArgs {
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            limits: Limits {
                deadline: Duration::from_millis(self.deadline_ms),
                fuel: (!self.no_fuel).then_some(self.fuel),
                script_fuel: self.script_fuel,
                memory_bytes: self.memory_mib << 20,
                ..Limits::default()
            },
            cache_dir: self.cache_dir.clone(),
            allocation: Allocation::Pooling,
            compiler: worker_compiler(),
            ..RuntimeConfig::default()
        }
    }
}

/// Loads code (a component, or a script pre-initialised into one): the trigger, the
/// component's bytes, and what a script's top level logged.
pub fn load_code(
    runtime: &synctrig_runtime::Runtime,
    code: &synctrig_runtime::sandbox::js::Code,
    settings: &synctrig_runtime::sandbox::js::ScriptSettings,
) -> Result<(synctrig_runtime::Trigger, Vec<u8>, String), synctrig_runtime::Error> {
    use synctrig_runtime::sandbox::js::Code;
    match code {
        Code::Component(bytes) => Ok((runtime.load(bytes)?, bytes.clone(), String::new())),
        Code::Script { source, export } => {
            let prepared = runtime.prepare_script(source, export, settings)?;
            let trigger = runtime.load(&prepared.component)?;
            Ok((trigger, prepared.component, prepared.log))
        }
    }
}

/// Untrusted components are compiled by this executable's hidden `compile` command, in a
/// child process.
fn worker_compiler() -> Compiler {
    match std::env::current_exe() {
        Ok(exe) => Compiler::Worker(exe),
        Err(e) => {
            // Without a path to ourselves there is no isolation to be had: refuse to start.
            eprintln!("synctrig-wasm: cannot find its own executable to run the compile worker: {e}");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod cli_tests {
    /// Every subcommand's arguments are well formed (clap checks them only when the
    /// subcommand is parsed, so a clash would otherwise panic in front of its user).
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
