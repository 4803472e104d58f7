//! Admission control: what one client can hold or mint, so that no client locks the
//! others out.
//!
//! - Connections: at most `max_connections` in all and `max_connections_per_client` from
//!   one address; a connection past either is closed at once.
//! - Request bodies in memory: a body up to [`SMALL_BODY_BYTES`] needs nothing (the
//!   connection caps bound those); a larger one must declare its length and take it from
//!   a per-address and a server-wide budget before it is read.
//! - Credential minting (GetId, GetCredentialsForIdentity): token buckets per client
//!   address and per identity pool; past them, `TooManyRequestsException`.
//!
//! "Address" means an IPv4 address or an IPv6 /64 (one host's usual allocation). Behind a
//! trusted proxy, the address is the one the proxy reports in `X-Forwarded-For`.

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
    /// Bytes of large request bodies held in memory at once, in all.
    pub body_bytes: usize,
    /// Bytes of large request bodies held in memory at once for one address.
    pub body_bytes_per_client: usize,
    /// Proxies whose connections are not capped per address and whose `X-Forwarded-For`
    /// names the client.
    pub trusted_proxies: Vec<IpAddr>,
}

/// Request bodies up to this size are read without taking from the body budget.
pub const SMALL_BODY_BYTES: usize = 16 << 10;

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_connections: 4096,
            max_connections_per_client: 128,
            identity_calls_per_client: Rate { per_second: 20, burst: 100 },
            identity_calls_per_pool: Rate { per_second: 200, burst: 1000 },
            body_bytes: 256 << 20,
            body_bytes_per_client: 32 << 20,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Admission state shared by the listener and the handlers.
pub struct Admission {
    config: AdmissionConfig,
    connections: Mutex<Connections>,
    bodies: Mutex<Bodies>,
    by_client: DefaultKeyedRateLimiter<IpAddr>,
    by_pool: DefaultKeyedRateLimiter<String>,
}

#[derive(Default)]
struct Connections {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

#[derive(Default)]
struct Bodies {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// Bytes of the body budget held while a request body is read and handled.
pub struct BodyPermit {
    admission: Arc<Admission>,
    client: IpAddr,
    bytes: usize,
}

impl Drop for BodyPermit {
    fn drop(&mut self) {
        let mut b = self.admission.bodies.lock().unwrap_or_else(|e| e.into_inner());
        b.total -= self.bytes;
        if let Some(n) = b.per_client.get_mut(&self.client) {
            *n -= self.bytes;
            if *n == 0 {
                b.per_client.remove(&self.client);
            }
        }
    }
}

/// The address admission control counts `ip` as: an IPv4 address (IPv4-mapped IPv6
/// included) or an IPv6 /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
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
            bodies: Mutex::default(),
            config,
        })
    }

    /// Whether `peer` is a trusted proxy.
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.config.trusted_proxies.contains(&peer)
    }

    /// Admits a connection from `peer`, or `None` when it would pass a cap. A trusted
    /// proxy's connections count only against the total.
    pub fn connect(self: &Arc<Self>, peer: IpAddr) -> Option<ConnectionPermit> {
        let client = client_key(peer);
        let per_client_cap =
            if self.is_trusted_proxy(peer) { usize::MAX } else { self.config.max_connections_per_client };
        let mut c = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let from_client = c.per_client.get(&client).copied().unwrap_or(0);
        if c.total >= self.config.max_connections || from_client >= per_client_cap {
            return None;
        }
        c.total += 1;
        c.per_client.insert(client, from_client + 1);
        Some(ConnectionPermit { admission: self.clone(), client })
    }

    /// Open connections: (in all, from `client`).
    pub fn open_connections(&self, client: IpAddr) -> (usize, usize) {
        let c = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        (c.total, c.per_client.get(&client_key(client)).copied().unwrap_or(0))
    }

    /// Reserves `bytes` of the body budget for a body from `client`, or answers
    /// `TooManyRequestsException` when the address's or the server's budget is spent.
    pub fn reserve_body(self: &Arc<Self>, client: IpAddr, bytes: usize) -> Result<BodyPermit, ApiError> {
        let client = client_key(client);
        let mut b = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        let from_client = b.per_client.get(&client).copied().unwrap_or(0);
        if from_client + bytes > self.config.body_bytes_per_client {
            return Err(ApiError::too_many_requests(
                "too many large request bodies from this address are in flight; retry",
            ));
        }
        if b.total + bytes > self.config.body_bytes {
            return Err(ApiError::too_many_requests("the server holds too many large request bodies; retry"));
        }
        b.total += bytes;
        b.per_client.insert(client, from_client + bytes);
        Ok(BodyPermit { admission: self.clone(), client, bytes })
    }

    /// Counts a credential-minting call from `client`.
    pub fn identity_call_from(&self, client: IpAddr) -> Result<(), ApiError> {
        self.by_client.check_key(&client_key(client)).map_err(|_| {
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
    fn ipv6_addresses_count_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(client_key(mapped), "127.0.0.2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn large_bodies_take_from_per_client_and_total_budgets() {
        let admission = Admission::new(AdmissionConfig {
            body_bytes: 10 << 20,
            body_bytes_per_client: 6 << 20,
            ..AdmissionConfig::default()
        });
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let first = admission.reserve_body(a, 4 << 20).unwrap();
        assert!(admission.reserve_body(a, 4 << 20).err().unwrap().message.contains("this address"));
        let _second = admission.reserve_body(b, 4 << 20).unwrap();
        assert!(admission.reserve_body(b, 4 << 20).is_err());
        drop(first);
        assert!(admission.reserve_body(b, 2 << 20).is_ok(), "freed on drop");
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
