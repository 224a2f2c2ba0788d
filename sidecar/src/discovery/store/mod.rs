//! A Kademlia record store that only keeps valid records.
//!
//! Kademlia runs with `StoreInserts::FilterBoth`: inbound PUTs reach the event loop, which
//! applies the gater's rate limit and then calls [`Store::insert`]. Local puts (our own
//! records, Kademlia's republish and caching) go through [`RecordStore::put`], which applies
//! the same validation. Every stored value therefore passed [`record::validate`] and won
//! [`record::select`] against the value it replaced. Provider records (the indexer registry's
//! announcements) are kept as is by the inner `MemoryStore`.
//!
//! Records live at most 24 h and are re-signed every 40 s by their owners, so the store is in
//! memory: persistence would only keep expired data across restarts.
//!
//! Beside the values, [`index`] keeps what searches, quotas and tombstone floors need, so no
//! query re-verifies a stored signature; every write goes through [`Store::insert_at`] or
//! [`RecordStore::remove`], which keep the two in step.

mod index;

use std::borrow::Cow;
use std::time::Instant;

use libp2p::kad::{
    store::{self, MemoryStore, MemoryStoreConfig, RecordStore},
    ProviderRecord, Record, RecordKey as KadKey,
};
use libp2p::PeerId;

use super::record;
use crate::offence::Offence;
use crate::time::{Clock, Timestamp};

/// Why a record was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The store holds its maximum number of records; nobody's fault.
    #[error("record store full ({max} records)")]
    Full { max: usize },
    /// An equal or newer value of the same signer is already stored.
    #[error("an equal or newer record is already stored")]
    Stale,
    /// The record did not validate, or lost against the stored value (`NameTaken`).
    #[error(transparent)]
    Invalid(record::Error),
}

impl From<record::Error> for Error {
    fn from(e: record::Error) -> Self {
        match e {
            record::Error::Stale => Error::Stale,
            e => Error::Invalid(e),
        }
    }
}

impl Error {
    /// What the sender of the refused record did wrong, if anything (a full store or a stale
    /// record is never the sender's fault).
    pub fn offence(&self) -> Option<Offence> {
        match self {
            Error::Full { .. } | Error::Stale => None,
            Error::Invalid(e) => e.offence(),
        }
    }
}

/// Runtime options.
#[derive(Debug, Clone)]
pub struct Config {
    /// Maximum number of value records. [Default: 100 000]
    pub max_records: usize,
    /// Maximum number of provider records. [Default: 10 000]
    pub max_providers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_records: 100_000,
            max_providers: 10_000,
        }
    }
}

/// Validating record store.
pub struct Store {
    inner: MemoryStore,
    max_records: usize,
    clock: Clock,
    index: index::Index,
}

impl Store {
    pub fn new(local: PeerId, config: Config, clock: Clock) -> Self {
        let mem = MemoryStoreConfig {
            max_records: config.max_records,
            max_value_bytes: record::MAX_RECORD_BYTES,
            max_providers_per_key: 64,
            max_provided_keys: config.max_providers,
        };
        Self {
            inner: MemoryStore::with_config(local, mem),
            max_records: config.max_records,
            clock,
            index: index::Index::default(),
        }
    }

    /// Validates `r` at the current time and stores it when it wins against the stored value.
    pub fn insert(&mut self, r: Record) -> Result<record::Verified, Error> {
        let now = self.clock.now();
        self.insert_at(r, now)
    }

    /// [`Store::insert`] at protocol time `now`. Storing the very bytes already held is a
    /// no-op success (our own records are inserted, then handed to Kademlia, which puts them
    /// again).
    pub fn insert_at(&mut self, mut r: Record, now: Timestamp) -> Result<record::Verified, Error> {
        let now_ms = now.as_millis();
        let new = record::validate(r.key.as_ref(), &r.value, now_ms)?;
        if let Some(old) = self.inner.get(&r.key) {
            if old.value == r.value {
                return Ok(new);
            }
            // An invalid or expired stored value simply loses.
            if let Ok(old) = record::validate(old.key.as_ref(), &old.value, now_ms) {
                record::select(r.key.as_ref(), &old, &new)?;
            }
        }
        // A record issued before a tombstone of its key, replayed after the tombstone expired.
        if self
            .index
            .floor(&r.key, now_ms)
            .is_some_and(|t| new.body.issued_at_ms <= t)
            && !new.is_tombstone()
        {
            return Err(Error::Stale);
        }
        let replaced = self.index.replaced_name(&r.key, &new);
        let left = std::time::Duration::from_millis(
            record::expiry_ms(&new).saturating_sub(now.as_millis()),
        );
        r.expires = Some(Instant::now() + self.clock.real(left));
        r.publisher = Some(new.peer_id);
        let key = r.key.clone();
        self.inner.put(r).map_err(|e| match e {
            store::Error::MaxRecords => Error::Full {
                max: self.max_records,
            },
            // Values are bounded by `record::validate` before they get here.
            other => Error::Invalid(record::Error::Malformed(other.to_string())),
        })?;
        // One name per owner: its new name frees the old one.
        if let Some(old) = replaced {
            self.remove(&old);
        }
        self.index.on_stored(&key, &new, now_ms);
        self.index.prune(now_ms);
        Ok(new)
    }

