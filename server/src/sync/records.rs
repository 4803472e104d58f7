//! A dataset's records: ListRecords, its keyset pages, and the SyncSessionTokens that
//! bind an update to what its client listed.

use super::{authorize_identity, check_dataset_name};
use crate::call::{Call, bad_token, max_results};
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use synctrig_runtime::limits;
use synctrig_store::now;
use synctrig_store::{DatasetKey, RecordCursor};

/// A SyncSessionToken: `<expires>.<dataset SyncCount>.<nonce>.<mac>`, bound to the
/// pool, identity and dataset, and to the dataset's SyncCount when it was issued. The
/// nonce makes every token unique, so a retry (same token, same patches) is told apart
/// from another device's identical push.
pub(super) struct Session {
    pub(super) expires: i64,
    pub(super) sync_count: i64,
    pub(super) nonce: String,
}

fn session_mac(state: &AppState, dataset: DatasetKey<'_>, session: &Session) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&state.session_key).expect("HMAC takes any key size");
    let DatasetKey { pool, identity, name } = dataset;
    let Session { expires, sync_count, nonce } = session;
    mac.update(format!("{pool}|{identity}|{name}|{sync_count}|{expires}|{nonce}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn session_token(state: &AppState, dataset: DatasetKey<'_>, sync_count: i64) -> String {
    let session =
        Session { expires: now() + state.config.session_ttl_secs, sync_count, nonce: synctrig_store::random_hex(8) };
    let mac = session_mac(state, dataset, &session);
    format!("{}.{}.{}.{mac}", session.expires, session.sync_count, session.nonce)
}

pub(super) fn check_session_token(state: &AppState, token: &str, dataset: DatasetKey<'_>) -> Result<Session, ApiError> {
    let invalid =
        || ApiError::invalid_parameter("SyncSessionToken is invalid or expired; call ListRecords for a fresh one");
    let parts: Vec<&str> = token.split('.').collect();
    let [expires, count, nonce, mac] = parts.as_slice() else {
        return Err(invalid());
    };
    let session = Session {
        expires: expires.parse().map_err(|_| invalid())?,
        sync_count: count.parse().map_err(|_| invalid())?,
        nonce: (*nonce).to_owned(),
    };
    let expected = session_mac(state, dataset, &session);
    if !synctrig_sigv4::constant_time_eq(expected.as_bytes(), mac.as_bytes()) || session.expires < now() {
        return Err(invalid());
    }
    Ok(session)
}

/// A ListRecords NextToken: the listing's upper SyncCount and the last record returned.
fn records_cursor(token: &str) -> Option<(i64, RecordCursor)> {
    let mut parts = token.splitn(3, '.');
    let upper: i64 = parts.next()?.parse().ok()?;
    let sync_count: i64 = parts.next()?.parse().ok()?;
    let key = String::from_utf8(B64.decode(parts.next()?).ok()?).ok()?;
    (0 <= sync_count && sync_count <= upper).then_some((upper, RecordCursor { sync_count, key }))
}

pub(crate) async fn list_records(call: Call) -> Result<ListRecordsResponse, ApiError> {
    let (pool_id, identity_id, name) = (call.label(0), call.label(1), call.label(2));
    check_dataset_name(name)?;
    let pool = authorize_identity(&call.state, &call.cred, pool_id, identity_id).await?;
    let last: i64 = match call.query("lastSyncCount")? {
        None => 0,
        Some(v) => v.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::invalid_parameter(format!("lastSyncCount {v:?} must be a whole number, 0 or more"))
        })?,
    };
    let max = max_results(&call, limits::MAX_RECORDS, limits::MAX_RECORDS)?;
    let (upper, cursor) = match call.query("nextToken")? {
        None => (None, None),
        Some(t) => {
            let (upper, cursor) = records_cursor(t).ok_or_else(|| bad_token(t))?;
            (Some(upper), Some(cursor))
        }
    };
    let dataset = DatasetKey::new(&pool.pool_id, identity_id, name);
    if let Some(token) = call.query("syncSessionToken")? {
        check_session_token(&call.state, token, dataset)?;
    }
    let page = call.state.store.records_page(dataset, last, upper, cursor.as_ref(), max).await?;
    let next_token = page.more.then(|| {
        let last = &page.records[page.records.len() - 1];
        format!("{}.{}.{}", page.upper, last.sync_count, B64.encode(&last.key))
    });
    let d = page.dataset.as_ref();
    Ok(ListRecordsResponse {
        count: page.records.len(),
        records: page.records.iter().map(Record::from).collect(),
        next_token,
        dataset_sync_count: page.upper,
        last_modified_by: d.map(|d| d.modified_by.clone()),
        // Datasets of identities merged into this one, kept as `<name>.<identityId>`: the
        // Sync Manager's onDatasetsMerged hands them to the app to fold in and delete.
        merged_dataset_names: page.merged_names.clone(),
        dataset_exists: d.is_some_and(|d| !d.deleted),
        // Only a device that synced before the last deletion was told of records that
        // are gone; one at 0 never synced, one past it synced after.
        dataset_deleted_after_requested_sync_count: d.is_some_and(|d| last > 0 && last < d.deleted_at),
        sync_session_token: session_token(&call.state, dataset, page.upper),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_cursor_round_trips() {
        let token = format!("7.3.{}", B64.encode("key with . and é"));
        let (upper, cursor) = records_cursor(&token).unwrap();
        assert_eq!((upper, cursor.sync_count, cursor.key.as_str()), (7, 3, "key with . and é"));
        assert!(records_cursor("3.7.a2V5").is_none(), "a cursor past its bound");
        assert!(records_cursor("x").is_none());
    }
}
