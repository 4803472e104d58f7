//! `synctrig-wasm run`: invoke a trigger locally on one event.

use super::SandboxArgs;
use clap::Args;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use synctrig_wasm::pipeline::{run_trigger, stored_from_event};
use synctrig_wasm::{Error, Runtime, SyncEvent};

/// Run a trigger component on one Sync Trigger event, as the service would.
///
/// The event is Cognito's version-2 Sync Trigger JSON (`datasetRecords` keyed by record
/// key). Records with an `oldValue` are taken as the stored dataset, so the trigger's
/// response is validated and merged exactly as on a real update.
///
/// On success the validated response event is printed as JSON on stdout and the exit
/// status is 0. On failure one JSON object `{"__type": "<ErrorName>", "message": "..."}`
/// is printed on stdout and the exit status is 1; the names are the Cognito Sync API's
/// (e.g. InvalidLambdaFunctionOutputException, LambdaSocketTimeoutException). The
/// trigger's log lines (its log calls, stdout and stderr) go to stderr.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct RunArgs {
    /// The trigger component (a wasm32-wasip2 component built with synctrig-guest).
    #[arg(long, value_name = "FILE.wasm")]
    trigger: PathBuf,
    /// The event file; read from stdin when absent.
    #[arg(long, value_name = "FILE.json")]
    event: Option<PathBuf>,
    /// Print the invocation's wall time, fuel, peak memory and log bytes on stderr.
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    sandbox: SandboxArgs,
}

pub fn run(args: RunArgs) -> ExitCode {
    let (text, code) = match execute(&args) {
        Ok(response) => (response.to_json_pretty(), ExitCode::SUCCESS),
        Err(e) => (e.to_json().to_string(), ExitCode::FAILURE),
    };
    // A closed stdout (e.g. piped into `head`) is not worth a panic.
    let _ = writeln!(std::io::stdout(), "{text}");
    code
}

fn execute(args: &RunArgs) -> Result<SyncEvent, Error> {
    let json = match &args.event {
        Some(path) => {
            std::fs::read(path).map_err(|e| Error::InvalidEvent(format!("cannot read {}: {e}", path.display())))?
        }
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Error::InvalidEvent(format!("cannot read stdin: {e}")))?;
            buf
        }
    };
    let input = SyncEvent::from_json_input(&json).map_err(|e| Error::InvalidEvent(e.0))?;
    let runtime = Runtime::new(args.sandbox.runtime_config())?;
    let trigger = runtime.load_file(&args.trigger)?;
    let outcome = run_trigger(&runtime, &trigger, &stored_from_event(&input), &input);
    eprint!("{}", outcome.log);
    if args.stats {
        let s = &outcome.stats;
        eprintln!(
            "stats: wall {:.3} ms, fuel {}, peak memory {} bytes, log {} bytes",
            s.wall_us as f64 / 1000.0,
            s.fuel_consumed,
            s.peak_memory_bytes,
            s.log_bytes
        );
    }
    outcome.result.map(|applied| applied.response)
}