    /// The valid, live record stored under `key`, if any.
    pub fn get_valid(&self, key: &str) -> Option<record::Verified> {
        let r = self.inner.get(&KadKey::new(&key))?;
        record::validate(r.key.as_ref(), &r.value, self.clock.now().as_millis()).ok()
    }

    /// Local search for indexers: live node records whose DID or peer id equals `needle`, or
    /// whose name equals or (when `substring`) contains it, case-insensitively. At most `max`
    /// hits. A scan of the index: no signature is verified (every stored value was verified on
    /// the way in).
    pub fn search_local(&self, needle: &str, substring: bool, max: usize) -> Vec<record::Verified> {
        let now = self.clock.now().as_millis();
        self.index
            .search(needle, substring, max, now)
            .iter()
            .filter_map(|k| {
                let r = self.inner.get(k)?;
                let v = record::verify(k.as_ref(), &r.value).ok()?;
                Some(v)
            })
            .collect()
    }

    /// Number of value records held.
    pub fn len(&self) -> usize {
        self.inner.records().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RecordStore for Store {
    type RecordsIter<'a> = <MemoryStore as RecordStore>::RecordsIter<'a>;
    type ProvidedIter<'a> = <MemoryStore as RecordStore>::ProvidedIter<'a>;

    fn get(&self, k: &KadKey) -> Option<Cow<'_, Record>> {
        self.inner.get(k)
    }

    /// Kademlia's own puts: our records (already inserted by the glue with a typed error,
    /// so this is a no-op then) and records cached after a lookup. kad's error type has no
    /// "invalid": every refusal but a full store maps to `ValueTooLarge`, logged with the
    /// real reason.
    fn put(&mut self, r: Record) -> store::Result<()> {
        let key = String::from_utf8_lossy(r.key.as_ref()).into_owned();
        self.insert(r).map(|_| ()).map_err(|e| {
            tracing::debug!(%key, error = %e, "record refused by the store");
            match e {
                Error::Full { .. } => store::Error::MaxRecords,
                _ => store::Error::ValueTooLarge,
            }
        })
    }

    fn remove(&mut self, k: &KadKey) {
        self.inner.remove(k);
        self.index.on_removed(k);
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.inner.records()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> store::Result<()> {
        self.inner.add_provider(record)
    }

    fn providers(&self, key: &KadKey) -> Vec<ProviderRecord> {
        self.inner.providers(key)
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.inner.provided()
    }

    fn remove_provider(&mut self, k: &KadKey, p: &PeerId) {
        self.inner.remove_provider(k, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::record::{name_key, node_key, Draft, RecordKind};
    use crate::keys::NodeIdentity;

    fn rec(key: &str, value: Vec<u8>) -> Record {
        Record::new(KadKey::new(&key), value)
    }

    fn draft() -> Draft {
        Draft {
            kind: RecordKind::Peer,
            name: "garden-site".into(),
            addrs: vec![],
            location: None,
            indexer: None,
            links: Default::default(),
            ttl_ms: 120_000,
        }
    }

    #[test]
    fn store_keeps_valid_newer_records_and_refuses_the_rest() {
        let id = NodeIdentity::generate();
        let clock = Clock::system();
        let mut s = Store::new(PeerId::random(), Config::default(), clock.clone());
        let key = node_key(&id.did());
        let now = clock.now();
        let ms = now.as_millis();
        let mine = draft().sign(&id, ms);
        s.insert_at(rec(&key, mine.clone()), now).unwrap();
        s.insert_at(rec(&key, mine), now)
            .expect("the same bytes again are not stale");
        assert_eq!(
            s.insert_at(rec(&key, draft().sign(&id, ms - 10)), now)
                .unwrap_err(),
            Error::Stale
        );
        assert!(s.put(rec(&key, b"junk".to_vec())).is_err());
        let forged = draft().sign(&NodeIdentity::generate(), ms + 1);
        let e = s
            .insert_at(rec(&key, forged), Timestamp::from_millis(ms + 1))
            .unwrap_err();
        assert_eq!(e.offence(), Some(Offence::Forged));
        assert_eq!(s.len(), 1);
        let hits = s.search_local("site", true, 10);
        assert_eq!(hits.len(), 1);
        assert!(s.search_local("site", false, 10).is_empty());
        assert_eq!(
            s.search_local(&id.peer_id().to_string(), false, 10).len(),
            1
        );
        // A tombstone replaces it and hides it from search.
        s.insert_at(
            rec(&key, Draft::tombstone(&id, "garden-site", ms + 2)),
            Timestamp::from_millis(ms + 2),
        )
        .unwrap();
        assert!(s.search_local("site", true, 10).is_empty());
    }

    #[test]
    fn an_owner_holds_one_name_at_a_time() {
        let clock = Clock::system();
        let mut s = Store::new(PeerId::random(), Config::default(), clock.clone());
        let now = clock.now();
        let id = NodeIdentity::generate();
        // A squatter re-signs its record under name after name: each new name frees the last.
        for (i, name) in ["alpha", "beta", "gamma"].iter().enumerate() {
            let t = Timestamp::from_millis(now.as_millis() + i as u64);
            let v = Draft {
                name: name.to_string(),
                ..draft()
            }
            .sign(&id, t.as_millis());
            s.insert_at(rec(&name_key(name), v), t).unwrap();
        }
        assert_eq!(s.len(), 1, "only the latest name is held");
        assert!(s.get_valid(&name_key("gamma")).is_some());
        assert!(s.get_valid(&name_key("alpha")).is_none());
        // Another identity can take a freed name.
        let other = NodeIdentity::generate();
        let v = Draft {
            name: "alpha".into(),
            ..draft()
        }
        .sign(&other, now.as_millis() + 10);
        s.insert_at(
            rec(&name_key("alpha"), v),
            Timestamp::from_millis(now.as_millis() + 10),
        )
        .unwrap();
    }

    #[test]
    fn a_record_older_than_a_tombstone_is_refused_after_the_tombstone_expired() {
        let clock = Clock::system();
        let mut s = Store::new(PeerId::random(), Config::default(), clock.clone());
        let id = NodeIdentity::generate();
        let key = node_key(&id.did());
        let t0 = clock.now().as_millis();
        // A long-lived record, then the owner leaves.
        let old = Draft {
            ttl_ms: 3_600_000,
            ..draft()
        }
        .sign(&id, t0);
        s.insert_at(rec(&key, old.clone()), Timestamp::from_millis(t0))
            .unwrap();
        s.insert_at(
            rec(&key, Draft::tombstone(&id, "garden-site", t0 + 1_000)),
            Timestamp::from_millis(t0 + 1_000),
        )
        .unwrap();
        // Twenty minutes later the tombstone has expired; someone replays the old record.
        let later = Timestamp::from_millis(t0 + 20 * 60_000);
        assert_eq!(
            s.insert_at(rec(&key, old), later).unwrap_err(),
            Error::Stale
        );
        // The owner coming back with a new record is welcome.
        let back = draft().sign(&id, later.as_millis());
        s.insert_at(rec(&key, back), later).unwrap();
    }

    #[test]
    fn search_scans_the_index_not_the_signatures() {
        let clock = Clock::system();
        let mut s = Store::new(PeerId::random(), Config::default(), clock.clone());
        let now = clock.now();
        let ids: Vec<_> = (0..50).map(|_| NodeIdentity::generate()).collect();
        for (i, id) in ids.iter().enumerate() {
            let v = Draft {
                name: format!("site-{i}"),
                ..draft()
            }
            .sign(id, now.as_millis());
            s.insert_at(rec(&node_key(&id.did()), v), now).unwrap();
        }
        assert_eq!(
            s.search_local("SITE-1", true, 100).len(),
            11,
            "site-1, site-10..19"
        );
        assert_eq!(s.search_local("site-1", false, 100).len(), 1);
        assert_eq!(
            s.search_local(&ids[7].peer_id().to_string(), false, 10)
                .len(),
            1
        );
        assert_eq!(s.search_local("site", true, 5).len(), 5, "capped");
        // A removed record leaves the index too.
        s.remove(&KadKey::new(&node_key(&ids[1].did())));
        assert_eq!(s.search_local("site-1", false, 100).len(), 0);
    }

    #[test]
    fn a_full_store_is_nobodys_offence() {
        let clock = Clock::system();
        let cfg = Config {
            max_records: 2,
            ..Config::default()
        };
        let mut s = Store::new(PeerId::random(), cfg, clock.clone());
        let now = clock.now();
        for _ in 0..2 {
            let id = NodeIdentity::generate();
            s.insert_at(
                rec(&node_key(&id.did()), draft().sign(&id, now.as_millis())),
                now,
            )
            .unwrap();
        }
        let id = NodeIdentity::generate();
        let e = s
            .insert_at(
                rec(&node_key(&id.did()), draft().sign(&id, now.as_millis())),
                now,
            )
            .unwrap_err();
        assert_eq!(e, Error::Full { max: 2 });
        assert_eq!(
            e.offence(),
            None,
            "an honest publisher is never struck for a full store"
        );
    }
}
