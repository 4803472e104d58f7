//! Datasets and records: reads, listings, usage, and the update and deletion writes.

use super::*;

#[async_trait::async_trait]
impl Datasets for Sqlite {
    async fn update(&self, update: Update) -> UpdateResult {
        self.submit_update(update)
            .await
            .unwrap_or_else(|_| Err(StoreError::Other("the database writer stopped".into())))
    }

    /// Deletes a dataset through the writer: its records go, its row stays marked
    /// deleted with the SyncCount bumped and that count kept as the deletion's. Answers
    /// the row as it was, or `None` when there was no live dataset.
    async fn delete_dataset(&self, key: DatasetKey<'_>, by: &str) -> Result<Option<DatasetRow>> {
        let DatasetKey { pool, identity, name } = key;
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Delete {
            pool: pool.to_owned(),
            identity: identity.to_owned(),
            name: name.to_owned(),
            by: by.to_owned(),
            reply,
        });
        rx.await.map_err(|_| StoreError::Other("the database writer stopped".to_owned()))?
    }

    /// The dataset (deleted ones included).
    async fn dataset(&self, DatasetKey { pool, identity, name }: DatasetKey<'_>) -> Result<Option<DatasetRow>> {
        owned!(pool, identity, name);
        self.run(move |conn| Self::dataset_row(conn, &pool, &identity, &name)).await
    }

    /// Up to `limit` live datasets of the identity with names after `after`, by name.
    async fn datasets_after(&self, pool: &str, identity: &str, after: &str, limit: usize) -> Result<Vec<DatasetRow>> {
        owned!(pool, identity, after);
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DATASET_COLUMNS} FROM datasets d WHERE d.pool_id = ?1 AND d.identity_id = ?2 AND d.deleted = 0
                 AND d.name > ?3 ORDER BY d.name LIMIT ?4"
            ))?;
            let rows = stmt.query_map(params![pool, identity, after, limit as i64], dataset_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Everything an update needs to decide, read in one transaction.
    async fn snapshot(&self, DatasetKey { pool, identity, name }: DatasetKey<'_>) -> Result<Snapshot> {
        owned!(pool, identity, name);
        self.run(move |conn| Self::read_snapshot(conn, &pool, &identity, &name)).await
    }

    /// One page of ListRecords, read in one transaction: records with
    /// `last < SyncCount <= upper` after `cursor`, in (SyncCount, key) order, and the
    /// names of datasets merged in under this one's. A first page (`upper` `None`) takes
    /// the dataset's current SyncCount as the listing's bound.
    async fn records_page(
        &self,
        DatasetKey { pool, identity, name }: DatasetKey<'_>,
        last: i64,
        upper: Option<i64>,
        cursor: Option<&RecordCursor>,
        limit: usize,
    ) -> Result<RecordPage> {
        owned!(pool, identity, name);
        let cursor = cursor.cloned();
        self.run(move |conn| {
            Self::read_page(conn, DatasetKey::new(&pool, &identity, &name), last, upper, cursor.as_ref(), limit)
        })
        .await
    }

    /// The stored answer of an applied update, if `idempotency` names a repeat of one.
    async fn applied_answer(
        &self,
        DatasetKey { pool, identity, name }: DatasetKey<'_>,
        idempotency: &Idempotency,
    ) -> Result<Option<Vec<RecordRow>>> {
        let idempotency = idempotency.clone();
        owned!(pool, identity, name);
        self.run(move |conn| {
            let stored: Option<(String, String)> = conn
                .prepare_cached(
                    "SELECT request_hash, answer FROM update_answers
                     WHERE pool_id = ?1 AND identity_id = ?2 AND dataset = ?3 AND token_hash = ?4",
                )?
                .query_row(params![pool, identity, name, idempotency.token_hash], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            Ok(stored
                .filter(|(request, _)| *request == idempotency.request_hash)
                .map(|(_, answer)| decode_answer(&answer)))
        })
        .await
    }

    async fn identity_usage(&self, pool: &str, identity: &str) -> Result<Usage> {
        owned!(pool, identity);
        self.run(move |conn| {
            let (count, modified): (i64, Option<i64>) = conn
                .prepare_cached(
                    "SELECT COUNT(*), MAX(modified) FROM datasets WHERE pool_id = ?1 AND identity_id = ?2 AND deleted = 0",
                )?
                .query_row(params![pool, identity], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let bytes: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB))), 0) FROM records
                     WHERE pool_id = ?1 AND identity_id = ?2 AND value IS NOT NULL",
                )?
                .query_row(params![pool, identity], |r| r.get(0))?;
            Ok(Usage { count, bytes, last_modified: modified })
        })
        .await
    }

    async fn pool_usage(&self, pool: &str) -> Result<Usage> {
        owned!(pool);
        self.run(move |conn| {
            // Kept by the triggers of schema 11.
            let usage = conn
                .prepare_cached("SELECT sync_sessions, bytes, modified FROM pool_usage WHERE pool_id = ?1")?
                .query_row([&pool], |r| Ok(Usage { count: r.get(0)?, bytes: r.get(1)?, last_modified: r.get(2)? }))
                .optional()?;
            Ok(usage.unwrap_or(Usage { count: 0, bytes: 0, last_modified: None }))
        })
        .await
    }
}

