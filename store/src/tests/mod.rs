//! The store's promises, checked on both backends: every test here runs once on SQLite
//! and once on PostgreSQL (`SYNCTRIG_TEST_DATABASE_URL`).

use super::*;
use std::collections::BTreeMap;
use std::io::BufRead;
use synctrig_core::Dataset;
use synctrig_core::Write;
use synctrig_core::limits;

mod parity;

/// A store of each kind, and what keeps it alive.
struct Fixture {
    store: Arc<Store>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&Database::Sqlite(dir.path().join("db"))).await.unwrap();
    Fixture { store, _dir: Some(dir) }
}

async fn postgres() -> Fixture {
    let config = postgres::testing::fresh_database().await;
    Fixture { store: Arc::new(postgres::Postgres::open_config(config, 4).await.unwrap()), _dir: None }
}

/// Each scenario as two tests, `sqlite` and `postgres`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::sqlite().await.store).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::postgres().await.store).await
            }
        }
    )*};
}

mod recordings;
mod releases;
mod streams;

both!(
    an_update_applies_once_and_its_retry_gets_the_same_answer,
    concurrent_updates_of_one_base_apply_once,
    the_dataset_limit_holds_under_concurrent_creations,
    a_deletion_is_remembered_after_recreation,
    pages_are_keyset_bounded_by_the_first_pages_count,
    a_merged_away_identity_writes_nothing,
    first_sign_ins_at_once_make_one_identity,
    concurrent_deploys_get_distinct_versions_within_the_limits,
    credentials_follow_their_identity,
    meta_values_are_created_once,
    a_snapshot_holds_the_dataset_its_records_and_the_identitys_count,
    an_older_stream_is_imported_as_schema_5_keeps_it,
    a_pools_usage_follows_every_change,
    invocation_rows_are_trimmed_to_at_most_twice_those_kept,
    a_deleted_functions_waiting_invocations_go_with_it,
);

async fn invocation_rows_are_trimmed_to_at_most_twice_those_kept(store: Arc<Store>) {
    let keep = crate::rows::KEEP_INVOCATIONS;
    let row = |version: i64| InvocationRow {
        at: version,
        version,
        outcome: "ok".into(),
        wall_us: 1,
        fuel: 1,
        peak_memory_bytes: 1,
        log: String::new(),
    };
    // Rows are those of deployed functions (PostgreSQL writes none of a function gone).
    store.create_tenant("acme").await.unwrap();
    for name in ["f", "other"] {
        store.deploy_function("acme", name, "d1", b"w", None, None).await.unwrap().unwrap();
    }
    for v in 1..=5 * keep / 2 {
        store.submit_invocation("acme", "f", row(v));
    }
    store.submit_invocation("acme", "other", row(1));
    // Written in the background: wait for the last one.
    let mut all = Vec::new();
    for _ in 0..400 {
        all = store.invocations("acme", "f", 10_000).await.unwrap();
        if all.first().is_some_and(|r| r.version == 5 * keep / 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(all.first().map(|r| r.version), Some(5 * keep / 2), "the invocations never settled");
    // Newest first, none lost among the newest, and trimmed to at most twice the kept count.
    assert!(all.windows(2).all(|w| w[0].version == w[1].version + 1));
    assert!((keep as usize..=2 * keep as usize).contains(&all.len()), "{} rows", all.len());
    let listed = store.invocations("acme", "f", keep).await.unwrap();
    assert_eq!(listed.len(), keep as usize);
    assert_eq!(store.invocations("acme", "other", keep).await.unwrap().len(), 1);
}

/// A function's invocation rows still waiting when it is deleted are not written after it
/// (a later function of the same name starts with none); a log holding a NUL, which
/// PostgreSQL's text cannot hold, is written all the same (with the NUL replaced there).
async fn a_deleted_functions_waiting_invocations_go_with_it(store: Arc<Store>) {
    let row = |log: &str| InvocationRow {
        at: 1,
        version: 1,
        outcome: "ok".into(),
        wall_us: 1,
        fuel: 1,
        peak_memory_bytes: 1,
        log: log.into(),
    };
    store.create_tenant("acme").await.unwrap();
    store.deploy_function("acme", "f", "d1", b"w", None, None).await.unwrap().unwrap();
    store.submit_invocation("acme", "f", row("before\0after"));
    let listed = store.invocations("acme", "f", 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].log.starts_with("before") && listed[0].log.ends_with("after"), "{:?}", listed[0].log);
    store.submit_invocation("acme", "f", row("waiting"));
    assert_eq!(store.delete_function("acme", "f").await.unwrap(), Ok(1));
    store.deploy_function("acme", "f", "d2", b"w", None, None).await.unwrap().unwrap();
    // Well past the rows' interval: whatever was going to be written has been.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(store.invocations("acme", "f", 10).await.unwrap().len(), 0);
}

/// A tenant with a pool and an identity: (pool, identity).
async fn identity(store: &Store) -> (String, String) {
    store.create_tenant("acme").await.unwrap();
    let pool = store.create_pool("acme", "us-east-1", "game", true, &PoolSettings::default()).await.unwrap();
    let identity = store.create_identity(&pool.pool_id, "us-east-1").await.unwrap();
    (pool.pool_id, identity)
}

fn update(
    pool: &str,
    identity: &str,
    name: &str,
    expected: i64,
    writes: &[(&str, Option<&str>)],
    token: &str,
) -> Update {
    Update {
        pool: pool.into(),
        identity: identity.into(),
        name: name.into(),
        expected,
        writes: writes.iter().map(|(k, v)| Write { key: k.to_string(), value: v.map(str::to_owned) }).collect(),
        device_modified_ms: BTreeMap::from([("k".to_owned(), 1_795_810_224_455)]),
        by: "me".into(),
        max_datasets: 2,
        idempotency: Idempotency { token_hash: token.into(), request_hash: format!("{writes:?}"), expires: now() + 60 },
        device_id: None,
    }
}

async fn apply(store: &Store, u: Update) -> UpdateOutcome {
    store.update(u).await.unwrap()
}

async fn an_update_applies_once_and_its_retry_gets_the_same_answer(store: Arc<Store>) {
    let (p, i) = identity(&*store).await;
    let first = apply(&*store, update(&p, &i, "d", 0, &[("k", Some("v"))], "t1")).await;
    let UpdateOutcome::Applied(rows) = &first else { panic!("{first:?}") };
    assert_eq!(rows[0].device_modified_ms, Some(1_795_810_224_455));
    let retry = apply(&*store, update(&p, &i, "d", 0, &[("k", Some("v"))], "t1")).await;
    assert_eq!(retry, UpdateOutcome::Replayed(rows.clone()));
    // The same token with other patches is a conflict, not a replay.
    assert_eq!(apply(&*store, update(&p, &i, "d", 0, &[("k", Some("w"))], "t1")).await, UpdateOutcome::Conflict);
    let row = store.dataset(DatasetKey::new(&p, &i, "d")).await.unwrap().unwrap();
    assert_eq!((row.sync_count, row.num_records, row.data_storage), (1, 1, 2));
    let answer = Idempotency { token_hash: "t1".into(), request_hash: format!("{:?}", [("k", Some("v"))]), expires: 0 };
    assert_eq!(store.applied_answer(DatasetKey::new(&p, &i, "d"), &answer).await.unwrap(), Some(rows.clone()));
    // One answer per dataset: the next update's replaces it.
    apply(&*store, update(&p, &i, "d", 1, &[("k", Some("x"))], "t2")).await;
    assert_eq!(store.applied_answer(DatasetKey::new(&p, &i, "d"), &answer).await.unwrap(), None);
}

async fn concurrent_updates_of_one_base_apply_once(store: Arc<Store>) {
    let (p, i) = identity(&*store).await;
    let mut tasks = Vec::new();
    for n in 0..8 {
        let (store, p, i) = (store.clone(), p.clone(), i.clone());
        tasks.push(tokio::spawn(async move {
            let value = format!("v{n}");
            apply(&*store, update(&p, &i, "d", 0, &[("k", Some(&value))], &format!("t{n}"))).await
        }));
    }
    let mut applied = 0;
    for t in tasks {
        match t.await.unwrap() {
            UpdateOutcome::Applied(_) => applied += 1,
            UpdateOutcome::Conflict => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(store.dataset(DatasetKey::new(&p, &i, "d")).await.unwrap().unwrap().sync_count, 1);
}

async fn the_dataset_limit_holds_under_concurrent_creations(store: Arc<Store>) {
    let (p, i) = identity(&*store).await;
    let mut tasks = Vec::new();
    for name in ["a", "b", "c", "e", "f"] {
        let (store, p, i) = (store.clone(), p.clone(), i.clone());
        tasks.push(tokio::spawn(
            async move { apply(&*store, update(&p, &i, name, 0, &[("k", Some("v"))], name)).await },
        ));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| matches!(o, UpdateOutcome::Applied(_))).count(), 2, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, UpdateOutcome::Applied(_) | UpdateOutcome::TooManyDatasets)));
    assert_eq!(store.datasets_after(&p, &i, "", 10).await.unwrap().len(), 2);
    assert_eq!(store.identity_usage(&p, &i).await.unwrap().count, 2);
}

