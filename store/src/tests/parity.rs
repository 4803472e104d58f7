//! The two backends are one store: random sequences of updates (fresh, stale, retried),
//! deletions, recreations and merges run on SQLite and on PostgreSQL side by side, and
//! every answer and the final state must be the same. This pins the update's rules, which
//! SQLite runs in Rust and PostgreSQL in PL/pgSQL (`synctrig_update_v1`).

use super::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

const DATASETS: [&str; 3] = ["d0", "d1", "d2"];
const KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];

/// Which base SyncCount an update claims.
#[derive(Clone, Debug)]
enum Base {
    /// The dataset's current one (as a device that just listed it).
    Current,
    /// An older one (a device that missed a change).
    Behind(i64),
    /// One past it.
    Ahead,
}

#[derive(Clone, Debug)]
enum Op {
    Update {
        who: usize,
        dataset: usize,
        base: Base,
        writes: Vec<(usize, Option<u8>)>,
        token: usize,
    },
    Delete {
        who: usize,
        dataset: usize,
    },
    /// Merges identity `1 - into` into `into`.
    Merge {
        into: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let base = prop_oneof![6 => Just(Base::Current), 2 => (1..3i64).prop_map(Base::Behind), 1 => Just(Base::Ahead)];
    // One write per key at most, as the merge produces them.
    let writes = proptest::collection::btree_map(0..KEYS.len(), proptest::option::of(0..3u8), 0..4)
        .prop_map(|writes| writes.into_iter().collect::<Vec<_>>());
    prop_oneof![
        8 => (0..2usize, 0..DATASETS.len(), base, writes, 0..3usize)
            .prop_map(|(who, dataset, base, writes, token)| Op::Update { who, dataset, base, writes, token }),
        2 => (0..2usize, 0..DATASETS.len()).prop_map(|(who, dataset)| Op::Delete { who, dataset }),
        1 => (0..2usize).prop_map(|into| Op::Merge { into }),
    ]
}

/// One backend's two identities for a case, and the names that make answers comparable.
struct Side<'a> {
    store: &'a Store,
    pool: String,
    ids: [String; 2],
}

impl Side<'_> {
    async fn new(store: &Store, case: usize) -> Side<'_> {
        if case == 0 {
            store.create_tenant("acme").await.unwrap();
        }
        let pool =
            store.create_pool("acme", "us-east-1", "game", true, &PoolSettings::default()).await.unwrap().pool_id;
        let a = store.create_identity(&pool, "us-east-1").await.unwrap();
        let b = store.create_identity(&pool, "us-east-1").await.unwrap();
        Side { store, pool, ids: [a, b] }
    }

    /// `text` with this side's ids as `A` and `B`, so the two sides' answers compare.
    fn neutral(&self, text: String) -> String {
        text.replace(&self.ids[0], "A").replace(&self.ids[1], "B").replace(&self.pool, "P")
    }

    /// Runs one op; its answer, without times (the two sides run a moment apart).
    async fn run(&self, op: &Op, case: usize) -> String {
        let s = self.store;
        let answer = match op {
            Op::Update { who, dataset, base, writes, token } => {
                let (identity, name) = (&self.ids[*who], DATASETS[*dataset]);
                let current =
                    s.dataset(DatasetKey::new(&self.pool, identity, name)).await.unwrap().map_or(0, |d| d.sync_count);
                let expected = match base {
                    Base::Current => current,
                    Base::Behind(n) => (current - n).max(0),
                    Base::Ahead => current + 1,
                };
                let writes: Vec<(&str, Option<String>)> =
                    writes.iter().map(|(k, v)| (KEYS[*k], v.map(|v| format!("v{v}")))).collect();
                let writes: Vec<(&str, Option<&str>)> = writes.iter().map(|(k, v)| (*k, v.as_deref())).collect();
                let mut u = update(&self.pool, identity, name, expected, &writes, &format!("{case}-{token}"));
                u.device_modified_ms = BTreeMap::from([("k1".to_owned(), 7)]);
                match s.update(u).await.unwrap() {
                    UpdateOutcome::Applied(rows) => format!("Applied {:?}", timeless(rows)),
                    UpdateOutcome::Replayed(rows) => format!("Replayed {:?}", timeless(rows)),
                    other => format!("{other:?}"),
                }
            }
            Op::Delete { who, dataset } => {
                let row = s
                    .delete_dataset(DatasetKey::new(&self.pool, &self.ids[*who], DATASETS[*dataset]), "me")
                    .await
                    .unwrap();
                format!("{:?}", row.map(row_facts))
            }
            Op::Merge { into } => {
                let (target, source) = (&self.ids[*into], &self.ids[1 - into]);
                let outcome =
                    s.merge_identities(&self.pool, source, target, MergeRule::SourceUnauthenticated).await.unwrap();
                format!("{outcome:?}")
            }
        };
        self.neutral(answer)
    }

    /// Every dataset of both identities (deleted ones too) with its records.
    async fn state(&self) -> String {
        let mut out = String::new();
        for identity in &self.ids {
            let row = s_identity(self.store, identity).await;
            out += &format!("{row}\n");
            let mut names: Vec<String> = DATASETS.iter().map(|d| d.to_string()).collect();
            for live in self.store.datasets_after(&self.pool, identity, "", 100).await.unwrap() {
                if !names.contains(&live.name) {
                    names.push(live.name);
                }
            }
            for name in names {
                let snapshot = self.store.snapshot(DatasetKey::new(&self.pool, identity, &name)).await.unwrap();
                let Some(row) = snapshot.dataset else { continue };
                out += &format!(
                    "{name}: {:?} {:?} datasets={}\n",
                    row_facts(row),
                    timeless(snapshot.records.into_values().collect()),
                    snapshot.identity_datasets
                );
            }
        }
        self.neutral(out)
    }
}

async fn s_identity(store: &Store, identity: &str) -> String {
    let row = store.identity(identity).await.unwrap().unwrap();
    format!("merged_into={:?} logins={:?}", row.merged_into, row.logins)
}

/// A record without its times: (key, value, SyncCount, modified by, device time).
type RecordFacts = (String, Option<String>, i64, String, Option<i64>);

fn timeless(rows: Vec<RecordRow>) -> Vec<RecordFacts> {
    rows.into_iter().map(|r| (r.key, r.value, r.sync_count, r.modified_by, r.device_modified_ms)).collect()
}

fn row_facts(d: DatasetRow) -> (String, i64, bool, i64, i64, i64, String) {
    (d.name, d.sync_count, d.deleted, d.deleted_at, d.num_records, d.data_storage, d.modified_by)
}

#[test]
fn both_backends_answer_every_sequence_alike() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (sqlite, postgres) = rt.block_on(async { (super::sqlite().await, super::postgres().await) });
    let cases = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config { cases: 64, failure_persistence: None, ..Config::default() });
    runner
        .run(&proptest::collection::vec(op(), 1..24), |ops| {
            let case = cases.fetch_add(1, Ordering::Relaxed);
            rt.block_on(async {
                let left = Side::new(&*sqlite.store, case).await;
                let right = Side::new(&*postgres.store, case).await;
                for (n, op) in ops.iter().enumerate() {
                    let (a, b) = (left.run(op, case).await, right.run(op, case).await);
                    prop_assert_eq!(a, b, "answers differ at op {} ({:?})", n, op);
                }
                prop_assert_eq!(left.state().await, right.state().await, "final states differ");
                Ok(())
            })
        })
        .unwrap();
}
