//! Export and import (the JSON-lines format of [`crate::archive`]).

use super::*;
use crate::export::{ChannelLines, Lines, RECORD_WITHOUT_DATASET, WriterLines, chunk_channel, ended};
use std::sync::Arc;

impl Postgres {
    /// Writes `scope` as JSON lines to `out`, from one snapshot; the number of rows.
    async fn export_lines(&self, scope: &Scope, out: &mut impl Lines) -> Result<u64> {
        let mut c = self.client().await?;
        // One snapshot for the whole stream.
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let pool = match scope {
            Scope::Installation => None,
            Scope::Pool(pool) => Some(pool.as_str()),
        };
        if let Some(pool) = pool {
            let exists: bool =
                tx.query_one("SELECT EXISTS (SELECT 1 FROM pools WHERE pool_id = $1)", &[&pool]).await?.try_get(0)?;
            if !exists {
                return Err(StoreError::Refused(format!("no identity pool {pool}")));
            }
        }
        out.line(&header(scope, Self::schema_version(&tx).await?).to_string()).await?;
        let mut rows = 0u64;
        for table in TABLES {
            let condition = match (pool, table.pool_filter) {
                (None, _) => table.filter,
                (Some(_), Some(filter)) => filter,
                (Some(_), None) => continue,
            };
            let sql = format!(
                "SELECT {} FROM {} WHERE {condition} ORDER BY {}",
                table.columns.join(", "),
                table.name,
                table.order_by
            );
            let stmt = tx.prepare(&sql).await?;
            let params: Vec<&(dyn ToSql + Sync)> = match &pool {
                Some(pool) => vec![pool],
                None => vec![],
            };
            // Streamed: a table's rows (functions' bytes among them) are never all in memory.
            let stream = tx.query_raw(&stmt, params).await?;
            pin_mut!(stream);
            while let Some(row) = stream.next().await {
                let row = row?;
                let values = (0..table.columns.len()).map(|i| column_value(&row, i)).collect::<Result<Vec<_>>>()?;
                out.line(&row_line(table, values)).await?;
                rows += 1;
            }
        }
        out.line(&end_line(rows)).await?;
        out.finish().await?;
        tx.commit().await?;
        Ok(rows)
    }
}

#[async_trait::async_trait]
impl Archive for Postgres {
    async fn export(&self, scope: &Scope, out: &mut (dyn std::io::Write + Send)) -> Result<u64> {
        self.export_lines(scope, &mut WriterLines(out)).await
    }

    fn export_stream(self: Arc<Self>, scope: Scope) -> ExportStream {
        let (tx, stream) = chunk_channel();
        tokio::spawn(async move {
            let mut out = ChannelLines::new(tx.clone());
            if let Some(e) = ended(self.export_lines(&scope, &mut out).await) {
                tx.fail(e);
            }
        });
        stream
    }

