//! `synctrig-wasm serve`: the Cognito Sync–compatible service.

use super::SandboxArgs;
use anyhow::Context as _;
use clap::Args;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use synctrig_runtime::Runtime;
use synctrig_server::admission::{AdmissionConfig, Rate};
use synctrig_server::{AppState, ServerConfig, serve};
use synctrig_store::{self as store, Database, Store, prepare_data_dir, random_hex};

/// Serve the Cognito Sync API (and Cognito Identity's GetId and
/// GetCredentialsForIdentity) on an embedded SQLite database, or with --database on a
/// PostgreSQL database that several nodes share behind a load balancer.
///
/// Point an AWS SDK's cognito-sync and cognito-identity clients at the printed address
/// (e.g. boto3's endpoint_url). Every cognito-sync request must be signed with SigV4.
/// The operator's root credentials come from SYNCTRIG_ROOT_ACCESS_KEY_ID and
/// SYNCTRIG_ROOT_SECRET_ACCESS_KEY, or are generated at first start and printed once.
/// Create tenants, identity pools and triggers with `synctrig-wasm admin`.
///
/// Prints `synctrig-wasm listening on http://ADDR` on stdout once bound. Stops
/// gracefully on ctrl-c or SIGTERM, finishing requests in flight.
///
/// The data dir (created 0700, its database 0600) holds the root and developer secret
/// keys, the key that signs SyncSessionTokens, every dataset and every deployed trigger
/// (on PostgreSQL the database holds them; the data dir, the compiled-trigger cache).
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory of the database and compiled-trigger cache; created if absent.
    #[arg(long, default_value = "./synctrig-data", env = "SYNCTRIG_DATA_DIR")]
    data_dir: PathBuf,
    /// The database: a postgres://user:password@host/db URL to share one PostgreSQL
    /// database between several nodes (each still needs its own --data-dir, for its
    /// compiled-trigger cache). Without it, SQLite in the data dir. TLS as libpq's
    /// `sslmode` says (`?sslmode=verify-full`; disable, prefer — the default —, require,
    /// verify-ca, verify-full).
    #[arg(long, value_name = "URL", env = "SYNCTRIG_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// The CA certificates (PEM) that sign the PostgreSQL server's certificate, for
    /// sslmode=verify-ca or verify-full (the URL's `sslrootcert`, if it has one, wins).
    #[arg(long, value_name = "FILE", env = "SYNCTRIG_DATABASE_CA_FILE")]
    database_ca_file: Option<PathBuf>,
    /// Most connections this node keeps to the PostgreSQL database (all nodes' together
    /// must stay under the server's max_connections). A request waits at most 10 s for one.
    #[arg(long, value_name = "N", default_value_t = store::postgres::DEFAULT_CONNECTIONS)]
    database_connections: usize,
    /// Region the service answers as: in identity ids and trigger events, and the region
    /// clients must sign for (their SDK's region setting).
    #[arg(long, default_value = "us-east-1", value_parser = parse_region)]
    region: String,
    /// An origin allowed to call the API from a browser (CORS), e.g.
    /// https://app.example.com; repeat for several, or `*` for any. None by default.
    #[arg(long = "cors-origin", value_name = "ORIGIN", value_parser = parse_origin)]
    cors_origins: Vec<String>,
    /// The URL clients reach this server at (e.g. https://sync.example.com, behind a TLS
    /// proxy): the issuer (`iss`) of the OpenID tokens it signs, whose keys it publishes
    /// at /.well-known/jwks.json [default: http://<listen address>].
    #[arg(long, value_name = "URL", value_parser = parse_public_url)]
    public_url: Option<String>,
    /// Longest a client may take to send a request's headers; also how long an idle
    /// keep-alive connection stays open.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    header_timeout_secs: u64,
    /// Longest a client may take to send a request's body (at most 4 MiB).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    body_timeout_secs: u64,
    /// Most open connections [default: 4096, or less when the file-descriptor limit is
    /// lower].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Most open connections from one client address; more are closed at once.
    #[arg(long, default_value_t = AdmissionConfig::default().max_connections_per_client)]
    max_connections_per_client: usize,
    /// GetId and GetCredentialsForIdentity calls per second from one client address
    /// (after a burst of 5 seconds' worth); more get TooManyRequestsException.
    #[arg(long, value_name = "N", default_value_t = AdmissionConfig::default().identity_calls_per_client.per_second)]
    identity_rate_per_client: u32,
    /// GetId and GetCredentialsForIdentity calls per second for one identity pool (after
    /// a burst of 5 seconds' worth); more get TooManyRequestsException.
    #[arg(long, value_name = "N", default_value_t = AdmissionConfig::default().identity_calls_per_pool.per_second)]
    identity_rate_per_pool: u32,
    /// The address of a reverse proxy (e.g. the TLS terminator) in front of this server;
    /// repeat for several. Its connections are not capped per address, and the client
    /// address it appends to X-Forwarded-For is the one rate limits count.
    #[arg(long = "trusted-proxy", value_name = "IP")]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Trigger worker threads [default: one per core].
    #[arg(long)]
    trigger_workers: Option<usize>,
    /// Most trigger invocations one identity pool may run at once, even when it is the
    /// only busy pool [default: every worker]. Under contention each busy pool gets an
    /// equal share of the workers whatever this says, so a spinning trigger holds only
    /// its share.
    #[arg(long)]
    trigger_slots_per_pool: Option<usize>,
    /// Most trigger invocations of one pool waiting for a slot; more are answered
    /// LambdaThrottledException.
    #[arg(long, default_value_t = 64)]
    trigger_queue_per_pool: usize,
    /// Memory for compiled triggers kept loaded, in MiB (measured as their artifacts'
    /// size); past it the least recently used are dropped and reload from the artifact
    /// cache when next needed.
    #[arg(long, value_name = "MIB", default_value_t = ServerConfig::default().trigger_memory_bytes >> 20)]
    trigger_memory_mib: usize,
    /// Most triggers compiled at once (each in a compile worker process) [default: half
    /// the cores, at least 1].
    #[arg(long)]
    compile_concurrency: Option<usize>,
    #[command(flatten)]
    streams: StreamArgs,
    #[command(flatten)]
    sandbox: SandboxArgs,
}

