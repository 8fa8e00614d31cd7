//! Persistence keys and the scheme registry: which store a key's URL names.
//!
//! A key is a URL naming a store and a stream (one actor's journal) in it. The scheme's opener
//! opens each store once per process and shares it between every key in it (so their writes are
//! group-committed).
//!
//! **Keys of [`Journaled`](crate::Journaled)** read `SCHEME://STORE/STREAM`: the last path
//! segment names the stream, everything before it the store ([`split_key`]):
//!
//! | key | store | stream |
//! |---|---|---|
//! | `file:///var/lib/app/actors/counter-1` | file journal in `/var/lib/app/actors` | `counter-1` |
//! | `memory://tests/counter-1` | in-memory store `tests` | `counter-1` |
//! | `sqlite:///var/lib/app/actors.db/counter-1` | SQLite database `/var/lib/app/actors.db` (feature `sqlite`) | `counter-1` |
//! | `postgres://app@db:5432/orders/counter-1?schema=actors` | PostgreSQL database `orders`, schema `actors` | `counter-1` |
//!
//! **Keys of the kameo-persistence API** ([`PersistentActor`](crate::PersistentActor)) mean
//! what they mean in kameo-persistence: a `file:///DIR/KEY` key is the directory `/DIR/KEY`,
//! the key's own (a trailing `/` names the same directory). Its file store lives in that
//! directory, its snapshots in the stream [`KEY_STREAM`], and a kameo-persistence snapshot
//! (`index.bin`) found there is imported ([`persistent_actor`](crate::persistent_actor)).
//! Keys may nest (`file:///DIR/manager/sub-actors/1` inside `file:///DIR/manager/`): a store
//! leaves the entries it did not write alone. Two processes can use two keys of one
//! directory. Keys of the other schemes read `SCHEME://STORE/STREAM` as above ([`locate_key`]).
//!
//! | kameo-persistence key | store | stream |
//! |---|---|---|
//! | `file:///var/lib/app/manager` or `file:///var/lib/app/manager/` | file journal in `/var/lib/app/manager` | `index` |
//! | `memory://tests/manager` | in-memory store `tests` | `manager` |
//!
//! Keys are normalised or refused, never reinterpreted: a `file` key names an absolute
//! directory (`file://HOST/…` and the root `file:///` are refused), a `memory` key takes no
//! query, and [`parse_key`] refuses text a URL parser would rewrite (`file:relative/x`).
//!
//! A key's query carries options for its store, given to the opener with the location (the
//! key that opens the store first sets them; later keys share the open store): for `file`,
//! `?strict` refuses to open a store that needs repair (a torn tail, a leftover temporary
//! file…) instead of setting the bytes aside in its quarantine folder, e.g.
//! `file:///var/lib/app/actors/counter-1?strict`. A `file` key creates its store on first use.
//!
//! `file` and `memory` are registered from the start, and `sqlite` with the feature `sqlite`
//! (the database is created if it does not exist). Another backend plugs in with
//! [`register_scheme`], without changes to this crate:
//!
//! ```
//! use persevere_driver::Backend;
//! use persevere_memory::Memory;
//!
//! // For example `sqlite`: open the database at `location` and return a backend for it.
//! persevere_kameo::register_scheme("scratch", |_location, runtime| {
//!     Ok(Backend::inline(runtime.clone(), Memory::new()))
//! });
//! let key = url::Url::parse("scratch://db/counter-1").unwrap();
//! assert_eq!(persevere_kameo::split_key(&key).unwrap(), ("scratch://db", "counter-1"));
//! ```
//!
//! Stores are opened on the runtime's blocking pool, never on an async worker, through the
//! driver's registry of open stores ([`OpenStores`]): one store per location in this process.
//! A store stays open (and, for the file journal, locked) until [`release_store`] (or, for a
//! key of the kameo-persistence API, [`release_key_store`]) and the last journal using it is
//! gone. The store of a kameo-persistence `file` key is kept open, once its actor and every
//! call using it are done, among at most [`IDLE_KEY_STORES`] idle ones, and then closed by
//! itself (on the blocking pool), unless a `Journaled` key names the same store; an open of it
//! meanwhile waits until it is closed (at most
//! [`RELEASE_PATIENCE`](persevere_driver::RELEASE_PATIENCE); past it the open fails with
//! [`Error::Storage`] naming the location). Its work runs on whichever tokio runtime is current
//! when it is used ([`Tokio::ambient`]), so it outlives the runtime that opened it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use persevere_core::Repair;
use persevere_driver::{Backend, Held, Hold, NotReleased, OpenError, OpenStores, Sharing};
use persevere_file::FileStore;
use persevere_memory::Memory;
use persevere_tokio::Tokio;
use url::Url;

