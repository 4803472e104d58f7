//! Identities and the logins linked to them: sign-in, link, unlink, merge, delete.

use super::*;

#[async_trait::async_trait]
impl Identities for Postgres {
    async fn create_identity(&self, pool_id: &str, region: &str) -> Result<String> {
        let identity_id = new_cognito_id(region);
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO identities (identity_id, pool_id, created, modified) VALUES ($1, $2, $3, $3)",
            &[&identity_id, &pool_id, &now()],
        )
        .await?;
        Ok(identity_id)
    }

    async fn identity_pool(&self, identity_id: &str) -> Result<Option<String>> {
        let read = async {
            let c = self.client().await?;
            query_opt(&c, "SELECT pool_id FROM identities WHERE identity_id = $1", &[&identity_id])
                .await?
                .map(|r| Ok(r.try_get(0)?))
                .transpose()
        };
        self.through::<cache::IdentityPools>(identity_id.to_owned(), read).await
    }

    async fn identity(&self, identity_id: &str) -> Result<Option<IdentityRow>> {
        let c = self.client().await?;
        let sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE identity_id = $1");
        match query_opt(&c, &sql, &[&identity_id]).await? {
            Some(r) => Ok(Some(with_logins(&c, identity_from_row(&r)?).await?)),
            None => Ok(None),
        }
    }

    async fn identities_after(
        &self,
        pool: &str,
        after: &str,
        limit: usize,
        hide_disabled: bool,
    ) -> Result<Vec<IdentityRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities
             WHERE pool_id = $1 AND identity_id > $2 AND ($3 = FALSE OR merged_into IS NULL)
             ORDER BY identity_id LIMIT $4"
        );
        let rows = query(&c, &sql, &[&pool, &after, &hide_disabled, &(limit as i64)]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(with_logins(&c, identity_from_row(r)?).await?);
        }
        Ok(out)
    }

    async fn login_identity(&self, pool: &str, provider: &str, subject: &str) -> Result<Option<String>> {
        let c = self.client().await?;
        query_opt(
            &c,
            "SELECT identity_id FROM logins WHERE pool_id = $1 AND provider = $2 AND subject = $3",
            &[&pool, &provider, &subject],
        )
        .await?
        .map(|r| Ok(r.try_get(0)?))
        .transpose()
    }

    async fn identity_for_login(
        &self,
        pool: &str,
        region: &str,
        provider: &str,
        subject: &str,
    ) -> Result<LoginIdentity> {
        if let Some(identity) = self.login_identity(pool, provider, subject).await? {
            return Ok(LoginIdentity { identity_id: identity, created: false });
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let identity = new_cognito_id(region);
        let t = now();
        execute(
            &tx,
            "INSERT INTO identities (identity_id, pool_id, created, modified, authenticated) VALUES ($1, $2, $3, $3, 1)",
            &[&identity, &pool, &t],
        )
        .await?;
        // Two first sign-ins at once: the login's key makes the second wait for the
        // first, then insert nothing; it drops its identity and answers the first's.
        let linked = execute(
            &tx,
            "INSERT INTO logins (pool_id, provider, subject, identity_id, created) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (pool_id, provider, subject) DO NOTHING",
            &[&pool, &provider, &subject, &identity, &t],
        )
        .await?;
        if linked == 0 {
            tx.rollback().await?;
            // On this connection: taking a second one while holding this could wait forever
            // when every connection is held by a sign-in doing the same.
            let winner = query_opt(
                &c,
                "SELECT identity_id FROM logins WHERE pool_id = $1 AND provider = $2 AND subject = $3",
                &[&pool, &provider, &subject],
            )
            .await?
            .ok_or_else(|| StoreError::Other("a login vanished while it was being linked".into()))?;
            return Ok(LoginIdentity { identity_id: winner.try_get(0)?, created: false });
        }
        tx.commit().await?;
        Ok(LoginIdentity { identity_id: identity, created: true })
    }

    async fn link_login(
        &self,
        pool: &str,
        provider: &str,
        subject: &str,
        identity: &str,
        only_if_unauthenticated: bool,
    ) -> Result<LinkOutcome> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if !lock_identity(&tx, pool, identity, only_if_unauthenticated).await? {
            return Ok(LinkOutcome::Changed);
        }
        let t = now();
        let inserted = execute(
            &tx,
            "INSERT INTO logins (pool_id, provider, subject, identity_id, created) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (pool_id, provider, subject) DO NOTHING",
            &[&pool, &provider, &subject, &identity, &t],
        )
        .await?;
        if inserted == 0 {
            return Ok(LinkOutcome::Taken);
        }
        execute(&tx, "UPDATE identities SET modified = $2, authenticated = 1 WHERE identity_id = $1", &[&identity, &t])
            .await?;
        tx.commit().await?;
        Ok(LinkOutcome::Linked)
    }

    async fn unlink_logins(&self, identity: &str, provider: &str, subject: Option<&str>) -> Result<usize> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = execute(
            &tx,
            "DELETE FROM logins WHERE identity_id = $1 AND provider = $2 AND ($3::TEXT IS NULL OR subject = $3)",
            &[&identity, &provider, &subject],
        )
        .await?;
        if n > 0 {
            execute(&tx, "UPDATE identities SET modified = $2 WHERE identity_id = $1", &[&identity, &now()]).await?;
        }
        tx.commit().await?;
        Ok(n as usize)
    }

    async fn merge_identities(
        &self,
        pool: &str,
        source: &str,
        target: &str,
        rule: MergeRule<'_>,
    ) -> Result<MergeOutcome> {
        if source == target {
            return Ok(MergeOutcome::Changed);
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let source_unauthenticated = rule == MergeRule::SourceUnauthenticated;
        // Both identities locked, in one order whichever is the source, so two merges of
        // the same pair cannot deadlock.
        let (source_live, target_live) = if source < target {
            let s = lock_identity(&tx, pool, source, source_unauthenticated).await?;
            (s, lock_identity(&tx, pool, target, false).await?)
        } else {
            let t = lock_identity(&tx, pool, target, false).await?;
            (lock_identity(&tx, pool, source, source_unauthenticated).await?, t)
        };
        if !source_live || !target_live {
            return Ok(MergeOutcome::Changed);
        }
        if let MergeRule::Developer(developer) = rule {
            let clash = query_opt(
                &tx,
                "SELECT a.provider FROM logins a JOIN logins b ON a.provider = b.provider AND a.subject != b.subject
                 WHERE a.identity_id = $1 AND b.identity_id = $2 AND a.provider != $3 LIMIT 1",
                &[&source, &target, &developer],
            )
            .await?;
            if let Some(r) = clash {
                return Ok(MergeOutcome::ProviderClash(r.try_get(0)?));
            }
        }
        let t = now();
        let names: Vec<(String, String)> = query(
            &tx,
            "SELECT name, COALESCE(merged_base, name) FROM datasets WHERE pool_id = $1 AND identity_id = $2 AND deleted = 0
             ORDER BY name",
            &[&pool, &source],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_>>()?;
        let mut moved = Vec::new();
        for (name, base) in names {
            let new_name = merged_name(&tx, pool, target, &base, source).await?;
            execute(
                &tx,
                "UPDATE datasets SET identity_id = $3, name = $4, merged_from = $2, merged_base = $6
                 WHERE pool_id = $1 AND identity_id = $2 AND name = $5",
                &[&pool, &source, &target, &new_name, &name, &base],
            )
            .await?;
            execute(
                &tx,
                "UPDATE records SET identity_id = $3, dataset = $4 WHERE pool_id = $1 AND identity_id = $2 AND dataset = $5",
                &[&pool, &source, &target, &new_name, &name],
            )
            .await?;
            moved.push(new_name);
        }
        // What the source had deleted goes with it.
        execute(&tx, "DELETE FROM records WHERE pool_id = $1 AND identity_id = $2", &[&pool, &source]).await?;
        execute(&tx, "DELETE FROM datasets WHERE pool_id = $1 AND identity_id = $2", &[&pool, &source]).await?;
        let had_logins =
            execute(&tx, "UPDATE logins SET identity_id = $2 WHERE identity_id = $1", &[&source, &target]).await? > 0;
        execute(&tx, "DELETE FROM credentials WHERE identity_id = $1", &[&source]).await?;
        execute(
            &tx,
            "UPDATE identities SET merged_into = $2, modified = $3 WHERE identity_id = $1",
            &[&source, &target, &t],
        )
        .await?;
        // Identities merged into the source earlier now point at the target.
        execute(&tx, "UPDATE identities SET merged_into = $2 WHERE merged_into = $1", &[&source, &target]).await?;
        execute(
            &tx,
            "UPDATE identities SET modified = $2, authenticated = GREATEST(authenticated, $3) WHERE identity_id = $1",
            &[&target, &t, &(had_logins as i64)],
        )
        .await?;
        self.commit_change(tx, cache::Kinds::CREDENTIALS.and(cache::Kinds::IDENTITY_POOLS)).await?;
        Ok(MergeOutcome::Merged(Merge { target: target.to_owned(), datasets: moved }))
    }

    async fn delete_identities(&self, pool: Option<&str>, identities: &[String]) -> Result<Vec<String>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut missing = Vec::new();
        for id in identities {
            // The identity's row first: its lock waits for updates in flight, and what
            // follows sees what they wrote.
            let found =
                query_opt(&tx, "SELECT pool_id FROM identities WHERE identity_id = $1 FOR UPDATE", &[id]).await?;
            let found: Option<String> = found.map(|r| r.try_get(0)).transpose()?;
            match found {
                Some(p) if pool.is_none_or(|pool| pool == p) => {
                    execute(&tx, "DELETE FROM identities WHERE identity_id = $1 OR merged_into = $1", &[id]).await?;
                    for table in ["records", "datasets", "logins", "credentials"] {
                        execute(&tx, &format!("DELETE FROM {table} WHERE identity_id = $1"), &[id]).await?;
                    }
                }
                _ => missing.push(id.clone()),
            }
        }
        self.commit_change(tx, cache::Kinds::CREDENTIALS.and(cache::Kinds::IDENTITY_POOLS)).await?;
        Ok(missing)
    }
}
