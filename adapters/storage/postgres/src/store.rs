//! The [`Store`] implementation: one write connection, one transaction per group commit.

use std::collections::HashSet;
use std::net::{Shutdown, TcpStream};

use crate::block::{block_on_until, deadline_after};
use persevere_core::{
    Command, CommandId, CommandResult, Completion, StorageError, Store, StoredRecord, StreamCommand,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient, Row, Statement};

use crate::connect::PostgresConfig;
use crate::error::PostgresError;
use crate::schema;

/// How many times a group commit the server rolled back (a deadlock between two writers'
/// batches, a serialization failure) is retried before its writes fail.
const RETRIES: u32 = 8;

/// Builds a record from bytes read back: the one place that knows [`StoredRecord`]'s layout.
fn record(seq: u64, bytes: Vec<u8>) -> StoredRecord {
    StoredRecord {
        seq,
        bytes: bytes.into(),
    }
}

/// The bytes of a record, as the statements bind them.
fn bytes_of(record: &StoredRecord) -> &[u8] {
    &record.bytes
}

/// A journal in a PostgreSQL schema, shared by every process that opens the same schema:
/// each stream's head row is its fence, so two writers of one stream never interleave — the
/// one whose expected head is stale gets [`StorageError::Conflict`].
///
/// `execute` blocks on the client's futures; the connection runs on a thread of its own, so
/// the store works from any executor's blocking pool (or a plain thread), and can be dropped
/// anywhere. No call waits on the server longer than the configured
/// [`request_timeout`](PostgresConfig::request_timeout): a batch cut short fails with
/// [`StorageError::Failed`] (its outcome is unknown) and fences the store until
/// [`reopen`](Store::reopen), as a lost connection does.
///
/// ```no_run
/// use persevere_core::{Command, CommandId, Completion, Store, StreamCommand};
/// use persevere_postgres::PostgresStore;
///
/// let mut store = PostgresStore::open("postgres://postgres@127.0.0.1:5432/test?schema=doc")?;
/// let read = StreamCommand {
///     stream: "counter-1".into(),
///     command: Command::ReadEvents { id: CommandId(1), from: 1, limit: 100 },
/// };
/// let results = store.execute(vec![read]);
/// assert!(matches!(results[0].1, Ok(Completion::Events { .. })));
/// # Ok::<(), persevere_postgres::PostgresError>(())
/// ```
pub struct PostgresStore {
    config: PostgresConfig,
    conn: Option<Conn>,
    fenced: Option<String>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("config", &self.config)
            .field("fenced", &self.fenced)
            .finish()
    }
}

struct Conn {
    client: Client,
    st: Statements,
    /// A second handle to the client's socket, to cut the connection off when it is fenced.
    socket: TcpStream,
    /// The server's address, for messages.
    address: String,
}

impl Conn {
    /// Ends the connection now, even while a request waits on a silent server: the connection
    /// thread sees the socket closed and exits, so nothing is left waiting.
    fn cut(self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

struct Statements {
    append: Statement,
    heads: Statement,
    read: Statement,
    load_snapshot: Statement,
    save_snapshot: Statement,
    delete_events: Statement,
    delete_snapshots: Statement,
    global: Statement,
}

/// A place in the journal's global order: the writing transaction's id, then the row's
/// identity. Positions only grow; [`PostgresStore::read_global`] reads after one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GlobalPosition {
    /// The id of the transaction that wrote the event (`pg_current_xact_id()`).
    pub tx: i64,
    /// The event row's identity within the table.
    pub pos: i64,
}

/// An event read in the global order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalEvent {
    /// Where it is in the global order.
    pub position: GlobalPosition,
    /// Its stream.
    pub stream: String,
    /// The event record.
    pub record: StoredRecord,
}