/// Cognito Streams and push sync: the NATS JetStream broker they publish to.
#[derive(Args, Debug)]
#[command(next_help_heading = "Cognito Streams and push sync (NATS JetStream)")]
struct StreamArgs {
    /// The NATS server Cognito Streams and push sync publish to, with JetStream enabled:
    /// nats://HOST:4222 (tls://… for TLS; comma-separated URLs of a cluster; user and
    /// password may be in the URL). Without it, neither can be turned on.
    #[arg(long = "nats", value_name = "URL", env = "SYNCTRIG_NATS_URL", hide_env_values = true)]
    url: Option<String>,
    /// A NATS credentials file (the JWT and NKey seed of a decentralised-auth user).
    #[arg(long = "nats-credentials", value_name = "FILE", env = "SYNCTRIG_NATS_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// A token, for a NATS server that authenticates with one.
    #[arg(long = "nats-token", value_name = "TOKEN", env = "SYNCTRIG_NATS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// CA certificates (PEM) that sign the NATS server's certificate; TLS is then required.
    #[arg(long = "nats-ca-file", value_name = "FILE", env = "SYNCTRIG_NATS_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Require TLS to the NATS server (verified against the system's roots unless
    /// --nats-ca-file names others).
    #[arg(long = "nats-tls")]
    require_tls: bool,
    /// The first token of every subject published: records go on
    /// PREFIX.streams.<StreamName>.<IdentityPoolId>, push messages on
    /// PREFIX.push.<IdentityPoolId>.<Platform>.
    #[arg(long = "nats-subject-prefix", value_name = "PREFIX", default_value = "synctrig", value_parser = parse_subject_token)]
    subject_prefix: String,
    /// The JetStream stream push messages go to (created if absent).
    #[arg(long = "nats-push-stream", value_name = "NAME", default_value = "SYNCTRIG_PUSH", value_parser = parse_subject_token)]
    push_stream: String,
    /// How long a stream this server creates keeps messages, in seconds (0: for ever).
    #[arg(long = "stream-max-age-secs", value_name = "SECS", default_value_t = 24 * 3600)]
    max_age_secs: u64,
    /// Most bytes a stream this server creates keeps; the oldest go first (-1: no limit).
    #[arg(long = "stream-max-bytes", value_name = "BYTES", default_value_t = -1, allow_negative_numbers = true)]
    max_bytes: i64,
    /// Replicas of each stream this server creates (on a clustered broker).
    #[arg(long = "stream-replicas", value_name = "N", default_value_t = 1)]
    replicas: usize,
    /// How long JetStream remembers a message id to drop a second copy, in seconds: the
    /// longest outage of this server's publishing after which nothing is stored twice.
    #[arg(long = "stream-duplicate-window-secs", value_name = "SECS", default_value_t = 600)]
    duplicate_window_secs: u64,
    /// Most changes not yet published one identity pool keeps (while the broker is
    /// unreachable); past it the pool's StreamingStatus becomes DISABLED with a
    /// DisabledReason, and updates go on.
    #[arg(long = "stream-outbox-max", value_name = "N", default_value_t = synctrig_store::streams::DEFAULT_OUTBOX_MAX,
          value_parser = clap::value_parser!(i64).range(1..))]
    outbox_max: i64,
}

