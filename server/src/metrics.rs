//! Counters for `/metrics`, in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    request_seconds: BTreeMap<String, (f64, u64)>,
    invocations: BTreeMap<String, u64>,
    invocation_seconds: (f64, u64),
    fuel: u64,
    refused_connections: u64,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics(Mutex<Inner>);

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one request of `operation` answered with `status` after `seconds`.
    pub fn request(&self, operation: &str, status: u16, seconds: f64) {
        let mut m = self.lock();
        *m.requests.entry((operation.to_owned(), status)).or_default() += 1;
        let d = m.request_seconds.entry(operation.to_owned()).or_default();
        d.0 += seconds;
        d.1 += 1;
    }

    /// Counts one trigger invocation with its outcome, wall time and fuel.
    pub fn invocation(&self, outcome: &str, seconds: f64, fuel: u64) {
        let mut m = self.lock();
        match m.invocations.get_mut(outcome) {
            Some(n) => *n += 1,
            None => {
                m.invocations.insert(outcome.to_owned(), 1);
            }
        }
        m.invocation_seconds.0 += seconds;
        m.invocation_seconds.1 += 1;
        m.fuel += fuel;
    }

    /// Counts a connection closed at once because it passed a connection cap.
    pub fn refused_connection(&self) {
        self.lock().refused_connections += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let m = self.lock();
        let mut out = String::new();
        out.push_str("# HELP synctrig_requests_total API requests by operation and HTTP status.\n");
        out.push_str("# TYPE synctrig_requests_total counter\n");
        for ((op, status), n) in &m.requests {
            let _ = writeln!(out, "synctrig_requests_total{{operation=\"{op}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP synctrig_request_duration_seconds Time spent answering requests.\n");
        out.push_str("# TYPE synctrig_request_duration_seconds summary\n");
        for (op, (sum, count)) in &m.request_seconds {
            let _ = writeln!(out, "synctrig_request_duration_seconds_sum{{operation=\"{op}\"}} {sum}");
            let _ = writeln!(out, "synctrig_request_duration_seconds_count{{operation=\"{op}\"}} {count}");
        }
        out.push_str("# HELP synctrig_trigger_invocations_total Sync Trigger invocations by outcome.\n");
        out.push_str("# TYPE synctrig_trigger_invocations_total counter\n");
        for (outcome, n) in &m.invocations {
            let _ = writeln!(out, "synctrig_trigger_invocations_total{{outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP synctrig_trigger_duration_seconds Wall time of trigger invocations.\n");
        out.push_str("# TYPE synctrig_trigger_duration_seconds summary\n");
        let _ = writeln!(out, "synctrig_trigger_duration_seconds_sum {}", m.invocation_seconds.0);
        let _ = writeln!(out, "synctrig_trigger_duration_seconds_count {}", m.invocation_seconds.1);
        out.push_str("# HELP synctrig_trigger_fuel_total Fuel consumed by trigger invocations.\n");
        out.push_str("# TYPE synctrig_trigger_fuel_total counter\n");
        let _ = writeln!(out, "synctrig_trigger_fuel_total {}", m.fuel);
        out.push_str(
            "# HELP synctrig_refused_connections_total Connections closed at once for passing a connection cap.\n",
        );
        out.push_str("# TYPE synctrig_refused_connections_total counter\n");
        let _ = writeln!(out, "synctrig_refused_connections_total {}", m.refused_connections);
        out
    }
}
