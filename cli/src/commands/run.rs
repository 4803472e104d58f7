//! `synctrig-wasm run`: invoke a trigger locally on one event.

use super::SandboxArgs;
use clap::Args;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use synctrig_runtime::pipeline::{run_trigger, stored_from_event};
use synctrig_runtime::sandbox::js::ScriptSettings;
use synctrig_runtime::{Error, Runtime, SyncEvent};

/// Run a trigger on one Sync Trigger event, as the service would.
///
/// The trigger is a component (FILE.wasm), a JavaScript Sync Trigger (FILE.js: a Node.js
/// Lambda handler such as the console's cognito-sync-trigger blueprint), or a Lambda
/// deployment package (FILE.zip holding index.js). A script's top-level output
/// (console.log while loading) goes to stderr first.
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
    /// The trigger: a component (.wasm, built with synctrig-guest), a script (.js) or a
    /// Lambda deployment package (.zip).
    #[arg(long, value_name = "FILE")]
    trigger: PathBuf,
    /// The handler of a JavaScript trigger: <module>.<export>; for a .zip the module is
    /// the file <module>.js in it.
    #[arg(long, default_value = "index.handler")]
    handler: String,
    /// The event file; read from stdin when absent.
    #[arg(long, value_name = "FILE.json")]
    event: Option<PathBuf>,
    /// Print the invocation's wall time, fuel, peak memory and log bytes on stderr.
    #[arg(long)]
    stats: bool,
    /// An environment variable of a JavaScript trigger, NAME=VALUE, in its process.env
    /// (repeat it for more; Lambda's rules, as `admin deploy --env`).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = super::code::environment_variable)]
    environment: Vec<(String, String)>,
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
    let code = super::code::read(&args.trigger, &args.handler)?;
    if !args.environment.is_empty() && matches!(code, synctrig_runtime::sandbox::js::Code::Component(_)) {
        return Err(Error::InvalidComponent(
            "--env: only a JavaScript trigger has environment variables (a component has no process.env)".into(),
        ));
    }
    let name = args.trigger.file_stem().and_then(|s| s.to_str()).unwrap_or("trigger").to_owned();
    let settings = ScriptSettings {
        invoked_function_arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{name}"),
        function_name: name,
        function_version: "$LATEST".into(),
        memory_limit_in_mb: args.sandbox.memory_mib.to_string(),
        deadline_ms: args.sandbox.deadline_ms,
        environment: args.environment.iter().cloned().collect(),
    };
    let (trigger, _, top_level_log) = super::load_code(&runtime, &code, &settings)?;
    eprint!("{top_level_log}");
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
