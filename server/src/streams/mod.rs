//! Cognito Streams and push sync on NATS JetStream: what a committed change becomes on
//! the wire ([`record`]) and the publisher that drains the outbox to the broker
//! ([`publisher`]). The API that configures them is `sync::streams`.

pub mod publisher;
pub mod record;

pub use publisher::{BrokerConfig, StreamMetrics};
