//! Cognito Streams and push sync, written once for both backends: a pool's configuration,
//! the outbox (written in the transaction of the change it records, bounded per pool in
//! slots), devices and subscriptions, bulk publishes and the publisher's lease.
//!
//! PostgreSQL's UpdateRecords writes its outbox entry inside `synctrig_update_v2` (the
//! same rule as [`enqueue`], step for step); every other change calls [`enqueue`].

use super::{Db, Value, columns, values};
use crate::streams::*;
use crate::*;

/// A pool's configuration of streams and push sync.
pub(crate) async fn configuration(db: &impl Db, pool: &str) -> Result<PoolConfiguration> {
    let row = db
        .query_opt(
            "SELECT stream_name, stream_role, streaming, disabled_reason, push_arns, push_role
             FROM pool_streams WHERE pool_id = $1",
            values![pool],
        )
        .await?;
    let Some(row) = row else { return Ok(PoolConfiguration::default()) };
    let [stream_name, stream_role, streaming, disabled_reason, push_arns, push_role] = columns(row)?;
    let streams = match stream_name.opt_text()? {
        Some(name) => Some(StreamSettings {
            stream_name: Some(name),
            role_arn: stream_role.opt_text()?,
            enabled: streaming.flag()?,
            disabled_reason: disabled_reason.opt_text()?,
        }),
        None => None,
    };
    let push = match push_arns.opt_text()? {
        // Written by this program from the same type.
        Some(arns) => Some(PushSettings {
            application_arns: serde_json::from_str(&arns).unwrap_or_default(),
            role_arn: push_role.opt_text()?,
        }),
        None => None,
    };
    Ok(PoolConfiguration { streams, push })
}

/// Replaces the pool's streams settings (when given) and push settings (when given); a
/// stream name is one tenant's: another tenant's pools cannot stream to it.
pub(crate) async fn set_configuration(
    tx: &impl Db,
    tenant: &str,
    pool: &str,
    streams: Option<&StreamsChange>,
    push: Option<&PushSettings>,
) -> Result<std::result::Result<PoolConfiguration, ConfigurationRefused>> {
    // Two tenants claiming one name at once take turns.
    tx.take_turns("stream-names").await?;
    if let Some(name) = streams.and_then(|s| s.stream_name.as_deref()) {
        let taken = tx
            .value(
                "SELECT 1 FROM pool_streams s JOIN pools p ON p.pool_id = s.pool_id
                 WHERE s.stream_name = $1 AND p.tenant != $2 LIMIT 1",
                values![name, tenant],
            )
            .await?;
        if taken.is_some() {
            return Ok(Err(ConfigurationRefused::StreamNameTaken));
        }
    }
    let current = configuration(tx, pool).await?.streams;
    let change = streams.map(|s| {
        let name = s.stream_name.clone().or_else(|| current.as_ref().and_then(|c| c.stream_name.clone()));
        // A first stream name with no status enables streaming.
        let enabled = s.enabled.unwrap_or(current.as_ref().is_none_or(|c| c.enabled));
        (name, s.role_arn.clone().or_else(|| current.as_ref().and_then(|c| c.role_arn.clone())), enabled)
    });
    if let Some((None, _, true)) = change {
        return Ok(Err(ConfigurationRefused::NoStreamName));
    }
    tx.execute(
        "INSERT INTO pool_streams (pool_id, streaming, modified) VALUES ($1, 0, $2) ON CONFLICT (pool_id) DO NOTHING",
        values![pool, now()],
    )
    .await?;
    if let Some((name, role, enabled)) = change {
        // Enabling clears why the service had turned it off.
        tx.execute(
            "UPDATE pool_streams SET stream_name = $2, stream_role = $3, streaming = $4,
                 disabled_reason = CASE WHEN CAST($4 AS BIGINT) = 1 THEN NULL ELSE disabled_reason END, modified = $5
             WHERE pool_id = $1",
            values![pool, name.as_ref(), role.as_ref(), enabled, now()],
        )
        .await?;
    }
    if let Some(p) = push {
        let arns = serde_json::to_string(&p.application_arns).map_err(|e| StoreError::Other(e.to_string()))?;
        tx.execute(
            "UPDATE pool_streams SET push_arns = $2, push_role = $3, modified = $4 WHERE pool_id = $1",
            values![pool, arns.as_str(), p.role_arn.as_ref(), now()],
        )
        .await?;
    }
    Ok(Ok(configuration(tx, pool).await?))
}

