//! Trigger releases on the sync path: which version behind an alias serves a sync, the
//! figures each version earns there, and rollouts that promote or roll back by themselves.
//!
//! Figures are added up on each node and written to the store once a second (one
//! transaction per node, not one per sync); then any node judges every rollout in
//! progress on the figures of all nodes ([`judge::judge`]), and the store lets one
//! decision per epoch through, so two nodes judging at once decide once.

pub mod judge;
pub mod replay;

use crate::triggers::FunctionRef;
use crate::wire::{DecisionFigures, VersionFiguresShown};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use synctrig_store::releases::{Outcomes, Resolved};
use synctrig_store::{Decision, FiguresDelta, RecordingSettings, Store, VersionFigures};

/// How often figures are written and rollouts judged.
pub const JUDGE_EVERY: Duration = Duration::from_secs(1);

/// The version a sync runs, and the alias it came through (whose figures it counts in).
#[derive(Clone, Debug)]
pub struct Selected {
    pub function: FunctionRef,
    pub via: Option<Via>,
    /// The function's recording settings, if it records.
    pub recording: Option<RecordingSettings>,
}

/// An alias a sync went through: its epoch, and whether it took the second version.
#[derive(Clone, Debug)]
pub struct Via {
    pub alias: String,
    pub epoch: i64,
    pub candidate: bool,
}

/// The version of `resolved` that serves the sync of `dataset` (pool, identity, name).
pub fn select(tenant: &str, function: &str, resolved: Resolved, dataset: (&str, &str, &str)) -> Selected {
    let reference = |head: synctrig_store::FunctionHead| FunctionRef {
        tenant: tenant.to_owned(),
        name: function.to_owned(),
        version: head.version,
        digest: head.digest,
    };
    let recording = resolved.recording;
    let Some(route) = resolved.alias else {
        return Selected { function: reference(resolved.primary), via: None, recording };
    };
    let (head, candidate) = match route.candidate {
        Some((head, weight_bp)) if judge::routes_to_candidate(function, dataset, weight_bp) => (head, true),
        _ => (resolved.primary, false),
    };
    let via = Some(Via { alias: route.alias, epoch: route.epoch, candidate });
    Selected { function: reference(head), via, recording }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: String,
    function: String,
    alias: String,
    epoch: i64,
    version: i64,
}

/// The figures this node has not written yet, and the rollout judge.
pub struct Releases {
    store: Arc<Store>,
    pending: Mutex<HashMap<Key, VersionFigures>>,
}

/// The most (alias, version) figures a node holds between writes; past it a sync's
/// figures are not counted (and a warning says so) rather than growing without bound.
const MAX_PENDING: usize = 10_000;