async fn a_deletion_is_remembered_after_recreation(store: Arc<Store>) {
    let (p, i) = identity(&*store).await;
    apply(&*store, update(&p, &i, "d", 0, &[("k", Some("v"))], "t1")).await;
    let deleted = store.delete_dataset(DatasetKey::new(&p, &i, "d"), "me").await.unwrap().unwrap();
    assert_eq!(deleted.sync_count, 1);
    assert_eq!(store.delete_dataset(DatasetKey::new(&p, &i, "d"), "me").await.unwrap().map(|d| d.name), None);
    let row = store.dataset(DatasetKey::new(&p, &i, "d")).await.unwrap().unwrap();
    assert!(row.deleted && row.deleted_at == 2 && row.sync_count == 2);
    // Recreating, even empty, is a new SyncCount; the deletion's count stays.
    assert!(matches!(apply(&*store, update(&p, &i, "d", 2, &[], "t2")).await, UpdateOutcome::Applied(_)));
    let row = store.dataset(DatasetKey::new(&p, &i, "d")).await.unwrap().unwrap();
    assert!(!row.deleted && row.deleted_at == 2 && row.sync_count == 3 && row.num_records == 0);
}

async fn pages_are_keyset_bounded_by_the_first_pages_count(store: Arc<Store>) {
    let (p, i) = identity(&*store).await;
    let at = DatasetKey::new(&p, &i, "d");
    apply(&*store, update(&p, &i, "d", 0, &[("b", Some("1")), ("a", Some("2")), ("c", None)], "t1")).await;
    // A NextToken cannot raise the listing's bound past what exists.
    assert_eq!(store.records_page(at, 0, Some(999), None, 10).await.unwrap().upper, 1);
    let first = store.records_page(at, 0, None, None, 2).await.unwrap();
    assert_eq!(first.records.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert!(first.more);
    // A write between pages is not in this listing: its SyncCount is past the bound.
    apply(&*store, update(&p, &i, "d", 1, &[("0", Some("new"))], "t2")).await;
    let last = first.records.last().unwrap();
    let cursor = RecordCursor { sync_count: last.sync_count, key: last.key.clone() };
    let second = store.records_page(at, 0, Some(first.upper), Some(&cursor), 10).await.unwrap();
    assert_eq!(second.records.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["c"]);
    assert!(!second.more && second.records[0].value.is_none());
    let next = store.records_page(at, first.upper, None, None, 10).await.unwrap();
    assert_eq!(next.records.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["0"]);
}

async fn a_merged_away_identity_writes_nothing(store: Arc<Store>) {
    let (p, source) = identity(&*store).await;
    let target = store.create_identity(&p, "us-east-1").await.unwrap();
    apply(&*store, update(&p, &source, "d", 0, &[("k", Some("v"))], "t1")).await;
    assert_eq!(store.link_login(&p, "login.example.com", "alice", &target, false).await.unwrap(), LinkOutcome::Linked);
    let merged = store.merge_identities(&p, &source, &target, MergeRule::SourceUnauthenticated).await.unwrap();
    let MergeOutcome::Merged(merge) = merged else { panic!("{merged:?}") };
    assert_eq!(merge.datasets, [format!("d.{source}")]);
    let page = store.records_page(DatasetKey::new(&p, &target, "d"), 0, None, None, 10).await.unwrap();
    assert_eq!((page.merged_names, page.dataset.is_none()), (merge.datasets.clone(), true));
    let moved = store.dataset(DatasetKey::new(&p, &target, &merge.datasets[0])).await.unwrap().unwrap();
    assert_eq!((moved.sync_count, moved.num_records), (1, 1));
    assert_eq!(
        apply(&*store, update(&p, &source, "d", 0, &[("k", Some("v"))], "t2")).await,
        UpdateOutcome::IdentityGone
    );
    assert_eq!(
        store.merge_identities(&p, &source, &target, MergeRule::SourceUnauthenticated).await.unwrap(),
        MergeOutcome::Changed
    );
    let row = store.identity(&source).await.unwrap().unwrap();
    assert_eq!(row.merged_into.as_deref(), Some(target.as_str()));
    assert_eq!(store.identity(&target).await.unwrap().unwrap().logins, [("login.example.com".into(), "alice".into())]);
}

async fn first_sign_ins_at_once_make_one_identity(store: Arc<Store>) {
    let (p, _) = identity(&*store).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (store, p) = (store.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            store.identity_for_login(&p, "us-east-1", "login.example.com", "bob").await.unwrap()
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(results.iter().filter(|r| r.created).count(), 1, "{results:?}");
    assert!(results.iter().all(|r| r.identity_id == results[0].identity_id));
    let listed = store.identities_after(&p, "", 60, true).await.unwrap();
    assert_eq!(listed.len(), 2, "the fixture's identity and bob's");
}

async fn concurrent_deploys_get_distinct_versions_within_the_limits(store: Arc<Store>) {
    store.create_tenant("t").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.deploy_function("t", "f", "d", b"w", None, None).await.unwrap() }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().unwrap());
    }
    versions.sort();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
    assert_eq!(
        store.deploy_function("t", "f", "d", b"w", None, Some(5)).await.unwrap(),
        Err(DeployRefused::Changed { latest: 6 })
    );
    let mut script = script_of("exports.handler=1", "index.handler");
    script.environment.insert("TABLE".into(), "scores \u{e9}\"".into());
    assert_eq!(store.deploy_function("t", "f", "d2", b"w2", Some(&script), Some(6)).await.unwrap(), Ok(7));
    assert_eq!(store.function("t", "f", None).await.unwrap(), Some(FunctionHead { version: 7, digest: "d2".into() }));
    assert_eq!(store.function_wasm("t", "f", 7).await.unwrap().as_deref(), Some(&b"w2"[..]));
    assert_eq!(store.function_script("t", "f", 7).await.unwrap(), Some(script));
    let versions = store.function_versions("t", "f").await.unwrap();
    assert_eq!((versions.len(), versions[0].component_bytes, versions[0].script), (7, 2, true));
    for i in 1..limits::MAX_FUNCTIONS_PER_TENANT {
        store.deploy_function("t", &format!("g{i}"), "d", b"w", None, None).await.unwrap().unwrap();
    }
    assert_eq!(store.function_limit("t", "one-more").await.unwrap(), Some(DeployRefused::Functions));
    assert_eq!(
        store.deploy_function("t", "one-more", "d", b"w", None, None).await.unwrap(),
        Err(DeployRefused::Functions)
    );
    assert_eq!(store.functions("t").await.unwrap().len(), limits::MAX_FUNCTIONS_PER_TENANT);
}

