//! The store: one connection, one transaction per [`Store::execute`].

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use persevere_core::{
    Command, CommandResult, Completion, SharedBytes, StorageError, Store, StoredRecord,
    StreamCommand,
};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use rustix::fs::{flock, FlockOperation};

use crate::schema::{self, Empty};
use crate::wal::{Reserve, WalReserve};
use crate::SqliteError;

/// How [`SqliteStore::open_with`] treats a missing or existing database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OpenMode {
    /// The database must exist and be a persevere store ([`SqliteError::NotFound`] otherwise).
    Open,
    /// The database must not exist; it is created ([`SqliteError::AlreadyExists`] otherwise).
    Create,
    /// Open the database, creating it if it does not exist.
    #[default]
    OpenOrCreate,
}

/// What an acknowledged append survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=FULL` (the default): every commit syncs the write-ahead log before it is
    /// acknowledged. An acknowledged append survives a process crash, an OS crash and power
    /// loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: the write-ahead log is synced only at checkpoints. An acknowledged
    /// append survives a process crash (kill, panic), but an OS crash or power loss may lose
    /// the transactions committed since the last checkpoint — whole transactions, newest first,
    /// never part of one, and the database stays consistent. A journal that lost its tail this
    /// way recovers the older state; other writers never see torn data.
    ProcessCrashOnly,
}

/// How the write-ahead log's file grows.
///
/// With `synchronous=FULL` every commit syncs the log. A commit that extends the file must also
/// make its new size durable (a journal commit of the file system); one that writes inside it
/// syncs only its data.
///
/// ```
/// use persevere_sqlite::{SqliteOptions, WalGrowth};
/// let mut options = SqliteOptions::default();
/// assert_eq!(options.wal_growth, WalGrowth::Reserved);
/// options.wal_growth = WalGrowth::AtCommit;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WalGrowth {
    /// The default: with [`Durability::Full`], the log's whole pass is written with zeros and
    /// synced at open: the header and [`SqliteOptions::checkpoint_pages`] frames (after which
    /// a checkpoint lets SQLite start the log again from its beginning), and 2 MiB more (the
    /// last transaction's overshoot and the low water mark below), at most 16 MiB: about
    /// 6 MiB with the default 1,000 pages of 4 KiB. Its cost is paid once per open (SQLite
    /// deletes the log when the store closes): measured ≈30 ms more to create a store than
    /// without the pass (on a disk syncing 860–2,600 times a second; 20–60 ms when it was
    /// saturated by other work), and that much disk while the store is open. Then, before each write transaction, at least 1 MiB of zeros must follow the
    /// log's frames in use; when the log outgrows its pass (a reader holding the checkpoint
    /// back, `checkpoint_pages` 0 or more than the 16 MiB hold) the file grows by 1–8 MiB at a
    /// time, the zeros written and synced in the transaction that finds the reserve short. So
    /// commits write inside the file. SQLite reads the zeros as the log's end, like the older
    /// frames of a log it reuses. No effect with [`Durability::ProcessCrashOnly`], whose
    /// commits do not sync.
    #[default]
    Reserved,
    /// SQLite extends the log at every commit that reaches its end: every commit until the
    /// first checkpoint, and again after every reopen (SQLite deletes the log when it closes).
    AtCommit,
}

/// How much of the database is checked when it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OpenCheck {
    /// The header, the application id and the schema version (the default): cheap at any size.
    /// Damage inside the file is found when a command reads it.
    #[default]
    Schema,
    /// Also `PRAGMA quick_check`: reads every page (O(size) at open).
    Quick,
    /// Also `PRAGMA integrity_check`: like `Quick`, plus index consistency (slowest).
    Integrity,
}

/// Options of a [`SqliteStore`].
///
/// ```
/// use std::time::Duration;
/// use persevere_sqlite::{Durability, OpenMode, SqliteOptions};
/// let mut options = SqliteOptions::default();
/// assert_eq!(options.durability, Durability::Full);
/// options.mode = OpenMode::Create;
/// options.busy_timeout = Duration::from_secs(1);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Open, create, or either (default: [`OpenMode::OpenOrCreate`]).
    pub mode: OpenMode,
    /// `synchronous=FULL` or `NORMAL` (default: [`Durability::Full`]).
    pub durability: Durability,
    /// How long a statement waits on a lock held by a reader's checkpoint or an outside tool
    /// (default: 5 s).
    pub busy_timeout: Duration,
    /// How many prepared statements the connection keeps (default: 32).
    pub statement_cache: usize,
    /// What is checked at open (default: [`OpenCheck::Schema`]).
    pub check: OpenCheck,
    /// `PRAGMA wal_autocheckpoint`: the write-ahead log is checkpointed into the database
    /// once it holds this many pages (default: 1,000, about 4 MiB, SQLite's own default).
    /// The checkpoint copies the log's newest pages into the database and syncs it; it runs in
    /// the commit that fills the log to this size, and the next commit, starting the log again
    /// from its beginning, also syncs the log's new header. With one-event transactions of one
    /// stream (about 2 frames each) that is once every ≈500 commits. A smaller log is what
    /// lets [`WalGrowth::Reserved`] write its whole pass once, at open, instead of growing it
    /// on the commit path. A larger value checkpoints less often, copying each page touched
    /// many times once, but makes that pass larger (at most 16 MiB is written at open; past
    /// it the log grows at commit). Measured with 1,000 concurrent entities through the
    /// driver: 26.7 k events/s at 1,000 pages against 33.1 k at 10,000, and 47.1 k against
    /// 42.8 k writing to the store directly (medians of 10 alternating runs on a disk shared
    /// with other work, each spread over 2–4×: within that noise, not settled); with the
    /// events clustered by stream (schema version 1) 10,000 was ≈1.4× faster. 0 never
    /// checkpoints automatically.
    pub checkpoint_pages: u32,
    /// `PRAGMA cache_size` in KiB: SQLite's page cache for this connection (default: 65,536,
    /// 64 MiB; SQLite's own default is 2 MiB). Appends of many streams at once touch each
    /// stream's page of the `(stream_id, seq)` index: a cache that holds them saves a read per
    /// append (≈15 % more appends per second measured with 1,000 streams, when each append
    /// touched a page of the stream's events, schema version 1).
    pub cache_kib: u32,
    /// How the write-ahead log's file grows (default: [`WalGrowth::Reserved`]).
    pub wal_growth: WalGrowth,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            mode: OpenMode::default(),
            durability: Durability::default(),
            busy_timeout: Duration::from_secs(5),
            statement_cache: 32,
            check: OpenCheck::default(),
            checkpoint_pages: 1_000,
            cache_kib: 65_536,
            wal_growth: WalGrowth::default(),
        }
    }
}

