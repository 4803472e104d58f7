//! The Sync Trigger event as plain Rust.

/// What the update does with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Store the record's new value (or remove it, when the new value is `None`).
    Replace,
    /// Remove the record.
    Remove,
}

/// One record of the dataset as the trigger sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub(crate) old_value: Option<String>,
    /// The value the update proposes; `None` removes the record.
    pub new_value: Option<String>,
    /// What the update does with the record.
    pub op: Op,
}

impl Record {
    /// The value stored before this update; `None` for a key that is new.
    pub fn old_value(&self) -> Option<&str> {
        self.old_value.as_deref()
    }

    /// The value this record will have after the update, or `None` when it is removed.
    pub fn value(&self) -> Option<&str> {
        match self.op {
            Op::Remove => None,
            Op::Replace => self.new_value.as_deref(),
        }
    }

    /// Whether the app user changed this record in the update (set it to a new value or removed it).
    pub fn is_changed(&self) -> bool {
        self.op == Op::Remove || self.new_value != self.old_value
    }
}

/// A Sync Trigger event: the whole dataset with the user's changes applied tentatively.
///
/// The identity fields are read-only (a trigger that could change them would fail the
/// update), so they have getters and no setters. Records are edited with [`replace`],
/// [`remove`], [`add`] and [`omit`].
///
/// [`replace`]: SyncEvent::replace
/// [`remove`]: SyncEvent::remove
/// [`add`]: SyncEvent::add
/// [`omit`]: SyncEvent::omit
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncEvent {
    pub(crate) version: u32,
    pub(crate) event_type: String,
    pub(crate) region: String,
    pub(crate) identity_pool_id: String,
    pub(crate) identity_id: String,
    pub(crate) dataset_name: String,
    /// Sorted by key, keys unique: the host sends records in key order, so taking them
    /// is one pass with no map to build, and lookups are binary searches.
    pub(crate) records: Vec<(String, Record)>,
}

impl SyncEvent {
    /// Starts building an event for native unit tests of a trigger.
    pub fn builder(identity_pool_id: &str, identity_id: &str, dataset_name: &str) -> EventBuilder {
        EventBuilder {
            event: SyncEvent {
                version: 2,
                event_type: "SyncTrigger".to_owned(),
                region: "us-east-1".to_owned(),
                identity_pool_id: identity_pool_id.to_owned(),
                identity_id: identity_id.to_owned(),
                dataset_name: dataset_name.to_owned(),
                records: Vec::new(),
            },
        }
    }

    /// The event format version (2).
    pub fn version(&self) -> u32 {
        self.version
    }
    /// The event type (`SyncTrigger`).
    pub fn event_type(&self) -> &str {
        &self.event_type
    }
    /// The region the service runs as.
    pub fn region(&self) -> &str {
        &self.region
    }
    /// The identity pool the dataset belongs to.
    pub fn identity_pool_id(&self) -> &str {
        &self.identity_pool_id
    }
    /// The identity that owns the dataset.
    pub fn identity_id(&self) -> &str {
        &self.identity_id
    }
    /// The dataset being updated.
    pub fn dataset_name(&self) -> &str {
        &self.dataset_name
    }

    /// Where `key` is in `records`, or where it would go.
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.records.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// Sets the record under `key`, adding it in order if it is absent.
    pub(crate) fn put(&mut self, key: &str, record: Record) {
        match self.find(key) {
            Ok(at) => self.records[at].1 = record,
            Err(at) => self.records.insert(at, (key.to_owned(), record)),
        }
    }

    /// Takes records from the host, in key order when they come so (they do from the
    /// service); sorts them otherwise.
    pub(crate) fn set_records(&mut self, mut records: Vec<(String, Record)>) {
        if !records.is_sorted_by(|a, b| a.0 < b.0) {
            // Stable, so of two records with one key the later is kept, as a map would.
            records.sort_by(|a, b| a.0.cmp(&b.0));
            records.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
        }
        self.records = records;
    }

    /// The record under `key`, if the response still holds it.
    pub fn get(&self, key: &str) -> Option<&Record> {
        self.find(key).ok().map(|at| &self.records[at].1)
    }