use crate::error::Error;

/// Opens the store at a location (`SCHEME://STORE` of a key, followed by `?QUERY` when the key
/// has one) on the given runtime. Runs on the blocking pool; returns why it could not.
pub type Opener = dyn Fn(&str, &Tokio) -> Result<Backend, String> + Send + Sync;

/// A scheme's opener: one of this crate's, which keeps the store's [`Hold`] inside the store
/// (so its location counts as released once the store itself is dropped), or one an
/// application registered.
#[derive(Clone)]
enum SchemeOpener {
    Builtin(fn(&str, &Tokio, Hold) -> Result<Backend, String>),
    Registered(Arc<Opener>),
}

impl SchemeOpener {
    fn open(&self, location: &str, runtime: &Tokio, hold: Hold) -> Result<Backend, String> {
        match self {
            SchemeOpener::Builtin(open) => open(location, runtime, hold),
            SchemeOpener::Registered(open) => open(location, runtime),
        }
    }
}

/// The openers by scheme and this crate's policy over the open stores.
struct Schemes {
    openers: HashMap<String, SchemeOpener>,
    /// How many journals of the kameo-persistence API use each store ([`KeyStore`]).
    key_users: HashMap<String, usize>,
    /// Stores never closed when their last key is done: those a `Journaled` key named, and
    /// those of kameo-persistence keys of other schemes than `file`.
    kept: HashMap<String, Arc<OpenStore>>,
    /// Stores of `file` keys no journal uses, kept open, the one idle longest first.
    idle: VecDeque<(String, Arc<OpenStore>)>,
}

static SCHEMES: LazyLock<Mutex<Schemes>> = LazyLock::new(|| {
    let mut openers: HashMap<String, SchemeOpener> = HashMap::new();
    openers.insert("file".into(), SchemeOpener::Builtin(open_file));
    openers.insert("memory".into(), SchemeOpener::Builtin(open_memory));
    #[cfg(feature = "sqlite")]
    openers.insert("sqlite".into(), SchemeOpener::Builtin(open_sqlite));
    openers.insert("postgres".into(), SchemeOpener::Builtin(open_postgres));
    openers.insert("postgresql".into(), SchemeOpener::Builtin(open_postgres));
    Mutex::new(Schemes {
        openers,
        key_users: HashMap::new(),
        kept: HashMap::new(),
        idle: VecDeque::new(),
    })
});

