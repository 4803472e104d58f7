//! Load test of `synctrig-wasm serve`: UpdateRecords with a Sync Trigger, at a fixed
//! concurrency, on loopback, bounded in requests and time; then the same load while a
//! noisy neighbour's trigger spins until it is stopped.
//!
//! `cargo run --release -p synctrig-tests --bin loadgen -- [REQUESTS] [CONCURRENCY] [SECONDS]`
//! (defaults 20000, 32, 20). It starts the release server itself on 127.0.0.1:0 with a
//! fresh data dir, and prints a summary. With `SYNCTRIG_DATABASE_URL` (an empty
//! PostgreSQL database) the server uses it; `LOADGEN_NODES=N` then starts N servers on
//! it and spreads the connections over them (`tests/bench-backends.sh` runs SQLite, one
//! PostgreSQL node and two side by side). `LOADGEN_PHASES=alone` runs only the first
//! phase (the quiet tenant alone), for sweeps over the concurrency; `LOADGEN_PHASES=releases`
//! (or `canary`) instead alternates the quiet tenant's trigger named plainly, the same
//! trigger behind an alias that sends 10% of the syncs to a second version, and the plain
//! trigger with every invocation recorded (`LOADGEN_ROUNDS` rounds of each, 3 by default),
//! for the cost of routing, release figures and recording; then it times a replay of the
//! 1,000 recordings kept. `LOADGEN_PHASES=streams` starts a throwaway `nats-server -js`
//! beside the server and alternates the quiet tenant's pool with Cognito Streams disabled
//! and enabled (`LOADGEN_ROUNDS` rounds of each, in ABBA order), then reports the throughput and p99
//! ratios and the publish lag (commit to the broker's acknowledgement) from `/metrics`.
//!
//! `LOADGEN_PHASES=trigger` alternates only the first two (with and without the trigger, in
//! ABBA order) for `LOADGEN_ROUNDS` rounds, for the trigger's cost alone. Its baseline skips
//! the trigger with developer credentials; `LOADGEN_BASELINE=unset` keeps the identities'
//! credentials and clears the pool's SyncTrigger instead, so that the two phases differ in the
//! trigger alone (identity credentials cost more to check than a developer's).
//!
//! By default it runs `LOADGEN_ROUNDS` rounds (1 unless set) of three phases — the quiet
//! tenant alone, the same updates without the trigger, the quiet tenant beside the noisy one —
//! and prints each round's ratios (trigger / no trigger throughput, p99 beside / alone) and
//! their range. `LOADGEN_TRIGGER=NAME` gives the quiet tenant another built guest component
//! instead of the sample trigger (e.g. `identity`, which returns its event unchanged), in every
//! phase but `releases` and `canary`. `LOADGEN_CPU_HOG=1` runs the `cpu-hog` binary (built
//! beside this one with `--bin cpu-hog`) through every phase: one core spinning at normal
//! priority, as other processes on a shared machine would.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use synctrig_sigv4 as sigv4;
use synctrig_tests::{guest, workspace_root};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const ROOT: (&str, &str) = ("AKIALOADROOT", "load-root-secret");

/// The built guest the quiet tenant's trigger is: `LOADGEN_TRIGGER`, or the sample.
fn trigger_guest() -> String {
    std::env::var("LOADGEN_TRIGGER").unwrap_or_else(|_| "sample_trigger".into())
}

/// The quiet tenant's trigger, for the reports' headers.
fn trigger_label() -> String {
    match trigger_guest().as_str() {
        "sample_trigger" => "the sample trigger".into(),
        other => format!("the {other} guest as its trigger"),
    }
}

struct Server {
    child: Child,
    bin: PathBuf,
    data: PathBuf,
    addr: String,
}