impl Sqlite {
    /// Everything an update needs to decide, read in one transaction.
    pub(super) fn read_snapshot(conn: &mut Connection, pool: &str, identity: &str, name: &str) -> Result<Snapshot> {
        let tx = conn.transaction()?;
        let dataset = Self::dataset_row(&tx, pool, identity, name)?;
        let records = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records WHERE pool_id = ?1 AND identity_id = ?2 AND dataset = ?3"
            ))?;
            let rows = stmt.query_map(params![pool, identity, name], record_from_row)?;
            rows.map(|r| r.map(|r| (r.key.clone(), r))).collect::<rusqlite::Result<_>>()?
        };
        let identity_datasets = Self::live_datasets(&tx, pool, identity)?;
        tx.commit()?;
        Ok(Snapshot { dataset, records, identity_datasets })
    }

    /// [`Datasets::records_page`] on a reader's connection.
    fn read_page(
        conn: &mut Connection,
        DatasetKey { pool, identity, name }: DatasetKey<'_>,
        last: i64,
        upper: Option<i64>,
        cursor: Option<&RecordCursor>,
        limit: usize,
    ) -> Result<RecordPage> {
        let tx = conn.transaction()?;
        let dataset = tx
            .prepare_cached(
                "SELECT sync_count, modified_by, deleted, deleted_at FROM datasets
                 WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?3",
            )?
            .query_row(params![pool, identity, name], |r| {
                Ok(DatasetHead {
                    sync_count: r.get(0)?,
                    modified_by: r.get(1)?,
                    deleted: r.get::<_, i64>(2)? != 0,
                    deleted_at: r.get(3)?,
                })
            })
            .optional()?;
        let current = dataset.as_ref().map_or(0, |d| d.sync_count);
        // A NextToken comes from the client: its bound may not pass what exists.
        let upper = upper.map_or(current, |u| u.min(current));
        let (after_count, after_key) = cursor.map_or((i64::MIN, ""), |c| (c.sync_count, c.key.as_str()));
        let mut records = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records
                 WHERE pool_id = ?1 AND identity_id = ?2 AND dataset = ?3 AND sync_count > ?4 AND sync_count <= ?5
                 AND (sync_count, key) > (?6, ?7)
                 ORDER BY sync_count, key LIMIT ?8"
            ))?;
            let rows = stmt.query_map(
                params![pool, identity, name, last, upper, after_count, after_key, limit as i64 + 1],
                record_from_row,
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let merged_names = Self::merged_names(&tx, pool, identity, name)?;
        tx.commit()?;
        let more = records.len() > limit;
        records.truncate(limit);
        Ok(RecordPage { dataset, upper, records, more, merged_names })
    }
}