impl StreamArgs {
    fn broker(&self) -> Option<synctrig_server::streams::BrokerConfig> {
        let url = self.url.clone()?;
        Some(synctrig_server::streams::BrokerConfig {
            url,
            credentials_file: self.credentials.clone(),
            token: self.token.clone(),
            user_password: None,
            ca_file: self.ca_file.clone(),
            require_tls: self.require_tls,
            subject_prefix: self.subject_prefix.clone(),
            push_stream: self.push_stream.clone(),
            max_age: Duration::from_secs(self.max_age_secs),
            max_bytes: self.max_bytes,
            replicas: self.replicas.max(1),
            duplicate_window: Duration::from_secs(self.duplicate_window_secs.max(1)),
        })
    }
}

/// A subject token or stream name: letters, digits, `-` and `_`.
fn parse_subject_token(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} must be letters, digits, '-' and '_'"))
    }
}

pub fn run(args: ServeArgs) -> ExitCode {
    match start(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synctrig-wasm serve: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `*`, or an origin as browsers send it: `scheme://host[:port]`, nothing after.
fn parse_origin(origin: &str) -> Result<String, String> {
    let valid = origin == "*"
        || origin.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
                && rest.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        });
    if valid {
        Ok(origin.to_owned())
    } else {
        Err(format!("{origin:?} is not an origin like https://app.example.com (no path, no trailing slash) or *"))
    }
}

/// `http(s)://host[:port][/path]`, kept without a trailing slash.
fn parse_public_url(url: &str) -> Result<String, String> {
    let url = url.trim_end_matches('/');
    let valid = ["http://", "https://"].iter().any(|scheme| {
        url.strip_prefix(scheme).is_some_and(|rest| {
            !rest.is_empty()
                && !rest.starts_with('/')
                && rest.chars().all(|c| c.is_ascii_alphanumeric() || "-._~:/[]%".contains(c))
        })
    });
    if valid { Ok(url.to_owned()) } else { Err(format!("{url:?} is not a URL like https://sync.example.com")) }
}

pub fn parse_region(region: &str) -> Result<String, String> {
    synctrig_runtime::limits::region_problem(region).map_or(Ok(region.to_owned()), Err)
}

/// Opens the store — the PostgreSQL database at `url`, or SQLite in `data_dir` — and
/// creates the data directory (private to this user) if needed.
pub async fn open_store(
    data_dir: &Path,
    url: Option<&str>,
    ca_file: Option<&Path>,
    connections: usize,
) -> anyhow::Result<Arc<Store>> {
    prepare_data_dir(data_dir).with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    // The CA is PostgreSQL's: it goes into a postgres:// URL only.
    let url = match (url, ca_file) {
        (Some(url), Some(ca)) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Some(store::postgres::tls::with_root_cert(url, ca))
        }
        (url, _) => url.map(str::to_owned),
    };
    let database = Database::choose(url.as_deref(), data_dir, connections).map_err(|e| anyhow::anyhow!(e))?;
    store::open(&database).await.with_context(|| format!("cannot open the database {}", database.redacted()))
}

