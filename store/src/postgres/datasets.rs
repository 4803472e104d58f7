//! Datasets and records: reads, listings, usage, and the update and deletion writes.

use super::*;

#[async_trait::async_trait]
impl Datasets for Postgres {
    async fn update(&self, update: Update) -> UpdateResult {
        self.apply_update(&update).await
    }

    async fn delete_dataset(&self, key: DatasetKey<'_>, by: &str) -> Result<Option<DatasetRow>> {
        let DatasetKey { pool, identity, name } = key;
        self.apply_delete(pool, identity, name, by).await
    }

    async fn dataset(&self, DatasetKey { pool, identity, name }: DatasetKey<'_>) -> Result<Option<DatasetRow>> {
        dataset_row(&self.client().await?, pool, identity, name).await
    }

    async fn datasets_after(&self, pool: &str, identity: &str, after: &str, limit: usize) -> Result<Vec<DatasetRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {DATASET_COLUMNS} FROM datasets d WHERE d.pool_id = $1 AND d.identity_id = $2 AND d.deleted = 0
             AND d.name > $3 ORDER BY d.name LIMIT $4"
        );
        query(&c, &sql, &[&pool, &identity, &after, &(limit as i64)]).await?.iter().map(dataset_from_row).collect()
    }

    async fn snapshot(&self, DatasetKey { pool, identity, name }: DatasetKey<'_>) -> Result<Snapshot> {
        let c = self.client().await?;
        // One statement, so one consistent view (and one round trip): a row per record
        // (one with no record when there is none), each with the dataset's row, if any,
        // and the identity's live dataset count. The row's sizes are counted here from
        // the records rather than by a second pass over them.
        let sql = format!(
            "WITH ds AS (
                 SELECT d.id, d.name, d.sync_count, d.created, d.modified, d.modified_by, d.deleted, d.deleted_at
                 FROM datasets d WHERE d.pool_id = $1 AND d.identity_id = $2 AND d.name = $3),
             live (n) AS ({LIVE_DATASETS})
             SELECT ds.name, ds.sync_count, ds.created, ds.modified, ds.modified_by, ds.deleted, ds.deleted_at,
                 0::BIGINT, 0::BIGINT, live.n,
                 r.key, r.value, r.sync_count, r.modified, r.modified_by, r.device_modified_ms
             FROM live LEFT JOIN ds ON TRUE
             LEFT JOIN dataset_records r ON r.dataset_id = ds.id"
        );
        let rows = query(&c, &sql, &[&pool, &identity, &name]).await?;
        let first = rows.first().ok_or_else(|| StoreError::Other("the snapshot query returned no row".into()))?;
        let mut dataset = match first.try_get::<_, Option<String>>(0)? {
            Some(_) => Some(dataset_from_row(first)?),
            None => None,
        };
        let identity_datasets = first.try_get::<_, i64>(9)? as usize;
        let mut records = BTreeMap::new();
        for r in &rows {
            if let Some(row) = record_at(r, 10)? {
                records.insert(row.key.clone(), row);
            }
        }
        if let Some(d) = &mut dataset {
            // As DATASET_COLUMNS counts: live records, and their keys' and values' bytes.
            let live = records.values().filter_map(|r| Some(r.key.len() + r.value.as_ref()?.len()));
            (d.num_records, d.data_storage) = live.fold((0, 0), |(n, bytes), size| (n + 1, bytes + size as i64));
        }
        Ok(Snapshot { dataset, records, identity_datasets })
    }

    async fn records_page(
        &self,
        DatasetKey { pool, identity, name }: DatasetKey<'_>,
        last: i64,
        upper: Option<i64>,
        cursor: Option<&RecordCursor>,
        limit: usize,
    ) -> Result<RecordPage> {
        let c = self.client().await?;
        // One statement, so one consistent view and one round trip: a row per record of
        // the page (one with no record when there is none), each with the dataset's head,
        // if any, the listing's bound and the merged datasets' names. A NextToken's bound
        // comes from the client: it may not pass what exists.
        let sql = format!(
            "WITH ds AS (
                 SELECT id, sync_count, modified_by, deleted, deleted_at FROM datasets
                 WHERE pool_id = $1 AND identity_id = $2 AND name = $3),
             bound (upper) AS (
                 SELECT LEAST(COALESCE($5, c.n), c.n) FROM (SELECT COALESCE((SELECT sync_count FROM ds), 0) AS n) c)
             SELECT ds.sync_count, ds.modified_by, ds.deleted, ds.deleted_at, bound.upper,
                 ARRAY(SELECT m.name FROM datasets m WHERE m.pool_id = $1 AND m.identity_id = $2 AND m.deleted = 0
                       AND m.merged_base = $3 ORDER BY m.name),
                 r.key, r.value, r.sync_count, r.modified, r.modified_by, r.device_modified_ms
             FROM bound LEFT JOIN ds ON TRUE
             LEFT JOIN LATERAL (
                 SELECT {RECORD_COLUMNS} FROM dataset_records
                 WHERE dataset_id = ds.id AND sync_count > $4
                 AND sync_count <= bound.upper AND (sync_count, key) > ($6, $7)
                 ORDER BY sync_count, key LIMIT $8) r ON TRUE
             ORDER BY r.sync_count, r.key"
        );
        let (after_count, after_key) = cursor.map_or((i64::MIN, ""), |c| (c.sync_count, c.key.as_str()));
        let rows =
            query(&c, &sql, &[&pool, &identity, &name, &last, &upper, &after_count, &after_key, &(limit as i64 + 1)])
                .await?;
        let first = rows.first().ok_or_else(|| StoreError::Other("the page query returned no row".into()))?;
        let dataset = match first.try_get::<_, Option<i64>>(0)? {
            Some(sync_count) => Some(DatasetHead {
                sync_count,
                modified_by: first.try_get(1)?,
                deleted: first.try_get::<_, i64>(2)? != 0,
                deleted_at: first.try_get(3)?,
            }),
            None => None,
        };
        let upper: i64 = first.try_get(4)?;
        let merged_names: Vec<String> = first.try_get(5)?;
        let mut records = Vec::new();
        for r in &rows {
            records.extend(record_at(r, 6)?);
        }
        let more = records.len() > limit;
        records.truncate(limit);
        Ok(RecordPage { dataset, upper, records, more, merged_names })
    }

    async fn applied_answer(
        &self,
        DatasetKey { pool, identity, name }: DatasetKey<'_>,
        idempotency: &Idempotency,
    ) -> Result<Option<Vec<RecordRow>>> {
        let c = self.client().await?;
        let stored = query_opt(
            &c,
            "SELECT request_hash, answer FROM update_answers
             WHERE pool_id = $1 AND identity_id = $2 AND dataset = $3 AND token_hash = $4",
            &[&pool, &identity, &name, &idempotency.token_hash],
        )
        .await?;
        let Some(r) = stored else { return Ok(None) };
        let (request, answer): (String, String) = (r.try_get(0)?, r.try_get(1)?);
        Ok((request == idempotency.request_hash).then(|| decode_answer(&answer)))
    }

    async fn identity_usage(&self, pool: &str, identity: &str) -> Result<Usage> {
        let c = self.client().await?;
        let r = query_one(
            &c,
            "SELECT (SELECT COUNT(*) FROM datasets WHERE pool_id = $1 AND identity_id = $2 AND deleted = 0),
                    (SELECT MAX(modified) FROM datasets WHERE pool_id = $1 AND identity_id = $2 AND deleted = 0),
                    (SELECT COALESCE(SUM(octet_length(r.key) + octet_length(r.value)), 0)::BIGINT
                     FROM datasets d JOIN dataset_records r ON r.dataset_id = d.id
                     WHERE d.pool_id = $1 AND d.identity_id = $2 AND r.value IS NOT NULL)",
            &[&pool, &identity],
        )
        .await?;
        Ok(Usage { count: r.try_get(0)?, bytes: r.try_get(2)?, last_modified: r.try_get(1)? })
    }

    async fn pool_usage(&self, pool: &str) -> Result<Usage> {
        let c = self.client().await?;
        let r = query_one(
            &c,
            // Kept by the triggers of schema 11, in 32 slots.
            "SELECT COALESCE(SUM(sync_sessions), 0)::BIGINT, MAX(modified), COALESCE(SUM(bytes), 0)::BIGINT
             FROM pool_usage WHERE pool_id = $1",
            &[&pool],
        )
        .await?;
        Ok(Usage { count: r.try_get(0)?, bytes: r.try_get(2)?, last_modified: r.try_get(1)? })
    }
}