/// How long opening keeps trying a held lock before [`SqliteError::Locked`]: long enough to
/// outlast a child process between its fork and its exec, short enough that a real second
/// opener hears of it at once.
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// The exclusive `flock` on the database's side lock file (`<database>.persevere-lock`), taken
/// at open and held until the store is dropped (or the process dies: the kernel releases it).
#[derive(Debug)]
struct Owner {
    _file: File,
}

impl Owner {
    fn lock_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".persevere-lock");
        PathBuf::from(name)
    }

    fn acquire(path: &Path) -> Result<Self, SqliteError> {
        let lock = Self::lock_path(path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(|source| SqliteError::Io {
                op: "opening the lock file",
                path: lock.clone(),
                source,
            })?;
        // A held lock is tried again for up to `LOCK_WAIT`: a child process that another
        // thread is starting shares this process's descriptors between its fork and its exec,
        // so a lock this process has just released can outlive its store for that moment.
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(Self { _file: file }),
                Err(rustix::io::Errno::WOULDBLOCK) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(SqliteError::Locked {
                        path: path.to_owned(),
                        lock,
                    })
                }
                Err(errno) => {
                    return Err(SqliteError::Io {
                        op: "locking the store",
                        path: lock,
                        source: errno.into(),
                    })
                }
            }
        }
    }
}

/// A persevere store in one SQLite database: see the [crate documentation](crate).
///
/// ```
/// use persevere_core::{Command, CommandId, Completion, Store, StoredRecord, StreamCommand};
/// use persevere_sqlite::SqliteStore;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("actors.db");
/// let mut store = SqliteStore::create(&path)?;
/// let append = Command::Append {
///     id: CommandId(1),
///     expected_last: 0,
///     events: StoredRecord { seq: 1, bytes: b"hello".to_vec().into() }.into(),
///     snapshot: None,
/// };
/// let results = store.execute(vec![StreamCommand { stream: "counter-1".into(), command: append }]);
/// assert_eq!(results[0].1, Ok(Completion::Done));
/// drop(store);
///
/// let mut store = SqliteStore::open(&path)?;
/// let read = Command::ReadEvents { id: CommandId(2), from: 1, limit: 100 };
/// let results = store.execute(vec![StreamCommand { stream: "counter-1".into(), command: read }]);
/// let Ok(Completion::Events { records, head }) = &results[0].1 else { panic!() };
/// assert_eq!((records.len(), *head), (1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    options: SqliteOptions,
    conn: Option<Connection>,
    fence: Option<String>,
    /// The next global position (cached: this store is the only writer).
    next_position: i64,
    /// The counter row's value: positions below it are reserved by this store, so most
    /// transactions need not write the counter. After a crash or reopen the store starts at
    /// the reserved bound: unused reserved positions are skipped, never reused.
    reserved: i64,
    /// The write-ahead log kept allocated ahead of the writer (`None`: SQLite grows it).
    wal: Option<WalReserve>,
    _owner: Owner,
}

/// Positions reserved at a time (one counter write per this many events).
const RESERVE: i64 = 4_096;

/// Why a command stopped: an answer for that command alone, or an error that ends the batch.
enum Stop {
    Answer(StorageError),
    Fatal(rusqlite::Error),
}

impl From<rusqlite::Error> for Stop {
    fn from(error: rusqlite::Error) -> Self {
        Stop::Fatal(error)
    }
}

/// How far a failed batch got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Its transaction never began: nothing was written.
    NotBegun,
    /// Its transaction began: its writes may have landed.
    Begun,
}

/// A stream's id and head (the schema's view: appends do not write the streams table).
const STREAM: &str = "SELECT stream_id, head FROM persevere_stream_heads WHERE name = ?1";

fn to_i64(value: u64, what: &str) -> Result<i64, Stop> {
    i64::try_from(value).map_err(|_| {
        Stop::Answer(StorageError::Rejected(format!(
            "{what} {value} exceeds i64"
        )))
    })
}