async fn root_credentials(store: &Store) -> anyhow::Result<()> {
    let from_env = (std::env::var("SYNCTRIG_ROOT_ACCESS_KEY_ID"), std::env::var("SYNCTRIG_ROOT_SECRET_ACCESS_KEY"));
    let (ak, sk) = match from_env {
        (Ok(ak), Ok(sk)) if !ak.is_empty() && !sk.is_empty() => (ak, sk),
        _ => {
            let (ak, created) =
                store.meta_or_insert("root_access_key", format!("AKIAROOT{}", random_hex(6).to_uppercase())).await?;
            let (sk, _) = store.meta_or_insert("root_secret_key", random_hex(20)).await?;
            if created {
                eprintln!("generated root credentials (shown once; keep them safe):");
                eprintln!("  access key id:     {ak}");
                eprintln!("  secret access key: {sk}");
            }
            (ak, sk)
        }
    };
    store.put_root_credential(&ak, &sk).await?;
    Ok(())
}

fn start(args: ServeArgs) -> anyhow::Result<()> {
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    tokio.block_on(serve_with(args))
}

async fn serve_with(args: ServeArgs) -> anyhow::Result<()> {
    let store = open_store(
        &args.data_dir,
        args.database.as_deref(),
        args.database_ca_file.as_deref(),
        args.database_connections,
    )
    .await?;
    root_credentials(&*store).await?;
    let mut config = args.sandbox.runtime_config();
    config.cache_dir.get_or_insert_with(|| args.data_dir.join("artifacts"));
    let runtime = Arc::new(Runtime::new(config)?);
    let defaults = ServerConfig::default();
    let fd_room = raise_fd_limit().saturating_sub(256).max(64) as usize;
    let admission = AdmissionConfig {
        max_connections: args.max_connections.unwrap_or(defaults.admission.max_connections.min(fd_room)),
        max_connections_per_client: args.max_connections_per_client,
        identity_calls_per_client: rate(args.identity_rate_per_client),
        identity_calls_per_pool: rate(args.identity_rate_per_pool),
        trusted_proxies: args.trusted_proxies.clone(),
        ..defaults.admission.clone()
    };
    let server = ServerConfig {
        region: args.region.clone(),
        cors_origins: args.cors_origins.clone(),
        public_url: args.public_url.clone(),
        header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
        body_timeout: Duration::from_secs(args.body_timeout_secs.max(1)),
        admission,
        trigger_slots: args.trigger_workers.unwrap_or(defaults.trigger_slots).max(1),
        trigger_slots_per_pool: args.trigger_slots_per_pool.unwrap_or(defaults.trigger_slots_per_pool).max(1),
        trigger_queue_per_pool: args.trigger_queue_per_pool,
        trigger_memory_bytes: args.trigger_memory_mib << 20,
        compile_slots: args.compile_concurrency.unwrap_or(defaults.compile_slots).max(1),
        broker: args.streams.broker(),
        outbox_max: args.streams.outbox_max,
        ..defaults
    };
    let database = store.kind();
    let state = AppState::new(server, store, runtime).await.map_err(|e| anyhow::anyhow!(e.message))?;
    // Handlers first: a signal that arrives right after the address is printed must
    // still mean a graceful stop, not the default kill.
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("synctrig-wasm listening on http://{addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, data_dir = %args.data_dir.display(), database, "serving");
    serve(listener, state, shutdown).await?;
    tracing::info!("shut down");
    Ok(())
}

fn rate(per_second: u32) -> Rate {
    Rate { per_second, burst: per_second.saturating_mul(5) }
}

/// Raises the soft limit on open files to the hard limit (every connection is one) and
/// returns the limit in force.
fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!("cannot raise the open-file limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Resolves on SIGINT (ctrl-c) or SIGTERM; both handlers are installed on return.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