impl Statements {
    async fn prepare(client: &Client, schema: &str) -> Result<Self, tokio_postgres::Error> {
        let s = format!("\"{schema}\"");
        let append = format!(
            "WITH input AS (
                 SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[]) AS i(stream, expected, last)
             ),
             created AS (
                 INSERT INTO {s}.streams (stream, head)
                 SELECT stream, last FROM input WHERE expected = 0 ORDER BY stream
                 ON CONFLICT (stream) DO NOTHING RETURNING stream
             ),
             moved AS (
                 UPDATE {s}.streams t SET head = i.last FROM input i
                 WHERE t.stream = i.stream AND i.expected <> 0 AND t.head = i.expected
                 RETURNING t.stream
             ),
             won AS (SELECT stream FROM created UNION ALL SELECT stream FROM moved),
             ev AS (
                 INSERT INTO {s}.events (stream, seq, payload)
                 SELECT e.stream, e.seq, e.payload
                 FROM unnest($4::text[], $5::int8[], $6::bytea[]) AS e(stream, seq, payload)
                 WHERE e.stream IN (SELECT stream FROM won)
             ),
             sn AS (
                 INSERT INTO {s}.snapshots (stream, seq, payload)
                 SELECT n.stream, n.seq, n.payload
                 FROM unnest($7::text[], $8::int8[], $9::bytea[]) AS n(stream, seq, payload)
                 WHERE n.stream IN (SELECT stream FROM won)
                 ON CONFLICT (stream, seq) DO UPDATE SET payload = excluded.payload
             )
             SELECT stream FROM won"
        );
        Ok(Self {
            global: client
                .prepare(&format!(
                    "SELECT (tx::text)::int8, pos, stream, seq, payload FROM {s}.events
                     WHERE (tx, pos) > (($1::int8)::text::xid8, $2::int8)
                       AND tx < pg_snapshot_xmin(pg_current_snapshot())
                     ORDER BY tx, pos LIMIT $3"
                ))
                .await?,
            append: client.prepare(&append).await?,
            heads: client
                .prepare(&format!(
                    "SELECT stream, head FROM {s}.streams WHERE stream = ANY($1::text[])"
                ))
                .await?,
            read: client
                .prepare(&format!(
                    "SELECT h.head, e.seq, e.payload
                     FROM (SELECT coalesce((SELECT head FROM {s}.streams WHERE stream = $1), 0) AS head) h
                     LEFT JOIN LATERAL (
                         SELECT seq, payload FROM {s}.events
                         WHERE stream = $1 AND seq >= $2 ORDER BY seq LIMIT $3
                     ) e ON true"
                ))
                .await?,
            load_snapshot: client
                .prepare(&format!(
                    "SELECT seq, payload FROM {s}.snapshots WHERE stream = $1 AND seq < $2
                     ORDER BY seq DESC LIMIT 1"
                ))
                .await?,
            save_snapshot: client
                .prepare(&format!(
                    "INSERT INTO {s}.snapshots (stream, seq, payload) VALUES ($1, $2, $3)
                     ON CONFLICT (stream, seq) DO UPDATE SET payload = excluded.payload"
                ))
                .await?,
            delete_events: client
                .prepare(&format!(
                    "DELETE FROM {s}.events WHERE stream = $1 AND seq <= $2"
                ))
                .await?,
            delete_snapshots: client
                .prepare(&format!(
                    "DELETE FROM {s}.snapshots WHERE stream = $1 AND seq < (
                         SELECT seq FROM {s}.snapshots WHERE stream = $1
                         ORDER BY seq DESC OFFSET $2 LIMIT 1)"
                ))
                .await?,
        })
    }
}

/// Why a batch did not complete.
enum BatchError {
    /// The server rolled the transaction back (deadlock, serialization): nothing was written,
    /// run it again.
    Retry(String),
    /// The connection broke: the outcome of the batch's writes is unknown.
    Connection(String),
    /// A statement failed and the transaction was rolled back: nothing was written.
    Statement(String),
}

fn classify(e: &tokio_postgres::Error) -> BatchError {
    let message = e.to_string();
    if e.is_closed() {
        return BatchError::Connection(message);
    }
    match e.code() {
        Some(code)
            if *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE =>
        {
            BatchError::Retry(message)
        }
        // Connection exceptions, and operator intervention (terminated, shut down).
        Some(code) if code.code().starts_with("08") || code.code().starts_with("57") => {
            BatchError::Connection(message)
        }
        Some(_) => BatchError::Statement(message),
        None => BatchError::Connection(message),
    }
}

fn seq_param(seq: u64) -> Result<i64, StorageError> {
    i64::try_from(seq)
        .map_err(|_| StorageError::Rejected(format!("seq {seq} is beyond PostgreSQL's bigint")))
}

fn seq_from(row: &Row, index: usize) -> Result<u64, StorageError> {
    let seq: i64 = row
        .try_get(index)
        .map_err(|e| StorageError::Failed(format!("unreadable seq column: {e}")))?;
    u64::try_from(seq).map_err(|_| StorageError::Damaged {
        seq: 0,
        reason: format!("negative seq {seq} stored"),
    })
}

