//! Why a PostgreSQL store could not be opened.

use thiserror::Error;

/// Why [`PostgresStore::open`](crate::PostgresStore::open) (or a reopen) failed: each variant
/// names what is wrong and what to do about it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The URL could not be parsed as a PostgreSQL connection string.
    #[error("invalid PostgreSQL URL {url}: {reason} (expected postgres://user[:password]@host[:port]/database[?schema=name])")]
    InvalidUrl {
        /// The URL, without its password.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The schema name is not a plain lower-case SQL identifier.
    #[error("invalid schema name {0:?}: use 1 to 63 characters of a-z, 0-9 and _, not starting with a digit")]
    InvalidSchema(String),
    /// No server answered at the address.
    #[error("cannot reach the PostgreSQL server at {address}: {source} (is the server running and listening on TCP there?)")]
    Unreachable {
        /// The host and port tried.
        address: String,
        /// The network error.
        #[source]
        source: std::io::Error,
    },
    /// The server (or something in between) took a TCP connection and then did not answer
    /// in time: a host or network gone silent, a stopped server, a proxy that holds the line.
    #[error("the PostgreSQL server at {address} did not answer within {after:?} during {doing}: check that the server is up and the network to it works (if it is only slow, raise {parameter} in the URL)")]
    TimedOut {
        /// The host and port.
        address: String,
        /// What the store was waiting for.
        doing: &'static str,
        /// How long it waited.
        after: std::time::Duration,
        /// The URL parameter that sets the limit.
        parameter: &'static str,
    },
    /// The TCP socket refused an option the store sets (keepalive, `TCP_USER_TIMEOUT`).
    #[error("cannot configure the TCP socket to the PostgreSQL server at {address}: {source} (set keepalives=0 or other keepalive or tcp_user_timeout values in the URL if this platform refuses them)")]
    Socket {
        /// The host and port.
        address: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The server refused the credentials (a wrong password, an unknown role, a `pg_hba.conf`
    /// rule).
    #[error("the PostgreSQL server refused user {user:?}: {message} (check the user and password in the URL, and pg_hba.conf)")]
    Authentication {
        /// The user named in the URL.
        user: String,
        /// The server's message.
        message: String,
    },
    /// The database named in the URL does not exist.
    #[error("the PostgreSQL database {database:?} does not exist (create it, or name another in the URL)")]
    NoDatabase {
        /// The database named in the URL.
        database: String,
    },
    /// The schema was written by a newer version of this crate.
    #[error("schema {schema:?} is at version {found}, newer than the {supported} this persevere-postgres knows: upgrade persevere-postgres (never downgrade a shared journal)")]
    NewerSchema {
        /// The schema.
        schema: String,
        /// The version found in the database.
        found: i32,
        /// The newest version this crate knows.
        supported: i32,
    },
    /// A table this crate would use exists but was not created by it.
    #[error("table {schema}.{table} exists but is not a persevere table: choose another schema (?schema=name in the URL) or move the table away; nothing was changed")]
    NotOurs {
        /// The schema.
        schema: String,
        /// The table found.
        table: String,
    },
    /// Any other error from the server or the connection.
    #[error("PostgreSQL error while {doing}: {source}")]
    Database {
        /// What the store was doing.
        doing: &'static str,
        /// The client's error.
        #[source]
        source: tokio_postgres::Error,
    },
}
