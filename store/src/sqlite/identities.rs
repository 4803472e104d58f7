//! Identities and the logins linked to them: the rules are [`sql::identities`]'; this
//! is where they get a connection or a transaction. Every change that must not be seen
//! half done is one `IMMEDIATE` transaction.

use super::*;
use sql::identities as rules;

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
}

#[async_trait::async_trait]
impl Identities for Sqlite {
    async fn create_identity(&self, pool_id: &str, region: &str) -> Result<String> {
        owned!(pool_id, region);
        self.run(move |conn| sql::ready(rules::create_identity(&Lite(conn), &pool_id, &region))).await
    }

    async fn identity_pool(&self, identity_id: &str) -> Result<Option<String>> {
        owned!(identity_id);
        self.run(move |conn| sql::ready(rules::identity_pool(&Lite(conn), &identity_id))).await
    }

    async fn identity(&self, identity_id: &str) -> Result<Option<IdentityRow>> {
        owned!(identity_id);
        self.rule(false, move |tx| sql::ready(rules::identity(tx, &identity_id))).await
    }

    async fn identities_after(
        &self,
        pool: &str,
        after: &str,
        limit: usize,
        hide_disabled: bool,
    ) -> Result<Vec<IdentityRow>> {
        owned!(pool, after);
        // One read transaction: the identities and their logins as of one moment.
        self.rule(false, move |tx| sql::ready(rules::identities_after(tx, &pool, &after, limit, hide_disabled))).await
    }

    async fn login_identity(&self, pool: &str, provider: &str, subject: &str) -> Result<Option<String>> {
        owned!(pool, provider, subject);
        self.run(move |conn| sql::ready(rules::login_identity(&Lite(conn), &pool, &provider, &subject))).await
    }

    async fn identity_for_login(
        &self,
        pool: &str,
        region: &str,
        provider: &str,
        subject: &str,
    ) -> Result<LoginIdentity> {
        owned!(pool, region, provider, subject);
        self.rule(true, move |tx| sql::ready(rules::identity_for_login(tx, &pool, &region, &provider, &subject))).await
    }

    async fn link_login(
        &self,
        pool: &str,
        provider: &str,
        subject: &str,
        identity: &str,
        only_if_unauthenticated: bool,
    ) -> Result<LinkOutcome> {
        owned!(pool, provider, subject, identity);
        self.rule(true, move |tx| {
            sql::ready(rules::link_login(tx, &pool, &provider, &subject, &identity, only_if_unauthenticated))
        })
        .await
    }

    async fn unlink_logins(&self, identity: &str, provider: &str, subject: Option<&str>) -> Result<usize> {
        owned!(identity, provider);
        let subject = subject.map(str::to_owned);
        self.rule(true, move |tx| sql::ready(rules::unlink_logins(tx, &identity, &provider, subject.as_deref()))).await
    }

    async fn merge_identities(
        &self,
        pool: &str,
        source: &str,
        target: &str,
        rule: MergeRule<'_>,
    ) -> Result<MergeOutcome> {
        owned!(pool, source, target);
        let developer = match rule {
            MergeRule::Developer(provider) => Some(provider.to_owned()),
            MergeRule::SourceUnauthenticated => None,
        };
        let outbox_max = self.outbox_max.load(std::sync::atomic::Ordering::Relaxed);
        self.rule(true, move |tx| {
            let rule = developer.as_deref().map_or(MergeRule::SourceUnauthenticated, MergeRule::Developer);
            sql::ready(rules::merge_identities(tx, &pool, &source, &target, rule, outbox_max))
        })
        .await
    }

    async fn delete_identities(&self, pool: Option<&str>, identities: &[String]) -> Result<Vec<String>> {
        owned!(identities);
        let pool = pool.map(str::to_owned);
        self.rule(true, move |tx| sql::ready(rules::delete_identities(tx, pool.as_deref(), &identities))).await
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
            assert_eq!(synctrig_core::limits::dataset_name_problem(name), None, "{name}");
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
            assert_eq!(synctrig_core::limits::dataset_name_problem(name), None, "{name}");
        }
        assert!(synctrig_core::limits::dataset_name_problem(&"d".repeat(129)).is_some());
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