fn payload_from(row: &Row, index: usize, seq: u64) -> Result<Vec<u8>, StorageError> {
    row.try_get(index).map_err(|e| StorageError::Damaged {
        seq,
        reason: format!("unreadable payload: {e}"),
    })
}

/// Checks an append before it reaches the server: events contiguous after `expected_last`, a
/// snapshot only at the last one, every seq a bigint.
fn validate(
    expected_last: u64,
    events: &[StoredRecord],
    snapshot: Option<&StoredRecord>,
) -> Result<u64, StorageError> {
    // Every seq must fit a bigint: checked first, so the arithmetic below cannot overflow.
    seq_param(expected_last.saturating_add(events.len() as u64))?;
    let contiguous = events
        .iter()
        .zip(expected_last + 1..)
        .all(|(r, seq)| r.seq == seq);
    let last = expected_last + events.len() as u64;
    if events.is_empty() || !contiguous || snapshot.is_some_and(|s| s.seq != last) {
        return Err(StorageError::Rejected(
            "append must hold contiguous events after the head, and a snapshot at the last one"
                .into(),
        ));
    }
    Ok(last)
}

type Slot = Option<Result<Completion, StorageError>>;

impl PostgresStore {
    /// Opens the journal the URL names (`postgres://user[:password]@host[:port]/database`,
    /// optionally `?schema=name`): connects, runs the schema's migrations and prepares its
    /// statements.
    pub fn open(url: &str) -> Result<Self, PostgresError> {
        Self::open_config(PostgresConfig::from_url(url)?)
    }

