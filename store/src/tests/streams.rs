//! Streams and push sync, on both backends: the outbox is written with the change it
//! records (and only for a pool that streams), bounded per pool, drained in order; the
//! configuration, devices, subscriptions and bulk publishes.

use super::*;
use crate::streams::*;

both!(
    committed_changes_leave_through_the_outbox_in_order_and_a_full_outbox_disables_streaming,
    devices_subscriptions_and_bulk_publishes_keep_their_rules,
);

fn enable(name: &str) -> StreamsChange {
    StreamsChange { stream_name: Some(name.into()), role_arn: None, enabled: None }
}

async fn committed_changes_leave_through_the_outbox_in_order_and_a_full_outbox_disables_streaming(store: Arc<Store>) {
    let (pool, identity) = identity(&*store).await;
    // Not streaming: nothing is queued.
    apply(&*store, update(&pool, &identity, "a", 0, &[("k", Some("0"))], "t0")).await;
    assert!(store.outbox(100).await.unwrap().is_empty());

    let config = store.set_pool_configuration("acme", &pool, Some(&enable("s1")), None).await.unwrap().unwrap();
    let streams = config.streams.unwrap();
    assert!(streams.enabled, "a first stream name with no status is enabled");
    assert_eq!(streams.stream_name.as_deref(), Some("s1"));
    // Another tenant cannot take the name; streaming without a name is refused.
    store.create_tenant("other").await.unwrap();
    let theirs = store.create_pool("other", "us-east-1", "x", true, &PoolSettings::default()).await.unwrap();
    assert_eq!(
        store.set_pool_configuration("other", &theirs.pool_id, Some(&enable("s1")), None).await.unwrap(),
        Err(ConfigurationRefused::StreamNameTaken)
    );
    let nameless = StreamsChange { enabled: Some(true), ..Default::default() };
    assert_eq!(
        store.set_pool_configuration("other", &theirs.pool_id, Some(&nameless), None).await.unwrap(),
        Err(ConfigurationRefused::NoStreamName)
    );

    let mut u = update(&pool, &identity, "a", 1, &[("j", None), ("k", Some("1"))], "t1");
    u.device_id = Some("dev-1".into());
    apply(&*store, u).await;
    apply(&*store, update(&pool, &identity, "a", 2, &[("k", Some("2"))], "t2")).await;
    // A conflict and an update that changes nothing queue nothing.
    apply(&*store, update(&pool, &identity, "a", 2, &[("k", Some("x"))], "t3")).await;
    apply(&*store, update(&pool, &identity, "b", 0, &[], "t4")).await;
    store.delete_dataset(DatasetKey::new(&pool, &identity, "a"), "me").await.unwrap().unwrap();
    let entries = store.outbox(100).await.unwrap();
    let seen: Vec<_> = entries.iter().map(|e| (e.dataset.as_str(), e.sync_count, e.kind)).collect();
    assert_eq!(seen, [("a", 2, ChangeKind::Update), ("a", 3, ChangeKind::Update), ("a", 4, ChangeKind::Delete)]);
    assert_eq!(entries[0].device_id.as_deref(), Some("dev-1"));
    assert_eq!(entries[0].stream_name.as_deref(), Some("s1"));
    let keys: Vec<_> = entries[0].records.iter().map(|r| (r.key.as_str(), r.value.as_deref())).collect();
    assert_eq!(keys, [("j", None), ("k", Some("1"))]);
    assert_eq!(store.outbox_depth().await.unwrap(), 3);
    assert_eq!(store.outbox_done(&[entries[0].id, entries[1].id]).await.unwrap(), 2);
    assert_eq!(store.outbox_depth().await.unwrap(), 1);
    assert_eq!(store.outbox(100).await.unwrap().len(), 1);

    // A merge streams the dataset leaving one identity and arriving at the other.
    let target = store.create_identity(&pool, "us-east-1").await.unwrap();
    apply(&*store, update(&pool, &identity, "m", 0, &[("x", Some("1"))], "t5")).await;
    store.merge_identities(&pool, &identity, &target, MergeRule::SourceUnauthenticated).await.unwrap();
    let merged: Vec<_> = store
        .outbox(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind != ChangeKind::Update)
        .filter(|e| e.dataset.starts_with('m'))
        .collect();
    assert_eq!(merged.len(), 2, "{merged:?}");
    assert_eq!((merged[0].identity_id.as_str(), merged[0].kind), (identity.as_str(), ChangeKind::MergedOut));
    assert_eq!((merged[1].identity_id.as_str(), merged[1].kind), (target.as_str(), ChangeKind::MergedIn));
    assert_eq!(merged[1].records.len(), 1);

    // A full outbox turns streaming off, with the reason; updates still apply.
    let ids: Vec<i64> = store.outbox(100).await.unwrap().iter().map(|e| e.id).collect();
    store.outbox_done(&ids).await.unwrap();
    store.set_outbox_max(OUTBOX_SLOTS * 2);
    let writer = store.create_identity(&pool, "us-east-1").await.unwrap();
    for n in 0..5i64 {
        apply(&*store, update(&pool, &writer, "full", n, &[("k", Some(&n.to_string()))], &format!("f{n}"))).await;
    }
    let config = store.pool_configuration(&pool).await.unwrap().streams.unwrap();
    assert!(!config.enabled);
    assert!(config.disabled_reason.unwrap().contains("outbox"));
    assert_eq!(store.outbox(100).await.unwrap().len(), 2, "one slot's share, then nothing");
    assert_eq!(store.dataset(DatasetKey::new(&pool, &writer, "full")).await.unwrap().unwrap().sync_count, 5);
    // Enabled again: the reason goes.
    let on = StreamsChange { enabled: Some(true), ..Default::default() };
    let config = store.set_pool_configuration("acme", &pool, Some(&on), None).await.unwrap().unwrap();
    assert_eq!(config.streams.unwrap().disabled_reason, None);
    // The pool's deletion takes its outbox.
    store.delete_pool(&pool).await.unwrap();
    assert!(store.outbox(100).await.unwrap().is_empty());
    assert_eq!(store.outbox_depth().await.unwrap(), 0);
}

