//! Recording settings and recorded invocations, on both backends.

use super::*;
use crate::recordings::{Recording, RecordingRefused, RecordingSettings};
use crate::releases::PutMode;

both!(
    recordings_are_kept_to_their_count_scoped_to_their_tenant_and_go_with_the_setting_and_the_pool,
    a_function_a_pool_names_is_not_deleted_and_a_deleted_one_leaves_nothing,
);

fn recording(pool: &str, n: i64, at_ms: i64) -> Recording {
    Recording {
        id: 0,
        at_ms,
        pool: pool.into(),
        identity: "i".into(),
        dataset: format!("d{n}"),
        version: 1,
        outcome: "ok".into(),
        input: format!("{{\"n\":{n}}}"),
        output: Some("{}".into()),
        error: None,
        seed: "00".repeat(32),
        clock_secs: 1_800_000_000,
        wall_us: n,
        fuel: 10 * n,
        shadow: None,
    }
}

/// The function's recordings once the background writer has written `want` of them.
async fn settled(store: &Store, tenant: &str, want: usize) -> Vec<Recording> {
    for _ in 0..200 {
        let rows = store.recordings(tenant, "f", None, 1_000).await.unwrap();
        if rows.len() == want {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the recordings never settled at {want}");
}

async fn recordings_are_kept_to_their_count_scoped_to_their_tenant_and_go_with_the_setting_and_the_pool(
    store: Arc<Store>,
) {
    let (pool, _) = identity(&*store).await;
    let settings = |shadow| RecordingSettings { max_count: 3, max_age_secs: 3600, shadow_version: shadow };
    assert_eq!(
        store.set_recording("acme", "f", Some(&settings(None))).await.unwrap(),
        Err(RecordingRefused::NoFunction)
    );
    store.deploy_function("acme", "f", "d1", b"w", None, None).await.unwrap().unwrap();
    assert_eq!(
        store.set_recording("acme", "f", Some(&settings(Some(2)))).await.unwrap(),
        Err(RecordingRefused::NoShadowVersion(2))
    );
    // Off: nothing is recorded.
    store.submit_recording("acme", "f", recording(&pool, 0, now_ms()));
    store.set_recording("acme", "f", Some(&settings(None))).await.unwrap().unwrap();
    assert_eq!(store.recording_settings("acme", "f").await.unwrap(), Some(settings(None)));
    let resolved = store.resolve_function("acme", "f", &Qualifier::Latest).await.unwrap().unwrap();
    assert_eq!(resolved.recording, Some(settings(None)));

    // Five recorded, three kept: the newest, newest first, whole.
    for n in 1..=5 {
        store.submit_recording("acme", "f", recording(&pool, n, now_ms()));
    }
    let kept = settled(&*store, "acme", 3).await;
    assert_eq!(kept.iter().map(|r| r.dataset.as_str()).collect::<Vec<_>>(), ["d5", "d4", "d3"]);
    let newest = store.recording("acme", "f", kept[0].id).await.unwrap().unwrap();
    assert_eq!(newest, Recording { id: kept[0].id, at_ms: kept[0].at_ms, ..recording(&pool, 5, 0) });
    let page = store.recordings("acme", "f", Some(kept[0].id), 1).await.unwrap();
    assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), [kept[1].id]);

    // Past its age, a recording is not shown, and the sweep drops it.
    let more = RecordingSettings { max_count: 10, ..settings(None) };
    store.set_recording("acme", "f", Some(&more)).await.unwrap().unwrap();
    store.submit_recording("acme", "f", recording(&pool, 6, now_ms() - 3_601_000));
    let aged = kept[0].id + 1;
    for _ in 0..200 {
        if store.recording("acme", "f", aged).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(store.recording("acme", "f", aged).await.unwrap().map(|r| r.dataset), Some("d6".into()));
    assert_eq!(settled(&*store, "acme", 3).await, kept);
    store.submit_purge();
    for _ in 0..200 {
        if store.recording("acme", "f", aged).await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(store.recording("acme", "f", aged).await.unwrap(), None, "swept");

    // Another tenant's function of the same name sees none of them.
    store.create_tenant("other").await.unwrap();
    store.deploy_function("other", "f", "d1", b"w", None, None).await.unwrap().unwrap();
    assert!(store.recordings("other", "f", None, 100).await.unwrap().is_empty());
    assert_eq!(store.recording("other", "f", kept[0].id).await.unwrap(), None);
    assert_eq!(store.delete_recordings("other", "f", Some(kept[0].id)).await.unwrap(), 0);

    // Deleted one by one, with the pool, and when recording is turned off.
    assert_eq!(store.delete_recordings("acme", "f", Some(kept[0].id)).await.unwrap(), 1);
    settled(&*store, "acme", 2).await;
    let other_pool = store.create_pool("acme", "us-east-1", "two", true, &PoolSettings::default()).await.unwrap();
    store.submit_recording("acme", "f", recording(&other_pool.pool_id, 7, now_ms()));
    settled(&*store, "acme", 3).await;
    assert!(store.delete_pool(&pool).await.unwrap());
    assert_eq!(settled(&*store, "acme", 1).await[0].pool, other_pool.pool_id);
    store.set_recording("acme", "f", None).await.unwrap().unwrap();
    assert_eq!(store.recording_settings("acme", "f").await.unwrap(), None);
    store.set_recording("acme", "f", Some(&settings(None))).await.unwrap().unwrap();
    assert!(store.recordings("acme", "f", None, 100).await.unwrap().is_empty());
}

async fn a_function_a_pool_names_is_not_deleted_and_a_deleted_one_leaves_nothing(store: Arc<Store>) {
    use crate::releases::AliasChange;
    let (pool, _) = identity(&*store).await;
    assert_eq!(store.delete_function("acme", "f").await.unwrap(), Err(DeleteRefused::Missing));
    for digest in ["d1", "d2"] {
        store.deploy_function("acme", "f", digest, b"w", None, None).await.unwrap().unwrap();
    }
    store.deploy_function("acme", "g", "d1", b"w", None, None).await.unwrap().unwrap();
    let change = AliasChange { version: 1, routing: None, rollout: None, description: String::new() };
    store.put_alias("acme", "f", "live", &change, PutMode::Create, None).await.unwrap().unwrap();
    let settings = RecordingSettings { max_count: 10, max_age_secs: 3600, shadow_version: None };
    store.set_recording("acme", "f", Some(&settings)).await.unwrap().unwrap();
    store.submit_recording("acme", "f", recording(&pool, 1, now_ms()));
    settled(&*store, "acme", 1).await;

    // Named by a pool in any of its forms, it stays.
    for mapping in ["f", "f:2", "f:live", "f:$LATEST", "arn:aws:lambda:us-east-1:000000000000:function:f:live"] {
        let named = if mapping.ends_with("live") { Some("live") } else { None };
        assert!(store.set_sync_trigger(&pool, Some(mapping), Some(("acme", "f", named))).await.unwrap());
        assert_eq!(
            store.delete_function("acme", "f").await.unwrap(),
            Err(DeleteRefused::InUse { pool: pool.clone() }),
            "{mapping}"
        );
    }
    // A name that only starts the same is another function.
    assert!(store.set_sync_trigger(&pool, Some("ff"), None).await.unwrap());
    assert_eq!(store.delete_function("acme", "f").await.unwrap(), Ok(2));
    assert_eq!(store.function("acme", "f", None).await.unwrap(), None);
    assert_eq!(store.alias("acme", "f", "live").await.unwrap(), None);
    assert_eq!(store.recording_settings("acme", "f").await.unwrap(), None);
    assert!(store.recordings("acme", "f", None, 10).await.unwrap().is_empty());
    assert!(store.function("acme", "g", None).await.unwrap().is_some());
    // A mapping to it now is refused; deployed again, it starts at version 1, recording nothing.
    assert!(!store.set_sync_trigger(&pool, Some("f"), Some(("acme", "f", None))).await.unwrap());
    assert_eq!(store.deploy_function("acme", "f", "d3", b"w", None, None).await.unwrap(), Ok(1));
    assert_eq!(store.recording_settings("acme", "f").await.unwrap(), None);
}