/// The reason kept when a full outbox turns a pool's streaming off.
pub fn outbox_full_reason(outbox_max: i64) -> String {
    format!(
        "The outbox of records not yet published reached its bound ({outbox_max} for this pool; \
         serve --stream-outbox-max): the broker has not taken records for a while. Streaming was \
         disabled; enable it again once the broker is back, and run BulkPublish to send what was missed."
    )
}

/// Writes a committed change's outbox entry, in the change's transaction, if its pool
/// streams or tells devices; a full slot turns the pool's streaming off instead (the
/// change itself stands).
pub(crate) async fn enqueue(tx: &impl Db, change: &Change<'_>, outbox_max: i64) -> Result<()> {
    let row = tx
        .query_opt(
            "SELECT CASE WHEN streaming = 1 THEN stream_name END, CASE WHEN push_arns IS NOT NULL AND push_arns != '[]' THEN 1 ELSE 0 END
             FROM pool_streams WHERE pool_id = $1",
            values![change.pool_id],
        )
        .await?;
    let Some(row) = row else { return Ok(()) };
    let [stream, push] = columns(row)?;
    let (stream, push) = (stream.opt_text()?, push.flag()?);
    if stream.is_none() && !push {
        return Ok(());
    }
    let slot = outbox_slot(change.identity_id);
    if !take_slot(tx, change.pool_id, slot, slot_bound(outbox_max)).await? {
        tx.execute(
            "UPDATE pool_streams SET streaming = 0, disabled_reason = $2 WHERE pool_id = $1 AND streaming = 1",
            values![change.pool_id, outbox_full_reason(outbox_max).as_str()],
        )
        .await?;
        return Ok(());
    }
    tx.execute(
        "INSERT INTO outbox (pool_id, identity_id, dataset, sync_count, kind, records, at_ms, stream_name, push,
             device_id, slot)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        values![
            change.pool_id,
            change.identity_id,
            change.dataset,
            change.sync_count,
            change.kind.as_str(),
            change.records_json,
            now_ms(),
            stream.as_ref(),
            push,
            change.device_id,
            slot
        ],
    )
    .await?;
    Ok(())
}

/// Counts one more entry in a slot, if it has room.
async fn take_slot(tx: &impl Db, pool: &str, slot: i64, bound: i64) -> Result<bool> {
    let bump = "UPDATE outbox_depth SET depth = depth + 1 WHERE pool_id = $1 AND slot = $2 AND depth < $3";
    if tx.execute(bump, values![pool, slot, bound]).await? == 1 {
        return Ok(true);
    }
    let created = tx
        .execute(
            "INSERT INTO outbox_depth (pool_id, slot, depth) VALUES ($1, $2, 1) ON CONFLICT (pool_id, slot) DO NOTHING",
            values![pool, slot],
        )
        .await?;
    // A slot another transaction created meanwhile is there now.
    Ok(created == 1 || tx.execute(bump, values![pool, slot, bound]).await? == 1)
}

const OUTBOX_COLUMNS: &str =
    "id, pool_id, identity_id, dataset, sync_count, kind, records, at_ms, stream_name, push, device_id";

fn entry_from(row: Vec<Value>) -> Result<OutboxEntry> {
    let [id, pool, identity, dataset, sync_count, kind, records, at_ms, stream_name, push, device] = columns(row)?;
    let kind = kind.text()?;
    Ok(OutboxEntry {
        id: id.int()?,
        pool_id: pool.text()?,
        identity_id: identity.text()?,
        dataset: dataset.text()?,
        sync_count: sync_count.int()?,
        kind: ChangeKind::parse(&kind).ok_or_else(|| StoreError::Other(format!("an outbox entry of kind {kind:?}")))?,
        // Written by this program from the same type.
        records: serde_json::from_str(&records.text()?).unwrap_or_default(),
        at_ms: at_ms.int()?,
        stream_name: stream_name.opt_text()?,
        push: push.flag()?,
        device_id: device.opt_text()?,
    })
}

/// The oldest `limit` outbox entries, in the order they were written.
pub(crate) async fn outbox(db: &impl Db, limit: i64) -> Result<Vec<OutboxEntry>> {
    let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id LIMIT $1");
    db.query(&sql, values![limit]).await?.into_iter().map(entry_from).collect()
}