    /// Opens the journal `config` names.
    pub fn open_config(config: PostgresConfig) -> Result<Self, PostgresError> {
        let conn = Self::connect(&config)?;
        tracing::debug!(url = %config, schema = config.schema(), "opened the PostgreSQL journal");
        Ok(Self {
            config,
            conn: Some(conn),
            fenced: None,
        })
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    fn connect(config: &PostgresConfig) -> Result<Conn, PostgresError> {
        let connected = config.connect_socket()?;
        let (mut client, socket, address) = (connected.client, connected.socket, connected.address);
        let deadline = deadline_after(config.request_timeout());
        let setup = async {
            client
                .batch_execute("SET synchronous_commit = on")
                .await
                .map_err(|source| PostgresError::Database {
                    doing: "configuring the session",
                    source,
                })?;
            schema::migrate(&mut client, config.schema()).await?;
            let st = Statements::prepare(&client, config.schema())
                .await
                .map_err(|source| PostgresError::Database {
                    doing: "preparing statements",
                    source,
                })?;
            Ok(st)
        };
        match block_on_until(setup, deadline) {
            Some(Ok(st)) => Ok(Conn {
                client,
                st,
                socket,
                address,
            }),
            Some(Err(e)) => Err(e),
            None => {
                let _ = socket.shutdown(Shutdown::Both);
                Err(PostgresError::TimedOut {
                    address,
                    doing: "the session set-up at open (migrations, prepared statements)",
                    after: config.request_timeout(),
                    parameter: "request_timeout",
                })
            }
        }
    }

    /// Reads up to `limit` events after `after` in the journal's global order, across every
    /// stream. Only transactions older than every one still running are read
    /// (`pg_snapshot_xmin`), so a reader that goes on from the last position it saw never skips
    /// an event whose transaction committed late. Start from `GlobalPosition::default()`.
    ///
    /// ```no_run
    /// use persevere_postgres::{GlobalPosition, PostgresStore};
    ///
    /// let mut store = PostgresStore::open("postgres://postgres@127.0.0.1:5432/test?schema=doc")?;
    /// let mut after = GlobalPosition::default();
    /// for event in store.read_global(after, 1000).expect("a read") {
    ///     println!("{} #{}", event.stream, event.record.seq);
    ///     after = event.position;
    /// }
    /// # Ok::<(), persevere_postgres::PostgresError>(())
    /// ```
    pub fn read_global(
        &mut self,
        after: GlobalPosition,
        limit: usize,
    ) -> Result<Vec<GlobalEvent>, StorageError> {
        if let Some(reason) = &self.fenced {
            return Err(StorageError::Failed(format!("fenced: {reason}")));
        }
        let Some(conn) = self.conn.as_ref() else {
            return Err(StorageError::Failed("no connection".into()));
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let deadline = deadline_after(self.config.request_timeout());
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&after.tx, &after.pos, &limit];
        let rows = match block_on_until(conn.client.query(&conn.st.global, &params), deadline) {
            Some(Ok(rows)) => rows,
            Some(Err(e)) => {
                let message = e.to_string();
                if let BatchError::Connection(reason) = classify(&e) {
                    self.fence(reason);
                }
                return Err(StorageError::Failed(message));
            }
            None => {
                let reason = timed_out(&self.config, &conn.address, "the read was given up");
                self.fence(reason.clone());
                return Err(StorageError::Failed(reason));
            }
        };
        rows.iter()
            .map(|row| {
                let failed =
                    |e: tokio_postgres::Error| StorageError::Failed(format!("unreadable row: {e}"));
                let seq = seq_from(row, 3)?;
                Ok(GlobalEvent {
                    position: GlobalPosition {
                        tx: row.try_get(0).map_err(failed)?,
                        pos: row.try_get(1).map_err(failed)?,
                    },
                    stream: row.try_get(2).map_err(failed)?,
                    record: record(seq, payload_from(row, 4, seq)?),
                })
            })
            .collect()
    }

    fn fence(&mut self, reason: String) {
        tracing::warn!(schema = self.config.schema(), %reason, "PostgreSQL journal fenced until it reopens: the connection broke or the server did not answer");
        if let Some(conn) = self.conn.take() {
            conn.cut();
        }
        self.fenced = Some(reason);
    }
}

/// Why a call was given up: no answer within the request timeout. `outcome` says what that
/// means for the call.
fn timed_out(config: &PostgresConfig, address: &str, outcome: &str) -> String {
    format!(
        "no answer from the PostgreSQL server at {address} (schema {}) within {:?} \
         (request_timeout): {outcome}; the store is fenced: reopen it, and check the server and \
         the network to it (raise request_timeout in the URL if the server is only slow)",
        config.schema(),
        config.request_timeout()
    )
}

impl Conn {
    async fn run(&mut self, batch: &[StreamCommand]) -> Result<Vec<Slot>, BatchError> {
        let mut results: Vec<Slot> = vec![None; batch.len()];
        if !batch.iter().any(|c| c.command.is_write()) {
            // Reads only: pipelined on the connection, no transaction.
            let st = &self.st;
            let client = &self.client;
            let reads = batch
                .iter()
                .map(|c| read(client, st, &c.stream, &c.command));
            for (slot, result) in results
                .iter_mut()
                .zip(futures::future::join_all(reads).await)
            {
                *slot = Some(result?);
            }
            return Ok(results);
        }
        let tx = self.client.transaction().await.map_err(|e| classify(&e))?;
        let mut i = 0;
        while i < batch.len() {
            if matches!(batch[i].command, Command::Append { .. }) {
                let mut seen = HashSet::new();
                let mut j = i;
                while j < batch.len()
                    && matches!(batch[j].command, Command::Append { .. })
                    && seen.insert(&*batch[j].stream)
                {
                    j += 1;
                }
                appends(&tx, &self.st, &batch[i..j], &mut results[i..j]).await?;
                i = j;
            } else {
                results[i] = Some(read(&tx, &self.st, &batch[i].stream, &batch[i].command).await?);
                i += 1;
            }
        }
        tx.commit().await.map_err(|e| classify(&e))?;
        Ok(results)
    }
}

/// One command other than an append. `Ok(Err(_))` is the command's own failure.
async fn read<C: GenericClient>(
    client: &C,
    st: &Statements,
    stream: &str,
    command: &Command,
) -> Result<Result<Completion, StorageError>, BatchError> {
    let q = |e: tokio_postgres::Error| classify(&e);
    Ok(match command {
        Command::ReadEvents { from, limit, .. } => {
            let from = i64::try_from(*from).unwrap_or(i64::MAX);
            let limit = i64::try_from(*limit).unwrap_or(i64::MAX);
            let rows = client
                .query(&st.read, &[&stream, &from, &limit])
                .await
                .map_err(q)?;
            events_from(&rows)
        }
        Command::LoadSnapshot { before, .. } => {
            let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
            let row = client
                .query_opt(&st.load_snapshot, &[&stream, &before])
                .await
                .map_err(q)?;
            match row {
                None => Ok(Completion::Snapshot(None)),
                Some(row) => seq_from(&row, 0).and_then(|seq| {
                    Ok(Completion::Snapshot(Some(record(
                        seq,
                        payload_from(&row, 1, seq)?,
                    ))))
                }),
            }
        }
        Command::SaveSnapshot { snapshot, .. } => match seq_param(snapshot.seq) {
            Err(e) => Err(e),
            Ok(seq) => {
                client
                    .execute(&st.save_snapshot, &[&stream, &seq, &bytes_of(snapshot)])
                    .await
                    .map_err(q)?;
                Ok(Completion::Done)
            }
        },
        Command::DeleteEvents { up_to, .. } => {
            let up_to = i64::try_from(*up_to).unwrap_or(i64::MAX);
            client
                .execute(&st.delete_events, &[&stream, &up_to])
                .await
                .map_err(q)?;
            Ok(Completion::Done)
        }
        Command::DeleteSnapshots { keep, .. } => {
            let offset = i64::try_from(keep.max(&1) - 1).unwrap_or(i64::MAX);
            client
                .execute(&st.delete_snapshots, &[&stream, &offset])
                .await
                .map_err(q)?;
            Ok(Completion::Done)
        }
        Command::Append { .. } => Err(StorageError::Rejected(
            "an append reached the single-command path".into(),
        )),
        other => Err(StorageError::Rejected(format!(
            "command {other:?} is not supported by this backend"
        ))),
    })
}

fn events_from(rows: &[Row]) -> Result<Completion, StorageError> {
    let mut head = 0;
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        head = seq_from(row, 0)?;
        let seq: Option<i64> = row
            .try_get(1)
            .map_err(|e| StorageError::Failed(format!("unreadable seq column: {e}")))?;
        if seq.is_some() {
            let seq = seq_from(row, 1)?;
            records.push(record(seq, payload_from(row, 2, seq)?));
        }
    }
    Ok(Completion::Events { records, head })
}