fn schemes() -> MutexGuard<'static, Schemes> {
    SCHEMES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The stores open in this process, by location (`SCHEME://STORE`, without the key's query):
/// shared while an [`OpenStore`] of theirs lives, and waited for while being dropped.
static STORES: OpenStores<String, OpenStore> = OpenStores::new();

/// A store open in this process: its backend, and the hold telling [`STORES`] when it is gone.
#[derive(Debug)]
struct OpenStore {
    backend: Backend,
    _hold: Hold,
}

/// Lets go of `store`; when it is its location's last handle, the store is closed on the
/// blocking pool (its drop writes and syncs files).
fn discard(store: Arc<OpenStore>) {
    STORES.close(&Tokio::ambient(), store);
}

/// Opens (or, on first use, creates) the file store a `file://` location names, with the
/// options its query gives: `?strict` refuses to open a store that needs repair instead of
/// setting anything aside ([`Recovery::Strict`](persevere_file::Recovery::Strict)).
fn open_file(location: &str, runtime: &Tokio, hold: Hold) -> Result<Backend, String> {
    let options = persevere_file::url_options(location).map_err(|e| e.to_string())?;
    let dir = persevere_file::parse_url(location).map_err(|e| e.to_string())?;
    let store = FileStore::open_or_create_with(dir, options).map_err(|e| e.to_string())?;
    Ok(Backend::new(runtime.clone(), Held::new(store, hold)))
}

#[cfg(feature = "sqlite")]
fn open_sqlite(location: &str, runtime: &Tokio, hold: Hold) -> Result<Backend, String> {
    let store = persevere_sqlite::SqliteStore::open_url(location).map_err(|e| e.to_string())?;
    Ok(Backend::new(runtime.clone(), Held::new(store, hold)))
}

/// Opens the PostgreSQL journal a `postgres://` location names (the key's query, e.g.
/// `?schema=name`, included).
fn open_postgres(location: &str, runtime: &Tokio, hold: Hold) -> Result<Backend, String> {
    let store = persevere_postgres::PostgresStore::open(location).map_err(|e| e.to_string())?;
    Ok(Backend::new(runtime.clone(), Held::new(store, hold)))
}

fn open_memory(_location: &str, runtime: &Tokio, _hold: Hold) -> Result<Backend, String> {
    Ok(Backend::inline(runtime.clone(), Memory::new()))
}

/// Registers (or replaces) the opener of `scheme`'s stores: keys `scheme://STORE/STREAM` then
/// open `scheme://STORE` through it. Stores already open stay open.
pub fn register_scheme(
    scheme: &str,
    opener: impl Fn(&str, &Tokio) -> Result<Backend, String> + Send + Sync + 'static,
) {
    schemes().openers.insert(
        scheme.to_ascii_lowercase(),
        SchemeOpener::Registered(Arc::new(opener)),
    );
}

const HIDDEN_SEPARATOR: &str =
    "a %-escape in the path hides a separator or NUL (%2F, %5C, %00): it would name another directory than the key shows";

/// Whether `key`'s path escapes a path separator or NUL: one segment of the key that the
/// store's location would decode into several (`k%2F..%2Fother` → `k/../other`).
fn hides_a_separator(key: &Url) -> bool {
    let path = key.path().to_ascii_lowercase();
    ["%2f", "%5c", "%00"]
        .iter()
        .any(|hidden| path.contains(hidden))
}

/// Splits a key into its store location (`SCHEME://STORE`) and its stream (the last path
/// segment). The query and fragment are ignored; a path whose %-escapes hide a separator is
/// refused.
pub fn split_key(key: &Url) -> Result<(&str, &str), Error> {
    let invalid = |reason: &str| Error::Key {
        key: key.to_string(),
        reason: reason.into(),
    };
    let text = key.as_str();
    let text = text.split(['?', '#']).next().unwrap_or_default();
    let after = key.scheme().len() + "://".len();
    if !text[key.scheme().len()..].starts_with("://") {
        return Err(invalid("a key has the shape SCHEME://STORE/STREAM"));
    }
    let Some(slash) = text[after..].rfind('/') else {
        return Err(invalid("a key has the shape SCHEME://STORE/STREAM"));
    };
    let (location, stream) = (&text[..after + slash], &text[after + slash + 1..]);
    if stream.is_empty() {
        return Err(invalid("the last path segment (the stream) is empty"));
    }
    if key.scheme() == "file" && key.host_str().is_some_and(|host| !host.is_empty()) {
        // `file://data/x` names the host `data`, not a relative directory: never guess.
        return Err(invalid(
            "a file key names an absolute directory, file:///DIR/STREAM; file://HOST/… is refused",
        ));
    }
    if hides_a_separator(key) {
        return Err(invalid(HIDDEN_SEPARATOR));
    }
    if key.scheme() == "memory" && key.query().is_some() {
        // The store is shared by location: an option would be silently ignored, and a key
        // differing only by it would name the same stream.
        return Err(invalid("a memory key takes no options (no ?query)"));
    }
    Ok((location, stream))
}

/// Parses a persistence key from text, refusing the forms a URL parser would reinterpret:
/// the text must read `SCHEME://STORE/STREAM` (a `file:relative/x`, which URL parsing turns
/// into `file:///relative/x`, a store at `/relative`, is refused), and it must then
/// [split](split_key) into a store and a stream.
///
/// ```
/// use persevere_kameo::{parse_key, Error};
///
/// assert_eq!(parse_key("memory://tests/c-1").unwrap().as_str(), "memory://tests/c-1");
/// assert!(parse_key("file:///var/lib/app/counter-1").is_ok());
/// assert!(matches!(parse_key("file:relative/x"), Err(Error::Key { .. })));
/// assert!(matches!(parse_key("file://relative/x"), Err(Error::Key { .. })));
/// assert!(matches!(parse_key("memory://s/c?x"), Err(Error::Key { .. })));
/// ```
pub fn parse_key(text: &str) -> Result<Url, Error> {
    let invalid = |reason: String| Error::Key {
        key: text.into(),
        reason,
    };
    let key = Url::parse(text).map_err(|e| invalid(e.to_string()))?;
    let written = text.get(key.scheme().len()..).unwrap_or_default();
    if !written.starts_with("://") {
        return Err(invalid(format!(
            "a key is written SCHEME://STORE/STREAM; this one would be read as {key}"
        )));
    }
    split_key(&key)?;
    Ok(key)
}

/// The stream of a `file` key of the kameo-persistence API in the store of its directory.
pub const KEY_STREAM: &str = "index";

/// Where the kameo-persistence API ([`PersistentActor`](crate::PersistentActor)) keeps `key`:
/// its store location (`SCHEME://STORE`) and its stream.
///
/// A `file` key is a directory of its own, as in kameo-persistence: its store is that
/// directory and its stream [`KEY_STREAM`]; a trailing `/` names the same directory. Keys of
/// the other schemes are split by [`split_key`]. The query and fragment are ignored.
///
/// ```
/// use persevere_kameo::{locate_key, Url};
///
/// let key = Url::parse("file:///var/lib/app/manager/").unwrap();
/// assert_eq!(locate_key(&key).unwrap(), ("file:///var/lib/app/manager".into(), "index".into()));
/// let key = Url::parse("memory://tests/manager").unwrap();
/// assert_eq!(locate_key(&key).unwrap(), ("memory://tests".into(), "manager".into()));
/// assert!(locate_key(&Url::parse("file:///").unwrap()).is_err());
/// assert!(locate_key(&Url::parse("file://host/dir").unwrap()).is_err());
/// ```
pub fn locate_key(key: &Url) -> Result<(String, String), Error> {
    if key.scheme() != "file" {
        let (location, stream) = split_key(key)?;
        return Ok((location.to_owned(), stream.to_owned()));
    }
    let invalid = |reason: &str| Error::Key {
        key: key.to_string(),
        reason: reason.into(),
    };
    if key.host_str().is_some_and(|host| !host.is_empty()) {
        // `file://data/x` names the host `data`, not a relative directory: never guess.
        return Err(invalid(
            "a file key names an absolute directory, file:///DIR/KEY; file://HOST/… is refused",
        ));
    }
    if hides_a_separator(key) {
        return Err(invalid(HIDDEN_SEPARATOR));
    }
    let path = key.path().trim_end_matches('/');
    if path.is_empty() {
        return Err(invalid(
            "a file key names a directory of its own; the root directory is refused",
        ));
    }
    Ok((format!("file://{path}"), KEY_STREAM.to_owned()))
}

/// The backend and stream a key of [`Journaled`](crate::Journaled) names
/// (`SCHEME://STORE/STREAM`), opening its store on first use. The store is kept open.
pub(crate) async fn resolve(key: &Url) -> Result<(Backend, String), Error> {
    let (location, stream) = split_key(key)?;
    let store = open_location(key, location).await?;
    let backend = store.backend.clone();
    keep(location, store);
    Ok((backend, stream.into()))
}

/// Keeps the store at `location` open until [`release_store`], whoever uses it.
fn keep(location: &str, store: Arc<OpenStore>) {
    let mut schemes = schemes();
    let idle = take_idle(&mut schemes, location);
    let replaced = schemes.kept.insert(location.to_owned(), store);
    drop(schemes);
    idle.into_iter().chain(replaced).for_each(discard);
}

/// Takes the store at `location` out of the idle ones.
fn take_idle(schemes: &mut Schemes, location: &str) -> Option<Arc<OpenStore>> {
    let at = schemes.idle.iter().position(|(idle, _)| idle == location)?;
    schemes.idle.remove(at).map(|(_, store)| store)
}

/// How many stores of kameo-persistence `file` keys no actor uses are kept open (two file
/// descriptors each), so that a key respawned soon after its actor stopped does not reopen its
/// store; beyond them, the store idle longest is closed.
pub const IDLE_KEY_STORES: usize = 32;

/// A journal of the kameo-persistence API's hold on its store. When the last hold on the
/// store of a `file` key (its own directory) is dropped, the store joins the idle ones; past
/// [`IDLE_KEY_STORES`] the one idle longest is closed — on the blocking pool, releasing its
/// lock and file descriptors. Stores a `Journaled` key named are never closed so. Drop it
/// after the journal, so that it holds the store's last handle.
#[derive(Debug)]
pub(crate) struct KeyStore {
    location: String,
    store: Option<Arc<OpenStore>>,
    closes: bool,
}

impl Drop for KeyStore {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let mut schemes = schemes();
        let users = schemes.key_users.entry(self.location.clone()).or_insert(1);
        *users = users.saturating_sub(1);
        if *users > 0 {
            drop(schemes);
            return discard(store);
        }
        schemes.key_users.remove(&self.location);
        // A store forgotten by `release_key_store` closes with its last journal.
        let current = STORES
            .live(&self.location)
            .is_some_and(|live| Arc::ptr_eq(&live, &store));
        if !self.closes || schemes.kept.contains_key(&self.location) || !current {
            drop(schemes);
            return discard(store);
        }
        let mut closing: Vec<_> = take_idle(&mut schemes, &self.location)
            .into_iter()
            .collect();
        schemes.idle.push_back((self.location.clone(), store));
        while schemes.idle.len() > IDLE_KEY_STORES {
            let Some((oldest, store)) = schemes.idle.pop_front() else {
                break;
            };
            tracing::debug!(location = %oldest, "closing the store of a key, idle longest");
            closing.push(store);
        }
        drop(schemes);
        closing.into_iter().for_each(discard);
    }
}