impl SqliteStore {
    /// Opens the existing store at `path` ([`OpenMode::Open`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SqliteError> {
        Self::open_with(path, Self::options(OpenMode::Open))
    }

    /// Creates a new store at `path`; fails if the file exists ([`OpenMode::Create`]).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("actors.db");
    /// drop(persevere_sqlite::SqliteStore::create(&path)?);
    /// assert!(persevere_sqlite::SqliteStore::create(&path).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(path: impl AsRef<Path>) -> Result<Self, SqliteError> {
        Self::open_with(path, Self::options(OpenMode::Create))
    }

    /// Opens the store at `path`, creating it if the file does not exist.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, SqliteError> {
        Self::open_with(path, Self::options(OpenMode::OpenOrCreate))
    }

    /// Opens (or creates) the store a `sqlite://` URL names ([`parse_url`](crate::parse_url)),
    /// creating it if need be.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("sqlite://{}/actors.db", dir.path().display());
    /// let store = persevere_sqlite::SqliteStore::open_url(&url)?;
    /// assert!(store.path().ends_with("actors.db"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_url(url: &str) -> Result<Self, SqliteError> {
        Self::open_or_create(crate::parse_url(url)?)
    }

    fn options(mode: OpenMode) -> SqliteOptions {
        SqliteOptions {
            mode,
            ..SqliteOptions::default()
        }
    }

    /// Opens the store at `path` with `options`.
    ///
    /// ```
    /// use persevere_sqlite::{Durability, SqliteOptions, SqliteStore};
    /// let dir = tempfile::tempdir()?;
    /// let mut options = SqliteOptions::default();
    /// options.durability = Durability::ProcessCrashOnly;
    /// let store = SqliteStore::open_with(dir.path().join("fast.db"), options)?;
    /// assert_eq!(store.fenced(), None);
    /// # use persevere_core::Store;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, SqliteError> {
        let path = path.as_ref().to_owned();
        let exists = path.try_exists().map_err(|source| SqliteError::Io {
            op: "looking for the database",
            path: path.clone(),
            source,
        })?;
        match (options.mode, exists) {
            (OpenMode::Open, false) => return Err(SqliteError::NotFound { path }),
            (OpenMode::Create, true) => return Err(SqliteError::AlreadyExists { path }),
            _ => {}
        }
        let owner = Owner::acquire(&path)?;
        let (conn, next_position) = connect(&path, &options, exists)?;
        let wal = reserve(&conn, &path, &options)?;
        tracing::info!(path = %path.display(), durability = ?options.durability, "opened SQLite store");
        Ok(Self {
            path,
            options,
            conn: Some(conn),
            fence: None,
            next_position,
            reserved: next_position,
            wal,
            _owner: owner,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the store's connection (for diagnostics and queries of your own; writing
    /// through it bypasses the store's checks). `None` while the store is fenced and closed.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = persevere_sqlite::SqliteStore::create(dir.path().join("a.db"))?;
    /// let mode: Option<String> = store
    ///     .with_connection(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
    ///     .transpose()?;
    /// assert_eq!(mode.as_deref(), Some("wal"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_connection<R>(&self, f: impl FnOnce(&Connection) -> R) -> Option<R> {
        self.conn.as_ref().map(f)
    }

    fn fence(&mut self, reason: String) {
        tracing::error!(path = %self.path.display(), %reason, "SQLite store fenced: a commit failed, its outcome is unknown; reopen it");
        self.fence = Some(reason);
    }

    /// Runs the batch in one transaction; `Err` when the transaction did not commit.
    fn run(
        &mut self,
        batch: &[StreamCommand],
    ) -> Result<Vec<CommandResult>, (rusqlite::Error, Phase)> {
        let Some(conn) = self.conn.as_ref() else {
            return Err((rusqlite::Error::InvalidQuery, Phase::NotBegun));
        };
        let writes = batch.iter().any(|c| c.command.is_write());
        let start = self.next_position;
        // Commands SQLite refused part-way (a constraint a foreign row violates, a value too
        // big), and reads that met damage SQLite reports (a corrupt page, after which the
        // transaction no longer commits): the transaction is rolled back and the batch runs
        // again without them, each answered alone, so a refused command leaves nothing behind
        // and the others still commit. No savepoint per command on the common path.
        let mut answered: Vec<Option<StorageError>> = Vec::new();
        // The log's frames, read before the write lock is taken (a NOOP checkpoint reads the
        // count and does nothing else; it cannot run inside a transaction).
        let mut frames = match (&self.wal, writes) {
            (Some(_), true) => log_frames(conn, &self.path),
            _ => None,
        };
        let (results, position, mut outcome) = 'attempt: loop {
            conn.prepare_cached(if writes { "BEGIN IMMEDIATE" } else { "BEGIN" })
                .and_then(|mut s| s.execute([]))
                .map_err(|e| (e, Phase::NotBegun))?;
            if let (Some(wal), Some(frames)) = (&mut self.wal, frames.take()) {
                // Under the write lock: no other writer appends frames past the file's end.
                match wal.ensure(frames) {
                    Ok(Reserve::Grew { from, to }) => {
                        tracing::debug!(path = %self.path.display(), from, to, "grew the SQLite write-ahead log ahead of its writer");
                    }
                    Ok(Reserve::Enough | Reserve::NoLog) => {}
                    Err(error) => {
                        // Only speed is lost: SQLite extends the log itself.
                        tracing::warn!(path = %wal.path().display(), %error, "could not grow the SQLite write-ahead log ahead of its writer; SQLite extends it at each commit from now on");
                        self.wal = None;
                    }
                }
            }
            let mut position = start;
            let mut results = Vec::with_capacity(batch.len());
            for (i, StreamCommand { stream, command }) in batch.iter().enumerate() {
                if let Some(Some(answer)) = answered.get(i) {
                    results.push((command.id(), Err(answer.clone())));
                    continue;
                }
                let at = At {
                    path: &self.path,
                    stream,
                };
                let result = if command.is_write() {
                    write(conn, at, command, &mut position)
                } else {
                    read(conn, at, command)
                };
                match result {
                    Ok(completion) => results.push((command.id(), Ok(completion))),
                    Err(Stop::Answer(error)) => results.push((command.id(), Err(error))),
                    // A read writes nothing: damage it meets is its answer alone.
                    Err(Stop::Fatal(error)) if !command.is_write() && is_damage(&error) => {
                        tracing::warn!(path = %self.path.display(), stream = &**stream, %error, "a read met damage in the SQLite store; the rest of its batch goes on");
                        if !conn.is_autocommit() {
                            let _ = conn.execute_batch("ROLLBACK");
                        }
                        answered.resize(batch.len(), None);
                        answered[i] = Some(damage_met(at, &error));
                        continue 'attempt;
                    }
                    Err(Stop::Fatal(error))
                        if command.is_write()
                            && !conn.is_autocommit()
                            && is_command_local(&error) =>
                    {
                        tracing::warn!(path = %self.path.display(), stream = &**stream, %error, "SQLite refused one command; the rest of its batch goes on");
                        let _ = conn.execute_batch("ROLLBACK");
                        answered.resize(batch.len(), None);
                        answered[i] = Some(StorageError::Rejected(format!(
                            "SQLite refused the command on {}: {error}",
                            self.path.display()
                        )));
                        continue 'attempt;
                    }
                    Err(Stop::Fatal(error)) => break 'attempt (results, position, Err(error)),
                }
            }
            break (results, position, Ok(()));
        };
        let mut reserved = self.reserved;
        if outcome.is_ok() && position > reserved {
            reserved = position.saturating_add(RESERVE);
            outcome = conn
                .prepare_cached("UPDATE persevere_counters SET value = ?1 WHERE name = 'position'")
                .and_then(|mut s| s.execute([reserved]))
                .map(drop);
        }
        if outcome.is_ok() {
            outcome = conn
                .prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([]).map(drop));
        }
        match outcome {
            Ok(()) => {
                self.next_position = position;
                self.reserved = reserved;
                Ok(results)
            }
            Err(error) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                Err((error, Phase::Begun))
            }
        }
    }
}