/// A run of appends to distinct streams, as one statement: each append whose expected head is
/// stale is answered with `Conflict`; the others are written.
async fn appends<C: GenericClient>(
    tx: &C,
    st: &Statements,
    batch: &[StreamCommand],
    results: &mut [Slot],
) -> Result<(), BatchError> {
    let mut streams: Vec<&str> = Vec::new();
    let mut expected: Vec<i64> = Vec::new();
    let mut lasts: Vec<i64> = Vec::new();
    let (mut ev_stream, mut ev_seq, mut ev_payload) = (Vec::new(), Vec::new(), Vec::new());
    let (mut sn_stream, mut sn_seq, mut sn_payload) = (Vec::new(), Vec::new(), Vec::new());
    let mut pending = Vec::new();
    for (index, c) in batch.iter().enumerate() {
        let Command::Append {
            expected_last,
            events,
            snapshot,
            ..
        } = &c.command
        else {
            continue;
        };
        match validate(*expected_last, events, snapshot.as_ref()) {
            Err(e) => results[index] = Some(Err(e)),
            Ok(last) => {
                // Both fit a bigint: validate checked the last seq.
                streams.push(&*c.stream);
                expected.push(*expected_last as i64);
                lasts.push(last as i64);
                for e in events {
                    ev_stream.push(&*c.stream);
                    ev_seq.push(e.seq as i64);
                    ev_payload.push(bytes_of(e));
                }
                if let Some(s) = snapshot {
                    sn_stream.push(&*c.stream);
                    sn_seq.push(s.seq as i64);
                    sn_payload.push(bytes_of(s));
                }
                pending.push((index, *expected_last));
            }
        }
    }
    if streams.is_empty() {
        return Ok(());
    }
    let rows = tx
        .query(
            &st.append,
            &[
                &streams,
                &expected,
                &lasts,
                &ev_stream,
                &ev_seq,
                &ev_payload,
                &sn_stream,
                &sn_seq,
                &sn_payload,
            ],
        )
        .await
        .map_err(|e| classify(&e))?;
    let won: HashSet<String> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
    let lost: Vec<&str> = streams
        .iter()
        .copied()
        .filter(|s| !won.contains(*s))
        .collect();
    let mut heads = std::collections::HashMap::new();
    if !lost.is_empty() {
        for row in tx
            .query(&st.heads, &[&lost])
            .await
            .map_err(|e| classify(&e))?
        {
            if let (Ok(stream), Ok(head)) = (row.try_get::<_, String>(0), row.try_get::<_, i64>(1))
            {
                heads.insert(stream, head);
            }
        }
    }
    for ((index, expected), stream) in pending.into_iter().zip(streams) {
        results[index] = Some(if won.contains(stream) {
            Ok(Completion::Done)
        } else {
            let actual = heads
                .get(stream)
                .map_or(0, |h| u64::try_from(*h).unwrap_or(0));
            Err(StorageError::Conflict { expected, actual })
        });
    }
    Ok(())
}

