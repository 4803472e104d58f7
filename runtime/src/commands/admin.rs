//! `synctrig-wasm admin`: tenants, identity pools and trigger functions, written
//! straight into the data dir's database (a running server sees them at once).

use super::SandboxArgs;
use super::serve::open_store;
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use synctrig_wasm::Runtime;
use synctrig_wasm::sandbox::js::Code;
use synctrig_wasm::server::{ApiError, functions};

/// An API error as an `anyhow` cause, keeping its name for the output.
#[derive(Debug)]
struct ApiFailure(ApiError);

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for ApiFailure {}

/// Manage tenants, identity pools and Sync Trigger functions.
///
/// Every command prints one JSON object on stdout. A tenant owns identity pools and
/// functions; its developer credentials act on every identity of its pools (their
/// updates skip the trigger) and read its functions' invocation logs.
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Directory of the database (the same as `serve --data-dir`).
    #[arg(long, default_value = "./synctrig-data", env = "SYNCTRIG_DATA_DIR", global = true)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Create a tenant and print its developer credentials.
    CreateTenant {
        /// The tenant's name.
        name: String,
    },
    /// Create an identity pool owned by a tenant and print its id.
    CreatePool {
        /// The owning tenant.
        #[arg(long)]
        tenant: String,
        /// A name for the pool.
        #[arg(long)]
        name: String,
        /// The region part of the pool id (the server's --region).
        #[arg(long, default_value = "us-east-1", value_parser = super::serve::parse_region)]
        region: String,
    },
    /// Deploy a trigger as a new version of a tenant's function: a component, or a
    /// JavaScript Sync Trigger (a Node.js Lambda handler; it is pre-initialised into a
    /// component, and its script is kept). It is validated first, exactly as serve runs
    /// triggers: the sync-trigger world, nothing imported outside the sandbox, the
    /// structural and compile limits, a trial start.
    Deploy {
        /// The owning tenant.
        #[arg(long)]
        tenant: String,
        /// The function's name (used in SetCognitoEvents).
        #[arg(long)]
        name: String,
        /// The code: a component (.wasm), a JavaScript Sync Trigger (.js), or a Lambda
        /// deployment package (.zip holding the handler's module, e.g. index.js).
        #[arg(long, value_name = "FILE", visible_aliases = ["wasm", "js", "zip"])]
        code: PathBuf,
        /// The handler of a JavaScript function: <module>.<export>.
        #[arg(long, default_value = "index.handler")]
        handler: String,
        /// The region in the function's ARN (the server's --region).
        #[arg(long, default_value = "us-east-1", value_parser = super::serve::parse_region)]
        region: String,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
    /// Print a function's latest invocations: outcome, wall time, fuel, memory, log.
    Invocations {
        /// The owning tenant.
        #[arg(long)]
        tenant: String,
        /// The function's name.
        #[arg(long)]
        name: String,
        /// How many, newest first.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

pub fn run(args: AdminArgs) -> ExitCode {
    match execute(args) {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // A refused component is named as the API names it.
            let name = e.chain().find_map(|c| {
                c.downcast_ref::<synctrig_wasm::Error>()
                    .map(|e| e.api_name())
                    .or_else(|| c.downcast_ref::<ApiFailure>().map(|f| f.0.name))
            });
            match name {
                Some(name) => println!("{}", json!({ "error": format!("{e:#}"), "__type": name })),
                None => println!("{}", json!({ "error": format!("{e:#}") })),
            }
            ExitCode::FAILURE
        }
    }
}

fn execute(args: AdminArgs) -> anyhow::Result<serde_json::Value> {
    let store = open_store(&args.data_dir)?;
    let need_tenant = |tenant: &str| -> anyhow::Result<()> {
        if !store.tenant_exists(tenant)? {
            bail!("no tenant {tenant:?}; create it with `synctrig-wasm admin create-tenant {tenant}`");
        }
        Ok(())
    };
    Ok(match args.command {
        AdminCommand::CreateTenant { name } => {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                bail!("tenant names use a-z, A-Z, 0-9, '-' and '_'");
            }
            let Some((ak, sk)) = store.create_tenant(&name)? else { bail!("tenant {name:?} already exists") };
            json!({ "tenant": name, "accessKeyId": ak, "secretAccessKey": sk })
        }
        AdminCommand::CreatePool { tenant, name, region } => {
            need_tenant(&tenant)?;
            let pool_id = store.create_pool(&tenant, &name, &region)?;
            json!({ "identityPoolId": pool_id, "tenant": tenant, "name": name })
        }
        AdminCommand::Deploy { tenant, name, code, handler, region, sandbox } => {
            need_tenant(&tenant)?;
            if synctrig_wasm::server::api_function_name_ok(&name).is_none() {
                bail!("function names use a-z, A-Z, 0-9, '-' and '_' (at most 64)");
            }
            let code = Code::read(&code, &handler)?;
            let mut config = sandbox.runtime_config();
            config.cache_dir.get_or_insert_with(|| args.data_dir.join("artifacts"));
            // The same configuration as `serve` (pooling allocator and all): what deploy
            // accepts, serve runs.
            let runtime = Runtime::new(config)?;
            let deployed = functions::deploy(&store, &runtime, &region, (&tenant, &name), &code, &handler)
                .map_err(|e| anyhow::anyhow!(ApiFailure(e)))
                .context("the code was refused")?;
            json!({ "tenant": tenant, "function": name, "version": deployed.version, "digest": deployed.digest, "log": deployed.log })
        }
        AdminCommand::Invocations { tenant, name, limit } => {
            need_tenant(&tenant)?;
            json!({ "function": name, "invocations": store.invocations(&tenant, &name, limit)? })
        }
    })
}