/// Opens and configures a connection; returns it and the next global position.
fn connect(
    path: &Path,
    options: &SqliteOptions,
    exists: bool,
) -> Result<(Connection, i64), SqliteError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let flags = if exists {
        flags.difference(OpenFlags::SQLITE_OPEN_CREATE)
    } else {
        flags
    };
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| schema::opening(path, "opening the database", e))?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(|e| schema::opening(path, "setting the busy timeout", e))?;
    conn.set_prepared_statement_cache_capacity(options.statement_cache);
    let empty = match (exists, options.mode) {
        (false, _) | (true, OpenMode::OpenOrCreate) => Empty::Initialize,
        (true, _) => Empty::Refuse,
    };
    schema::identify(&conn, path, empty)?;
    let journal: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| schema::opening(path, "switching to WAL", e))?;
    if !journal.eq_ignore_ascii_case("wal") {
        return Err(SqliteError::Foreign {
            path: path.to_owned(),
            reason: format!("it cannot use write-ahead logging (journal mode {journal})"),
        });
    }
    let synchronous = match options.durability {
        Durability::Full => "FULL",
        Durability::ProcessCrashOnly => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA wal_autocheckpoint = {}; \
         PRAGMA cache_size = -{};",
        options.checkpoint_pages, options.cache_kib
    ))
    .map_err(|e| schema::opening(path, "setting synchronous", e))?;
    let pragma = match options.check {
        OpenCheck::Schema => None,
        OpenCheck::Quick => Some("PRAGMA quick_check"),
        OpenCheck::Integrity => Some("PRAGMA integrity_check"),
    };
    if let Some(pragma) = pragma {
        let verdict: String = conn
            .query_row(pragma, [], |row| row.get(0))
            .map_err(|e| schema::opening(path, "checking the database", e))?;
        if verdict != "ok" {
            return Err(SqliteError::Corrupt {
                path: path.to_owned(),
                reason: verdict,
            });
        }
    }
    schema::migrate(&conn, path)?;
    let next: i64 = conn
        .query_row(
            "SELECT value FROM persevere_counters WHERE name = 'position'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| schema::opening(path, "reading the position counter", e))?;
    Ok((conn, next))
}

/// The write-ahead log reserve of a store opened with `options` (`None` when its commits do
/// not sync or it was not asked for), the log's whole pass written now when it has a
/// checkpoint size.
fn reserve(
    conn: &Connection,
    path: &Path,
    options: &SqliteOptions,
) -> Result<Option<WalReserve>, SqliteError> {
    if options.wal_growth != WalGrowth::Reserved || options.durability != Durability::Full {
        return Ok(None);
    }
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .map_err(|e| schema::opening(path, "reading the page size", e))?;
    let page_size = u64::try_from(page_size).map_err(|_| SqliteError::Corrupt {
        path: path.to_owned(),
        reason: format!("its page size is the negative {page_size}"),
    })?;
    let mut wal = WalReserve::new(path, page_size);
    if options.checkpoint_pages == 0 {
        // No checkpoint size: the log's pass has no known length; it grows by chunks.
        return Ok(Some(wal));
    }
    // The log's whole first pass, written once now rather than by chunks on the commit path.
    let Some(frames) = log_frames(conn, path) else {
        return Ok(Some(wal));
    };
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::debug!(path = %path.display(), %error, "could not take the write lock to allocate the SQLite write-ahead log at open");
        return Ok(Some(wal));
    }
    // Under the write lock: no other writer appends frames past the file's end.
    let grown = wal.ensure_len(frames, wal.pass_len(options.checkpoint_pages));
    // Nothing was written to the database: the commit writes no frame.
    if conn.execute_batch("COMMIT").is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    match grown {
        Ok(Reserve::Grew { from, to }) => {
            tracing::debug!(path = %path.display(), from, to, "allocated the SQLite write-ahead log's first pass");
            Ok(Some(wal))
        }
        Ok(Reserve::Enough | Reserve::NoLog) => Ok(Some(wal)),
        Err(error) => {
            // Only speed is lost: SQLite extends the log itself.
            tracing::warn!(path = %wal.path().display(), %error, "could not allocate the SQLite write-ahead log ahead of its writer; SQLite extends it at each commit");
            Ok(None)
        }
    }
}