impl Server {
    fn start(data: &Path, extra: &[String]) -> Server {
        // LOADGEN_SERVER_BIN runs another build (e.g. the previous commit's, for before/after).
        let bin = std::env::var_os("LOADGEN_SERVER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target/release/synctrig-wasm"));
        assert!(bin.exists(), "build the server first: cargo build --release -p synctrig-wasm");
        let mut child = Command::new(&bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            // Every worker mints its credentials at once, from one address.
            .args(["--identity-rate-per-client", "100000"])
            // Extra serve flags for experiments, e.g. LOADGEN_SERVE_ARGS="--trigger-slots-per-pool 2".
            .args(std::env::var("LOADGEN_SERVE_ARGS").unwrap_or_default().split_whitespace())
            .args(extra)
            .env("SYNCTRIG_ROOT_ACCESS_KEY_ID", ROOT.0)
            .env("SYNCTRIG_ROOT_SECRET_ACCESS_KEY", ROOT.1)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start server");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
        Server { child, bin, data: data.to_owned(), addr }
    }

    fn admin(&self, args: &[&str]) -> Value {
        let out = Command::new(&self.bin).arg("admin").arg("--data-dir").arg(&self.data).args(args).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(out.status.success(), "{v}");
        v
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time the servers have used (user and system), in seconds.
fn cpu_seconds(servers: &[Server]) -> f64 {
    let ticks = |pid: u32| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The fields after the command's closing parenthesis; utime and stime are 14 and 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let get = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        get(14) + get(15)
    };
    // Linux counts in clock ticks of 1/100 s.
    servers.iter().map(|s| ticks(s.child.id())).sum::<f64>() / 100.0
}

/// A keep-alive HTTP/1.1 connection.
struct Conn {
    stream: BufReader<TcpStream>,
    host: String,
}

type Creds = (String, String, Option<String>);

impl Conn {
    async fn open(host: &str) -> Conn {
        let stream = TcpStream::connect(host).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        Conn { stream: BufReader::new(stream), host: host.to_owned() }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        extra: &[(&str, &str)],
        creds: Option<&Creds>,
        body: &[u8],
    ) -> (u16, Value) {
        let mut headers: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if let Some((ak, sk, token)) = creds {
            headers.extend(sigv4::sign(
                method,
                &self.host,
                path,
                query,
                body,
                (ak, sk, token.as_deref()),
                "us-east-1",
                "cognito-sync",
                SystemTime::now(),
            ));
        }
        let target = if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") };
        let mut req =
            format!("{method} {target} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n", self.host, body.len());
        for (k, v) in &headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let stream = self.stream.get_mut();
        stream.write_all(req.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut line = String::new();
        self.stream.read_line(&mut line).await.unwrap();
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
        let mut len = 0;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap();
            }
        }
        let mut buf = vec![0; len];
        self.stream.read_exact(&mut buf).await.unwrap();
        (status, serde_json::from_slice(&buf).unwrap_or(Value::Null))
    }
}

fn enc(id: &str) -> String {
    id.replace(':', "%3A")
}

/// A throwaway NATS server with JetStream: a temp store, a free port.
struct Broker {
    child: Child,
    url: String,
}