    async fn import(&self, input: &mut (dyn std::io::BufRead + Send), tenant: Option<&str>) -> Result<Counts> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Nothing may create a tenant or a pool while the emptiness checked below holds.
        tx.batch_execute("LOCK TABLE tenants, pools IN SHARE ROW EXCLUSIVE MODE").await?;
        let mut reader = Reader::open(input, Self::schema_version(&tx).await?, tenant)?;
        match &reader.target {
            Target::Installation => {
                let used: bool = tx
                    .query_one("SELECT EXISTS (SELECT 1 FROM tenants) OR EXISTS (SELECT 1 FROM pools)", &[])
                    .await?
                    .try_get(0)?;
                if used {
                    return Err(StoreError::Refused(NOT_EMPTY.into()));
                }
                // A fresh store made its own keys: the installation's replace them.
                tx.execute("DELETE FROM meta", &[]).await?;
                tx.execute("DELETE FROM credentials WHERE kind = 'root'", &[]).await?;
            }
            Target::Pool { pool, tenant } => {
                let ok: bool = tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM tenants WHERE name = $1) AND NOT EXISTS (SELECT 1 FROM pools WHERE pool_id = $2)",
                        &[tenant, pool],
                    )
                    .await?
                    .try_get(0)?;
                if !ok {
                    return Err(pool_refused(pool, tenant));
                }
            }
        }
        // The usage triggers stand aside for the rows below (this transaction only); the
        // usage is counted once at the end.
        tx.batch_execute("SET LOCAL synctrig.bulk_load = 'on'").await?;
        let mut statements = HashMap::new();
        while let Some((line, table, values)) = reader.next_row()? {
            let bad = |reason: String| StoreError::Archive { line, reason };
            let stmt = match statements.get(table.name) {
                Some(stmt) => stmt,
                None => {
                    let sql = if table.name == "records" {
                        // Kept by their dataset's number (schema 14); the stream's datasets
                        // come before its records.
                        "INSERT INTO dataset_records
                             (dataset_id, key, value, sync_count, modified, modified_by, device_modified_ms)
                         SELECT d.id, $4, $5, $6, $7, $8, $9 FROM datasets d
                         WHERE d.pool_id = $1 AND d.identity_id = $2 AND d.name = $3"
                            .to_owned()
                    } else {
                        let placeholders: Vec<String> = (1..=table.columns.len()).map(|i| format!("${i}")).collect();
                        format!(
                            "INSERT INTO {} ({}) VALUES ({})",
                            table.name,
                            table.columns.join(", "),
                            placeholders.join(", ")
                        )
                    };
                    let stmt = tx.prepare(&sql).await?;
                    statements.entry(table.name).or_insert(stmt)
                }
            };
            let params = values
                .into_iter()
                .zip(stmt.params())
                .zip(table.columns)
                .map(|((v, ty), column)| param(v, ty).map_err(|e| bad(format!("{}.{column}: {e}", table.name))))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
            let inserted =
                tx.execute(stmt, &refs).await.map_err(|e| bad(format!("cannot insert the {} row: {e}", table.name)))?;
            if inserted == 0 {
                // (Only the records' INSERT … SELECT can insert nothing.)
                return Err(bad(RECORD_WITHOUT_DATASET.into()));
            }
        }
        // A stream from before schema 5 may hold merged names past 128 characters, and
        // settings with old separators.
        sql::identities::shorten_merged_names(&Pg(&tx)).await?;
        sql::identities::conform_pool_settings(&Pg(&tx)).await?;
        tx.batch_execute("SET LOCAL synctrig.bulk_load = 'off'").await?;
        let only: Option<String> = match &reader.target {
            Target::Installation => None,
            Target::Pool { pool, .. } => Some(pool.clone()),
        };
        recount_usage(&tx, only.as_deref()).await?;
        let counts = reader.counts;
        self.commit_change(tx, cache::Kinds::ALL).await?;
        Ok(counts)
    }
}

/// Counts the usage of one pool (or of all) again from its datasets and records, as the
/// triggers of schema 11 keep it.
async fn recount_usage(tx: &tokio_postgres::Transaction<'_>, pool: Option<&str>) -> Result<()> {
    tx.execute("DELETE FROM pool_usage WHERE $1::TEXT IS NULL OR pool_id = $1", &[&pool]).await?;
    tx.execute(
        "INSERT INTO pool_usage (pool_id, slot, sync_sessions, modified)
         SELECT pool_id, hashtext(identity_id) & 31, SUM(sync_count), MAX(modified) FROM datasets
         WHERE $1::TEXT IS NULL OR pool_id = $1 GROUP BY 1, 2",
        &[&pool],
    )
    .await?;
    tx.execute(
        "INSERT INTO pool_usage (pool_id, slot, bytes)
         SELECT pool_id, hashtext(identity_id) & 31, SUM(octet_length(key) + octet_length(value)) FROM records
         WHERE value IS NOT NULL AND ($1::TEXT IS NULL OR pool_id = $1) GROUP BY 1, 2
         ON CONFLICT (pool_id, slot) DO UPDATE SET bytes = EXCLUDED.bytes",
        &[&pool],
    )
    .await?;
    Ok(())
}