/// The frames in the write-ahead log, or `None` when SQLite does not say.
fn log_frames(conn: &Connection, path: &Path) -> Option<u64> {
    let frames = conn
        .prepare_cached("PRAGMA wal_checkpoint(NOOP)")
        .and_then(|mut s| s.query_row([], |row| row.get::<_, i64>(1)));
    match frames {
        Ok(frames) => u64::try_from(frames).ok(),
        Err(error) => {
            tracing::debug!(path = %path.display(), %error, "could not read the SQLite write-ahead log's frame count");
            None
        }
    }
}

/// Where a command runs: the database and the stream, named by the errors it answers.
#[derive(Clone, Copy)]
struct At<'a> {
    path: &'a Path,
    stream: &'a str,
}

/// What to do about an event or a stream row holding what the store never writes there.
const RESTORE: &str = "the row was changed outside the store: restore the database from a backup";

/// What to do about a snapshot row holding what the store never writes there.
const DROP_SNAPSHOT: &str = "the row was changed outside the store: delete that snapshot row \
     (the stream then recovers from an older snapshot or its events) or restore the database \
     from a backup";

impl At<'_> {
    /// `Damaged` at `seq`: `what` (a row and what is wrong with it), then what to do.
    fn damage(&self, seq: u64, what: &str, remedy: &str) -> StorageError {
        StorageError::Damaged {
            seq,
            reason: format!(
                "stream {:?} in {}: {what}; {remedy}",
                self.stream,
                self.path.display()
            ),
        }
    }

    /// [`damage`](Self::damage), as the answer of the command.
    fn damaged(&self, seq: u64, what: &str, remedy: &str) -> Stop {
        Stop::Answer(self.damage(seq, what, remedy))
    }
}

/// A column the store writes as an integer: its value, or what the row holds instead (shown).
fn integer(value: ValueRef<'_>) -> Result<i64, String> {
    match value {
        ValueRef::Integer(v) => Ok(v),
        other => Err(shown(other)),
    }
}

