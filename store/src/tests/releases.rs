//! Aliases, figures and rollout decisions, on both backends.

use super::*;
use crate::releases::{Histogram, Outcomes, RolloutSettings, Routing};

both!(an_alias_moves_keeps_its_figures_per_epoch_and_a_rollout_is_decided_once, an_alias_a_pool_names_is_not_deleted);

fn change(version: i64, routing: Option<(i64, i64)>, rollout: bool) -> AliasChange {
    AliasChange {
        version,
        routing: routing.map(|(version, weight_bp)| Routing { version, weight_bp }),
        rollout: rollout.then_some(RolloutSettings {
            promote_after_invocations: Some(100),
            promote_after_seconds: None,
            error_margin_bp: 500,
            reject_margin_bp: None,
            min_invocations: 20,
        }),
        description: "d".into(),
    }
}

fn delta(epoch: i64, version: i64, ok: i64, error: i64, wall: &[u64]) -> FiguresDelta {
    let mut wall_us = Histogram::default();
    wall.iter().for_each(|w| wall_us.record(*w));
    FiguresDelta {
        tenant: "t".into(),
        function: "f".into(),
        alias: "live".into(),
        epoch,
        figures: VersionFigures {
            version,
            outcomes: Outcomes { ok, error, ..Default::default() },
            wall_us,
            ..Default::default()
        },
    }
}

async fn an_alias_moves_keeps_its_figures_per_epoch_and_a_rollout_is_decided_once(store: Arc<Store>) {
    store.create_tenant("t").await.unwrap();
    for digest in ["d1", "d2", "d3"] {
        store.deploy_function("t", "f", digest, b"w", None, None).await.unwrap().unwrap();
    }
    let live = Qualifier::Alias("live".into());
    assert_eq!(store.resolve_function("t", "f", &live).await.unwrap(), None);
    let put = |c: AliasChange, mode, expected| {
        let store = store.clone();
        async move { store.put_alias("t", "f", "live", &c, mode, expected).await.unwrap() }
    };
    assert_eq!(put(change(1, None, false), PutMode::Update, None).await, Err(AliasRefused::Missing));
    assert_eq!(put(change(9, None, false), PutMode::Create, None).await, Err(AliasRefused::NoVersion(9)));
    let a = put(change(1, None, false), PutMode::Create, None).await.unwrap();
    assert_eq!((a.version, a.epoch, a.routing), (1, 1, None));
    assert_eq!(put(change(2, None, false), PutMode::Create, None).await, Err(AliasRefused::Exists));
    let resolved = store.resolve_function("t", "f", &live).await.unwrap().unwrap();
    assert_eq!((resolved.primary.version, resolved.alias.as_ref().map(|a| a.epoch)), (1, Some(1)));
    assert_eq!(put(change(2, Some((4, 100)), false), PutMode::Update, None).await, Err(AliasRefused::NoVersion(4)));

    // Version 2 with 20% to version 3, under a rollout.
    let a = put(change(2, Some((3, 2_000)), true), PutMode::Update, Some(1)).await.unwrap();
    assert_eq!((a.version, a.epoch, a.routing.map(|r| r.version)), (2, 2, Some(3)));
    assert_eq!(put(change(2, None, false), PutMode::Update, Some(1)).await, Err(AliasRefused::Changed { epoch: 2 }));
    let route = store.resolve_function("t", "f", &live).await.unwrap().unwrap().alias.unwrap();
    assert_eq!(route.candidate.map(|(h, w)| (h.version, h.digest, w)), Some((3, "d3".into(), 2_000)));
    // An update reads the same with its dataset (SQLite in one trip).
    let key = DatasetKey::new("p", "i", "d");
    let (snapshot, resolved) = store.snapshot_and_function(key, ("t", "f", &live)).await.unwrap();
    assert_eq!((snapshot.sync_count(), resolved), (0, store.resolve_function("t", "f", &live).await.unwrap()));
    assert_eq!(store.snapshot_and_function(key, ("t", "g", &live)).await.unwrap().1, None);
    assert_eq!(store.rollouts().await.unwrap().len(), 1);

    // Figures add up per version within the epoch; a late one for an ended epoch is dropped.
    store
        .add_figures(&[delta(2, 2, 40, 0, &[100, 200]), delta(2, 3, 8, 1, &[300]), delta(1, 1, 99, 0, &[])])
        .await
        .unwrap();
    store.add_figures(&[delta(2, 2, 10, 0, &[100]), delta(2, 3, 8, 3, &[300, 5_000])]).await.unwrap();
    let figures = store.figures("t", "f", "live", 2).await.unwrap();
    assert_eq!(
        figures.iter().map(|f| (f.version, f.outcomes.ok, f.outcomes.error)).collect::<Vec<_>>(),
        [(2, 50, 0), (3, 16, 4)]
    );
    assert_eq!((figures[0].wall_us.count(), figures[1].wall_us.count()), (3, 3));
    assert!(figures[1].wall_us.quantile(0.99).unwrap() >= 5_000);
    assert!(store.figures("t", "f", "live", 1).await.unwrap().is_empty());

    // Two nodes judging at once: one decision goes through.
    let decision = Decision {
        at: now(),
        alias: "live".into(),
        epoch: 2,
        decision: Verdict::RollBack.label().into(),
        primary: 2,
        candidate: 3,
        reason: "errors".into(),
        figures: "{}".into(),
    };
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (store, decision) = (store.clone(), decision.clone());
        tasks.push(tokio::spawn(async move {
            store.decide_rollout("t", "f", "live", Verdict::RollBack, &decision).await.unwrap()
        }));
    }
    let mut decided = Vec::new();
    for t in tasks {
        decided.extend(t.await.unwrap());
    }
    assert_eq!(decided.len(), 1, "one decision per epoch");
    let a = &decided[0];
    assert_eq!((a.version, a.epoch, a.routing, a.rollout.is_none()), (2, 3, None, true), "rolled back to the primary");
    let decisions = store.decisions("t", "f", 10).await.unwrap();
    assert_eq!(
        decisions.iter().map(|d| (d.epoch, d.decision.as_str(), d.primary, d.candidate)).collect::<Vec<_>>(),
        [(2, "rolled back", 2, 3)]
    );
    assert!(store.figures("t", "f", "live", 2).await.unwrap().is_empty(), "an ended epoch's figures go");
    assert!(store.rollouts().await.unwrap().is_empty());
    let resolved = store.resolve_function("t", "f", &live).await.unwrap().unwrap();
    assert_eq!((resolved.primary.version, resolved.alias.unwrap().candidate), (2, None));

    // A promotion makes the candidate the alias's version.
    put(change(2, Some((3, 5_000)), true), PutMode::Update, None).await.unwrap();
    let promote = Decision { epoch: 4, decision: Verdict::Promote.label().into(), ..decision };
    let a = store.decide_rollout("t", "f", "live", Verdict::Promote, &promote).await.unwrap().unwrap();
    assert_eq!((a.version, a.routing), (3, None));
    assert_eq!(store.aliases("t", "f").await.unwrap().len(), 1);
    assert_eq!(store.aliases("other", "f").await.unwrap(), []);
}