/// Closes the store at `location` now if it is idle, and waits until no store of the location
/// is being closed.
pub(crate) async fn close_idle(location: &str) -> Result<(), NotReleased> {
    let idle = take_idle(&mut schemes(), location);
    let runtime = Tokio::ambient();
    if let Some(store) = idle {
        STORES.close(&runtime, store);
    }
    STORES.released(&runtime, &location.to_owned()).await
}

/// The backend and stream a key of the kameo-persistence API names ([`locate_key`]),
/// opening its store on first use, and the hold that closes a `file` key's store after its
/// last use.
pub(crate) async fn resolve_persistent(key: &Url) -> Result<(Backend, String, KeyStore), Error> {
    let (location, stream) = locate_key(key)?;
    let store = open_location(key, &location).await?;
    let backend = store.backend.clone();
    let closes = key.scheme() == "file";
    if !closes {
        keep(&location, Arc::clone(&store));
    }
    let idle = {
        let mut schemes = schemes();
        *schemes.key_users.entry(location.clone()).or_default() += 1;
        take_idle(&mut schemes, &location)
    };
    idle.into_iter().for_each(discard);
    let hold = KeyStore {
        location,
        store: Some(store),
        closes,
    };
    Ok((backend, stream, hold))
}

/// The store at `location` (named by `key`), opened on first use: shared while open, waited
/// for while a store of the location is being closed.
async fn open_location(key: &Url, location: &str) -> Result<Arc<OpenStore>, Error> {
    let Some(opener) = schemes().openers.get(key.scheme()).cloned() else {
        return Err(Error::UnknownScheme {
            scheme: key.scheme().into(),
            key: key.clone(),
        });
    };
    let runtime = Tokio::ambient();
    // The opener sees the key's query: its options for the store (e.g. `?strict`).
    let with_query = match key.query() {
        Some(query) => format!("{location}?{query}"),
        None => location.to_owned(),
    };
    let on = runtime.clone();
    STORES
        .open(&runtime, location.to_owned(), Sharing::Share, move |hold| {
            tracing::debug!(location = %with_query, "opening store");
            let backend = opener.open(&with_query, &on, hold.clone())?;
            Ok(Arc::new(OpenStore {
                backend,
                _hold: hold,
            }))
        })
        .await
        .map_err(|error| {
            let reason = match error {
                OpenError::Open(reason) => reason,
                other => other.to_string(),
            };
            tracing::error!(%key, %reason, "store could not be opened");
            Error::Storage {
                key: key.clone(),
                reason,
            }
        })
}