/// Removes published entries and frees their slots.
pub(crate) async fn outbox_done(tx: &impl Db, ids: &[i64]) -> Result<u64> {
    let mut freed = std::collections::BTreeMap::<(String, i64), i64>::new();
    for &id in ids {
        let row = tx.query_opt("DELETE FROM outbox WHERE id = $1 RETURNING pool_id, slot", values![id]).await?;
        let Some(row) = row else { continue };
        let [pool, slot] = columns(row)?;
        *freed.entry((pool.text()?, slot.int()?)).or_default() += 1;
    }
    let mut n = 0;
    for ((pool, slot), count) in freed {
        tx.execute(
            "UPDATE outbox_depth SET depth = CASE WHEN depth > $3 THEN depth - $3 ELSE 0 END
             WHERE pool_id = $1 AND slot = $2",
            values![pool.as_str(), slot, count],
        )
        .await?;
        n += count as u64;
    }
    Ok(n)
}

/// How many entries wait in the outbox, in all.
pub(crate) async fn outbox_depth(db: &impl Db) -> Result<i64> {
    db.value("SELECT CAST(COALESCE(SUM(depth), 0) AS BIGINT) FROM outbox_depth", values![])
        .await?
        .map_or(Ok(0), Value::int)
}

/// Takes (or keeps) the lease `name` for `holder` until `ttl_ms` from now, unless another
/// holder's has not run out; whether `holder` has it.
pub(crate) async fn lease(tx: &impl Db, name: &str, holder: &str, ttl_ms: i64) -> Result<bool> {
    let t = now_ms();
    let taken = tx
        .execute(
            "INSERT INTO leases (name, holder, expires_ms) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
             WHERE leases.holder = excluded.holder OR leases.expires_ms < $4",
            values![name, holder, t + ttl_ms, t],
        )
        .await?;
    Ok(taken == 1)
}

/// Registers a device of an identity for push sync: the same platform and token are the
/// same device. Past [`MAX_DEVICES_PER_IDENTITY`], the longest-registered one goes.
pub(crate) async fn register_device(
    tx: &impl Db,
    pool: &str,
    identity: &str,
    platform: &str,
    token: &str,
    new_id: &str,
) -> Result<String> {
    let found = tx
        .value(
            "SELECT device_id FROM devices WHERE identity_id = $1 AND platform = $2 AND token = $3",
            values![identity, platform, token],
        )
        .await?;
    if let Some(id) = found {
        let id = id.text()?;
        tx.execute("UPDATE devices SET registered = $2 WHERE device_id = $1", values![id.as_str(), now_ms()]).await?;
        return Ok(id);
    }
    tx.execute(
        "INSERT INTO devices (device_id, pool_id, identity_id, platform, token, registered) VALUES ($1, $2, $3, $4, $5, $6)",
        values![new_id, pool, identity, platform, token, now_ms()],
    )
    .await?;
    let oldest = tx
        .query(
            "SELECT device_id FROM devices WHERE identity_id = $1 ORDER BY registered DESC, device_id LIMIT 1000 OFFSET $2",
            values![identity, MAX_DEVICES_PER_IDENTITY],
        )
        .await?;
    for row in oldest {
        let [id] = columns(row)?;
        let id = id.text()?;
        tx.execute("DELETE FROM subscriptions WHERE device_id = $1", values![id.as_str()]).await?;
        tx.execute("DELETE FROM devices WHERE device_id = $1", values![id.as_str()]).await?;
    }
    Ok(new_id.to_owned())
}

/// Subscribes (`on`) or unsubscribes a device of the identity to one of its datasets.
pub(crate) async fn subscribe(
    tx: &impl Db,
    identity: &str,
    dataset: &str,
    device: &str,
    on: bool,
) -> Result<std::result::Result<(), SubscriptionRefused>> {
    let known =
        tx.value("SELECT 1 FROM devices WHERE device_id = $1 AND identity_id = $2", values![device, identity]).await?;
    if known.is_none() {
        return Ok(Err(SubscriptionRefused::UnknownDevice));
    }
    if on {
        tx.execute(
            "INSERT INTO subscriptions (identity_id, dataset, device_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            values![identity, dataset, device],
        )
        .await?;
    } else {
        tx.execute(
            "DELETE FROM subscriptions WHERE identity_id = $1 AND dataset = $2 AND device_id = $3",
            values![identity, dataset, device],
        )
        .await?;
    }
    Ok(Ok(()))
}