async fn an_alias_a_pool_names_is_not_deleted(store: Arc<Store>) {
    let (pool, _) = identity(&*store).await;
    store.deploy_function("acme", "f", "d1", b"w", None, None).await.unwrap().unwrap();
    assert!(
        !store.set_sync_trigger(&pool, Some("f:live"), Some(("acme", "f", Some("live")))).await.unwrap(),
        "no alias yet"
    );
    assert_eq!(store.pool(&pool).await.unwrap().unwrap().sync_trigger, None);
    store.put_alias("acme", "f", "live", &change(1, None, false), PutMode::Create, None).await.unwrap().unwrap();
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:f:live";
    assert!(store.set_sync_trigger(&pool, Some(arn), Some(("acme", "f", Some("live")))).await.unwrap());
    assert_eq!(store.delete_alias("acme", "f", "live").await.unwrap(), Err(AliasRefused::InUse { pool: pool.clone() }));
    assert!(store.set_sync_trigger(&pool, Some("f"), None).await.unwrap());
    assert_eq!(store.delete_alias("acme", "f", "live").await.unwrap(), Ok(()));
    assert_eq!(store.delete_alias("acme", "f", "live").await.unwrap(), Err(AliasRefused::Missing));
    assert_eq!(store.resolve_function("acme", "f", &Qualifier::Alias("live".into())).await.unwrap(), None);
}