/// What the store behind `key` repaired or set aside — when this process opened it, or
/// reopened it after a failure — that may involve `key`'s stream (repairs naming the stream, and
/// those naming none). Opens the store if it is not open yet. Every repair is also logged as a
/// WARN naming its streams. See [`Backend::repairs_for`].
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let key = url::Url::parse("memory://doc-repairs/counter").unwrap();
/// assert!(persevere_kameo::repairs(&key).await?.is_empty());
/// # Ok::<(), persevere_kameo::Error>(())
/// # }).unwrap();
/// ```
pub async fn repairs(key: &Url) -> Result<Vec<Repair>, Error> {
    let (backend, stream) = resolve(key).await?;
    Ok(backend.repairs_for(&stream))
}

/// Forgets this process's handle on the store behind `key` (every key in the same store): the
/// next use opens it again. Journals still open keep the old handle until they close; for the
/// file journal, reopening the directory fails while one of them lives (the directory is
/// locked). Returns whether a store was open.
pub fn release_store(key: &Url) -> Result<bool, Error> {
    let (location, _) = split_key(key)?;
    Ok(release(location))
}

/// Drops this process's own handles on the store at `location` (at once, in this thread) and,
/// while journals still hold it, forgets it, so that the next use opens it again; whether it
/// was open.
fn release(location: &str) -> bool {
    let location = location.to_owned();
    let was_open = STORES.live(&location).is_some();
    let (kept, idle) = {
        let mut schemes = schemes();
        let idle = take_idle(&mut schemes, &location);
        (schemes.kept.remove(&location), idle)
    };
    drop((kept, idle));
    if STORES.live(&location).is_some() {
        STORES.forget(&location);
    }
    was_open
}