    /// The value `key` will have after the update, or `None` if it is absent or removed.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Record::value)
    }

    /// Whether the event holds a record under `key` (live, changed or removed).
    pub fn contains(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value` with op `replace`, adding the record if it is absent.
    pub fn replace(&mut self, key: &str, value: impl Into<String>) {
        let value = Some(value.into());
        match self.find(key) {
            Ok(at) => {
                let record = &mut self.records[at].1;
                record.new_value = value;
                record.op = Op::Replace;
            }
            Err(at) => {
                self.records
                    .insert(at, (key.to_owned(), Record { old_value: None, new_value: value, op: Op::Replace }));
            }
        }
    }

    /// Adds `key` = `value` only if the event has no record under `key`.
    /// Returns whether it was added.
    pub fn add(&mut self, key: &str, value: impl Into<String>) -> bool {
        if self.contains(key) {
            return false;
        }
        self.replace(key, value);
        true
    }

    /// Marks `key` for removal (op `remove`). Returns whether the event held it.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.find(key) {
            Ok(at) => {
                let record = &mut self.records[at].1;
                record.op = Op::Remove;
                record.new_value = None;
                true
            }
            Err(_) => false,
        }
    }

    /// Leaves `key` out of the update entirely: the stored record stays as it was and
    /// any change the user made to it is dropped. Returns whether the event held it.
    pub fn omit(&mut self, key: &str) -> bool {
        self.find(key).map(|at| self.records.remove(at)).is_ok()
    }

    /// Every record, in key order.
    pub fn records(&self) -> impl Iterator<Item = (&str, &Record)> {
        self.records.iter().map(|(k, r)| (k.as_str(), r))
    }

    /// The records the app user changed in this update (new values and removals), in key order.
    pub fn changes(&self) -> impl Iterator<Item = (&str, &Record)> {
        self.records().filter(|(_, r)| r.is_changed())
    }

    /// The number of records in the event.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the event has no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Builds a [`SyncEvent`] the way the service would, for native tests of trigger logic.
#[derive(Clone, Debug)]
pub struct EventBuilder {
    event: SyncEvent,
}

impl EventBuilder {
    /// A record that is stored and that the user did not touch.
    pub fn stored(mut self, key: &str, value: &str) -> Self {
        let value = Some(value.to_owned());
        self.event.put(key, Record { old_value: value.clone(), new_value: value, op: Op::Replace });
        self
    }

    /// A record the user set to `value`; `old` is the stored value, if any.
    pub fn changed(mut self, key: &str, old: Option<&str>, value: &str) -> Self {
        self.event
            .put(key, Record { old_value: old.map(str::to_owned), new_value: Some(value.to_owned()), op: Op::Replace });
        self
    }

    /// A stored record the user removed.
    pub fn removed(mut self, key: &str, old: &str) -> Self {
        self.event.put(key, Record { old_value: Some(old.to_owned()), new_value: None, op: Op::Remove });
        self
    }

    /// The region the event says the service runs in (default `us-east-1`).
    pub fn region(mut self, region: &str) -> Self {
        self.event.region = region.to_owned();
        self
    }

    /// The finished event.
    pub fn build(self) -> SyncEvent {
        self.event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> SyncEvent {
        SyncEvent::builder("us-east-1:pool", "us-east-1:id", "ds")
            .stored("a", "1")
            .changed("b", Some("old"), "new")
            .changed("c", None, "fresh")
            .removed("d", "gone")
            .build()
    }

    #[test]
    fn changes_lists_only_what_the_user_changed() {
        let event = event();
        let keys: Vec<_> = event.changes().map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "c", "d"]);
    }

    #[test]
    fn replace_add_remove_omit() {
        let mut e = event();
        e.replace("a", "2");
        assert_eq!(e.value("a"), Some("2"));
        assert_eq!(e.get("a").unwrap().old_value(), Some("1"));
        assert!(!e.add("a", "3"));
        assert!(e.add("z", "26"));
        assert_eq!(e.get("z").unwrap().old_value(), None);
        assert!(e.remove("b"));
        assert_eq!(e.value("b"), None);
        assert_eq!(e.get("b").unwrap().op, Op::Remove);
        assert!(!e.remove("nope"));
        assert!(e.omit("c"));
        assert!(!e.contains("c"));
        assert_eq!(e.len(), 4);
    }

    #[test]
    fn records_stay_in_key_order_whatever_order_they_come_in() {
        let mut e = SyncEvent::builder("us-east-1:pool", "us-east-1:id", "ds").build();
        let record = |v: &str| Record { old_value: Some(v.into()), new_value: Some(v.into()), op: Op::Replace };
        e.set_records(vec![("c".into(), record("3")), ("a".into(), record("1")), ("b".into(), record("2"))]);
        assert!(e.add("bb", "new"));
        assert!(e.omit("a"));
        let keys: Vec<_> = e.records().map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "bb", "c"]);
        assert_eq!(e.value("c"), Some("3"));
        assert_eq!(e.get("bb").unwrap().old_value(), None);
    }

    #[test]
    fn removed_record_has_no_value_even_if_new_value_set() {
        let mut e = event();
        e.put("a", Record { op: Op::Remove, ..e.get("a").unwrap().clone() });
        assert_eq!(e.value("a"), None);
    }
}
