//! `synctrig-wasm admin`: tenants, identity pools and trigger functions, written
//! straight into the data dir's database (a running server sees them at once).

use super::SandboxArgs;
use super::serve::open_store;
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use synctrig_runtime::Runtime;
use synctrig_server::ApiError;
use synctrig_server::functions::recordings::{self, PutRecordingRequest, ReplayRequest};
use synctrig_server::functions::{self, aliases};
use synctrig_store::{AccessKeys, PoolSettings, Scope, Store};

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
    /// The database, as `serve --database` takes it (a postgres:// URL); without it,
    /// SQLite in the data dir.
    #[arg(long, value_name = "URL", env = "SYNCTRIG_DATABASE_URL", hide_env_values = true, global = true)]
    database: Option<String>,
    /// The CA certificates (PEM) of the PostgreSQL server's certificate, as `serve
    /// --database-ca-file` takes them.
    #[arg(long, value_name = "FILE", env = "SYNCTRIG_DATABASE_CA_FILE", global = true)]
    database_ca_file: Option<PathBuf>,
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
    /// Create an identity pool owned by a tenant and print it, as CreateIdentityPool
    /// does (`aws cognito-identity create-identity-pool` with the tenant's developer
    /// credentials is the same call).
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
        /// Whether identities without logins may get credentials.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        allow_unauthenticated: bool,
        /// The name developer-authenticated logins use (e.g. login.mycompany.myapp).
        #[arg(long)]
        developer_provider_name: Option<String>,
        /// An OpenID Connect provider the pool accepts logins of:
        /// arn:aws:iam::<account>:oidc-provider/<issuer host and path>, of a registered
        /// issuer. Repeat for several.
        #[arg(long = "openid-connect-provider-arn")]
        open_id_connect_provider_arns: Vec<String>,
    },
    /// Register an OpenID Connect issuer whose tokens pools may accept as logins (by
    /// naming it in OpenIdConnectProviderARNs). Registering it again replaces it.
    RegisterIssuer {
        /// The tenant whose pools may accept its tokens (as an IAM OIDC provider belongs to
        /// one AWS account); each tenant registers the client ids of its own apps.
        #[arg(long)]
        tenant: String,
        /// The issuer, exactly as its tokens' `iss` claim (https://host[/path]).
        #[arg(long)]
        issuer: String,
        /// A client id its tokens may be for (`aud`). Repeat for several.
        #[arg(long = "audience", required = true)]
        audiences: Vec<String>,
        /// Its JSON Web Key Set, inline.
        #[arg(long, conflicts_with = "jwks_file", required_unless_present = "jwks_file")]
        jwks: Option<String>,
        /// A file holding its JSON Web Key Set; read again when a token names a key id
        /// the stored set lacks (key rotation).
        #[arg(long)]
        jwks_file: Option<PathBuf>,
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
        /// An environment variable of a JavaScript function's version, NAME=VALUE, in its
        /// process.env (repeat it for more; Lambda's rules: names [a-zA-Z][a-zA-Z0-9_]+,
        /// none of the reserved AWS_*/LAMBDA_* names, 4 KB in all).
        #[arg(long = "env", value_name = "NAME=VALUE", value_parser = super::code::environment_variable)]
        environment: Vec<(String, String)>,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
    /// Write the whole installation (or one identity pool) as JSON lines: tenants and their
    /// keys, pools with their settings and triggers, identities and logins, datasets with
    /// every record, tombstone, SyncCount and date, functions with every version's bytes.
    /// Read from one consistent snapshot; safe while `serve` runs. The format is in the
    /// README ("Export and import").
    Export {
        /// Only this identity pool (its identities, logins, datasets and records).
        #[arg(long)]
        pool: Option<String>,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Load a stream `admin export` wrote, all or nothing: a whole installation only into an
    /// empty data dir, a pool only into one without it (for --tenant). Run it with `serve`
    /// stopped.
    Import {
        /// The stream (`-` for stdin).
        input: PathBuf,
        /// The tenant a pool's stream is imported for.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Delete a function with all it has — every version, its aliases with their figures
    /// and decisions, its invocation log, its recording settings and recordings. Refused
    /// while a pool's SyncTrigger names it.
    DeleteFunction {
        /// The owning tenant.
        #[arg(long)]
        tenant: String,
        /// The function's name.
        #[arg(long)]
        name: String,
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
    /// Point an alias of a function at a version (creating it if needed), optionally
    /// sending a share of its syncs to a second version, under a rollout that promotes or
    /// rolls back that version by itself; or delete it. A pool uses an alias by naming
    /// `<function>:<alias>` as its SyncTrigger. Prints the alias with its figures.
    #[command(disable_version_flag = true)]
    Alias {
        /// The owning tenant.
        #[arg(long)]
        tenant: String,
        /// The function's name.
        #[arg(long)]
        name: String,
        /// The alias (letters, digits, - and _; not all digits).
        #[arg(long)]
        alias: String,
        /// The version it points to.
        #[arg(long, required_unless_present = "delete")]
        version: Option<i64>,
        /// A second version that takes a share of the syncs (each dataset stays with one).
        #[arg(long, requires = "weight")]
        canary: Option<i64>,
        /// The second version's share, from 0 to 0.5.
        #[arg(long, requires = "canary")]
        weight: Option<f64>,
        /// Roll the second version out: promote it after this many of its invocations.
        #[arg(long, requires = "canary")]
        promote_after_invocations: Option<i64>,
        /// Roll the second version out: promote it after this many seconds.
        #[arg(long, requires = "canary")]
        promote_after_seconds: Option<i64>,
        /// During a rollout, roll back when its error+timeout rate exceeds the primary's
        /// by more than this (0 to 1; 0.05 unless given).
        #[arg(long)]
        max_error_rate_increase: Option<f64>,
        /// During a rollout, also roll back when its reject rate exceeds the primary's by
        /// more than this (a JavaScript trigger that throws rejects the sync).
        #[arg(long)]
        max_reject_rate_increase: Option<f64>,
        /// During a rollout, invocations of the second version before it is judged (20
        /// unless given).
        #[arg(long)]
        min_invocations: Option<i64>,
        #[arg(long)]
        description: Option<String>,
        /// Delete the alias instead (refused while a pool's SyncTrigger names it).
        #[arg(long, conflicts_with_all = ["version", "canary"])]
        delete: bool,
    },
    /// Print a function's aliases, each with the figures of its versions (outcomes, p50
    /// and p99 wall time and fuel) since it last changed, and its rollouts' decisions.
    Aliases {
        /// The owning tenant.
        #[arg(long)]
        tenant: String,
        /// The function's name.
        #[arg(long)]
        name: String,
    },
    /// Turn recording of a function's invocations on (or change its settings), or off,
    /// which deletes what it recorded. A recording keeps the event, the response or
    /// error, the randomness seed and clock, so `admin replay` can run it again bit for
    /// bit; with --shadow-version, that version also runs on each recorded invocation
    /// (off the sync's path, its result discarded) and the recording keeps its answer.
    Recording {
        /// The owning tenant.
        #[arg(long)]
        tenant: String,
        /// The function's name.
        #[arg(long)]
        name: String,
        /// The most invocations kept (1 to 1,000; 1,000 unless given).
        #[arg(long)]
        max_count: Option<i64>,
        /// The oldest a recording is kept, in seconds (60 to 30 days; 7 days unless given).
        #[arg(long)]
        max_age_seconds: Option<i64>,
        /// A version to run beside each recorded invocation (its answer is only recorded).
        #[arg(long)]
        shadow_version: Option<i64>,
        /// Turn recording off and delete the function's recordings.
        #[arg(long, conflicts_with_all = ["max_count", "max_age_seconds", "shadow_version"])]
        off: bool,
    },
    /// Print a function's recorded invocations, newest first (without their events).
    Recordings {
        /// The owning tenant.
        #[arg(long)]
        tenant: String,
        /// The function's name.
        #[arg(long)]
        name: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Run a candidate — a deployed version, or code not yet deployed — on a function's
    /// recorded invocations with their recorded randomness and clock, and print how each
    /// compares: the same result, different records (a per-record diff), now rejects,
    /// now fails, now succeeds, with fuel and time deltas and a summary. Writes nothing.
    #[command(disable_version_flag = true)]
    Replay {
        /// The owning tenant.
        #[arg(long)]
        tenant: String,
        /// The function's name.
        #[arg(long)]
        name: String,
        /// The candidate: this deployed version.
        #[arg(long, required_unless_present = "code", conflicts_with = "code")]
        version: Option<i64>,
        /// The candidate: this code (.wasm, .js or .zip), as `admin deploy` takes it.
        #[arg(long, value_name = "FILE")]
        code: Option<PathBuf>,
        /// The handler of a JavaScript candidate: <module>.<export>.
        #[arg(long, default_value = "index.handler")]
        handler: String,
        /// An environment variable of a JavaScript candidate, NAME=VALUE (repeat for more).
        #[arg(long = "env", value_name = "NAME=VALUE", value_parser = super::code::environment_variable)]
        environment: Vec<(String, String)>,
        /// The region in a script's ARN (the server's --region).
        #[arg(long, default_value = "us-east-1", value_parser = super::serve::parse_region)]
        region: String,
        /// Only this recording (repeat for more); otherwise the latest ones.
        #[arg(long = "recording", value_name = "ID", conflicts_with = "max_recordings")]
        recordings: Vec<i64>,
        /// At most this many of the latest recordings (1 to 1,000).
        #[arg(long)]
        max_recordings: Option<i64>,
        /// Stop starting runs after this many seconds (those left are reported skipped).
        #[arg(long, default_value_t = 600)]
        budget_seconds: u64,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
}

pub fn run(args: AdminArgs) -> ExitCode {
    match execute(args) {
        Ok(serde_json::Value::Null) => ExitCode::SUCCESS,
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // A refused component is named as the API names it.
            let name = e.chain().find_map(|c| {
                c.downcast_ref::<synctrig_runtime::Error>()
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
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    tokio.block_on(execute_with(args))
}

async fn need_tenant(store: &Store, tenant: &str) -> anyhow::Result<()> {
    if !store.tenant_exists(tenant).await? {
        bail!("no tenant {tenant:?}; create it with `synctrig-wasm admin create-tenant {tenant}`");
    }
    Ok(())
}

async fn execute_with(args: AdminArgs) -> anyhow::Result<serde_json::Value> {
    // One command at a time: a couple of connections.
    let store = open_store(&args.data_dir, args.database.as_deref(), args.database_ca_file.as_deref(), 2).await?;
    Ok(match args.command {
        AdminCommand::CreateTenant { name } => {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                bail!("tenant names use a-z, A-Z, 0-9, '-' and '_'");
            }
            let Some(AccessKeys { access_key: ak, secret: sk }) = store.create_tenant(&name).await? else {
                bail!("tenant {name:?} already exists")
            };
            json!({ "tenant": name, "accessKeyId": ak, "secretAccessKey": sk })
        }
        AdminCommand::CreatePool {
            tenant,
            name,
            region,
            allow_unauthenticated,
            developer_provider_name,
            open_id_connect_provider_arns,
        } => {
            need_tenant(&*store, &tenant).await?;
            let settings =
                PoolSettings { developer_provider_name, open_id_connect_provider_arns, ..PoolSettings::default() };
            // With the identity API's own checks.
            let pool = synctrig_server::create_pool(&*store, &region, &tenant, &name, allow_unauthenticated, &settings)
                .await
                .map_err(|e| anyhow::anyhow!(ApiFailure(e)))?;
            json!({
                "identityPoolId": pool.pool_id,
                "tenant": tenant,
                "name": pool.name,
                "allowUnauthenticatedIdentities": pool.allow_unauthenticated,
                "settings": pool.settings,
            })
        }
        AdminCommand::RegisterIssuer { tenant, issuer, audiences, jwks, jwks_file } => {
            let issuer = synctrig_server::register_issuer(
                &*store,
                &tenant,
                &issuer,
                &audiences,
                jwks.as_deref(),
                jwks_file.as_deref(),
            )
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
            let host_and_path = issuer.issuer.trim_start_matches("https://");
            json!({
                "tenant": issuer.tenant,
                "issuer": issuer.issuer,
                "audiences": issuer.audiences,
                "jwksFile": issuer.jwks_file,
                "openIdConnectProviderArn": format!("arn:aws:iam::000000000000:oidc-provider/{host_and_path}"),
            })
        }
        AdminCommand::Deploy { tenant, name, code, handler, region, environment, sandbox } => {
            need_tenant(&*store, &tenant).await?;
            if synctrig_server::api_function_name_ok(&name).is_none() {
                bail!("function names use a-z, A-Z, 0-9, '-' and '_' (at most 64)");
            }
            let code = super::code::read(&code, &handler)?;
            let mut config = sandbox.runtime_config();
            config.cache_dir.get_or_insert_with(|| args.data_dir.join("artifacts"));
            // The same configuration as `serve` (pooling allocator and all): what deploy
            // accepts, serve runs.
            let runtime = std::sync::Arc::new(Runtime::new(config)?);
            let environment = environment.into_iter().collect();
            let release = functions::Release { code: &code, handler: &handler, environment: &environment };
            let deployed = functions::deploy(&*store, &runtime, &region, (&tenant, &name), release, None)
                .await
                .map_err(|e| anyhow::anyhow!(ApiFailure(e)))
                .context("the code was refused")?;
            json!({ "tenant": tenant, "function": name, "version": deployed.version, "digest": deployed.digest, "log": deployed.log })
        }
        AdminCommand::Export { pool, output } => {
            let scope = pool.map_or(Scope::Installation, Scope::Pool);
            let rows = match &output {
                Some(path) => {
                    // Written beside, then renamed: a failed export leaves no partial file.
                    let partial = path.with_extension("partial");
                    let file = std::fs::File::create(&partial)
                        .with_context(|| format!("cannot create {}", partial.display()))?;
                    let mut writer = std::io::BufWriter::new(file);
                    let rows = store.export(&scope, &mut writer).await?;
                    writer.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                    std::fs::rename(&partial, path)?;
                    rows
                }
                None => store.export(&scope, &mut std::io::BufWriter::new(std::io::stdout())).await?,
            };
            // The stream itself is stdout when no file is given: report on stderr then.
            let summary = json!({ "exported": rows, "output": output });
            if output.is_none() {
                eprintln!("{summary}");
                return Ok(serde_json::Value::Null);
            }
            summary
        }
        AdminCommand::Import { input, tenant } => {
            let counts = if input.as_os_str() == "-" {
                store.import(&mut std::io::BufReader::new(std::io::stdin()), tenant.as_deref()).await?
            } else {
                let file = std::fs::File::open(&input).with_context(|| format!("cannot open {}", input.display()))?;
                store.import(&mut std::io::BufReader::new(file), tenant.as_deref()).await?
            };
            json!({ "imported": counts.into_iter().map(|(table, n)| (table.to_owned(), json!(n))).collect::<serde_json::Map<_, _>>() })
        }
        AdminCommand::Alias {
            tenant,
            name,
            alias,
            version,
            canary,
            weight,
            promote_after_invocations,
            promote_after_seconds,
            max_error_rate_increase,
            max_reject_rate_increase,
            min_invocations,
            description,
            delete,
        } => {
            need_tenant(&*store, &tenant).await?;
            let key = (tenant.as_str(), name.as_str(), alias.as_str());
            if delete {
                aliases::remove_alias(&*store, key).await.map_err(|e| anyhow::anyhow!(ApiFailure(e)))?;
                return Ok(json!({ "deleted": alias, "function": name }));
            }
            let rollout = (promote_after_invocations.is_some() || promote_after_seconds.is_some()).then_some(
                aliases::RolloutConfig {
                    promote_after_invocations,
                    promote_after_seconds,
                    max_error_rate_increase,
                    max_reject_rate_increase,
                    min_invocations,
                },
            );
            let request = aliases::PutAliasRequest {
                function_version: version.map(|v| v.to_string()),
                description,
                routing_config: canary.zip(weight).map(|(v, w)| aliases::AliasRoutingConfig {
                    additional_version_weights: [(v.to_string(), w)].into(),
                }),
                rollout,
                ..Default::default()
            };
            let put =
                aliases::put_alias(&*store, key, &request, None).await.map_err(|e| anyhow::anyhow!(ApiFailure(e)))?;
            serde_json::to_value(
                aliases::shown(&*store, &tenant, put).await.map_err(|e| anyhow::anyhow!(ApiFailure(e)))?,
            )?
        }
        AdminCommand::Recording { tenant, name, max_count, max_age_seconds, shadow_version, off } => {
            need_tenant(&*store, &tenant).await?;
            let request = PutRecordingRequest { enabled: !off, max_count, max_age_seconds, shadow_version };
            let shown = recordings::set_recording(&*store, (&tenant, &name), &request)
                .await
                .map_err(|e| anyhow::anyhow!(ApiFailure(e)))?;
            serde_json::to_value(shown)?
        }
        AdminCommand::DeleteFunction { tenant, name } => {
            need_tenant(&*store, &tenant).await?;
            let versions =
                functions::delete(&*store, (&tenant, &name)).await.map_err(|e| anyhow::anyhow!(ApiFailure(e)))?;
            json!({ "tenant": tenant, "deleted": name, "versions": versions })
        }
        AdminCommand::Recordings { tenant, name, limit } => {
            need_tenant(&*store, &tenant).await?;
            let rows = store.recordings(&tenant, &name, None, limit.clamp(1, 1_000)).await?;
            let rows: Vec<_> = rows.iter().map(recordings::summary).collect();
            json!({ "function": name, "recordings": rows })
        }
        AdminCommand::Replay {
            tenant,
            name,
            version,
            code,
            handler,
            environment,
            region,
            recordings: ids,
            max_recordings,
            budget_seconds,
            sandbox,
        } => {
            need_tenant(&*store, &tenant).await?;
            let request = ReplayRequest {
                version,
                recording_ids: (!ids.is_empty()).then_some(ids),
                max_recordings,
                ..ReplayRequest::default()
            };
            let selection = request.selection().map_err(|e| anyhow::anyhow!(ApiFailure(e)))?;
            let candidate = match (version, code) {
                (Some(v), _) => recordings::Candidate::Version(v),
                (None, Some(path)) => {
                    recordings::Candidate::Code(super::code::read(&path, &handler)?, environment.into_iter().collect())
                }
                (None, None) => bail!("give --version or --code"),
            };
            let mut config = sandbox.runtime_config();
            config.cache_dir.get_or_insert_with(|| args.data_dir.join("artifacts"));
            // The limits `serve` runs triggers with.
            let runtime = std::sync::Arc::new(Runtime::new(config)?);
            let key = (tenant.as_str(), name.as_str());
            let loader = runtime.clone();
            let store_ref = store.clone();
            let loaded = recordings::load_candidate(&*store, &runtime, &region, key, candidate, async move |f| {
                let wasm = store_ref.function_wasm(&f.tenant, &f.name, f.version).await?.unwrap_or_default();
                tokio::task::spawn_blocking(move || loader.load(&wasm))
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))?
                    .map_err(ApiError::from)
            })
            .await
            .map_err(|e| anyhow::anyhow!(ApiFailure(e)))?;
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let invoker = synctrig_runtime::invoker::Invoker::new(runtime.clone(), cores, cores, 64);
            let budget = std::time::Duration::from_secs(budget_seconds);
            let report = recordings::replay(&*store, &invoker, "replay", key, loaded, selection, cores, budget)
                .await
                .map_err(|e| anyhow::anyhow!(ApiFailure(e)))?;
            serde_json::to_value(report)?
        }
        AdminCommand::Aliases { tenant, name } => {
            need_tenant(&*store, &tenant).await?;
            let failed = |e| anyhow::anyhow!(ApiFailure(e));
            let mut shown = Vec::new();
            for alias in store.aliases(&tenant, &name).await? {
                shown.push(aliases::shown(&*store, &tenant, alias).await.map_err(failed)?);
            }
            let decisions = aliases::decisions(&*store, &tenant, &name, 20).await.map_err(failed)?;
            json!({ "function": name, "aliases": shown, "decisions": decisions.decisions })
        }
        AdminCommand::Invocations { tenant, name, limit } => {
            need_tenant(&*store, &tenant).await?;
            json!({ "function": name, "invocations": store.invocations(&tenant, &name, limit).await? })
        }
    })
}