impl Store for PostgresStore {
    fn execute(&mut self, batch: Vec<StreamCommand>) -> Vec<CommandResult> {
        let ids: Vec<CommandId> = batch.iter().map(|c| c.command.id()).collect();
        let all = |error: StorageError| ids.iter().map(|id| (*id, Err(error.clone()))).collect();
        if let Some(reason) = &self.fenced {
            return all(StorageError::Failed(format!("fenced: {reason}")));
        }
        let Some(conn) = self.conn.as_mut() else {
            return all(StorageError::Failed("no connection".into()));
        };
        // One bound for the whole call, retries included: the caller never waits longer.
        let deadline = deadline_after(self.config.request_timeout());
        let mut attempt = 0;
        loop {
            let outcome = block_on_until(conn.run(&batch), deadline).unwrap_or_else(|| {
                // Cut short: whatever was sent may have been committed.
                Err(BatchError::Connection(timed_out(
                    &self.config,
                    &conn.address,
                    "the outcome of the batch's writes is unknown (the journal re-reads its tail)",
                )))
            });
            match outcome {
                Ok(results) => {
                    return ids
                        .iter()
                        .zip(results)
                        .map(|(id, r)| {
                            (
                                *id,
                                r.unwrap_or_else(|| {
                                    Err(StorageError::Failed("the command was not run".into()))
                                }),
                            )
                        })
                        .collect()
                }
                Err(BatchError::Retry(reason)) if attempt < RETRIES => {
                    attempt += 1;
                    tracing::debug!(%reason, attempt, "group commit rolled back by the server, retrying");
                }
                Err(BatchError::Retry(reason)) => {
                    return all(StorageError::Rejected(format!(
                        "rolled back {attempt} times by the server: {reason}"
                    )))
                }
                Err(BatchError::Connection(reason)) => {
                    self.fence(reason.clone());
                    return all(StorageError::Failed(reason));
                }
                Err(BatchError::Statement(reason)) if batch.len() > 1 => {
                    // Nothing was written: find the failing command by running each alone.
                    tracing::debug!(%reason, "a statement failed, running the batch's commands one by one");
                    return batch
                        .into_iter()
                        .flat_map(|c| self.execute(vec![c]))
                        .collect();
                }
                Err(BatchError::Statement(reason)) => {
                    let error = if batch.iter().any(|c| c.command.is_write()) {
                        StorageError::Rejected(reason)
                    } else {
                        StorageError::Failed(reason)
                    };
                    return all(error);
                }
            }
        }
    }

    fn fenced(&self) -> Option<String> {
        self.fenced.clone()
    }

    fn reopen(&mut self) -> Result<(), StorageError> {
        match Self::connect(&self.config) {
            Ok(conn) => {
                tracing::info!(
                    schema = self.config.schema(),
                    "PostgreSQL journal reconnected"
                );
                self.conn = Some(conn);
                self.fenced = None;
                Ok(())
            }
            Err(e) => Err(StorageError::Failed(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(seqs: &[u64]) -> Vec<StoredRecord> {
        seqs.iter().map(|&seq| record(seq, vec![1])).collect()
    }

    #[test]
    fn appends_are_checked_before_they_reach_the_server() {
        assert_eq!(validate(2, &records(&[3, 4]), None), Ok(4));
        assert_eq!(validate(2, &records(&[3, 4]), records(&[4]).first()), Ok(4));
        let rejected = |r: Result<u64, StorageError>| matches!(r, Err(StorageError::Rejected(_)));
        assert!(rejected(validate(2, &[], None)));
        assert!(rejected(validate(2, &records(&[3, 5]), None)));
        assert!(rejected(validate(2, &records(&[3]), records(&[2]).first())));
        assert!(rejected(validate(u64::MAX, &records(&[0]), None)));
        assert!(rejected(validate(
            i64::MAX as u64,
            &records(&[1 << 63]),
            None
        )));
    }
}
