//! The publisher: drains the outbox to NATS JetStream, and runs bulk publishes.
//!
//! One node at a time publishes (a lease in the database, renewed every round); any node
//! may take over when the holder stops. Each round reads the oldest entries and sends
//! them in waves: a wave sends the next entry of every dataset at once and waits for
//! JetStream's acknowledgements, so a dataset's next change goes only after its previous
//! one was stored (each dataset's changes are stored in SyncCount order). What was
//! acknowledged is removed at the end of the round: an entry is published at least once,
//! and its message id (pool/identity/dataset/SyncCount) makes JetStream drop a second
//! copy, so it is stored once.

use super::record::{self, Message};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use synctrig_store::Store;
use synctrig_store::streams::OutboxEntry;

/// Entries read per round.
const ROUND: i64 = 512;
/// Datasets a bulk publish sends per round.
const BULK_ROUND: i64 = 100;
/// How long the lease lasts unless renewed; a stopped holder is replaced after it.
const LEASE_MS: i64 = 15_000;
const LEASE: &str = "stream-publisher";
/// The pause after a round that found few entries: the publish lag it adds is small, and
/// each round costs reads and a write whatever it sends.
const GATHER: Duration = Duration::from_millis(20);

/// The broker and how streams are kept there (`serve --nats …`).
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// The NATS server(s): `nats://host:4222`, `tls://…`, comma-separated for a cluster.
    pub url: String,
    /// A NATS credentials file (JWT and NKey seed).
    pub credentials_file: Option<PathBuf>,
    /// A token, for servers that authenticate with one.
    pub token: Option<String>,
    /// User and password, when the URL does not carry them.
    pub user_password: Option<(String, String)>,
    /// CA certificates (PEM) that sign the broker's certificate; TLS is then required.
    pub ca_file: Option<PathBuf>,
    /// Require TLS even without a CA file (the system's roots).
    pub require_tls: bool,
    /// The first token of every subject this service publishes on.
    pub subject_prefix: String,
    /// The JetStream stream push messages go to.
    pub push_stream: String,
    /// How long a stream created here keeps messages (0: for ever).
    pub max_age: Duration,
    /// Most bytes a stream created here keeps (-1: no limit).
    pub max_bytes: i64,
    /// Replicas of a stream created here (a clustered broker).
    pub replicas: usize,
    /// How long JetStream remembers message ids to drop a second copy.
    pub duplicate_window: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            url: String::new(),
            credentials_file: None,
            token: None,
            user_password: None,
            ca_file: None,
            require_tls: false,
            subject_prefix: "synctrig".into(),
            push_stream: "SYNCTRIG_PUSH".into(),
            // Kinesis's default retention.
            max_age: Duration::from_secs(24 * 3600),
            max_bytes: -1,
            replicas: 1,
            duplicate_window: Duration::from_secs(600),
        }
    }
}

/// A connection to the broker.
struct Broker {
    jetstream: async_nats::jetstream::Context,
    client: async_nats::Client,
    /// Streams known to exist.
    ensured: HashSet<String>,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Connects to the broker (failing at once when it cannot be reached: the caller retries).
async fn connect(config: &BrokerConfig) -> Result<Broker, Error> {
    let mut options = async_nats::ConnectOptions::new()
        .name("synctrig-wasm")
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(10)))
        .max_reconnects(None);
    if let Some(path) = &config.credentials_file {
        options = options.credentials_file(path).await?;
    }
    if let Some(token) = &config.token {
        options = options.token(token.clone());
    }
    if let Some((user, password)) = &config.user_password {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(ca) = &config.ca_file {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if config.require_tls {
        options = options.require_tls(true);
    }
    let client = options.connect(config.url.as_str()).await?;
    let jetstream = async_nats::jetstream::new(client.clone());
    Ok(Broker { jetstream, client, ensured: HashSet::new() })
}

impl Broker {
    /// Creates the stream `name` (taking `subjects`) unless it exists.
    async fn ensure(&mut self, config: &BrokerConfig, name: &str, subjects: String) -> Result<(), Error> {
        if self.ensured.contains(name) {
            return Ok(());
        }
        self.jetstream
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: name.to_owned(),
                subjects: vec![subjects],
                max_age: config.max_age,
                max_bytes: config.max_bytes,
                num_replicas: config.replicas.max(1),
                duplicate_window: config.duplicate_window,
                ..Default::default()
            })
            .await?;
        self.ensured.insert(name.to_owned());
        Ok(())
    }

    fn max_payload(&self) -> usize {
        self.client.server_info().max_payload.max(4096)
    }

    /// Publishes each group's messages, all at once, then waits for their
    /// acknowledgements: whether every message of each group was acknowledged (a failed
    /// send fails its group and every later one).
    async fn publish(&self, groups: Vec<Vec<Message>>) -> Vec<bool> {
        let mut acks = Vec::with_capacity(groups.len());
        let mut sending = true;
        for group in groups {
            let mut pending = Vec::with_capacity(group.len());
            for m in group {
                if !sending {
                    break;
                }
                let publish =
                    async_nats::jetstream::message::PublishMessage::build().payload(m.payload.into()).message_id(m.id);
                match self.jetstream.send_publish(m.subject, publish).await {
                    Ok(ack) => pending.push(ack),
                    Err(e) => {
                        tracing::debug!("publish failed: {e}");
                        sending = false;
                    }
                }
            }
            acks.push((sending, pending));
        }
        let mut out = Vec::with_capacity(acks.len());
        for (sent, pending) in acks {
            let mut ok = sent;
            for ack in pending {
                if let Err(e) = ack.await {
                    tracing::debug!("publish not acknowledged: {e}");
                    ok = false;
                }
            }
            out.push(ok);
        }
        out
    }
}