async fn credentials_follow_their_identity(store: Arc<Store>) {
    let (p, i) = identity(&*store).await;
    let AccessKeys { access_key: ak, secret: sk } = store.create_tenant("other").await.unwrap().unwrap();
    assert!(store.create_tenant("other").await.unwrap().is_none());
    let cred = store.credential(&ak).await.unwrap().unwrap();
    assert_eq!((cred.secret, cred.principal), (sk, Principal::Developer { tenant: "other".into() }));
    let IssuedCredentials { access_key: ak, session_token: token, .. } =
        store.issue_identity_credentials(&p, &i, false, 60).await.unwrap();
    let cred = store.credential(&ak).await.unwrap().unwrap();
    assert_eq!(cred.session_token, Some(token));
    assert_eq!(cred.principal, Principal::Identity { pool_id: p.clone(), identity_id: i.clone() });
    // Unauthenticated access turned off: an unauthenticated identity's keys stop working.
    store.update_pool(&p, "game", false, &PoolSettings::default()).await.unwrap();
    assert!(store.credential(&ak).await.unwrap().is_none());
    store.update_pool(&p, "game", true, &PoolSettings::default()).await.unwrap();
    assert!(store.credential(&ak).await.unwrap().is_some());
    assert_eq!(store.delete_identities(Some(&p), std::slice::from_ref(&i)).await.unwrap(), Vec::<String>::new());
    assert!(store.credential(&ak).await.unwrap().is_none());
    assert!(store.delete_pool(&p).await.unwrap());
    assert!(store.pool(&p).await.unwrap().is_none());
    store.put_root_credential("AKIAROOT", "s1").await.unwrap();
    store.put_root_credential("AKIAROOT", "s2").await.unwrap();
    assert_eq!(store.credential("AKIAROOT").await.unwrap().unwrap().secret, "s2");
}

