//! The rules of UpdateRecords' transaction, as one pure function ([`decide`]): given what
//! the transaction read — whether the identity is live, the dataset's SyncCount and
//! deletion, the SyncCount the client expected, how many records it writes, and (only
//! when the update would create a dataset) whether the identity is at its dataset limit —
//! what the update does. The SQLite writer runs it; PostgreSQL's `synctrig_update_v1`
//! (postgres/schema.rs) is the same table in PL/pgSQL, and the parity property test
//! (tests/parity.rs) holds the two to it on random sequences.
//!
//! | identity | dataset            | expected = SyncCount | limit | writes | step                    |
//! |----------|--------------------|----------------------|-------|--------|-------------------------|
//! | gone     | any                | any                  |       |        | IdentityGone            |
//! | live     | any                | no                   |       |        | Stale (replay or conflict) |
//! | live     | none, or deleted   | yes                  | full  |        | TooManyDatasets         |
//! | live     | none               | yes                  | room  | any    | Create at expected (+1 if writes) |
//! | live     | deleted            | yes                  | room  | any    | Recreate at expected + 1 |
//! | live     | live               | yes                  |       | some   | Bump to expected + 1    |
//! | live     | live               | yes                  |       | none   | Keep (nothing written)  |

use crate::Result;

/// A dataset as the update's transaction found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub sync_count: i64,
    pub deleted: bool,
}

/// What an update does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The identity was merged away or deleted: nothing is written.
    IdentityGone,
    /// The client's SyncCount is not the dataset's: a retry of an applied update gets its
    /// stored answer, anything else a conflict.
    Stale,
    /// Creating (or bringing back) the dataset would pass the identity's dataset limit.
    TooManyDatasets,
    /// The dataset is written at SyncCount `count`.
    Write { change: Change, count: i64 },
}

/// What happens to the dataset's own row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A first update creates it, even when it writes nothing.
    Create,
    /// A deleted dataset comes back, counting on from its deletion (which it keeps).
    Recreate,
    /// A live dataset takes the new SyncCount.
    Bump,
    /// A live dataset and no records: nothing to sync, nothing written.
    Keep,
}

/// The SyncCount an update that applies gives its dataset: a change, or bringing a deleted
/// dataset back, is a new SyncCount; creating an empty dataset is not (nothing to sync).
pub fn next_sync_count(expected: i64, writes: usize, recreates: bool) -> i64 {
    if writes == 0 && !recreates { expected } else { expected + 1 }
}

/// The rules (see the table above). `full` says whether the identity is at its dataset
/// limit; it is asked only when the update would create or bring back a dataset.
pub fn decide(
    live: bool,
    found: Option<Found>,
    expected: i64,
    writes: usize,
    full: impl FnOnce() -> Result<bool>,
) -> Result<Step> {
    if !live {
        return Ok(Step::IdentityGone);
    }
    if found.map_or(0, |d| d.sync_count) != expected {
        return Ok(Step::Stale);
    }
    let change = match found {
        None => Change::Create,
        Some(d) if d.deleted => Change::Recreate,
        Some(_) if writes > 0 => Change::Bump,
        Some(_) => Change::Keep,
    };
    if matches!(change, Change::Create | Change::Recreate) && full()? {
        return Ok(Step::TooManyDatasets);
    }
    Ok(Step::Write { change, count: next_sync_count(expected, writes, change == Change::Recreate) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(live: bool, found: Option<(i64, bool)>, expected: i64, writes: usize, full: bool) -> Step {
        let found = found.map(|(sync_count, deleted)| Found { sync_count, deleted });
        decide(live, found, expected, writes, || Ok(full)).unwrap()
    }

    #[test]
    fn the_table() {
        use Change::*;
        assert_eq!(step(false, Some((3, false)), 3, 1, false), Step::IdentityGone);
        assert_eq!(step(true, Some((3, false)), 2, 1, false), Step::Stale);
        assert_eq!(step(true, None, 1, 1, false), Step::Stale, "no dataset is SyncCount 0");
        assert_eq!(step(true, None, 0, 1, true), Step::TooManyDatasets);
        assert_eq!(step(true, Some((4, true)), 4, 0, true), Step::TooManyDatasets);
        assert_eq!(step(true, None, 0, 0, false), Step::Write { change: Create, count: 0 });
        assert_eq!(step(true, None, 0, 2, false), Step::Write { change: Create, count: 1 });
        assert_eq!(step(true, Some((4, true)), 4, 0, false), Step::Write { change: Recreate, count: 5 });
        assert_eq!(step(true, Some((4, false)), 4, 2, true), Step::Write { change: Bump, count: 5 });
        assert_eq!(step(true, Some((4, false)), 4, 0, true), Step::Write { change: Keep, count: 4 });
    }

    #[test]
    fn the_limit_is_read_only_when_a_dataset_would_be_made() {
        let asked = |found: Option<Found>, writes| {
            let mut asked = false;
            let expected = found.map_or(0, |d| d.sync_count);
            decide(true, found, expected, writes, || {
                asked = true;
                Ok(false)
            })
            .unwrap();
            asked
        };
        assert!(!asked(Some(Found { sync_count: 4, deleted: false }), 1));
        assert!(!asked(Some(Found { sync_count: 4, deleted: false }), 0));
        assert!(asked(None, 1));
        assert!(asked(Some(Found { sync_count: 4, deleted: true }), 0));
    }
}