/// Streams' metrics for `/metrics`.
#[derive(Default)]
pub struct StreamMetrics {
    inner: std::sync::Mutex<Figures>,
}

#[derive(Default, Clone)]
struct Figures {
    published: u64,
    failures: u64,
    outbox_depth: i64,
    connected: bool,
    /// Publish lag (commit to acknowledgement) in log buckets of milliseconds: 2^i.
    lag_buckets: [u64; 24],
    lag_sum_ms: u64,
}

impl StreamMetrics {
    fn with(&self, f: impl FnOnce(&mut Figures)) {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn lag(&self, ms: i64) {
        let ms = ms.max(0) as u64;
        let bucket = (64 - ms.leading_zeros() as usize).min(23);
        self.with(|f| {
            f.lag_buckets[bucket] += 1;
            f.lag_sum_ms += ms;
            f.published += 1;
        });
    }

    /// The Prometheus text of these figures.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let f = self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone();
        out.push_str(
            "# HELP synctrig_stream_published_total Outbox entries published and acknowledged by the broker.\n",
        );
        out.push_str("# TYPE synctrig_stream_published_total counter\n");
        let _ = writeln!(out, "synctrig_stream_published_total {}", f.published);
        out.push_str(
            "# HELP synctrig_stream_publish_failures_total Publish rounds that failed (retried with backoff).\n",
        );
        out.push_str("# TYPE synctrig_stream_publish_failures_total counter\n");
        let _ = writeln!(out, "synctrig_stream_publish_failures_total {}", f.failures);
        out.push_str(
            "# HELP synctrig_stream_outbox_depth Outbox entries waiting, all pools (as this node last read it).\n",
        );
        out.push_str("# TYPE synctrig_stream_outbox_depth gauge\n");
        let _ = writeln!(out, "synctrig_stream_outbox_depth {}", f.outbox_depth);
        out.push_str("# HELP synctrig_stream_broker_connected Whether this node is connected to the broker.\n");
        out.push_str("# TYPE synctrig_stream_broker_connected gauge\n");
        let _ = writeln!(out, "synctrig_stream_broker_connected {}", u8::from(f.connected));
        out.push_str("# HELP synctrig_stream_publish_lag_seconds From commit to the broker's acknowledgement.\n");
        out.push_str("# TYPE synctrig_stream_publish_lag_seconds histogram\n");
        let mut cumulative = 0;
        for (i, n) in f.lag_buckets.iter().enumerate() {
            cumulative += n;
            let le = (1u64 << i) as f64 / 1000.0;
            let _ = writeln!(out, "synctrig_stream_publish_lag_seconds_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "synctrig_stream_publish_lag_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "synctrig_stream_publish_lag_seconds_sum {}", f.lag_sum_ms as f64 / 1000.0);
        let _ = writeln!(out, "synctrig_stream_publish_lag_seconds_count {cumulative}");
    }
}

/// What the publisher keeps between rounds.
struct Publisher {
    /// This node's name on the lease.
    holder: String,
    broker: Option<Broker>,
    /// When the lease, held, is to be renewed (a third into its term).
    renew_at: Option<tokio::time::Instant>,
    /// When the outbox's depth is to be read again for the metrics.
    depth_at: tokio::time::Instant,
    /// When to look for bulk publishes in progress again.
    bulks_at: tokio::time::Instant,
}

/// Drains the outbox and runs bulk publishes until the task is dropped.
pub async fn run(store: Arc<Store>, config: BrokerConfig, metrics: Arc<StreamMetrics>) {
    let now = tokio::time::Instant::now();
    let mut p =
        Publisher { holder: synctrig_store::random_hex(8), broker: None, renew_at: None, depth_at: now, bulks_at: now };
    let mut backoff = Duration::from_millis(100);
    loop {
        match round(&*store, &config, &mut p, &metrics).await {
            Ok(sent) => {
                backoff = Duration::from_millis(100);
                // Nothing to send: look again shortly. A little: a moment to gather more,
                // which costs far less per change than a round for a few.
                if sent == 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                } else if sent < ROUND as usize / 8 {
                    tokio::time::sleep(GATHER).await;
                }
            }
            Err(e) => {
                tracing::warn!("publishing to the broker failed (retrying in {backoff:?}): {e}");
                metrics.with(|f| f.failures += 1);
                p.renew_at = None;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        metrics.with(|f| {
            f.connected = p
                .broker
                .as_ref()
                .is_some_and(|b| b.client.connection_state() == async_nats::connection::State::Connected)
        });
    }
}

/// One round: the lease, a batch of the outbox, then a page of a bulk publish; how many
/// entries and datasets it sent.
async fn round(
    store: &Store,
    config: &BrokerConfig,
    p: &mut Publisher,
    metrics: &StreamMetrics,
) -> Result<usize, Error> {
    let now = tokio::time::Instant::now();
    if now >= p.depth_at {
        if let Ok(depth) = store.outbox_depth().await {
            metrics.with(|f| f.outbox_depth = depth);
        }
        p.depth_at = now + Duration::from_secs(1);
    }
    // The lease is renewed a third into its term, not every round: a renewal is a write.
    if p.renew_at.is_none_or(|at| now >= at) {
        if !store.take_lease(LEASE, &p.holder, LEASE_MS).await? {
            // Another node publishes; take over if it stops.
            p.renew_at = None;
            tokio::time::sleep(Duration::from_secs(1)).await;
            return Ok(0);
        }
        p.renew_at = Some(now + Duration::from_millis(LEASE_MS as u64 / 3));
    }
    let entries = store.outbox(ROUND).await?;
    // Bulk publishes go beside the changes, looked for once a second.
    let bulks = if (entries.len() as i64) < ROUND && now >= p.bulks_at {
        p.bulks_at = now + Duration::from_secs(1);
        store.bulk_publishes_in_progress().await?
    } else {
        Vec::new()
    };
    if entries.is_empty() && bulks.is_empty() {
        return Ok(0);
    }
    if p.broker.is_none() {
        p.broker = Some(connect(config).await?);
    }
    let Some(b) = p.broker.as_mut() else { return Ok(0) };
    let result = async {
        drain(store, config, b, &entries, metrics).await?;
        if let Some(bulk) = bulks.first() {
            bulk_round(store, config, b, bulk).await?;
        }
        Ok::<_, Error>(())
    }
    .await;
    if result.is_err() {
        // Streams may have been deleted by the operator: check them again next time.
        b.ensured.clear();
    }
    // A bulk publish page counts as a full round: go on at once, with the next page.
    if !bulks.is_empty() {
        p.bulks_at = now;
    }
    result.map(|()| if bulks.is_empty() { entries.len() } else { ROUND as usize })
}

/// Publishes `entries` (the oldest of the outbox) in waves: each wave sends the next
/// entry of every dataset at once and waits for the acknowledgements, so a dataset's
/// entry goes only after its previous one was stored, and a dataset whose entry failed
/// sends nothing more this round. Removes what was acknowledged.
async fn drain(
    store: &Store,
    config: &BrokerConfig,
    b: &mut Broker,
    entries: &[OutboxEntry],
    metrics: &StreamMetrics,
) -> Result<(), Error> {
    // Each dataset's entries, oldest first.
    let mut chains: Vec<Vec<&OutboxEntry>> = Vec::new();
    let mut chain_of: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for e in entries {
        let key = (e.pool_id.as_str(), e.identity_id.as_str(), e.dataset.as_str());
        let i = *chain_of.entry(key).or_insert_with(|| {
            chains.push(Vec::new());
            chains.len() - 1
        });
        chains[i].push(e);
    }
    // Each pool's push applications, read once per round.
    let mut applications: HashMap<String, Vec<String>> = HashMap::new();
    let mut done = Vec::new();
    let mut failed = false;
    let mut stopped = vec![false; chains.len()];
    let waves = chains.iter().map(Vec::len).max().unwrap_or(0);
    for wave in 0..waves {
        let mut sent = Vec::new();
        let mut groups = Vec::new();
        for (i, chain) in chains.iter().enumerate() {
            let Some(e) = chain.get(wave).filter(|_| !stopped[i]) else { continue };
            groups.push(messages(store, config, b, e, &mut applications).await?);
            sent.push((i, *e));
        }
        let acknowledged = b.publish(groups).await;
        let now = synctrig_store::now_ms();
        for ((i, e), ok) in sent.into_iter().zip(acknowledged) {
            if ok {
                metrics.lag(now - e.at_ms);
                done.push(e.id);
            } else {
                stopped[i] = true;
                failed = true;
            }
        }
        if failed {
            // The broker is failing: keep what was stored, retry the rest after a pause.
            break;
        }
    }
    store.outbox_done(&done).await?;
    if failed {
        return Err("the broker did not acknowledge every message (retried)".into());
    }
    Ok(())
}

/// The messages of one outbox entry: its stream record (in parts if large) and a push
/// message per subscribed device.
async fn messages(
    store: &Store,
    config: &BrokerConfig,
    b: &mut Broker,
    e: &OutboxEntry,
    applications: &mut HashMap<String, Vec<String>>,
) -> Result<Vec<Message>, Error> {
    let prefix = &config.subject_prefix;
    let max_payload = b.max_payload();
    let mut out = Vec::new();
    if let Some(stream) = &e.stream_name {
        b.ensure(config, stream, record::stream_subjects(prefix, stream)).await?;
        out.extend(record::entry_messages(prefix, stream, e, max_payload));
    }
    if e.push
        && matches!(e.kind, synctrig_store::streams::ChangeKind::Update | synctrig_store::streams::ChangeKind::Delete)
    {
        let devices = store.subscribers(&e.identity_id, &e.dataset).await?;
        if !devices.is_empty() {
            if !applications.contains_key(&e.pool_id) {
                let pool = store.pool_configuration(&e.pool_id).await?;
                applications.insert(e.pool_id.clone(), pool.push.map(|p| p.application_arns).unwrap_or_default());
            }
            b.ensure(config, &config.push_stream, record::push_subjects(prefix)).await?;
            let arns = applications.get(&e.pool_id).map_or(&[][..], Vec::as_slice);
            out.extend(record::push_messages(prefix, e, &devices, arns));
        }
    }
    Ok(out)
}

/// Sends one page of a bulk publish; ends it when every dataset was sent.
async fn bulk_round(
    store: &Store,
    config: &BrokerConfig,
    b: &mut Broker,
    bulk: &synctrig_store::streams::BulkPublish,
) -> Result<(), Error> {
    let streaming = store.pool_configuration(&bulk.pool_id).await?.streams.is_some_and(|s| s.enabled);
    if !streaming {
        let end = Some(Err("streaming was disabled for the identity pool during the bulk publish".to_owned()));
        store.advance_bulk_publish(&bulk.pool_id, bulk.started_ms, None, end).await?;
        return Ok(());
    }
    let page = store.bulk_page(&bulk.pool_id, bulk.cursor.as_ref(), BULK_ROUND).await?;
    let prefix = &config.subject_prefix;
    b.ensure(config, &bulk.stream_name, record::stream_subjects(prefix, &bulk.stream_name)).await?;
    let max_payload = b.max_payload();
    let groups: Vec<Vec<Message>> = page
        .iter()
        .map(|d| record::bulk_messages(prefix, &bulk.stream_name, &bulk.pool_id, d, bulk.started_ms, max_payload))
        .collect();
    if !b.publish(groups).await.into_iter().all(|ok| ok) {
        return Err("the broker did not acknowledge every message of a bulk publish page (retried)".into());
    }
    let cursor = page.last().map(|d| (d.identity_id.clone(), d.name.clone()));
    let end = ((page.len() as i64) < BULK_ROUND).then_some(Ok(()));
    store.advance_bulk_publish(&bulk.pool_id, bulk.started_ms, cursor.as_ref(), end).await?;
    Ok(())
}