/// A value for an error message (a text cut to 32 bytes, a blob by its length).
fn shown(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(v) => format!("the integer {v}"),
        ValueRef::Real(v) => format!("the real number {v}"),
        ValueRef::Text(t) => format!(
            "the text {:?}",
            String::from_utf8_lossy(&t[..t.len().min(32)])
        ),
        ValueRef::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

/// The seq a damaged seq column is reported at: a real number sorts among the seqs, so it is
/// reported at the whole seq at or below it (a load before that seq passes the row); anything
/// else at `otherwise`.
fn seq_near(value: ValueRef<'_>, otherwise: u64) -> u64 {
    match value {
        // Saturating casts: a negative or NaN value is 0.
        ValueRef::Real(v) => v.floor() as u64,
        _ => otherwise,
    }
}

/// A stream's id and head. A head its rows cannot give is kept as the `Damaged` answer of
/// the commands that need it, so the others (a snapshot load) still run.
struct StreamRow {
    id: i64,
    head: Result<u64, StorageError>,
}

fn stream_row(conn: &Connection, at: At<'_>) -> Result<Option<StreamRow>, Stop> {
    let found = conn
        .prepare_cached(STREAM)?
        .query_row([at.stream], |row| {
            Ok((integer(row.get_ref(0)?), integer(row.get_ref(1)?)))
        })
        .optional()?;
    let Some((id, head)) = found else {
        return Ok(None);
    };
    let id = id.map_err(|found| {
        at.damaged(
            0,
            &format!(
                "the persevere_streams row holds {found} in its stream_id column, where the \
                 store writes an integer"
            ),
            RESTORE,
        )
    })?;
    let head = match head {
        Ok(head) => u64::try_from(head).map_err(|_| shown(ValueRef::Integer(head))),
        Err(found) => Err(found),
    };
    let head = head.map_err(|found| head_damage(conn, at, id, &found));
    Ok(Some(StreamRow { id, head }))
}

/// `Damaged` for a stream head that is `found`: the head is the larger of the stream row's
/// compacted head and its newest event's seq; the one to blame is looked up (on this rare
/// path only).
fn head_damage(conn: &Connection, at: At<'_>, id: i64, found: &str) -> StorageError {
    let compacted_ok: Option<bool> = conn
        .query_row(
            "SELECT typeof(compacted_head) = 'integer' AND compacted_head >= 0 \
             FROM persevere_streams WHERE stream_id = ?1",
            [id],
            |row| row.get(0),
        )
        .ok();
    let culprit = if compacted_ok == Some(true) {
        "the seq column of its newest persevere_events row"
    } else {
        "the compacted_head column of its persevere_streams row"
    };
    at.damage(
        0,
        &format!(
            "its head is {found}, read from {culprit}, where the store writes an integer from \
             0 up"
        ),
        RESTORE,
    )
}

/// A snapshot's seq as stored: the store writes 0 and up.
fn snapshot_seq(value: ValueRef<'_>, at: At<'_>) -> Result<u64, Stop> {
    if let ValueRef::Integer(v) = value {
        if let Ok(seq) = u64::try_from(v) {
            return Ok(seq);
        }
    }
    Err(at.damaged(
        seq_near(value, 0),
        &format!(
            "a persevere_snapshots row holds {} in its seq column, where the store writes an \
             integer from 0 up",
            shown(value)
        ),
        DROP_SNAPSHOT,
    ))
}

/// The seq of the event in `row` (at column 0, its global position at column
/// `position_column`), as stored: the store writes 1 and up. Damage is reported at `expected`,
/// the seq the row stands for, when it is not a number.
fn event_seq(
    row: &rusqlite::Row<'_>,
    position_column: usize,
    expected: u64,
    at: At<'_>,
) -> Result<u64, Stop> {
    let value = row.get_ref(0)?;
    if let ValueRef::Integer(v) = value {
        if let Some(seq) = u64::try_from(v).ok().filter(|&seq| seq >= 1) {
            return Ok(seq);
        }
    }
    let position = row.get_ref(position_column).map_or_else(
        |_| "(unreadable)".into(),
        |p| match p {
            ValueRef::Integer(p) => p.to_string(),
            other => shown(other),
        },
    );
    Err(at.damaged(
        seq_near(value, expected),
        &format!(
            "the persevere_events row at position {position} holds {} in its seq column, where \
             the store writes an integer from 1 up",
            shown(value)
        ),
        RESTORE,
    ))
}

fn blob<'a>(value: ValueRef<'a>, at: At<'_>, seq: u64, table: &str) -> Result<&'a [u8], Stop> {
    match value {
        ValueRef::Blob(bytes) => Ok(bytes),
        other => Err(at.damaged(
            seq,
            &format!(
                "the {table} row at seq {seq} holds {} in its payload column, where the store \
                 writes a blob",
                shown(other)
            ),
            if table == "persevere_snapshots" {
                DROP_SNAPSHOT
            } else {
                RESTORE
            },
        )),
    }
}

fn read(conn: &Connection, at: At<'_>, command: &Command) -> Result<Completion, Stop> {
    match command {
        Command::LoadSnapshot { before, .. } => {
            // The snapshot needs the stream's id, not its head.
            let Some(StreamRow { id, .. }) = stream_row(conn, at)? else {
                return Ok(Completion::Snapshot(None));
            };
            // The newest snapshot at or below this seq (none is below 0).
            let newest = match before {
                None => i64::MAX,
                Some(0) => return Ok(Completion::Snapshot(None)),
                Some(before) => i64::try_from(before - 1).unwrap_or(i64::MAX),
            };
            let mut statement = conn.prepare_cached(
                "SELECT seq, payload, crc32 FROM persevere_snapshots \
                 WHERE stream_id = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1",
            )?;
            let mut rows = statement.query((id, newest))?;
            let Some(row) = rows.next()? else {
                return Ok(Completion::Snapshot(None));
            };
            let seq = snapshot_seq(row.get_ref(0)?, at)?;
            let bytes = blob(row.get_ref(1)?, at, seq, "persevere_snapshots")?;
            let crc = integer(row.get_ref(2)?).map_err(|found| {
                at.damaged(
                    seq,
                    &format!(
                        "the persevere_snapshots row at seq {seq} holds {found} in its crc32 \
                         column, where the store writes an integer"
                    ),
                    DROP_SNAPSHOT,
                )
            })?;
            if i64::from(crc32fast::hash(bytes)) != crc {
                return Err(at.damaged(
                    seq,
                    &format!(
                        "the persevere_snapshots row at seq {seq} fails its CRC-32 (its payload \
                         or its crc32 column was changed)"
                    ),
                    DROP_SNAPSHOT,
                ));
            }
            Ok(Completion::Snapshot(Some(StoredRecord {
                seq,
                bytes: bytes.to_vec().into(),
            })))
        }
        Command::ReadEvents { from, limit, .. } => {
            let Some(StreamRow { id, head }) = stream_row(conn, at)? else {
                return Ok(Completion::Events {
                    records: Vec::new(),
                    head: 0,
                });
            };
            let head = head.map_err(Stop::Answer)?;
            let records = read_events(conn, at, id, *from, *limit)?;
            Ok(Completion::Events { records, head })
        }
        _ => Err(Stop::Answer(StorageError::Rejected(
            "not a read command".into(),
        ))),
    }
}

/// A page of events read in one query, their bytes copied into one shared buffer (one
/// allocation per page, not two per event).
#[derive(Default)]
struct EventPage {
    buf: Vec<u8>,
    /// Each event's seq and its range in `buf`.
    spans: Vec<(u64, usize, usize)>,
}

impl EventPage {
    /// Adds the event at `seq` in `row` (its payload at column 1).
    fn push(&mut self, row: &rusqlite::Row<'_>, seq: u64, at: At<'_>) -> Result<(), Stop> {
        let bytes = blob(row.get_ref(1)?, at, seq, "persevere_events")?;
        let start = self.buf.len();
        self.buf.extend_from_slice(bytes);
        self.spans.push((seq, start, self.buf.len()));
        Ok(())
    }

    fn into_records(self) -> Vec<StoredRecord> {
        let buf = SharedBytes::from(self.buf);
        self.spans
            .into_iter()
            .map(|(seq, start, end)| StoredRecord {
                seq,
                bytes: buf.slice(start..end),
            })
            .collect()
    }
}

/// Up to `limit` events of stream `id` from seq `from` on, in seq order.
///
/// Within a stream, seq order is position order (positions only grow and each append takes
/// the next ones). The first and last events wanted are found in the (stream, seq) index; when
/// at least half of the table rows between their positions are this stream's (a stream written
/// in long runs, or alone), the events are read by one range scan of the table in position
/// order. Otherwise (a stream interleaved with many others) they are read by one range scan of
/// the index, each row found by its position. The table scan's seqs are checked to be the
/// contiguous range the index promised; anything else falls back to the index scan.
///
/// Every seq read is checked to be one the store writes (an integer, 1 and up): a row changed
/// outside the store answers `Damaged`, naming it.
fn read_events(
    conn: &Connection,
    at: At<'_>,
    id: i64,
    from: u64,
    limit: usize,
) -> Result<Vec<StoredRecord>, Stop> {
    // No stored seq is past i64::MAX.
    let Ok(from) = i64::try_from(from) else {
        return Ok(Vec::new());
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let expected = u64::try_from(from.max(1)).unwrap_or(1);
    let first = conn
        .prepare_cached(
            "SELECT seq, position FROM persevere_events \
             WHERE stream_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT 1",
        )?
        .query_row((id, from), |row| {
            Ok((event_seq(row, 1, expected, at), row.get::<_, i64>(1)?))
        })
        .optional()?;
    let Some((first_seq, first_position)) = first else {
        return Ok(Vec::new());
    };
    let first_seq = first_seq?;
    let first_i64 = i64::try_from(first_seq).unwrap_or(i64::MAX);
    let (last_seq, last_position) = conn
        .prepare_cached(
            "SELECT seq, position FROM persevere_events \
             WHERE stream_id = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1",
        )?
        .query_row((id, first_i64.saturating_add(limit - 1)), |row| {
            Ok((event_seq(row, 1, first_seq, at), row.get::<_, i64>(1)?))
        })?;
    let last_seq = last_seq?;
    let wanted = last_seq.saturating_sub(first_seq).saturating_add(1);
    let span = u64::try_from(last_position.saturating_sub(first_position)).unwrap_or(u64::MAX);
    if span.saturating_add(1) <= wanted.saturating_mul(2) {
        // `+stream_id`: the filter must not make SQLite pick the (stream, seq) index and
        // sort; this is a scan of the table's position range.
        let mut statement = conn.prepare_cached(
            "SELECT seq, payload, position FROM persevere_events \
             WHERE position BETWEEN ?2 AND ?3 AND +stream_id = ?1 ORDER BY position",
        )?;
        let mut rows = statement.query((id, first_position, last_position))?;
        let mut page = EventPage::default();
        // The seq the next row must hold (`None`: past the last seq there can be).
        let mut next = Some(first_seq);
        let mut read_to = None;
        let mut contiguous = true;
        while let Some(row) = rows.next()? {
            let Some(want) = next else {
                contiguous = false;
                break;
            };
            let seq = event_seq(row, 2, want, at)?;
            if seq != want {
                contiguous = false;
                break;
            }
            page.push(row, seq, at)?;
            read_to = Some(seq);
            next = seq.checked_add(1);
        }
        if contiguous && read_to == Some(last_seq) {
            return Ok(page.into_records());
        }
        tracing::warn!(path = %at.path.display(), stream = at.stream, "the events of a stream are not in position order; reading them by seq");
    }
    let mut statement = conn.prepare_cached(
        "SELECT seq, payload, position FROM persevere_events \
         WHERE stream_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3",
    )?;
    let mut rows = statement.query((id, from, limit))?;
    let mut page = EventPage::default();
    let mut next = expected;
    while let Some(row) = rows.next()? {
        let seq = event_seq(row, 2, next, at)?;
        page.push(row, seq, at)?;
        next = seq.saturating_add(1);
    }
    Ok(page.into_records())
}

/// Whether an error met by a read is damage in the database: a value of a type the store never
/// writes there (a row changed outside the store), or a corrupt page.
fn is_damage(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
    ) || error.sqlite_error_code() == Some(ErrorCode::DatabaseCorrupt)
}

/// The `Damaged` answer of a read that met `error` ([`is_damage`]); which record is unknown.
fn damage_met(at: At<'_>, error: &rusqlite::Error) -> StorageError {
    StorageError::Damaged {
        seq: 0,
        reason: format!(
            "stream {:?} in {}: reading it met damage ({error}); `PRAGMA integrity_check` \
             shows where; restore the database from a backup",
            at.stream,
            at.path.display()
        ),
    }
}

/// Whether an error inside one command is that command's alone (it is rejected and the batch
/// runs again without it) or ends the batch.
fn is_command_local(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::TooBig | ErrorCode::ConstraintViolation | ErrorCode::TypeMismatch)
    )
}