impl Releases {
    pub fn new(store: Arc<Store>) -> Arc<Releases> {
        Arc::new(Releases { store, pending: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VersionFigures>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an invocation of `selected` that ended with `outcome` (the runtime's label).
    pub fn record(&self, selected: &Selected, outcome: &str, wall_us: u64, fuel: u64) {
        let (Some(via), Some(count)) = (&selected.via, judge::classify(outcome)) else { return };
        let f = &selected.function;
        let key = Key {
            tenant: f.tenant.clone(),
            function: f.name.clone(),
            alias: via.alias.clone(),
            epoch: via.epoch,
            version: f.version,
        };
        let mut pending = self.lock();
        if !pending.contains_key(&key) && pending.len() >= MAX_PENDING {
            tracing::warn!("release figures are not being written fast enough: an invocation is not counted");
            return;
        }
        let figures = pending.entry(key).or_insert_with(|| VersionFigures { version: f.version, ..Default::default() });
        count(&mut figures.outcomes);
        figures.wall_us.record(wall_us);
        figures.fuel.record(fuel);
    }

    /// Writes this node's figures to the store; on failure they are kept for the next try.
    pub async fn flush(&self) {
        let mut taken: Vec<(Key, VersionFigures)> = self.lock().drain().collect();
        if taken.is_empty() {
            return;
        }
        // Every node writes its rows in one order, so two flushes at once cannot deadlock.
        taken.sort_by(|(a, _), (b, _)| {
            (&a.tenant, &a.function, &a.alias, a.epoch, a.version).cmp(&(
                &b.tenant,
                &b.function,
                &b.alias,
                b.epoch,
                b.version,
            ))
        });
        let deltas: Vec<FiguresDelta> = taken
            .iter()
            .map(|(k, figures)| FiguresDelta {
                tenant: k.tenant.clone(),
                function: k.function.clone(),
                alias: k.alias.clone(),
                epoch: k.epoch,
                figures: figures.clone(),
            })
            .collect();
        if let Err(e) = self.store.add_figures(&deltas).await {
            tracing::warn!("cannot write release figures (kept for the next try): {e}");
            let mut pending = self.lock();
            for (key, figures) in taken {
                let version = figures.version;
                pending.entry(key).or_insert_with(|| VersionFigures { version, ..Default::default() }).merge(&figures);
            }
        }
    }

    /// Judges every rollout in progress on the figures of all nodes, and records each
    /// decision it makes.
    pub async fn judge_rollouts(&self) {
        let rollouts = match self.store.rollouts().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("cannot list rollouts to judge: {e}");
                return;
            }
        };
        for (tenant, alias) in rollouts {
            if let Err(e) = self.judge_one(&tenant, &alias).await {
                tracing::warn!(tenant, function = alias.function, alias = alias.alias, "cannot judge a rollout: {e}");
            }
        }
    }

    async fn judge_one(&self, tenant: &str, alias: &synctrig_store::Alias) -> Result<(), synctrig_store::StoreError> {
        let (Some(settings), Some(routing)) = (&alias.rollout, alias.routing) else { return Ok(()) };
        let figures = self.store.figures(tenant, &alias.function, &alias.alias, alias.epoch).await?;
        let of = |version: i64| figures.iter().find(|f| f.version == version).cloned().unwrap_or_default();
        let (primary, candidate) = (of(alias.version), of(routing.version));
        let running = synctrig_store::now() - alias.epoch_started;
        let Some((verdict, reason)) = judge::judge(settings, &primary, &candidate, running) else { return Ok(()) };
        let shown = DecisionFigures {
            primary: shown_figures(alias.version, &primary),
            candidate: shown_figures(routing.version, &candidate),
            seconds: running,
        };
        let decision = Decision {
            at: synctrig_store::now(),
            alias: alias.alias.clone(),
            epoch: alias.epoch,
            decision: verdict.label().to_owned(),
            primary: alias.version,
            candidate: routing.version,
            reason: reason.clone(),
            figures: serde_json::to_string(&shown).unwrap_or_default(),
        };
        let decided = self.store.decide_rollout(tenant, &alias.function, &alias.alias, verdict, &decision).await?;
        if decided.is_some() {
            tracing::info!(
                tenant,
                function = alias.function,
                alias = alias.alias,
                candidate = routing.version,
                "rollout {}: {reason}",
                verdict.label()
            );
        }
        Ok(())
    }

    /// Writes figures and judges rollouts every [`JUDGE_EVERY`], until dropped.
    pub async fn run(self: Arc<Self>) {
        let mut every = tokio::time::interval(JUDGE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            self.flush().await;
            self.judge_rollouts().await;
        }
    }
}

/// A version's figures as the API, `admin` and the console show them.
pub fn shown_figures(version: i64, f: &VersionFigures) -> VersionFiguresShown {
    let Outcomes { ok, rejected, error, timeout } = f.outcomes;
    VersionFiguresShown {
        version,
        invocations: f.outcomes.total(),
        ok,
        rejected,
        error,
        timeout,
        wall_micros_p50: f.wall_us.quantile(0.5),
        wall_micros_p99: f.wall_us.quantile(0.99),
        fuel_p50: f.fuel.quantile(0.5),
        fuel_p99: f.fuel.quantile(0.99),
    }
}
