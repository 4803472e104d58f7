//! Admission control: what one client can hold or mint, so that no client locks the
//! others out.
//!
//! - Connections: at most `max_connections` in all and `max_connections_per_client` from
//!   one address; a connection past either is closed at once.
//! - Credential minting (GetId, GetCredentialsForIdentity): token buckets per client
//!   address and per identity pool; past them, `TooManyRequestsException`.

use super::error::ApiError;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

/// A sustained rate with a burst allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Calls per second, sustained.
    pub per_second: u32,
    /// Calls allowed at once after a quiet spell.
    pub burst: u32,
}

impl Rate {
    fn quota(self) -> Quota {
        let per_second = NonZeroU32::new(self.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Quota::per_second(per_second).allow_burst(burst)
    }
}

/// The limits admission control enforces.
#[derive(Clone, Debug)]
pub struct AdmissionConfig {
    /// Most open connections in all.
    pub max_connections: usize,
    /// Most open connections from one client address.
    pub max_connections_per_client: usize,
    /// GetId and GetCredentialsForIdentity calls per client address.
    pub identity_calls_per_client: Rate,
    /// GetId and GetCredentialsForIdentity calls per identity pool.
    pub identity_calls_per_pool: Rate,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_connections: 4096,
            max_connections_per_client: 128,
            identity_calls_per_client: Rate { per_second: 20, burst: 100 },
            identity_calls_per_pool: Rate { per_second: 200, burst: 1000 },
        }
    }
}

/// Admission state shared by the listener and the handlers.
pub struct Admission {
    config: AdmissionConfig,
    connections: Mutex<Connections>,
    by_client: DefaultKeyedRateLimiter<IpAddr>,
    by_pool: DefaultKeyedRateLimiter<String>,
}

#[derive(Default)]
struct Connections {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// An admitted connection; dropping it frees its place.
pub struct ConnectionPermit {
    admission: Arc<Admission>,
    client: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut c = self.admission.connections.lock().unwrap_or_else(|e| e.into_inner());
        c.total -= 1;
        if let Some(n) = c.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                c.per_client.remove(&self.client);
            }
        }
    }
}

impl Admission {
    /// Admission control with `config`.
    pub fn new(config: AdmissionConfig) -> Arc<Self> {
        Arc::new(Admission {
            by_client: RateLimiter::keyed(config.identity_calls_per_client.quota()),
            by_pool: RateLimiter::keyed(config.identity_calls_per_pool.quota()),
            connections: Mutex::default(),
            config,
        })
    }

    /// Admits a connection from `client`, or `None` when it would pass a cap.
    pub fn connect(self: &Arc<Self>, client: IpAddr) -> Option<ConnectionPermit> {
        let mut c = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let from_client = c.per_client.get(&client).copied().unwrap_or(0);
        if c.total >= self.config.max_connections || from_client >= self.config.max_connections_per_client {
            return None;
        }
        c.total += 1;
        c.per_client.insert(client, from_client + 1);
        Some(ConnectionPermit { admission: self.clone(), client })
    }

    /// Open connections: (in all, from `client`).
    pub fn open_connections(&self, client: IpAddr) -> (usize, usize) {
        let c = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        (c.total, c.per_client.get(&client).copied().unwrap_or(0))
    }

    /// Counts a credential-minting call from `client`.
    pub fn identity_call_from(&self, client: IpAddr) -> Result<(), ApiError> {
        self.by_client.check_key(&client).map_err(|_| {
            ApiError::too_many_requests("too many GetId/GetCredentialsForIdentity calls from this address; retry later")
        })
    }

    /// Counts a credential-minting call for `pool`.
    pub fn identity_call_for(&self, pool: &str) -> Result<(), ApiError> {
        self.by_pool.check_key(&pool.to_owned()).map_err(|_| {
            ApiError::too_many_requests(
                "too many GetId/GetCredentialsForIdentity calls for this identity pool; retry later",
            )
        })
    }

    /// Forgets rate-limit state of keys that are back to full allowance.
    pub fn sweep(&self) {
        self.by_client.retain_recent();
        self.by_client.shrink_to_fit();
        self.by_pool.retain_recent();
        self.by_pool.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_per_client_and_freed_on_drop() {
        let admission = Admission::new(AdmissionConfig {
            max_connections: 3,
            max_connections_per_client: 2,
            ..AdmissionConfig::default()
        });
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let first = admission.connect(a).unwrap();
        let _second = admission.connect(a).unwrap();
        assert!(admission.connect(a).is_none(), "per-client cap");
        let _third = admission.connect(b).unwrap();
        assert!(admission.connect(b).is_none(), "total cap");
        drop(first);
        assert_eq!(admission.open_connections(a), (2, 1));
        assert!(admission.connect(b).is_some());
    }

    #[test]
    fn minting_is_rate_limited_per_client_and_per_pool() {
        let admission = Admission::new(AdmissionConfig {
            identity_calls_per_client: Rate { per_second: 1, burst: 3 },
            identity_calls_per_pool: Rate { per_second: 1, burst: 2 },
            ..AdmissionConfig::default()
        });
        let client: IpAddr = "127.0.0.2".parse().unwrap();
        let allowed = (0..10).filter(|_| admission.identity_call_from(client).is_ok()).count();
        assert_eq!(allowed, 3);
        let other: IpAddr = "127.0.0.3".parse().unwrap();
        assert!(admission.identity_call_from(other).is_ok(), "another address has its own bucket");
        let e = admission
            .identity_call_for("p")
            .and(admission.identity_call_for("p"))
            .and(admission.identity_call_for("p"));
        assert_eq!(e.unwrap_err().name, "TooManyRequestsException");
    }
}