/// The devices subscribed to a dataset of an identity.
pub(crate) async fn subscribers(db: &impl Db, identity: &str, dataset: &str) -> Result<Vec<Device>> {
    let rows = db
        .query(
            "SELECT d.device_id, d.platform, d.token FROM subscriptions s JOIN devices d ON d.device_id = s.device_id
             WHERE s.identity_id = $1 AND s.dataset = $2 ORDER BY d.device_id",
            values![identity, dataset],
        )
        .await?;
    rows.into_iter()
        .map(|row| {
            let [device_id, platform, token] = columns(row)?;
            Ok(Device { device_id: device_id.text()?, platform: platform.text()?, token: token.text()? })
        })
        .collect()
}

/// Forgets an identity's devices and subscriptions (it was deleted or merged away).
pub(crate) async fn forget_identity(tx: &impl Db, identity: &str) -> Result<()> {
    tx.execute("DELETE FROM subscriptions WHERE identity_id = $1", values![identity]).await?;
    tx.execute("DELETE FROM devices WHERE identity_id = $1", values![identity]).await?;
    Ok(())
}

/// Forgets everything of streams and push sync a pool had.
pub(crate) async fn forget_pool(tx: &impl Db, pool: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM subscriptions WHERE device_id IN (SELECT device_id FROM devices WHERE pool_id = $1)",
        values![pool],
    )
    .await?;
    for table in ["devices", "outbox", "outbox_depth", "bulk_publish", "pool_streams"] {
        tx.execute(&format!("DELETE FROM {table} WHERE pool_id = $1"), values![pool]).await?;
    }
    Ok(())
}

const BULK_COLUMNS: &str =
    "pool_id, status, started_ms, completed_ms, failure, cursor_identity, cursor_dataset, stream_name";

fn bulk_from(row: Vec<Value>) -> Result<BulkPublish> {
    let [pool, status, started, completed, failure, cursor_identity, cursor_dataset, stream_name] = columns(row)?;
    let completed_ms = match completed {
        Value::Null => None,
        v => Some(v.int()?),
    };
    let cursor = match (cursor_identity.opt_text()?, cursor_dataset.opt_text()?) {
        (Some(i), Some(d)) => Some((i, d)),
        _ => None,
    };
    Ok(BulkPublish {
        pool_id: pool.text()?,
        status: status.text()?,
        started_ms: started.int()?,
        completed_ms,
        failure: failure.opt_text()?,
        cursor,
        stream_name: stream_name.text()?,
    })
}

/// A pool's last bulk publish.
pub(crate) async fn bulk(db: &impl Db, pool: &str) -> Result<Option<BulkPublish>> {
    let sql = format!("SELECT {BULK_COLUMNS} FROM bulk_publish WHERE pool_id = $1");
    db.query_opt(&sql, values![pool]).await?.map(bulk_from).transpose()
}

/// Every bulk publish in progress.
pub(crate) async fn bulks_in_progress(db: &impl Db) -> Result<Vec<BulkPublish>> {
    let sql = format!("SELECT {BULK_COLUMNS} FROM bulk_publish WHERE status = 'IN_PROGRESS' ORDER BY started_ms");
    db.query(&sql, values![]).await?.into_iter().map(bulk_from).collect()
}

/// Starts a bulk publish of a pool, unless it does not stream, one is in progress, or
/// one succeeded less than a day ago.
pub(crate) async fn start_bulk(tx: &impl Db, pool: &str) -> Result<std::result::Result<BulkPublish, BulkRefused>> {
    tx.take_turns(&format!("bulk/{pool}")).await?;
    let config = configuration(tx, pool).await?;
    let Some(stream) = config.streams.filter(|s| s.enabled).and_then(|s| s.stream_name) else {
        return Ok(Err(BulkRefused::NotStreaming));
    };
    let t = now_ms();
    if let Some(last) = bulk(tx, pool).await? {
        if last.status == "IN_PROGRESS" {
            return Ok(Err(BulkRefused::InProgress));
        }
        if last.status == "SUCCEEDED" && last.completed_ms.is_some_and(|c| t - c < BULK_PUBLISH_INTERVAL_MS) {
            return Ok(Err(BulkRefused::AlreadyStreamed));
        }
    }
    tx.execute(
        "INSERT INTO bulk_publish (pool_id, status, started_ms, stream_name) VALUES ($1, 'IN_PROGRESS', $2, $3)
         ON CONFLICT (pool_id) DO UPDATE SET status = 'IN_PROGRESS', started_ms = excluded.started_ms,
             completed_ms = NULL, failure = NULL, cursor_identity = NULL, cursor_dataset = NULL,
             stream_name = excluded.stream_name",
        values![pool, t, stream.as_str()],
    )
    .await?;
    Ok(Ok(bulk(tx, pool).await?.ok_or_else(|| StoreError::Other("the bulk publish vanished".into()))?))
}

