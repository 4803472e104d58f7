//! Identities, the logins linked to them, merges, and the OpenID Connect issuers the
//! operator registered. Every change that must not be seen half done is one transaction.

use super::*;

const IDENTITY_COLUMNS: &str = "identity_id, pool_id, created, modified, merged_into, authenticated";

fn identity_from_row(r: &rusqlite::Row) -> rusqlite::Result<IdentityRow> {
    Ok(IdentityRow {
        identity_id: r.get(0)?,
        pool_id: r.get(1)?,
        created: r.get(2)?,
        modified: r.get(3)?,
        merged_into: r.get(4)?,
        ever_authenticated: r.get(5)?,
        logins: Vec::new(),
    })
}

fn with_logins(conn: &Connection, mut row: IdentityRow) -> Result<IdentityRow> {
    let mut stmt =
        conn.prepare_cached("SELECT provider, subject FROM logins WHERE identity_id = ?1 ORDER BY provider, subject")?;
    row.logins =
        stmt.query_map([&row.identity_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    Ok(row)
}

fn identity_row(conn: &Connection, identity_id: &str) -> Result<Option<IdentityRow>> {
    let row = conn
        .prepare_cached(&format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE identity_id = ?1"))?
        .query_row([identity_id], identity_from_row)
        .optional()?;
    row.map(|r| with_logins(conn, r)).transpose()
}

/// A merged dataset's name: `<base>.<source>` as Cognito named them, where `base` is the
/// dataset's name before any merge (so names stay within the merged-name limit however
/// often a dataset is merged on), unless the target has a dataset of that name — live or
/// deleted, whose deletion devices must still learn of: then `.2`, `.3`, … after it.
fn merged_name(tx: &Connection, pool: &str, target: &str, base: &str, source: &str) -> Result<String> {
    for n in 1..=MERGED_NAME_ATTEMPTS {
        let candidate = merged_dataset_name(base, source, n);
        let taken: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM datasets WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?3)",
            )?
            .query_row(params![pool, target, candidate], |r| r.get(0))?;
        if !taken {
            return Ok(candidate);
        }
    }
    Err(StoreError::Other("no free name for a merged dataset".into()))
}

/// Rewrites pool settings made before schema 5 as [`PoolSettings::conformed`] keeps them.
pub(super) fn conform_pool_settings(tx: &Connection) -> Result<usize> {
    let pools: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT pool_id, settings FROM pools WHERE settings LIKE '%,%' ORDER BY pool_id")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
    };
    let mut changed = 0;
    for (pool, settings) in pools {
        let Ok(parsed) = serde_json::from_str::<PoolSettings>(&settings) else { continue };
        if let Some(conformed) = parsed.conformed() {
            let text = serde_json::to_string(&conformed).map_err(|e| StoreError::Other(e.to_string()))?;
            tx.execute("UPDATE pools SET settings = ?2 WHERE pool_id = ?1", params![pool, text])?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Renames merged datasets whose names pass the model's 128 characters (merges before
/// schema 5 named them `<base>.<source>` whatever the base's length, and exports of those
/// stores carry them) to the names merges make now; their records follow. Answers how
/// many were renamed.
pub(super) fn shorten_merged_names(tx: &Connection) -> Result<usize> {
    let long: Vec<(String, String, String, String, String)> = {
        let mut stmt = tx.prepare(
            "SELECT pool_id, identity_id, name, COALESCE(merged_base, name), COALESCE(merged_from, '') FROM datasets
             WHERE length(name) > ?1 ORDER BY pool_id, identity_id, name",
        )?;
        stmt.query_map([synctrig_runtime::limits::MAX_DATASET_NAME_CHARS as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    for (pool, identity, name, base, source) in &long {
        let new_name = merged_name(tx, pool, identity, base, source)?;
        tx.execute(
            "UPDATE datasets SET name = ?4 WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?3",
            params![pool, identity, name, new_name],
        )?;
        tx.execute(
            "UPDATE records SET dataset = ?4 WHERE pool_id = ?1 AND identity_id = ?2 AND dataset = ?3",
            params![pool, identity, name, new_name],
        )?;
    }
    Ok(long.len())
}

/// Whether an identity is a live identity of the pool (and, if `unauthenticated`, never
/// had a login).
fn live_in(tx: &Connection, pool: &str, identity: &str, unauthenticated: bool) -> Result<bool> {
    Ok(tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM identities WHERE identity_id = ?1 AND pool_id = ?2 AND merged_into IS NULL
             AND (?3 = 0 OR authenticated = 0))",
        )?
        .query_row(params![identity, pool, unauthenticated], |r| r.get(0))?)
}

impl Sqlite {
    /// Names of the live datasets merged into an identity from others that were named
    /// `<name>` there — what ListRecords of `<name>` reports as MergedDatasetNames.
    pub fn merged_dataset_names(&self, pool: &str, identity: &str, name: &str) -> Result<Vec<String>> {
        Self::merged_names(&self.conn(), pool, identity, name)
    }

    /// [`Sqlite::merged_dataset_names`] on `conn` (a transaction's, for one view).
    pub(super) fn merged_names(conn: &Connection, pool: &str, identity: &str, name: &str) -> Result<Vec<String>> {
        let mut stmt = conn.prepare_cached(
            "SELECT name FROM datasets WHERE pool_id = ?1 AND identity_id = ?2 AND deleted = 0 AND merged_base = ?3
             ORDER BY name",
        )?;
        let rows = stmt.query_map(params![pool, identity, name], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn delete_identity_in(tx: &Connection, identity: &str) -> Result<()> {
        tx.execute("DELETE FROM records WHERE identity_id = ?1", [identity])?;
        tx.execute("DELETE FROM datasets WHERE identity_id = ?1", [identity])?;
        tx.execute("DELETE FROM logins WHERE identity_id = ?1", [identity])?;
        tx.execute("DELETE FROM credentials WHERE identity_id = ?1", [identity])?;
        tx.execute("DELETE FROM identities WHERE identity_id = ?1 OR merged_into = ?1", [identity])?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Identities for Sqlite {
    /// Creates a new identity in the pool.
    async fn create_identity(&self, pool_id: &str, region: &str) -> Result<String> {
        let identity_id = new_cognito_id(region);
        self.conn().execute(
            "INSERT INTO identities (identity_id, pool_id, created, modified) VALUES (?1, ?2, ?3, ?3)",
            params![identity_id, pool_id, now()],
        )?;
        Ok(identity_id)
    }

    /// The pool an identity belongs to.
    async fn identity_pool(&self, identity_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT pool_id FROM identities WHERE identity_id = ?1")?
            .query_row([identity_id], |r| r.get(0))
            .optional()?)
    }

    /// The identity with its logins.
    async fn identity(&self, identity_id: &str) -> Result<Option<IdentityRow>> {
        identity_row(&self.conn(), identity_id)
    }

    /// Up to `limit` identities of a pool with ids after `after`, merged ones left out
    /// when `hide_disabled`.
    async fn identities_after(
        &self,
        pool: &str,
        after: &str,
        limit: usize,
        hide_disabled: bool,
    ) -> Result<Vec<IdentityRow>> {
        let conn = self.conn();
        let rows: Vec<IdentityRow> = {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {IDENTITY_COLUMNS} FROM identities
                 WHERE pool_id = ?1 AND identity_id > ?2 AND (?3 = 0 OR merged_into IS NULL)
                 ORDER BY identity_id LIMIT ?4"
            ))?;
            stmt.query_map(params![pool, after, hide_disabled, limit as i64], identity_from_row)?
                .collect::<rusqlite::Result<_>>()?
        };
        rows.into_iter().map(|r| with_logins(&conn, r)).collect()
    }

    /// The identity a login is linked to in a pool.
    async fn login_identity(&self, pool: &str, provider: &str, subject: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT identity_id FROM logins WHERE pool_id = ?1 AND provider = ?2 AND subject = ?3")?
            .query_row(params![pool, provider, subject], |r| r.get(0))
            .optional()?)
    }

    async fn identity_for_login(
        &self,
        pool: &str,
        region: &str,
        provider: &str,
        subject: &str,
    ) -> Result<LoginIdentity> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<String> = tx
            .prepare_cached("SELECT identity_id FROM logins WHERE pool_id = ?1 AND provider = ?2 AND subject = ?3")?
            .query_row(params![pool, provider, subject], |r| r.get(0))
            .optional()?;
        if let Some(identity) = existing {
            return Ok(LoginIdentity { identity_id: identity, created: false });
        }
        let identity = new_cognito_id(region);
        let t = now();
        tx.execute(
            "INSERT INTO identities (identity_id, pool_id, created, modified, authenticated) VALUES (?1, ?2, ?3, ?3, 1)",
            params![identity, pool, t],
        )?;
        tx.execute(
            "INSERT INTO logins (pool_id, provider, subject, identity_id, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![pool, provider, subject, identity, t],
        )?;
        tx.commit()?;
        Ok(LoginIdentity { identity_id: identity, created: true })
    }

    /// Links a login to a live identity of the pool, in one transaction that checks the
    /// identity is still live — and, with `only_if_unauthenticated`, that it still has
    /// never had a login, so two people cannot both link to one guest identity.
    async fn link_login(
        &self,
        pool: &str,
        provider: &str,
        subject: &str,
        identity: &str,
        only_if_unauthenticated: bool,
    ) -> Result<LinkOutcome> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !live_in(&tx, pool, identity, only_if_unauthenticated)? {
            return Ok(LinkOutcome::Changed);
        }
        let t = now();
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO logins (pool_id, provider, subject, identity_id, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![pool, provider, subject, identity, t],
        )?;
        if inserted == 0 {
            return Ok(LinkOutcome::Taken);
        }
        tx.execute(
            "UPDATE identities SET modified = ?2, authenticated = 1 WHERE identity_id = ?1",
            params![identity, t],
        )?;
        tx.commit()?;
        Ok(LinkOutcome::Linked)
    }

    /// Unlinks logins of `provider` (every subject, or only `subject`) from an identity, in
    /// one transaction; answers how many were removed.
    async fn unlink_logins(&self, identity: &str, provider: &str, subject: Option<&str>) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM logins WHERE identity_id = ?1 AND provider = ?2 AND (?3 IS NULL OR subject = ?3)",
            params![identity, provider, subject],
        )?;
        if n > 0 {
            tx.execute("UPDATE identities SET modified = ?2 WHERE identity_id = ?1", params![identity, now()])?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Merges `source` into `target` (both of `pool`), in one transaction that checks both
    /// are still live and `rule` still holds: the source's logins move to the target, its
    /// live datasets become the target's as `<name>.<source>` (records, SyncCounts and
    /// dates kept), and the source is disabled; its credentials stop working at once.
    async fn merge_identities(
        &self,
        pool: &str,
        source: &str,
        target: &str,
        rule: MergeRule<'_>,
    ) -> Result<MergeOutcome> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let source_unauthenticated = rule == MergeRule::SourceUnauthenticated;
        if source == target
            || !live_in(&tx, pool, source, source_unauthenticated)?
            || !live_in(&tx, pool, target, false)?
        {
            return Ok(MergeOutcome::Changed);
        }
        if let MergeRule::Developer(developer) = rule {
            let clash: Option<String> = tx
                .prepare_cached(
                    "SELECT a.provider FROM logins a JOIN logins b ON a.provider = b.provider AND a.subject != b.subject
                     WHERE a.identity_id = ?1 AND b.identity_id = ?2 AND a.provider != ?3 LIMIT 1",
                )?
                .query_row(params![source, target, developer], |r| r.get(0))
                .optional()?;
            if let Some(provider) = clash {
                return Ok(MergeOutcome::ProviderClash(provider));
            }
        }
        let t = now();
        let names: Vec<(String, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT name, COALESCE(merged_base, name) FROM datasets WHERE pool_id = ?1 AND identity_id = ?2 AND deleted = 0
                 ORDER BY name",
            )?;
            stmt.query_map(params![pool, source], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
        };
        let mut moved = Vec::new();
        for (name, base) in names {
            let new_name = merged_name(&tx, pool, target, &base, source)?;
            tx.execute(
                "UPDATE datasets SET identity_id = ?3, name = ?4, merged_from = ?2, merged_base = ?6
                 WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?5",
                params![pool, source, target, new_name, name, base],
            )?;
            tx.execute(
                "UPDATE records SET identity_id = ?3, dataset = ?4 WHERE pool_id = ?1 AND identity_id = ?2 AND dataset = ?5",
                params![pool, source, target, new_name, name],
            )?;
            moved.push(new_name);
        }
        // What the source had deleted goes with it.
        tx.execute("DELETE FROM records WHERE pool_id = ?1 AND identity_id = ?2", params![pool, source])?;
        tx.execute("DELETE FROM datasets WHERE pool_id = ?1 AND identity_id = ?2", params![pool, source])?;
        let had_logins =
            tx.execute("UPDATE logins SET identity_id = ?2 WHERE identity_id = ?1", params![source, target])? > 0;
        tx.execute("DELETE FROM credentials WHERE identity_id = ?1", [source])?;
        tx.execute(
            "UPDATE identities SET merged_into = ?2, modified = ?3 WHERE identity_id = ?1",
            params![source, target, t],
        )?;
        // Identities merged into the source earlier now point at the target.
        tx.execute("UPDATE identities SET merged_into = ?2 WHERE merged_into = ?1", params![source, target])?;
        tx.execute(
            "UPDATE identities SET modified = ?2, authenticated = MAX(authenticated, ?3) WHERE identity_id = ?1",
            params![target, t, had_logins],
        )?;
        tx.commit()?;
        Ok(MergeOutcome::Merged(Merge { target: target.to_owned(), datasets: moved }))
    }

    /// Deletes identities (of `pool` only, when given) with their datasets, logins and
    /// credentials; answers the ids that were not found.
    async fn delete_identities(&self, pool: Option<&str>, identities: &[String]) -> Result<Vec<String>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut missing = Vec::new();
        for id in identities {
            let found: Option<String> = tx
                .prepare_cached("SELECT pool_id FROM identities WHERE identity_id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            match found {
                Some(p) if pool.is_none_or(|pool| pool == p) => Self::delete_identity_in(&tx, id)?,
                _ => missing.push(id.clone()),
            }
        }
        tx.commit()?;
        Ok(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sqlite::Sqlite as Store;
    use crate::sqlite::temp_store as store;

    fn dataset(store: &Store, identity: &str, name: &str, deleted: bool) {
        store
            .conn()
            .execute(
                "INSERT INTO datasets (pool_id, identity_id, name, sync_count, created, modified, modified_by, deleted, deleted_at)
                 VALUES ('p', ?1, ?2, 3, 0, 0, 'x', ?3, ?3 * 3)",
                params![identity, name, deleted],
            )
            .unwrap();
    }

    fn merge(store: &Store, source: &str, target: &str) -> Vec<String> {
        match wait(store.merge_identities("p", source, target, MergeRule::SourceUnauthenticated)).unwrap() {
            MergeOutcome::Merged(m) => m.datasets,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_login_one_identity_and_merges_move_datasets() {
        let (_dir, store) = store();
        let LoginIdentity { identity_id: a, created } =
            wait(store.identity_for_login("p", "us-east-1", "issuer", "alice")).unwrap();
        assert!(created);
        assert_eq!(
            wait(store.identity_for_login("p", "us-east-1", "issuer", "alice")).unwrap(),
            LoginIdentity { identity_id: a.clone(), created: false }
        );
        let guest = wait(store.create_identity("p", "us-east-1")).unwrap();
        dataset(&store, &guest, "game", false);
        store
            .conn()
            .execute_batch(&format!("INSERT INTO records VALUES ('p', '{guest}', 'game', 'k', 'v', 3, 0, 'x', NULL);"))
            .unwrap();
        let name = format!("game.{guest}");
        assert_eq!(merge(&store, &guest, &a), vec![name.clone()]);
        assert_eq!(
            wait(store.merge_identities("p", &guest, &a, MergeRule::SourceUnauthenticated)).unwrap(),
            MergeOutcome::Changed,
            "a merged identity merges once"
        );
        assert_eq!(store.merged_dataset_names("p", &a, "game").unwrap(), vec![name.clone()]);
        let row = wait(store.dataset(DatasetKey::new("p", &a, &name))).unwrap().unwrap();
        assert_eq!((row.sync_count, row.num_records), (3, 1));
        assert_eq!(wait(store.identity(&guest)).unwrap().unwrap().merged_into.as_deref(), Some(a.as_str()));
        assert!(wait(store.delete_identities(Some("p"), std::slice::from_ref(&a))).unwrap().is_empty());
        assert!(wait(store.identity(&guest)).unwrap().is_none(), "the merged-away identity goes with it");
    }

    #[test]
    fn merged_names_are_valid_and_never_replace_a_dataset() {
        let (_dir, store) = store();
        let a = wait(store.identity_for_login("p", "us-east-1", "issuer", "alice")).unwrap().identity_id;
        let guest = wait(store.create_identity("p", "us-east-1")).unwrap();
        let long = "d".repeat(128);
        dataset(&store, &guest, &long, false);
        dataset(&store, &guest, "game", false);
        dataset(&store, &guest, "game.settings", false);
        dataset(&store, &guest, "old", false);
        // The target made one of the names itself, and deleted one (devices must still
        // learn of that deletion).
        dataset(&store, &a, &format!("game.{guest}"), false);
        dataset(&store, &a, &format!("old.{guest}"), true);
        let moved = merge(&store, &guest, &a);
        assert_eq!(
            moved,
            vec![
                format!("{}.{guest}", &long[..127 - guest.len()]),
                format!("game.{guest}.2"),
                format!("game.settings.{guest}"),
                format!("old.{guest}.2")
            ]
        );
        for name in &moved {
            assert_eq!(synctrig_runtime::limits::dataset_name_problem(name), None, "{name}");
        }
        assert_eq!(
            wait(store.dataset(DatasetKey::new("p", &a, &format!("old.{guest}")))).unwrap().unwrap().deleted_at,
            3,
            "the deletion is kept"
        );
        // Exactly the datasets that were named `game`, not `game.settings`.
        assert_eq!(store.merged_dataset_names("p", &a, "game").unwrap(), vec![format!("game.{guest}.2")]);
        // Merged on again, a dataset keeps its first name as the base: names stay bounded.
        let b = wait(store.identity_for_login("p", "us-east-1", "dev", "bob")).unwrap().identity_id;
        let again = match wait(store.merge_identities("p", &a, &b, MergeRule::Developer("dev"))).unwrap() {
            MergeOutcome::Merged(m) => m.datasets,
            other => panic!("{other:?}"),
        };
        assert!(again.contains(&format!("{}.{a}", &long[..127 - a.len()])), "{again:?}");
        for name in &again {
            assert_eq!(synctrig_runtime::limits::dataset_name_problem(name), None, "{name}");
        }
        assert!(synctrig_runtime::limits::dataset_name_problem(&"d".repeat(129)).is_some());
    }

    #[test]
    fn links_and_merges_recheck_what_they_were_decided_on() {
        let (_dir, store) = store();
        let guest = wait(store.create_identity("p", "us-east-1")).unwrap();
        // The first person links; a second one, who decided on the same unauthenticated
        // guest, does not.
        assert_eq!(wait(store.link_login("p", "idp", "alice", &guest, true)).unwrap(), LinkOutcome::Linked);
        assert_eq!(wait(store.link_login("p", "idp", "mallory", &guest, true)).unwrap(), LinkOutcome::Changed);
        assert_eq!(wait(store.link_login("p", "idp", "alice", &guest, false)).unwrap(), LinkOutcome::Taken);
        // Unlinking the last login leaves the identity authenticated.
        assert_eq!(wait(store.unlink_logins(&guest, "idp", None)).unwrap(), 1);
        let row = wait(store.identity(&guest)).unwrap().unwrap();
        assert!(row.authenticated() && row.logins.is_empty());
        // An authenticated identity is no unauthenticated merge source.
        let other = wait(store.identity_for_login("p", "us-east-1", "idp", "bob")).unwrap().identity_id;
        assert_eq!(
            wait(store.merge_identities("p", &guest, &other, MergeRule::SourceUnauthenticated)).unwrap(),
            MergeOutcome::Changed
        );
        // Two different users of one provider are not merged by a developer.
        let carol = wait(store.identity_for_login("p", "us-east-1", "idp", "carol")).unwrap().identity_id;
        assert_eq!(
            wait(store.merge_identities("p", &carol, &other, MergeRule::Developer("dev"))).unwrap(),
            MergeOutcome::ProviderClash("idp".into())
        );
        // Nothing links to an identity that is gone.
        assert!(wait(store.delete_identities(None, std::slice::from_ref(&carol))).unwrap().is_empty());
        assert_eq!(wait(store.link_login("p", "idp", "dave", &carol, false)).unwrap(), LinkOutcome::Changed);
    }
}