async fn a_snapshot_holds_the_dataset_its_records_and_the_identitys_count(store: Arc<Store>) {
    let (p, i) = identity(&*store).await;
    let empty = store.snapshot(DatasetKey::new(&p, &i, "d")).await.unwrap();
    assert!(empty.dataset.is_none() && empty.records.is_empty() && empty.identity_datasets == 0);
    apply(&*store, update(&p, &i, "d", 0, &[("k", Some("v")), ("gone", None)], "t1")).await;
    apply(&*store, update(&p, &i, "e", 0, &[], "t2")).await;
    let snap = store.snapshot(DatasetKey::new(&p, &i, "d")).await.unwrap();
    assert_eq!(snap.sync_count(), 1);
    assert!(snap.exists());
    assert_eq!(snap.identity_datasets, 2);
    assert_eq!(snap.live(), Dataset::from([("k".to_owned(), "v".to_owned())]));
    assert_eq!(snap.records.keys().collect::<Vec<_>>(), ["gone", "k"]);
    assert_eq!(snap.records["k"].device_modified_ms, Some(1_795_810_224_455));
    // A dataset with no records has its row and no record.
    let e = store.snapshot(DatasetKey::new(&p, &i, "e")).await.unwrap();
    assert!(e.dataset.is_some() && e.records.is_empty() && e.identity_datasets == 2);
    // Its sizes are the dataset row's: live records, and their bytes.
    apply(&*store, update(&p, &i, "d", 1, &[("\u{e9}t\u{e9}", Some("\u{2603}")), ("k", None)], "t3")).await;
    let sizes = |d: &DatasetRow| (d.num_records, d.data_storage);
    let snap = store.snapshot(DatasetKey::new(&p, &i, "d")).await.unwrap();
    let row = store.dataset(DatasetKey::new(&p, &i, "d")).await.unwrap().unwrap();
    assert_eq!((sizes(snap.dataset.as_ref().unwrap()), sizes(&row)), ((1, 8), (1, 8)));
}

/// A stream of schema 4 with what schema 5 keeps otherwise: a merged dataset named past
/// 128 characters, and a login provider's client ids separated by `,`.
async fn an_older_stream_is_imported_as_schema_5_keeps_it(store: Arc<Store>) {
    let source = sqlite().await;
    let pool = fill(&*source.store).await;
    let mut settings = source.store.pool(&pool).await.unwrap().unwrap().settings;
    settings.supported_login_providers.insert("accounts.google.com".into(), "a.apps, b.apps".into());
    source.store.update_pool(&pool, "game", true, &settings).await.unwrap();
    let (base, merged_from) = ("b".repeat(128), "us-east-1:0123abcd");
    let long = format!("{base}.{merged_from}");
    let stream = as_schema_4(&export(&*source.store, &Scope::Installation).await)
        .replace("\"name\":\"d\",", &format!("\"name\":\"{long}\","))
        .replace(
            "\"merged_from\":null,\"merged_base\":null",
            &format!("\"merged_from\":\"{merged_from}\",\"merged_base\":\"{base}\""),
        )
        .replace("\"dataset\":\"d\",", &format!("\"dataset\":\"{long}\","));
    assert!(stream.contains(&long) && stream.contains("\"schema\":4"), "the stream was made old");
    import(&*store, &stream, None).await.unwrap();
    let identity = store.identities_after(&pool, "", 10, false).await.unwrap();
    let mut names = Vec::new();
    for i in &identity {
        for d in store.datasets_after(&pool, &i.identity_id, "", 10).await.unwrap() {
            names.push((d.name, d.num_records));
        }
    }
    assert_eq!(names, [(merged_dataset_name(&base, merged_from, 1), 2)]);
    let settings = store.pool(&pool).await.unwrap().unwrap().settings;
    assert_eq!(settings.supported_login_providers["accounts.google.com"], "a.apps;b.apps");
    assert_eq!(settings.supported_login_providers["graph.facebook.com"], "app", "the others as they were");
}

/// A stream as schema 4 wrote it: without the columns and tables added since.
fn as_schema_4(stream: &str) -> String {
    let mut lines = Vec::new();
    for line in stream.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        match v["type"].as_str() {
            None => v["schema"] = 4.into(),
            Some("functions") => drop(v["row"].as_object_mut().unwrap().remove("environment")),
            Some("function_aliases") => continue,
            Some("end") => v["rows"] = (lines.len() - 1).into(),
            Some(_) => {}
        }
        lines.push(v.to_string());
    }
    lines.join("\n") + "\n"
}