fn write(
    conn: &Connection,
    at: At<'_>,
    command: &Command,
    position: &mut i64,
) -> Result<Completion, Stop> {
    // A stream whose head cannot be read is not written.
    let found = match stream_row(conn, at)? {
        None => None,
        Some(StreamRow { id, head }) => Some((id, head.map_err(Stop::Answer)?)),
    };
    // Checks before any write: a refused command writes nothing.
    match command {
        Command::Append {
            expected_last,
            events,
            snapshot,
            ..
        } => {
            let head = found.map_or(0, |(_, head)| head);
            if head != *expected_last {
                return Err(Stop::Answer(StorageError::Conflict {
                    expected: *expected_last,
                    actual: head,
                }));
            }
            let last = expected_last.saturating_add(events.len() as u64);
            let contiguous = events
                .iter()
                .zip(expected_last + 1..)
                .all(|(r, seq)| r.seq == seq);
            if events.is_empty() || !contiguous || snapshot.as_ref().is_some_and(|s| s.seq != last)
            {
                return Err(Stop::Answer(StorageError::Rejected(
                    "append must hold contiguous events after the head, and a snapshot at the last one"
                        .into(),
                )));
            }
            to_i64(last, "seq")?;
            // The counter read from the database may be anything: positions must not run out.
            let after = i64::try_from(events.len())
                .ok()
                .and_then(|n| position.checked_add(n));
            if after.is_none() {
                return Err(Stop::Answer(StorageError::Rejected(format!(
                    "the SQLite store {} has no global position left for {} events of stream \
                     {:?} (its next position is {position}): its position counter was changed \
                     outside the store; restore the database from a backup",
                    at.path.display(),
                    events.len(),
                    at.stream
                ))));
            }
        }
        Command::SaveSnapshot { snapshot, .. } => {
            to_i64(snapshot.seq, "seq")?;
        }
        Command::DeleteEvents { .. } | Command::DeleteSnapshots { .. } if found.is_none() => {
            return Ok(Completion::Done);
        }
        _ => {}
    }
    write_checked(conn, at.stream, found, command, position)?;
    Ok(Completion::Done)
}