impl Broker {
    fn start(dir: &Path) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (tests/install-system-packages.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker { child, url: format!("nats://127.0.0.1:{port}") }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's `/metrics` text.
async fn metrics(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET /metrics HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

/// A metric's value (the first line that names it exactly).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The publish-lag histogram's cumulative buckets: (upper bound in seconds, count).
fn lag_buckets(text: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("synctrig_stream_publish_lag_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            Some((if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? }, count.trim().parse().ok()?))
        })
        .collect()
}

/// SetIdentityPoolConfiguration: `pool`'s stream `loadgen`, enabled or disabled.
async fn set_streaming(admin: &mut Conn, root: &Creds, pool: &str, on: bool) {
    let status = if on { "ENABLED" } else { "DISABLED" };
    let body = json!({"CognitoStreams": {"StreamName": "loadgen", "StreamingStatus": status}}).to_string();
    let (code, v) = admin
        .send(
            "POST",
            &format!("/identitypools/{}/configuration", enc(pool)),
            "",
            &[("content-type", "application/json")],
            Some(root),
            body.as_bytes(),
        )
        .await;
    assert_eq!(code, 200, "{v}");
}

/// Streams disabled vs enabled, alternating rounds on the quiet pool; then the ratios and
/// the publish lag.
async fn streams_phase(
    servers: &[Server],
    pool: &str,
    requests: usize,
    concurrency: usize,
    seconds: u64,
    database: &str,
) {
    let rounds: usize = std::env::var("LOADGEN_ROUNDS").ok().map_or(3, |n| n.parse().expect("LOADGEN_ROUNDS"));
    println!(
        "serve load test ({database}, {} node(s)): {concurrency} connections, UpdateRecords with {}, \
         Cognito Streams disabled vs enabled (a local nats-server -js), {rounds} rounds of up to {requests} requests \
         or {seconds} s",
        servers.len(),
        trigger_label()
    );
    let root: Creds = (ROOT.0.into(), ROOT.1.into(), None);
    let addr = &servers[0].addr;
    let mut reports: [Vec<Report>; 2] = [Vec::new(), Vec::new()];
    let mut drains = Vec::new();
    let before = lag_buckets(&metrics(addr).await);
    // ABBA order: the store grows as the run goes, which must not favour either side.
    for round in 0..rounds {
        let order = if round % 2 == 0 { [false, true] } else { [true, false] };
        for on in order {
            let into = &mut reports[usize::from(on)];
            let mut admin = Conn::open(addr).await;
            set_streaming(&mut admin, &root, pool, on).await;
            let mut workers = Vec::new();
            for i in 0..concurrency {
                workers.push(identity(&servers[i % servers.len()].addr, pool).await);
            }
            let r = run_load(workers, requests, seconds, Arc::new(AtomicBool::new(false))).await;
            print(if on { "streams enabled" } else { "streams disabled (baseline)" }, &r);
            into.push(r);
            if on {
                // How long the outbox takes to empty once the load stops.
                let started = Instant::now();
                loop {
                    let m = metrics(addr).await;
                    if metric(&m, "synctrig_stream_outbox_depth") == 0.0 {
                        break;
                    }
                    assert!(started.elapsed() < Duration::from_secs(120), "the outbox did not drain");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                drains.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    let text = metrics(addr).await;
    println!(
        "streams enabled / disabled: throughput {:.3}x, p50 {:.2}x, p99 {:.2}x (medians of rounds)",
        rate(&reports[1]) / rate(&reports[0]),
        median(&reports[1], |r| r.p50) / median(&reports[0], |r| r.p50),
        median(&reports[1], |r| r.p99) / median(&reports[0], |r| r.p99)
    );
    let after = lag_buckets(&text);
    let delta: Vec<(f64, f64)> =
        after.iter().map(|&(le, n)| (le, n - before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1))).collect();
    let total = delta.last().map_or(0.0, |b| b.1);
    let quantile = |q: f64| delta.iter().find(|b| b.1 >= total * q).map_or(f64::NAN, |b| b.0 * 1e3);
    println!(
        "published {} entries ({} failed rounds); publish lag p50 <= {} ms, p99 <= {} ms (histogram bounds); \
         outbox empty {:.0} ms after each enabled round's load stopped (worst)",
        metric(&text, "synctrig_stream_published_total"),
        metric(&text, "synctrig_stream_publish_failures_total"),
        quantile(0.5),
        quantile(0.99),
        drains.iter().cloned().fold(0.0, f64::max)
    );
}

struct Worker {
    conn: Conn,
    creds: Creds,
    path: String,
    token: String,
    count: i64,
}

/// An identity of `pool` with its credentials, a session token and a connection.
async fn identity(addr: &str, pool: &str) -> Worker {
    let mut conn = Conn::open(addr).await;
    let target = |op: &str| format!("AWSCognitoIdentityService.{op}");
    let (_, id) = conn
        .send(
            "POST",
            "/",
            "",
            &[("x-amz-target", &target("GetId")), ("content-type", "application/x-amz-json-1.1")],
            None,
            json!({"IdentityPoolId": pool}).to_string().as_bytes(),
        )
        .await;
    let identity = id["IdentityId"].as_str().unwrap().to_owned();
    let (_, c) = conn
        .send(
            "POST",
            "/",
            "",
            &[("x-amz-target", &target("GetCredentialsForIdentity")), ("content-type", "application/x-amz-json-1.1")],
            None,
            json!({"IdentityId": identity}).to_string().as_bytes(),
        )
        .await;
    let c = &c["Credentials"];
    let creds = (
        c["AccessKeyId"].as_str().unwrap().to_owned(),
        c["SecretKey"].as_str().unwrap().to_owned(),
        Some(c["SessionToken"].as_str().unwrap().to_owned()),
    );
    let path = format!("/identitypools/{}/identities/{}/datasets/load", enc(pool), enc(&identity));
    let (status, listing) = conn.send("GET", &format!("{path}/records"), "", &[], Some(&creds), b"").await;
    assert_eq!(status, 200, "{listing}");
    let token = listing["SyncSessionToken"].as_str().unwrap().to_owned();
    Worker { conn, creds, path, token, count: 0 }
}

impl Worker {
    /// One sync as clients make it: ListRecords since the last count (a fresh session token:
    /// each token allows one push), then UpdateRecords; returns (status, latency of the
    /// UpdateRecords).
    async fn update(&mut self) -> (u16, Duration) {
        let query = format!("lastSyncCount={}", self.count);
        let (status, listing) =
            self.conn.send("GET", &format!("{}/records", self.path), &query, &[], Some(&self.creds.clone()), b"").await;
        if status != 200 {
            return (status, Duration::ZERO);
        }
        self.token = listing["SyncSessionToken"].as_str().unwrap_or_default().to_owned();
        let body = json!({
            "SyncSessionToken": self.token,
            "DeviceId": "loadgen",
            "RecordPatches": [{"Op": "replace", "Key": "counter", "Value": (self.count + 1).to_string(), "SyncCount": self.count}]
        })
        .to_string();
        let start = Instant::now();
        let (status, response) = self
            .conn
            .send(
                "POST",
                &self.path.clone(),
                "",
                &[("content-type", "application/json")],
                Some(&self.creds.clone()),
                body.as_bytes(),
            )
            .await;
        let elapsed = start.elapsed();
        if status == 200
            && let Some(records) = response["Records"].as_array()
            && let Some(r) = records.iter().find(|r| r["Key"] == "counter")
        {
            self.count = r["SyncCount"].as_i64().unwrap();
        }
        (status, elapsed)
    }
}

struct Report {
    ok: usize,
    errors: usize,
    seconds: f64,
    p50: f64,
    p99: f64,
}

async fn run_load(workers: Vec<Worker>, requests: usize, seconds: u64, stop: Arc<AtomicBool>) -> Report {
    let issued = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            let issued = issued.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut errors = 0;
                while issued.fetch_add(1, Ordering::Relaxed) < requests
                    && Instant::now() < deadline
                    && !stop.load(Ordering::Relaxed)
                {
                    let (status, t) = w.update().await;
                    if status == 200 { samples.push(t) } else { errors += 1 }
                }
                (samples, errors)
            })
        })
        .collect();
    let mut samples = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (s, e) = t.await.unwrap();
        samples.extend(s);
        errors += e;
    }
    let seconds = start.elapsed().as_secs_f64();
    samples.sort();
    let p = |q: f64| {
        samples
            .get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    Report { ok: samples.len(), errors, seconds, p50: p(0.5), p99: p(0.99) }
}

/// Requests per second over several rounds.
fn rate(rs: &[Report]) -> f64 {
    rs.iter().map(|r| r.ok as f64).sum::<f64>() / rs.iter().map(|r| r.seconds).sum::<f64>()
}

/// The median over rounds of one figure.
fn median(rs: &[Report], f: fn(&Report) -> f64) -> f64 {
    let mut v: Vec<f64> = rs.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn print(label: &str, r: &Report) {
    println!(
        "{label:<34} {:>7} ok {:>5} errors in {:>6.2} s = {:>7.0} req/s; p50 {:>6.2} ms, p99 {:>6.2} ms",
        r.ok,
        r.errors,
        r.seconds,
        r.ok as f64 / r.seconds,
        r.p50,
        r.p99
    );
}

/// SetCognitoEvents: `pool`'s SyncTrigger becomes `mapping`.
async fn set_trigger(admin: &mut Conn, root: &Creds, pool: &str, mapping: &str) {
    let body = json!({"Events": {"SyncTrigger": mapping}}).to_string();
    let (status, v) = admin
        .send(
            "POST",
            &format!("/identitypools/{}/events", enc(pool)),
            "",
            &[("content-type", "application/json")],
            Some(root),
            body.as_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> =
        std::env::args().skip(1).map(|a| a.parse().expect("numbers: REQUESTS CONCURRENCY SECONDS")).collect();
    let (requests, concurrency, seconds) = (
        args.first().copied().unwrap_or(20_000),
        args.get(1).copied().unwrap_or(32),
        args.get(2).copied().unwrap_or(20) as u64,
    );
    // LOADGEN_DATA_DIR: serve a store made beforehand (node i's data dir is DIR/node<i>;
    // tests/bench-growth.sh imports large ones there).
    let scratch = tempfile::tempdir().unwrap();
    let data_root = std::env::var_os("LOADGEN_DATA_DIR").map_or_else(|| scratch.path().to_owned(), PathBuf::from);
    let nodes: usize = std::env::var("LOADGEN_NODES").ok().map_or(1, |n| n.parse().expect("LOADGEN_NODES: a number"));
    let database = std::env::var("SYNCTRIG_DATABASE_URL").map_or("sqlite", |_| "postgres");
    assert!(nodes == 1 || database == "postgres", "several nodes need SYNCTRIG_DATABASE_URL (one PostgreSQL database)");
    let phases = std::env::var("LOADGEN_PHASES").unwrap_or_default();
    let broker = (phases == "streams").then(|| Broker::start(&scratch.path().join("nats")));
    let extra: Vec<String> = broker.iter().flat_map(|b| ["--nats".to_owned(), b.url.clone()]).collect();
    let servers: Vec<Server> =
        (0..nodes.max(1)).map(|i| Server::start(&data_root.join(format!("node{i}")), &extra)).collect();
    let server = &servers[0];
    // Worker `i` talks to node `i % nodes`.
    let addr = |i: usize| servers[i % servers.len()].addr.clone();
    let quiet = server.admin(&["create-tenant", "quiet"]);
    let quiet_pool = server.admin(&["create-pool", "--tenant", "quiet", "--name", "quiet"])["identityPoolId"]
        .as_str()
        .unwrap()
        .to_owned();
    server.admin(&[
        "deploy",
        "--tenant",
        "quiet",
        "--name",
        "sample",
        "--wasm",
        // LOADGEN_TRIGGER=identity: a trigger that returns its event unchanged.
        guest(&trigger_guest()).to_str().unwrap(),
    ]);
    server.admin(&["create-tenant", "noisy"]);
    let noisy_pool = server.admin(&["create-pool", "--tenant", "noisy", "--name", "noisy"])["identityPoolId"]
        .as_str()
        .unwrap()
        .to_owned();
    let noisy_dev = server.admin(&[
        "deploy",
        "--tenant",
        "noisy",
        "--name",
        "spin",
        "--wasm",
        guest("infinite_loop").to_str().unwrap(),
    ]);
    let _ = noisy_dev;
    let root: Creds = (ROOT.0.into(), ROOT.1.into(), None);
    let mut admin = Conn::open(&server.addr).await;
    for (pool, function) in [(&quiet_pool, "sample"), (&noisy_pool, "spin")] {
        set_trigger(&mut admin, &root, pool, function).await;
    }

    if broker.is_some() {
        streams_phase(&servers, &quiet_pool, requests, concurrency, seconds, database).await;
        return;
    }
    if phases == "canary" || phases == "releases" {
        // Version 2 is the sample: another first version would mix two triggers in the canary.
        assert_eq!(trigger_guest(), "sample_trigger", "LOADGEN_TRIGGER does not apply to LOADGEN_PHASES={phases}");
        let sample = guest("sample_trigger");
        server.admin(&["deploy", "--tenant", "quiet", "--name", "sample", "--wasm", sample.to_str().unwrap()]);
        let alias = ["alias", "--tenant", "quiet", "--name", "sample", "--alias", "live", "--version", "1"];
        server.admin(&[&alias[..], &["--canary", "2", "--weight", "0.1"]].concat());
        let rounds: usize = std::env::var("LOADGEN_ROUNDS").ok().map_or(3, |n| n.parse().expect("LOADGEN_ROUNDS"));
        println!(
            "serve load test ({database}, {} node(s)): {concurrency} connections, UpdateRecords with the sample trigger, \
             plain vs behind an alias with a 10% canary vs recording every invocation, {rounds} rounds of up to \
             {requests} requests or {seconds} s",
            servers.len()
        );
        let recording = ["recording", "--tenant", "quiet", "--name", "sample"];
        // (label, SyncTrigger, recorded)
        let variants =
            [("plain", "sample", false), ("alias, 10% canary", "sample:live", false), ("recording on", "sample", true)];
        let mut reports: Vec<Vec<Report>> = variants.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            for ((label, mapping, recorded), into) in variants.iter().zip(&mut reports) {
                // A connection of its own each time: an idle one is closed after 10 s.
                let mut admin = Conn::open(&server.addr).await;
                set_trigger(&mut admin, &root, &quiet_pool, mapping).await;
                if *recorded {
                    server.admin(&recording);
                }
                let mut workers = Vec::new();
                for i in 0..concurrency {
                    workers.push(identity(&addr(i), &quiet_pool).await);
                }
                let r = run_load(workers, requests, seconds, Arc::new(AtomicBool::new(false))).await;
                print(label, &r);
                into.push(r);
                // Off deletes the recordings; the last round's are kept for the replay below.
                if *recorded && round + 1 < rounds {
                    server.admin(&[&recording[..], &["--off"]].concat());
                }
            }
        }
        for (i, (label, _, _)) in variants.iter().enumerate().skip(1) {
            println!(
                "{label} / plain: throughput {:.3}x, p50 {:.2}x, p99 {:.2}x (medians of rounds)",
                rate(&reports[i]) / rate(&reports[0]),
                median(&reports[i], |r| r.p50) / median(&reports[0], |r| r.p50),
                median(&reports[i], |r| r.p99) / median(&reports[0], |r| r.p99)
            );
        }
        let figures = server.admin(&["aliases", "--tenant", "quiet", "--name", "sample"]);
        println!("figures behind the alias: {}", figures["aliases"][0]["Figures"]);

        // The replay rate: version 2 on the 1,000 recordings kept, through the API.
        let dev: Creds = (
            quiet["accessKeyId"].as_str().unwrap().to_owned(),
            quiet["secretAccessKey"].as_str().unwrap().to_owned(),
            None,
        );
        let body = json!({"Version": 2, "MaxRecordings": 1000}).to_string();
        let mut admin = Conn::open(&server.addr).await;
        let started = Instant::now();
        let (status, report) = admin
            .send(
                "POST",
                "/synctrig/functions/sample/replay",
                "",
                &[("content-type", "application/json")],
                Some(&dev),
                body.as_bytes(),
            )
            .await;
        let took = started.elapsed().as_secs_f64();
        assert_eq!(status, 200, "{report}");
        let replayed = report["Summary"]["Replayed"].as_u64().unwrap_or(0);
        println!(
            "replay of version 2 on {replayed} recordings: {took:.2} s, {:.0} invocations/s; summary {}",
            replayed as f64 / took,
            report["Summary"]
        );
        return;
    }

    println!(
        "serve load test ({database}, {} node(s)): {concurrency} connections, UpdateRecords with {}, up to {requests} requests or {seconds} s",
        servers.len(),
        trigger_label()
    );
    if phases == "alone" {
        let workers = workers_of(&servers, &quiet_pool, concurrency, None).await;
        phase("quiet tenant alone", &servers, workers, requests, seconds).await;
        return;
    }

    // LOADGEN_CPU_HOG=1: a process spinning one core at normal priority through every phase.
    let hog = std::env::var("LOADGEN_CPU_HOG").is_ok_and(|v| v == "1").then(Hog::start);
    let rounds: usize = std::env::var("LOADGEN_ROUNDS").ok().map_or(1, |n| n.parse().expect("LOADGEN_ROUNDS"));
    let dev: Creds =
        (quiet["accessKeyId"].as_str().unwrap().into(), quiet["secretAccessKey"].as_str().unwrap().into(), None);
    if phases == "trigger" {
        // The trigger's cost alone: the quiet tenant's updates with and without it, in
        // ABBA order (a drift of the machine's speed cancels), no noisy phase; after a
        // warm-up (the trigger's first load, the database's first pages).
        let workers = workers_of(&servers, &quiet_pool, concurrency, None).await;
        run_load(workers, requests / 4, seconds, Arc::new(AtomicBool::new(false))).await;
        let unset = std::env::var("LOADGEN_BASELINE").is_ok_and(|v| v == "unset");
        let mut ratios = Vec::new();
        for round in 1..=rounds {
            let mut reports = [None, None];
            for with_trigger in if round % 2 == 1 { [true, false] } else { [false, true] } {
                // The baseline skips the trigger with developer credentials, or (with
                // LOADGEN_BASELINE=unset) keeps the identities' credentials and clears the
                // pool's SyncTrigger: then the phases differ in the trigger alone.
                let creds = (!with_trigger && !unset).then_some(&dev);
                if unset {
                    let mut admin = Conn::open(&server.addr).await;
                    set_trigger(&mut admin, &root, &quiet_pool, if with_trigger { "sample" } else { "" }).await;
                }
                let workers = workers_of(&servers, &quiet_pool, concurrency, creds).await;
                let label = match (with_trigger, unset) {
                    (true, _) => "with the trigger",
                    (false, false) => "same updates, no trigger (developer credentials)",
                    (false, true) => "same updates, no trigger (SyncTrigger cleared)",
                };
                reports[usize::from(!with_trigger)] = Some(phase(label, &servers, workers, requests, seconds).await);
            }
            let [Some(with), Some(without)] = reports else { unreachable!() };
            let ratio = rate(std::slice::from_ref(&with)) / rate(std::slice::from_ref(&without)).max(1e-9);
            println!("round {round}: trigger / no trigger throughput {ratio:.3}x");
            ratios.push(ratio);
        }
        let (lo, hi) = ratios.iter().fold((f64::INFINITY, 0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        println!("over {rounds} rounds: trigger / no trigger {lo:.3}x to {hi:.3}x");
        return;
    }
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        println!("round {round} of {rounds}{}", if hog.is_some() { ", beside a CPU hog" } else { "" });
        let workers = workers_of(&servers, &quiet_pool, concurrency, None).await;
        let alone = phase("quiet tenant alone", &servers, workers, requests, seconds).await;
        // Baseline in the same round: the same updates with developer credentials, which
        // skip the trigger.
        let workers = workers_of(&servers, &quiet_pool, concurrency, Some(&dev)).await;
        let no_trigger = phase("same updates, no trigger (baseline)", &servers, workers, requests, seconds).await;

        let workers = workers_of(&servers, &quiet_pool, concurrency, None).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut noisy = Vec::new();
        for i in 0..4 {
            let mut w = identity(&addr(i), &noisy_pool).await;
            let stop = stop.clone();
            noisy.push(tokio::spawn(async move {
                let mut outcomes = 0;
                while !stop.load(Ordering::Relaxed) {
                    w.update().await;
                    outcomes += 1;
                }
                outcomes
            }));
        }
        let with_noise = phase("quiet tenant beside a noisy one", &servers, workers, requests, seconds).await;
        stop.store(true, Ordering::Relaxed);
        let mut noisy_requests = 0;
        for n in noisy {
            noisy_requests += n.await.unwrap();
        }
        println!("noisy tenant: 4 connections whose trigger spins until stopped; {noisy_requests} requests answered");
        let (trigger, noise) = (
            rate(std::slice::from_ref(&alone)) / rate(std::slice::from_ref(&no_trigger)).max(1e-9),
            with_noise.p99 / alone.p99.max(1e-9),
        );
        println!(
            "round {round}: trigger / no trigger throughput {trigger:.3}x; p99 beside a noisy one / alone {noise:.2}x"
        );
        ratios.push((trigger, noise));
    }
    if rounds > 1 {
        let range = |f: fn(&(f64, f64)) -> f64| {
            let v: Vec<f64> = ratios.iter().map(f).collect();
            (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(0.0, f64::max))
        };
        let ((t0, t1), (n0, n1)) = (range(|r| r.0), range(|r| r.1));
        println!(
            "over {rounds} rounds: trigger / no trigger {t0:.3}x to {t1:.3}x; p99 beside a noisy one / alone {n0:.2}x to {n1:.2}x"
        );
    }
}

/// `n` connections, each with a fresh identity of `pool` (connection `i` on node `i % nodes`),
/// signing as the identity or with `creds`.
async fn workers_of(servers: &[Server], pool: &str, n: usize, creds: Option<&Creds>) -> Vec<Worker> {
    let mut workers = Vec::new();
    for i in 0..n {
        let mut w = identity(&servers[i % servers.len()].addr, pool).await;
        if let Some(creds) = creds {
            w.creds = creds.clone();
        }
        workers.push(w);
    }
    workers
}

/// One phase of load, printed with the servers' CPU per sync.
async fn phase(label: &str, servers: &[Server], workers: Vec<Worker>, requests: usize, seconds: u64) -> Report {
    let cpu = cpu_seconds(servers);
    let report = run_load(workers, requests, seconds, Arc::new(AtomicBool::new(false))).await;
    print(label, &report);
    per_sync_cpu(cpu_seconds(servers) - cpu, &report);
    report
}

fn per_sync_cpu(cpu: f64, r: &Report) {
    println!(
        "server CPU: {cpu:.2} s for {} syncs = {:.0} µs per sync (ListRecords + UpdateRecords)",
        r.ok,
        cpu * 1e6 / r.ok.max(1) as f64
    );
}

/// The `cpu-hog` binary beside this one, killed when dropped.
struct Hog(Child);

impl Hog {
    fn start() -> Hog {
        let bin = std::env::current_exe().unwrap().with_file_name("cpu-hog");
        let child = Command::new(&bin)
            .spawn()
            .unwrap_or_else(|e| panic!("start {} (build it with --bin cpu-hog): {e}", bin.display()));
        Hog(child)
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