/// The pool's usage, kept by triggers, against what its datasets and records hold.
async fn a_pools_usage_follows_every_change(store: Arc<Store>) {
    let (p, i) = identity(&*store).await;
    let usage = |store: Arc<Store>, p: String| async move {
        let u = store.pool_usage(&p).await.unwrap();
        (u.count, u.bytes)
    };
    assert_eq!(usage(store.clone(), p.clone()).await, (0, 0));
    assert_eq!(store.pool_usage(&p).await.unwrap().last_modified, None);
    apply(&*store, update(&p, &i, "d", 0, &[("k", Some("vv")), ("kk", Some("v"))], "t1")).await;
    // SyncCount 1; "k"+"vv" and "kk"+"v": 6 bytes.
    assert_eq!(usage(store.clone(), p.clone()).await, (1, 6));
    assert!(store.pool_usage(&p).await.unwrap().last_modified.is_some());
    // A value overwritten and a record removed: 1 + "k"+"vvvv" = 5 bytes.
    apply(&*store, update(&p, &i, "d", 1, &[("k", Some("vvvv")), ("kk", None)], "t2")).await;
    assert_eq!(usage(store.clone(), p.clone()).await, (2, 5));
    // A second identity's dataset, then that identity merged into the first.
    let other = store.create_identity(&p, "us-east-1").await.unwrap();
    apply(&*store, update(&p, &other, "e", 0, &[("x", Some("yz"))], "t3")).await;
    assert_eq!(usage(store.clone(), p.clone()).await, (3, 8));
    store.merge_identities(&p, &other, &i, MergeRule::SourceUnauthenticated).await.unwrap();
    let after_merge = usage(store.clone(), p.clone()).await;
    assert_eq!(after_merge.1, 8, "a merge moves the bytes, it does not add any");
    // Deleting a dataset removes its bytes (its SyncCount still counts, as sessions did).
    store.delete_dataset(DatasetKey::new(&p, &i, "d"), "me").await.unwrap();
    let (sessions, bytes) = usage(store.clone(), p.clone()).await;
    assert_eq!(bytes, 3);
    // A deleted dataset brought back: one more SyncCount, and its record's bytes.
    let deleted = store.dataset(DatasetKey::new(&p, &i, "d")).await.unwrap().unwrap();
    assert!(deleted.deleted);
    apply(&*store, update(&p, &i, "d", deleted.sync_count, &[("k", Some("abc"))], "t4")).await;
    assert_eq!(usage(store.clone(), p.clone()).await, (sessions + 1, bytes + 4));
    // An update that writes nothing, of a live dataset and of a new one: no change.
    for (name, expected, token) in [("d", deleted.sync_count + 1, "t5"), ("empty", 0, "t6")] {
        // (A third dataset of the identity: above `update`'s limit of two.)
        let outcome = apply(&*store, Update { max_datasets: 20, ..update(&p, &i, name, expected, &[], token) }).await;
        assert!(matches!(outcome, UpdateOutcome::Applied(_)), "{outcome:?}");
    }
    assert_eq!(usage(store.clone(), p.clone()).await, (sessions + 1, bytes + 4));
    // A record removed and a new one ("k"+"abc" goes, "n"+"vw" comes), then one overwritten
    // with a shorter value and another new one ("n"+"v", "o"+"p").
    apply(&*store, update(&p, &i, "d", deleted.sync_count + 1, &[("k", None), ("n", Some("vw"))], "t7")).await;
    apply(&*store, update(&p, &i, "d", deleted.sync_count + 2, &[("n", Some("v")), ("o", Some("p"))], "t8")).await;
    assert_eq!(usage(store.clone(), p.clone()).await, (sessions + 3, bytes + 4));
    store.delete_identities(Some(&p), std::slice::from_ref(&i)).await.unwrap();
    assert_eq!(usage(store.clone(), p.clone()).await, (0, 0));
}

async fn meta_values_are_created_once(store: Arc<Store>) {
    assert_eq!(store.meta_or_insert("k", "a".into()).await.unwrap(), ("a".into(), true));
    assert_eq!(store.meta_or_insert("k", "b".into()).await.unwrap(), ("a".into(), false));
}