fn write_checked(
    conn: &Connection,
    stream: &str,
    found: Option<(i64, u64)>,
    command: &Command,
    position: &mut i64,
) -> Result<(), rusqlite::Error> {
    let stream_id = |conn: &Connection| -> Result<i64, rusqlite::Error> {
        match found {
            Some((id, _)) => Ok(id),
            None => {
                conn.prepare_cached(
                    "INSERT INTO persevere_streams (name, compacted_head) VALUES (?1, 0)",
                )?
                .execute([stream])?;
                Ok(conn.last_insert_rowid())
            }
        }
    };
    let save_snapshot = |conn: &Connection, id: i64, snapshot: &StoredRecord| {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO persevere_snapshots (stream_id, seq, payload, crc32) \
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute((
            id,
            snapshot.seq as i64,
            &snapshot.bytes[..],
            i64::from(crc32fast::hash(&snapshot.bytes)),
        ))
        .map(drop)
    };
    match command {
        Command::Append {
            events, snapshot, ..
        } => {
            let id = stream_id(conn)?;
            let mut insert = conn.prepare_cached(
                "INSERT INTO persevere_events (stream_id, seq, position, payload) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for event in events {
                insert.execute((id, event.seq as i64, *position, &event.bytes[..]))?;
                *position += 1;
            }
            if let Some(snapshot) = snapshot {
                save_snapshot(conn, id, snapshot)?;
            }
        }
        Command::SaveSnapshot { snapshot, .. } => {
            let id = stream_id(conn)?;
            save_snapshot(conn, id, snapshot)?;
        }
        Command::DeleteEvents { up_to, .. } => {
            let id = stream_id(conn)?;
            // The head lives on in the streams table when its event is deleted.
            let head = found.map_or(0, |(_, head)| head);
            conn.prepare_cached(
                "UPDATE persevere_streams SET compacted_head = ?2 \
                 WHERE stream_id = ?1 AND compacted_head < ?2",
            )?
            .execute((id, i64::try_from(head).unwrap_or(i64::MAX)))?;
            conn.prepare_cached("DELETE FROM persevere_events WHERE stream_id = ?1 AND seq <= ?2")?
                .execute((id, i64::try_from(*up_to).unwrap_or(i64::MAX)))?;
        }
        Command::DeleteSnapshots { keep, .. } => {
            let id = stream_id(conn)?;
            let offset = i64::try_from(keep.max(&1) - 1).unwrap_or(i64::MAX);
            conn.prepare_cached(
                "DELETE FROM persevere_snapshots WHERE stream_id = ?1 AND seq < (\
                     SELECT seq FROM persevere_snapshots WHERE stream_id = ?1 \
                     ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
            )?
            .execute((id, offset))?;
        }
        _ => {}
    }
    Ok(())
}

impl Store for SqliteStore {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        if let Some(reason) = &self.fence {
            let reason = format!(
                "the SQLite store {} is fenced ({reason}); it must be reopened",
                self.path.display()
            );
            return batch
                .iter()
                .map(|c| (c.command.id(), Err(StorageError::Failed(reason.clone()))))
                .collect();
        }
        match self.run(&batch) {
            Ok(results) => results,
            Err((error, phase)) => {
                let writes = batch.iter().any(|c| c.command.is_write());
                let reason = format!(
                    "the transaction on {} did not commit: {error}",
                    self.path.display()
                );
                // A write batch whose transaction started may have landed (a failed COMMIT
                // can still be durable): fence. A read-only batch, or one that could not
                // begin, changed nothing.
                if writes && phase == Phase::Begun {
                    self.fence(reason.clone());
                } else {
                    tracing::warn!(path = %self.path.display(), %error, "SQLite batch failed");
                }
                batch
                    .iter()
                    .map(|c| (c.command.id(), Err(StorageError::Failed(reason.clone()))))
                    .collect()
            }
        }
    }

    fn fenced(&self) -> Option<String> {
        self.fence.clone()
    }

    fn reopen(&mut self) -> Result<(), StorageError> {
        self.conn = None;
        let mut options = self.options.clone();
        options.mode = OpenMode::Open;
        match connect(&self.path, &options, true) {
            Ok((conn, next)) => {
                self.wal = match reserve(&conn, &self.path, &options) {
                    Ok(wal) => wal,
                    Err(error) => return Err(StorageError::Failed(error.to_string())),
                };
                self.conn = Some(conn);
                self.next_position = next;
                self.reserved = next;
                self.fence = None;
                tracing::info!(path = %self.path.display(), "reopened SQLite store");
                Ok(())
            }
            Err(error) => Err(StorageError::Failed(error.to_string())),
        }
    }
}