/// Moves a bulk publish on (the bulk publish started at `started_ms` only): past the
/// datasets up to `cursor`, and ended when `end` is given (`Ok`: succeeded; `Err`: failed
/// with that message). Whether it was still that one.
pub(crate) async fn advance_bulk(
    tx: &impl Db,
    pool: &str,
    started_ms: i64,
    cursor: Option<&(String, String)>,
    end: Option<std::result::Result<(), String>>,
) -> Result<bool> {
    let (ci, cd) = (cursor.map(|c| c.0.as_str()), cursor.map(|c| c.1.as_str()));
    let changed = tx
        .execute(
            "UPDATE bulk_publish SET cursor_identity = COALESCE($3, cursor_identity),
                 cursor_dataset = COALESCE($4, cursor_dataset)
             WHERE pool_id = $1 AND started_ms = $2 AND status = 'IN_PROGRESS'",
            values![pool, started_ms, ci, cd],
        )
        .await?;
    if changed == 1
        && let Some(end) = end
    {
        let (status, failure) = match end {
            Ok(()) => ("SUCCEEDED", None),
            Err(message) => ("FAILED", Some(message)),
        };
        tx.execute(
            "UPDATE bulk_publish SET status = $3, completed_ms = $4, failure = $5 WHERE pool_id = $1 AND started_ms = $2",
            values![pool, started_ms, status, now_ms(), failure.as_ref()],
        )
        .await?;
    }
    Ok(changed == 1)
}

/// Up to `limit` live datasets of a pool after `after` (identity, name), in that order,
/// with their live records: what a bulk publish sends.
pub(crate) async fn bulk_page(
    db: &impl Db,
    pool: &str,
    after: Option<&(String, String)>,
    limit: i64,
) -> Result<Vec<DatasetState>> {
    let (ai, ad) = after.map_or(("", ""), |(i, d)| (i.as_str(), d.as_str()));
    let rows = db
        .query(
            "SELECT identity_id, name, sync_count, modified FROM datasets
             WHERE pool_id = $1 AND deleted = 0 AND (identity_id > $2 OR (identity_id = $2 AND name > $3))
             ORDER BY identity_id, name LIMIT $4",
            values![pool, ai, ad, limit],
        )
        .await?;
    let mut page = Vec::with_capacity(rows.len());
    for row in rows {
        let [identity, name, sync_count, modified] = columns(row)?;
        let (identity_id, name) = (identity.text()?, name.text()?);
        let records = dataset_records(db, pool, &identity_id, &name).await?;
        page.push(DatasetState {
            identity_id,
            name,
            sync_count: sync_count.int()?,
            modified_ms: modified.int()? * 1000,
            records,
        });
    }
    Ok(page)
}

/// A dataset's record rows (tombstones too), by key.
pub(crate) async fn dataset_records(db: &impl Db, pool: &str, identity: &str, name: &str) -> Result<Vec<RecordRow>> {
    let rows = db
        .query(
            "SELECT key, value, sync_count, modified, modified_by, device_modified_ms FROM records
             WHERE pool_id = $1 AND identity_id = $2 AND dataset = $3 ORDER BY key",
            values![pool, identity, name],
        )
        .await?;
    rows.into_iter()
        .map(|row| {
            let [key, value, sync_count, modified, modified_by, device] = columns(row)?;
            Ok(RecordRow {
                key: key.text()?,
                value: value.opt_text()?,
                sync_count: sync_count.int()?,
                modified: modified.int()?,
                modified_by: modified_by.text()?,
                device_modified_ms: match device {
                    Value::Null => None,
                    v => Some(v.int()?),
                },
            })
        })
        .collect()
}