/// Like [`release_store`], for a key of the kameo-persistence API ([`locate_key`]): for a
/// `file` key, the store in the key's own directory.
pub fn release_key_store(key: &Url) -> Result<bool, Error> {
    let (location, _) = locate_key(key)?;
    Ok(release(&location))
}

/// What the store behind a key of the kameo-persistence API ([`locate_key`]) repaired or set
/// aside that may involve the key's stream; see [`repairs`].
pub async fn key_repairs(key: &Url) -> Result<Vec<Repair>, Error> {
    let (backend, stream, _hold) = resolve_persistent(key).await?;
    Ok(backend.repairs_for(&stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(key: &str) -> Result<(String, String), Error> {
        let key = Url::parse(key).map_err(|e| Error::Key {
            key: key.into(),
            reason: e.to_string(),
        })?;
        split_key(&key).map(|(l, s)| (l.to_owned(), s.to_owned()))
    }

    #[test]
    fn at_most_idle_key_stores_stay_open_unused() {
        let location = |i: usize| format!("file:///idle-test/{i}");
        for i in 0..IDLE_KEY_STORES + 3 {
            let store = STORES
                .open_blocking(location(i), Sharing::Share, |hold| {
                    Ok::<_, ()>(Arc::new(OpenStore {
                        backend: Backend::inline(Tokio::ambient(), Memory::new()),
                        _hold: hold,
                    }))
                })
                .unwrap();
            *schemes().key_users.entry(location(i)).or_default() += 1;
            drop(KeyStore {
                location: location(i),
                store: Some(store),
                closes: true,
            });
        }
        let schemes = schemes();
        let idle: Vec<_> = schemes
            .idle
            .iter()
            .map(|(l, _)| l)
            .filter(|l| l.starts_with("file:///idle-test/"))
            .cloned()
            .collect();
        assert_eq!(idle.len(), IDLE_KEY_STORES);
        assert_eq!(idle.first(), Some(&location(3)), "the oldest went first");
        assert!(!schemes.key_users.contains_key(&location(0)));
        assert!(STORES.live(&location(0)).is_none(), "the oldest was closed");
        assert!(
            STORES.live(&location(3)).is_some(),
            "an idle store stays open"
        );
    }

    #[test]
    fn kameo_persistence_file_keys_are_directories() {
        let locate = |key: &str| {
            let key = Url::parse(key).map_err(|e| Error::Key {
                key: key.into(),
                reason: e.to_string(),
            })?;
            locate_key(&key)
        };
        let pair = |l: &str, s: &str| Ok((l.to_owned(), s.to_owned()));
        assert_eq!(
            locate("file:///var/app/k"),
            pair("file:///var/app/k", KEY_STREAM)
        );
        assert_eq!(
            locate("file:///var/app/k/"),
            pair("file:///var/app/k", KEY_STREAM)
        );
        assert_eq!(
            locate("file:///var/app/k//?strict#f"),
            pair("file:///var/app/k", KEY_STREAM)
        );
        assert_eq!(
            locate("file:///a%20b/k"),
            pair("file:///a%20b/k", KEY_STREAM)
        );
        assert_eq!(
            locate("file:///var/app/../k"),
            pair("file:///var/k", KEY_STREAM)
        );
        assert!(locate("file:///").is_err());
        assert!(locate("file://host/k").is_err());
        assert_eq!(locate("memory://t/c"), pair("memory://t", "c"));
        assert!(locate("memory://t/c/").is_err());
    }

    #[test]
    fn keys_split_into_store_and_stream() {
        let pair = |l: &str, s: &str| Ok((l.to_owned(), s.to_owned()));
        assert_eq!(split("file:///var/app/a/b"), pair("file:///var/app/a", "b"));
        assert!(split("file://data/x?q=1#f").is_err());
        assert_eq!(split("file:///data/x?q=1#f"), pair("file:///data", "x"));
        assert!(split("memory://t/c?x").is_err());
        assert_eq!(split("memory://tests/c-1"), pair("memory://tests", "c-1"));
        assert_eq!(split("MEMORY://t/c"), pair("memory://t", "c"));
        assert!(split("memory://tests").is_err());
        assert!(split("file:///var/app/").is_err());
        assert!(split("mailto:someone").is_err());
    }
}