async fn devices_subscriptions_and_bulk_publishes_keep_their_rules(store: Arc<Store>) {
    let (pool, identity) = identity(&*store).await;
    let push = PushSettings { application_arns: vec!["arn:aws:sns:us-east-1:1:app/GCM/x".into()], role_arn: None };
    let config = store.set_pool_configuration("acme", &pool, None, Some(&push)).await.unwrap().unwrap();
    assert!(config.push_enabled() && config.streams.is_none());
    let a = store.register_device(&pool, &identity, "GCM", "tok-a").await.unwrap();
    assert_eq!(store.register_device(&pool, &identity, "GCM", "tok-a").await.unwrap(), a, "same token, same device");
    let b = store.register_device(&pool, &identity, "APNS", "tok-b").await.unwrap();
    assert_ne!(a, b);
    store.subscribe(&identity, "d", &a, true).await.unwrap().unwrap();
    store.subscribe(&identity, "d", &b, true).await.unwrap().unwrap();
    store.subscribe(&identity, "d", &b, true).await.unwrap().unwrap();
    let other = store.create_identity(&pool, "us-east-1").await.unwrap();
    assert_eq!(store.subscribe(&other, "d", &a, true).await.unwrap(), Err(SubscriptionRefused::UnknownDevice));
    let subscribed: Vec<_> =
        store.subscribers(&identity, "d").await.unwrap().into_iter().map(|d| d.device_id).collect();
    assert_eq!(subscribed.len(), 2);
    store.subscribe(&identity, "d", &b, false).await.unwrap().unwrap();
    assert_eq!(store.subscribers(&identity, "d").await.unwrap().len(), 1);
    // Push only: an update is queued for the devices, with no stream.
    apply(&*store, update(&pool, &identity, "d", 0, &[("k", Some("1"))], "t1")).await;
    let entries = store.outbox(10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].push && entries[0].stream_name.is_none());

    // Bulk publish: only while streaming, one at a time, once a day after a success.
    assert_eq!(store.start_bulk_publish(&pool).await.unwrap(), Err(BulkRefused::NotStreaming));
    store.set_pool_configuration("acme", &pool, Some(&enable("s2")), None).await.unwrap().unwrap();
    let bulk = store.start_bulk_publish(&pool).await.unwrap().unwrap();
    assert_eq!(bulk.status, "IN_PROGRESS");
    assert_eq!(store.start_bulk_publish(&pool).await.unwrap(), Err(BulkRefused::InProgress));
    assert_eq!(store.bulk_publishes_in_progress().await.unwrap().len(), 1);
    apply(&*store, update(&pool, &identity, "e", 0, &[("k", Some("1"))], "t2")).await;
    let page = store.bulk_page(&pool, None, 1).await.unwrap();
    assert_eq!((page[0].name.as_str(), page[0].records.len()), ("d", 1));
    let cursor = (page[0].identity_id.clone(), page[0].name.clone());
    assert!(store.advance_bulk_publish(&pool, bulk.started_ms, Some(&cursor), None).await.unwrap());
    let rest = store.bulk_page(&pool, Some(&cursor), 10).await.unwrap();
    assert_eq!(rest.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["e"]);
    assert!(store.advance_bulk_publish(&pool, bulk.started_ms, None, Some(Ok(()))).await.unwrap());
    let done = store.bulk_publish(&pool).await.unwrap().unwrap();
    assert_eq!((done.status.as_str(), done.cursor), ("SUCCEEDED", Some(cursor)));
    assert!(done.completed_ms.is_some());
    assert_eq!(store.start_bulk_publish(&pool).await.unwrap(), Err(BulkRefused::AlreadyStreamed));
    // A deleted identity's devices go.
    store.delete_identities(Some(&pool), std::slice::from_ref(&identity)).await.unwrap();
    assert!(store.subscribers(&identity, "d").await.unwrap().is_empty());
}