/// An installation through the stream: a bit of everything the stream carries.
async fn fill(store: &Store) -> String {
    let (p, i) = identity(store).await;
    let mut settings = PoolSettings { developer_provider_name: Some("login.acme".into()), ..Default::default() };
    settings.supported_login_providers.insert("graph.facebook.com".into(), "app".into());
    store.update_pool(&p, "game \u{e9}", true, &settings).await.unwrap();
    assert!(store.set_sync_trigger(&p, Some("f:1"), None).await.unwrap());
    apply(store, update(&p, &i, "d", 0, &[("k", Some("v\u{e9}\n")), ("B", Some("x")), ("gone", None)], "t1")).await;
    store.identity_for_login(&p, "us-east-1", "login.acme", "u1").await.unwrap();
    store
        .deploy_function(
            "acme",
            "f",
            "digest",
            b"\0asm\x01\xff",
            Some(&Script {
                environment: [("TABLE".to_owned(), "scores \u{e9}".to_owned())].into(),
                ..script_of("exports.handler = 1", "index.handler")
            }),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    store.deploy_function("acme", "f", "digest2", b"\0asm\x02", None, None).await.unwrap().unwrap();
    let rollout = crate::releases::RolloutSettings {
        promote_after_invocations: Some(100),
        promote_after_seconds: None,
        error_margin_bp: 500,
        reject_margin_bp: Some(250),
        min_invocations: 20,
    };
    let live = AliasChange {
        version: 1,
        routing: Some(crate::releases::Routing { version: 2, weight_bp: 1_000 }),
        rollout: Some(rollout),
        description: "the live one \u{e9}".into(),
    };
    store.put_alias("acme", "f", "live", &live, PutMode::Create, None).await.unwrap().unwrap();
    store
        .put_issuer(&Issuer {
            tenant: "acme".into(),
            issuer: "https://login.example.com".into(),
            audiences: vec!["app".into()],
            jwks: "{\"keys\":[]}".into(),
            jwks_file: None,
        })
        .await
        .unwrap();
    p
}

async fn export(store: &Store, scope: &Scope) -> String {
    let mut out = Vec::new();
    store.export(scope, &mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

async fn import(store: &Store, stream: &str, tenant: Option<&str>) -> Result<Counts> {
    let mut input: &[u8] = stream.as_bytes();
    let input: &mut (dyn BufRead + Send) = &mut input;
    store.import(input, tenant).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_to_sqlite_round_trips_byte_for_byte() {
    let (a, b, c) = (sqlite().await, postgres().await, sqlite().await);
    let pool = fill(&*a.store).await;
    let first = export(&*a.store, &Scope::Installation).await;
    import(&*b.store, &first, None).await.unwrap();
    assert_eq!(export(&*b.store, &Scope::Installation).await, first);
    import(&*c.store, &export(&*b.store, &Scope::Installation).await, None).await.unwrap();
    assert_eq!(export(&*c.store, &Scope::Installation).await, first);
    // What was imported works: the dataset with its SyncCount, and the function's bytes.
    let mut datasets = Vec::new();
    for identity in b.store.identities_after(&pool, "", 10, false).await.unwrap() {
        datasets.extend(b.store.datasets_after(&pool, &identity.identity_id, "", 10).await.unwrap());
    }
    assert_eq!(datasets.iter().map(|d| (d.sync_count, d.num_records)).collect::<Vec<_>>(), [(1, 2)]);
    assert_eq!(b.store.function_wasm("acme", "f", 1).await.unwrap().as_deref(), Some(&b"\0asm\x01\xff"[..]));
    // The pool's usage is counted on import, on either backend.
    let usage = |u: Usage| (u.count, u.bytes, u.last_modified);
    let original = usage(a.store.pool_usage(&pool).await.unwrap());
    assert_eq!(usage(b.store.pool_usage(&pool).await.unwrap()), original);
    assert_eq!(usage(c.store.pool_usage(&pool).await.unwrap()), original);
    // A version's environment and an alias with its rollout move too.
    let script = b.store.function_script("acme", "f", 1).await.unwrap().unwrap();
    assert_eq!(script.environment.get("TABLE").map(String::as_str), Some("scores \u{e9}"));
    let moved = b.store.alias("acme", "f", "live").await.unwrap().unwrap();
    assert_eq!(moved, a.store.alias("acme", "f", "live").await.unwrap().unwrap());
    assert_eq!(moved.rollout.map(|r| r.reject_margin_bp), Some(Some(250)));
    // Not twice: the store is no longer empty.
    assert!(matches!(import(&*b.store, &first, None).await, Err(StoreError::Refused(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_moves_from_sqlite_to_a_tenant_on_postgres() {
    let (a, b) = (sqlite().await, postgres().await);
    let pool = fill(&*a.store).await;
    let stream = export(&*a.store, &Scope::Pool(pool.clone())).await;
    b.store.create_tenant("other").await.unwrap();
    assert!(matches!(import(&*b.store, &stream, Some("nobody")).await, Err(StoreError::Refused(_))));
    let counts = import(&*b.store, &stream, Some("other")).await.unwrap();
    assert!(counts.contains(&("records", 3)) && counts.contains(&("identities", 2)), "{counts:?}");
    assert_eq!(b.store.pool(&pool).await.unwrap().unwrap().tenant, "other");
    let usage = |u: Usage| (u.count, u.bytes, u.last_modified);
    assert_eq!(usage(b.store.pool_usage(&pool).await.unwrap()), usage(a.store.pool_usage(&pool).await.unwrap()));
    let expected = stream.replace("\"tenant\":\"acme\"", "\"tenant\":\"other\"");
    assert_eq!(export(&*b.store, &Scope::Pool(pool)).await, expected);
}

/// `lines` without its datasets, the end line's count adjusted: records of datasets
/// the stream does not hold.
pub(crate) fn without_datasets(lines: &[&str]) -> String {
    let mut kept: Vec<String> =
        lines.iter().filter(|l| !l.contains("\"type\":\"datasets\"")).map(|l| l.to_string()).collect();
    assert!(kept.len() < lines.len() && kept.iter().any(|l| l.contains("\"type\":\"records\"")));
    let n = kept.len() - 2;
    *kept.last_mut().unwrap() = format!("{{\"type\":\"end\",\"rows\":{n}}}");
    kept.join("\n")
}

/// A deletion of two identities, the second held by an update that is about to count its
/// change in a usage counter the first identity's rows also count in (the same slot): the
/// deletion waits for the update and then goes on; neither is aborted as a deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_identities_waits_for_an_update_without_deadlock_on_postgres() {
    let config = postgres::testing::fresh_database().await;
    let store = Arc::new(postgres::Postgres::open_config(config.clone(), 4).await.unwrap());
    let (p, a) = identity(&*store).await;
    store.update(update(&p, &a, "d", 0, &[("k", Some("v"))], "t")).await.unwrap();
    let raw = postgres::testing::connect(&config).await;
    let slot_of = async |id: &str| -> i32 { raw.query_one("SELECT hashtext($1) & 31", &[&id]).await.unwrap().get(0) };
    let slot = slot_of(&a).await;
    let mut b = String::new();
    for _ in 0..1000 {
        b = store.create_identity(&p, "us-east-1").await.unwrap();
        if slot_of(&b).await == slot {
            break;
        }
    }
    assert_eq!(slot_of(&b).await, slot, "no identity of the same slot in 1,000");
    let mut holder = postgres::testing::connect(&config).await;
    let update_of_b = holder.transaction().await.unwrap();
    update_of_b.execute("SELECT 1 FROM identities WHERE identity_id = $1 FOR UPDATE", &[&b]).await.unwrap();
    let deleting = tokio::spawn({
        let (store, p, ids) = (store.clone(), p.clone(), vec![a.clone(), b.clone()]);
        async move { store.delete_identities(Some(&p), &ids).await }
    });
    let waits =
        async || -> i64 { raw.query_one("SELECT COUNT(*) FROM pg_locks WHERE NOT granted", &[]).await.unwrap().get(0) };
    let mut tries = 0;
    while waits().await == 0 {
        tries += 1;
        assert!(tries < 1000, "the deletion never waited for the update");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // What the update does next: counts its change in its slot.
    update_of_b
        .execute("UPDATE pool_usage SET bytes = bytes WHERE pool_id = $1 AND slot = $2", &[&p, &i64::from(slot)])
        .await
        .unwrap();
    update_of_b.commit().await.unwrap();
    assert_eq!(deleting.await.unwrap().unwrap(), Vec::<String>::new());
    assert!(store.identity(&a).await.unwrap().is_none() && store.identity(&b).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_stream_writes_nothing_on_postgres() {
    let a = sqlite().await;
    fill(&*a.store).await;
    let good = export(&*a.store, &Scope::Installation).await;
    let lines: Vec<&str> = good.lines().collect();
    let mut dup: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let record = dup.iter().position(|l| l.contains("\"type\":\"records\"")).unwrap();
    dup.insert(record, dup[record].clone());
    let n = dup.len() - 2;
    *dup.last_mut().unwrap() = format!("{{\"type\":\"end\",\"rows\":{n}}}");
    let cases = [
        lines[..lines.len() - 1].join("\n"),
        good.replace("\"created\":", "\"made\":"),
        good.replace("\"sync_count\":1,", "\"sync_count\":\"one\","),
        dup.join("\n"),
        without_datasets(&lines),
    ];
    let b = postgres().await;
    let before = export(&*b.store, &Scope::Installation).await;
    for case in cases {
        assert!(import(&*b.store, &case, None).await.is_err(), "{case}");
        assert_eq!(export(&*b.store, &Scope::Installation).await, before);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_postgres_is_verified_as_the_url_asks() {
    let (Ok(ca), Ok(other_ca)) =
        (std::env::var("SYNCTRIG_TEST_DATABASE_CA"), std::env::var("SYNCTRIG_TEST_DATABASE_OTHER_CA"))
    else {
        panic!("the TLS test needs SYNCTRIG_TEST_DATABASE_CA and _OTHER_CA (tests/run-all.sh's cluster sets them)");
    };
    // The test cluster's certificate names `localhost`, signed by `ca`.
    let url = postgres::testing::fresh_database_url().await;
    let at = |host: &str, query: &str| format!("{}{query}", url.replacen("127.0.0.1", host, 1));
    let ssl_of = |store: postgres::Postgres| async move { store.uses_tls().await.unwrap() };
    let open = |url: String| async move { postgres::Postgres::open(&url, 1).await };
    for (url, tls) in [
        (at("localhost", &format!("?sslmode=verify-full&sslrootcert={ca}")), true),
        (at("127.0.0.1", &format!("?sslmode=verify-ca&sslrootcert={ca}")), true),
        (at("127.0.0.1", "?sslmode=require"), true),
        (at("127.0.0.1", ""), true),
        (at("127.0.0.1", "?sslmode=disable"), false),
    ] {
        let store = open(url.clone()).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(ssl_of(store).await, tls, "{url}");
    }
    for (url, why) in [
        (at("127.0.0.1", &format!("?sslmode=verify-full&sslrootcert={ca}")), "NotValidForName"),
        (at("localhost", &format!("?sslmode=verify-full&sslrootcert={other_ca}")), "UnknownIssuer"),
        (at("localhost", &format!("?sslmode=verify-ca&sslrootcert={other_ca}")), "UnknownIssuer"),
        (at("localhost", &format!("?sslmode=require&sslrootcert={other_ca}")), "UnknownIssuer"),
    ] {
        let e = open(url.clone()).await.err().unwrap_or_else(|| panic!("{url} connected"));
        assert!(format!("{e:?}").contains(why), "{url}: {e:?}");
    }
}

/// An unlink is one transaction: when its second statement fails (a trigger makes it), the
/// logins it deleted first are back. (SQLite ran them as two statements once.)
async fn an_unlink_that_fails_midway_changes_nothing(
    store: &Store,
    break_identities: impl std::future::Future<Output = ()>,
) {
    let (p, _) = identity(store).await;
    let user = store.identity_for_login(&p, "us-east-1", "login.acme", "ada").await.unwrap().identity_id;
    break_identities.await;
    assert!(store.unlink_logins(&user, "login.acme", None).await.is_err(), "the unlink fails");
    assert_eq!(store.login_identity(&p, "login.acme", "ada").await.unwrap().as_deref(), Some(user.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlink_that_fails_midway_changes_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = open(&Database::Sqlite(path.clone())).await.unwrap();
    let breaking = async move {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER no_updates BEFORE UPDATE ON identities BEGIN SELECT RAISE(ABORT, 'no updates'); END;",
        )
        .unwrap();
    };
    an_unlink_that_fails_midway_changes_nothing(&*store, breaking).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlink_that_fails_midway_changes_nothing_on_postgres() {
    let config = postgres::testing::fresh_database().await;
    let store = postgres::Postgres::open_config(config.clone(), 2).await.unwrap();
    let breaking = async move {
        postgres::testing::connect(&config)
            .await
            .batch_execute(
                "CREATE FUNCTION no_updates() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'no updates'; END $$;
                 CREATE TRIGGER no_updates BEFORE UPDATE ON identities FOR EACH ROW EXECUTE FUNCTION no_updates();",
            )
            .await
            .unwrap();
    };
    an_unlink_that_fails_midway_changes_nothing(&store, breaking).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_migrate_once() {
    let config = postgres::testing::fresh_database().await;
    let opens: Vec<_> = (0..4).map(|_| tokio::spawn(postgres::Postgres::open_config(config.clone(), 2))).collect();
    for open in opens {
        open.await.unwrap().unwrap();
    }
}

/// Waits for `check` to hold, up to 10 s: what a node learns from another's notification
/// arrives with no fixed delay, so the tests wait for it rather than time it.
async fn eventually<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F) -> bool {
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_reaches_every_nodes_cache() {
    let config = postgres::testing::fresh_database().await;
    let a = postgres::Postgres::open_config(config.clone(), 2).await.unwrap();
    let b = postgres::Postgres::open_config(config.clone(), 2).await.unwrap();
    assert!(eventually(|| async { a.caching() && b.caching() }).await);
    let (p, i) = identity(&a).await;
    let key = a.issue_identity_credentials(&p, &i, false, 3600).await.unwrap().access_key;
    // b reads, and keeps, the pool, the credential and the identity's pool.
    assert_eq!(b.pool(&p).await.unwrap().unwrap().sync_trigger, None);
    assert!(b.credential(&key).await.unwrap().is_some());
    assert_eq!(b.identity_pool(&i).await.unwrap(), Some(p.clone()));
    // A change made behind every node's back (unannounced) is not seen: b answers from
    // its cache. This is what shows the cache is in use.
    let raw = postgres::testing::connect(&config).await;
    raw.execute("UPDATE pools SET sync_trigger = 'unannounced' WHERE pool_id = $1", &[&p]).await.unwrap();
    assert_eq!(b.pool(&p).await.unwrap().unwrap().sync_trigger, None);
    // A change through a store: the node that made it sees it at once, the others once
    // notified.
    assert!(a.set_sync_trigger(&p, Some("sample"), None).await.unwrap());
    assert_eq!(a.pool(&p).await.unwrap().unwrap().sync_trigger.as_deref(), Some("sample"));
    assert!(
        eventually(|| async { b.pool(&p).await.unwrap().unwrap().sync_trigger.as_deref() == Some("sample") }).await
    );
    // A deploy changes a function's latest version everywhere.
    a.deploy_function("acme", "f", "d1", b"w", None, None).await.unwrap().unwrap();
    assert_eq!(b.function("acme", "f", None).await.unwrap().map(|f| f.version), Some(1));
    a.deploy_function("acme", "f", "d2", b"w", None, None).await.unwrap().unwrap();
    assert!(eventually(|| async { b.function("acme", "f", None).await.unwrap().map(|f| f.version) == Some(2) }).await);
    // Moving an alias takes effect at the next resolution on every node.
    let live = Qualifier::Alias("live".into());
    let to = |version| AliasChange { version, routing: None, rollout: None, description: String::new() };
    a.put_alias("acme", "f", "live", &to(1), PutMode::Create, None).await.unwrap().unwrap();
    assert_eq!(b.resolve_function("acme", "f", &live).await.unwrap().map(|r| r.primary.version), Some(1));
    a.put_alias("acme", "f", "live", &to(2), PutMode::Update, None).await.unwrap().unwrap();
    assert!(
        eventually(|| async {
            b.resolve_function("acme", "f", &live).await.unwrap().map(|r| r.primary.version) == Some(2)
        })
        .await
    );
    // A deleted identity's credentials stop working on every node.
    a.delete_identities(Some(&p), std::slice::from_ref(&i)).await.unwrap();
    assert!(a.credential(&key).await.unwrap().is_none());
    assert!(eventually(|| async { b.credential(&key).await.unwrap().is_none() }).await);
    assert!(eventually(|| async { b.identity_pool(&i).await.unwrap().is_none() }).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_listen_caches_nothing() {
    let config = postgres::testing::fresh_database().await;
    let b = postgres::Postgres::open_config(config.clone(), 2).await.unwrap();
    assert!(eventually(|| async { b.caching() }).await);
    let (p, _) = identity(&b).await;
    assert_eq!(b.pool(&p).await.unwrap().unwrap().name, "game");
    // With its listener cut, it could miss a notification: it reads through.
    postgres::testing::cut_listeners(&config).await;
    assert!(eventually(|| async { !b.caching() }).await);
    let raw = postgres::testing::connect(&config).await;
    raw.execute("UPDATE pools SET name = 'renamed' WHERE pool_id = $1", &[&p]).await.unwrap();
    assert_eq!(b.pool(&p).await.unwrap().unwrap().name, "renamed");
    // It listens again, and caches again.
    assert!(eventually(|| async { b.caching() }).await);
    assert_eq!(b.pool(&p).await.unwrap().unwrap().name, "renamed");
    raw.execute("UPDATE pools SET name = 'unannounced' WHERE pool_id = $1", &[&p]).await.unwrap();
    assert_eq!(b.pool(&p).await.unwrap().unwrap().name, "renamed");
}

fn script_of(source: &str, handler: &str) -> Script {
    Script { source: source.into(), handler: handler.into(), environment: Default::default() }
}
