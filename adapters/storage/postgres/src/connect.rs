//! Where the store connects, and the connection itself: `tokio-postgres` over an `async-io`
//! socket, its connection future on a thread of its own.

use std::net::{TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use async_io::Async;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use crate::block::{block_on_until, deadline_after};
use crate::error::PostgresError;

/// The schema used when the URL names none.
pub const DEFAULT_SCHEMA: &str = "persevere";

/// How long one connection attempt to one address may take, the TCP connect and the startup
/// handshake together, unless the URL's `connect_timeout` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the store waits on the server for one call (a group commit with its retries, a
/// global read, the session set-up at open) before it gives up, unless the URL's
/// `request_timeout` says otherwise. A group commit cut short is an unknown outcome: its writes
/// fail with `StorageError::Failed` and the store is fenced until it reopens.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Idle time before the first TCP keepalive probe, unless the URL's `keepalives_idle` says
/// otherwise.
pub const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(15);

/// Time between TCP keepalive probes, unless the URL's `keepalives_interval` says otherwise.
pub const DEFAULT_KEEPALIVES_INTERVAL: Duration = Duration::from_secs(5);

/// Unanswered TCP keepalive probes before the connection is dropped, unless the URL's
/// `keepalives_retries` says otherwise.
pub const DEFAULT_KEEPALIVES_RETRIES: u32 = 3;

/// How long sent data may stay unacknowledged before the kernel drops the connection
/// (`TCP_USER_TIMEOUT`, Linux only), unless the URL's `tcp_user_timeout` says otherwise.
pub const DEFAULT_TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// `tokio-postgres`'s own default keepalive idle time, which stands for "not set".
const TOKIO_POSTGRES_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// Where a [`PostgresStore`](crate::PostgresStore) keeps its journal: a server, a database and
/// a schema, and how long it waits on them (see [the crate docs](crate#timeouts)).
///
/// ```
/// use std::time::Duration;
///
/// let config = persevere_postgres::PostgresConfig::from_url(
///     "postgres://app:secret@db.example.com:5432/orders?schema=journal&request_timeout=5",
/// )?;
/// assert_eq!(config.schema(), "journal");
/// assert!(!config.to_string().contains("secret"));
/// assert_eq!(config.request_timeout(), Duration::from_secs(5));
/// assert_eq!(config.pg().get_connect_timeout(), Some(&Duration::from_secs(10)));
/// assert_eq!(config.pg().get_keepalives_idle(), Duration::from_secs(15));
/// # Ok::<(), persevere_postgres::PostgresError>(())
/// ```
#[derive(Clone)]
pub struct PostgresConfig {
    pg: tokio_postgres::Config,
    schema: String,
    shown: String,
    request_timeout: Duration,
}

/// A client connected the way the store connects, with what the store needs to cut it off.
pub(crate) struct Connected {
    pub(crate) client: Client,
    /// The socket under the client (a second handle to it): shutting it down ends the
    /// connection thread even while a request waits on a silent server.
    pub(crate) socket: TcpStream,
    /// The address it connected to.
    pub(crate) address: String,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.shown)
            .field("schema", &self.schema)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl std::fmt::Display for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PostgresConfig {
    /// Parses a `postgres://` (or `postgresql://`) URL. Two query parameters are this crate's:
    /// `schema` names the schema holding the journal's tables (default `persevere`) and
    /// `request_timeout` bounds, in seconds, each wait on the server (default
    /// [`DEFAULT_REQUEST_TIMEOUT`]). Every other parameter goes to `tokio-postgres`
    /// (`application_name`, `options`, …); the store applies `connect_timeout`, `keepalives`,
    /// `keepalives_idle`, `keepalives_interval`, `keepalives_retries` and `tcp_user_timeout`
    /// itself, with the defaults listed in [the crate docs](crate#timeouts) when a parameter is
    /// absent or 0.
    pub fn from_url(url: &str) -> Result<Self, PostgresError> {
        let invalid = |shown: &str, reason: String| PostgresError::InvalidUrl {
            url: shown.to_owned(),
            reason,
        };
        let mut parsed =
            url::Url::parse(url).map_err(|e| invalid("(unparsable)", e.to_string()))?;
        if parsed.password().is_some() {
            let _ = parsed.set_password(Some("***"));
        }
        let shown = parsed.to_string();
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(invalid(
                &shown,
                format!("the scheme is {:?}, not postgres", parsed.scheme()),
            ));
        }
        let mut schema = DEFAULT_SCHEMA.to_owned();
        let mut request_timeout = None;
        let mut rest = url::Url::parse(url).map_err(|e| invalid(&shown, e.to_string()))?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in rest.query_pairs() {
            match &*k {
                "schema" => schema = v.into_owned(),
                "request_timeout" => request_timeout = Some(v.into_owned()),
                _ => pairs.push((k.into_owned(), v.into_owned())),
            }
        }
        let request_timeout = match request_timeout {
            None => DEFAULT_REQUEST_TIMEOUT,
            Some(v) => match v.parse::<i64>() {
                Ok(seconds) => seconds_or(seconds, DEFAULT_REQUEST_TIMEOUT),
                Err(_) => {
                    return Err(invalid(
                        &shown,
                        format!("request_timeout={v:?} is not a whole number of seconds"),
                    ))
                }
            },
        };
        // A keepalive idle time the URL names is kept, even if it is tokio-postgres's default.
        let idle_named = pairs
            .iter()
            .any(|(k, v)| k == "keepalives_idle" && v.parse::<i64>().is_ok_and(|n| n > 0));
        if pairs.is_empty() {
            rest.set_query(None);
        } else {
            rest.query_pairs_mut().clear().extend_pairs(pairs);
        }
        let mut pg = tokio_postgres::Config::from_str(rest.as_str())
            .map_err(|e| invalid(&shown, e.to_string()))?;
        check_schema(&schema)?;
        fill_defaults(&mut pg, !idle_named);
        Ok(Self {
            pg,
            schema,
            shown,
            request_timeout,
        })
    }

    /// A configuration from `tokio-postgres`'s own, and a schema name. Timeouts `pg` leaves
    /// unset (`connect_timeout`, `tcp_user_timeout`, the keepalive interval and retries, and a
    /// keepalive idle time left at tokio-postgres's default of 2 hours) take this crate's
    /// defaults; the request timeout is [`DEFAULT_REQUEST_TIMEOUT`] until
    /// [`with_request_timeout`](Self::with_request_timeout).
    pub fn new(mut pg: tokio_postgres::Config, schema: &str) -> Result<Self, PostgresError> {
        check_schema(schema)?;
        let idle_unset = pg.get_keepalives_idle() == TOKIO_POSTGRES_KEEPALIVES_IDLE;
        fill_defaults(&mut pg, idle_unset);
        let shown = format!(
            "postgres://{}@{}/{}",
            pg.get_user().unwrap_or(""),
            address(&pg).join(","),
            pg.get_dbname().unwrap_or("")
        );
        Ok(Self {
            pg,
            schema: schema.to_owned(),
            shown,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        })
    }

    /// The same configuration with another bound on each wait on the server (zero stands for
    /// [`DEFAULT_REQUEST_TIMEOUT`]: the store never waits forever).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let config = persevere_postgres::PostgresConfig::from_url("postgres://127.0.0.1/test")?;
    /// let config = config.with_request_timeout(Duration::from_millis(1500));
    /// assert_eq!(config.request_timeout(), Duration::from_millis(1500));
    /// # Ok::<(), persevere_postgres::PostgresError>(())
    /// ```
    pub fn with_request_timeout(&self, timeout: Duration) -> Self {
        let mut config = self.clone();
        config.request_timeout = if timeout.is_zero() {
            DEFAULT_REQUEST_TIMEOUT
        } else {
            timeout
        };
        config
    }

    /// How long the store waits on the server for one call before it fails the call (and, if
    /// the call could have written, fences itself).
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// How long one connection attempt to one address may take (TCP connect and startup
    /// handshake).
    pub fn connect_timeout(&self) -> Duration {
        self.pg
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }

    /// The same server and database, another schema.
    ///
    /// ```
    /// let config = persevere_postgres::PostgresConfig::from_url("postgres://127.0.0.1/test")?;
    /// assert_eq!(config.with_schema("tenant_7")?.schema(), "tenant_7");
    /// # Ok::<(), persevere_postgres::PostgresError>(())
    /// ```
    pub fn with_schema(&self, schema: &str) -> Result<Self, PostgresError> {
        check_schema(schema)?;
        let mut config = self.clone();
        config.schema = schema.to_owned();
        Ok(config)
    }

    /// The schema holding the journal's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The `tokio-postgres` configuration.
    pub fn pg(&self) -> &tokio_postgres::Config {
        &self.pg
    }

    /// Connects a client: a TCP socket registered with `async-io`'s reactor (with TCP
    /// keepalive and, on Linux, `TCP_USER_TIMEOUT` set), the protocol handshake with
    /// `connect_raw`, and the connection future driven on a thread of its own. Each address
    /// gets [`connect_timeout`](Self::connect_timeout) for the TCP connect and the handshake
    /// together; a server that accepts and never answers is
    /// [`PostgresError::TimedOut`].
    ///
    /// A client connected the way the store connects, for administration (dropping a test
    /// schema, reading the global order). Await its futures on any executor, or block on them;
    /// the queries you run on it are not bounded by the request timeout.
    ///
    /// ```no_run
    /// let config = persevere_postgres::PostgresConfig::from_url("postgres://postgres@127.0.0.1/test")?;
    /// let client = config.connect()?;
    /// futures::executor::block_on(client.batch_execute("SELECT 1")).expect("a query");
    /// # Ok::<(), persevere_postgres::PostgresError>(())
    /// ```
    pub fn connect(&self) -> Result<Client, PostgresError> {
        self.connect_socket().map(|c| c.client)
    }

    /// Connects to the first address that answers, as [`connect`](Self::connect) describes.
    pub(crate) fn connect_socket(&self) -> Result<Connected, PostgresError> {
        let mut last = None;
        for shown in address(&self.pg) {
            match self.connect_one(&shown) {
                Ok(connected) => return Ok(connected),
                // The next host may answer; a refusal by the server (credentials, database)
                // would be the same everywhere.
                Err(e @ (PostgresError::Unreachable { .. } | PostgresError::TimedOut { .. })) => {
                    last = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| PostgresError::InvalidUrl {
            url: self.shown.clone(),
            reason: "no TCP host (Unix sockets are not supported)".into(),
        }))
    }

    fn connect_one(&self, shown: &str) -> Result<Connected, PostgresError> {
        let timeout = self.connect_timeout();
        let deadline = deadline_after(timeout);
        let unreachable = |source| PostgresError::Unreachable {
            address: shown.to_owned(),
            source,
        };
        let timed_out = |doing| PostgresError::TimedOut {
            address: shown.to_owned(),
            doing,
            after: timeout,
            parameter: "connect_timeout",
        };
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        let mut socket = None;
        for addr in shown.to_socket_addrs().map_err(unreachable)? {
            match block_on_until(Async::<TcpStream>::connect(addr), deadline) {
                None => return Err(timed_out("the TCP connect")),
                Some(Ok(s)) => {
                    socket = Some(s);
                    break;
                }
                Some(Err(e)) => last = e,
            }
        }
        let Some(socket) = socket else {
            return Err(unreachable(last));
        };
        let configured = configure(socket.get_ref(), &self.pg)
            .and_then(|()| socket.get_ref().try_clone())
            .map_err(|source| PostgresError::Socket {
                address: shown.to_owned(),
                source,
            });
        let handle = configured?;
        let (client, connection) =
            match block_on_until(self.pg.connect_raw(socket.compat(), NoTls), deadline) {
                None => return Err(timed_out("the startup handshake")),
                Some(Err(e)) => return Err(self.classify(e)),
                Some(Ok(connected)) => connected,
            };
        std::thread::Builder::new()
            .name("persevere-postgres".into())
            .spawn(move || {
                if let Err(e) = futures::executor::block_on(connection) {
                    tracing::warn!(error = %e, "PostgreSQL connection closed with an error");
                }
            })
            .map_err(unreachable)?;
        Ok(Connected {
            client,
            socket: handle,
            address: shown.to_owned(),
        })
    }

    fn classify(&self, e: tokio_postgres::Error) -> PostgresError {
        let code = e.code().cloned();
        match code {
            Some(c)
                if c == SqlState::INVALID_PASSWORD
                    || c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
            {
                PostgresError::Authentication {
                    user: self.pg.get_user().unwrap_or("").to_owned(),
                    message: e
                        .as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
                }
            }
            Some(c) if c == SqlState::INVALID_CATALOG_NAME => PostgresError::NoDatabase {
                database: self.pg.get_dbname().unwrap_or("").to_owned(),
            },
            _ => PostgresError::Database {
                doing: "connecting",
                source: e,
            },
        }
    }
}

fn address(pg: &tokio_postgres::Config) -> Vec<String> {
    let ports = pg.get_ports();
    pg.get_hosts()
        .iter()
        .enumerate()
        .filter_map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(h) if h.contains(':') => Some(format!("[{h}]:{port}")),
                Host::Tcp(h) => Some(format!("{h}:{port}")),
                #[allow(unreachable_patterns)]
                _ => None,
            }
        })
        .collect()
}

/// Checks a schema name: a plain lower-case SQL identifier.
fn check_schema(schema: &str) -> Result<(), PostgresError> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && !schema.starts_with(|c: char| c.is_ascii_digit())
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(PostgresError::InvalidSchema(schema.to_owned()))
    }
}

/// A whole number of seconds from the URL, or `default` when it is 0 or negative.
fn seconds_or(seconds: i64, default: Duration) -> Duration {
    u64::try_from(seconds)
        .ok()
        .filter(|s| *s > 0)
        .map_or(default, Duration::from_secs)
}

/// Gives every timeout `pg` leaves unset this crate's default, so no wait is unbounded.
fn fill_defaults(pg: &mut tokio_postgres::Config, idle_unset: bool) {
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if pg.get_tcp_user_timeout().is_none() {
        pg.tcp_user_timeout(DEFAULT_TCP_USER_TIMEOUT);
    }
    if idle_unset {
        pg.keepalives_idle(DEFAULT_KEEPALIVES_IDLE);
    }
    if pg.get_keepalives_interval().is_none() {
        pg.keepalives_interval(DEFAULT_KEEPALIVES_INTERVAL);
    }
    if pg.get_keepalives_retries().is_none() {
        pg.keepalives_retries(DEFAULT_KEEPALIVES_RETRIES);
    }
}

/// Sets the socket options `tokio-postgres` sets only on sockets it opens itself: no Nagle
/// delay, TCP keepalive (idle, interval, retries) unless `keepalives=0`, and, on Linux,
/// `TCP_USER_TIMEOUT`. A dead peer then breaks the connection instead of leaving it silent.
fn configure(stream: &TcpStream, pg: &tokio_postgres::Config) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let socket = socket2::SockRef::from(stream);
    if pg.get_keepalives() {
        #[allow(unused_mut)]
        let mut keepalive = socket2::TcpKeepalive::new().with_time(pg.get_keepalives_idle());
        #[cfg(not(any(
            target_os = "aix",
            target_os = "redox",
            target_os = "solaris",
            target_os = "openbsd"
        )))]
        if let Some(interval) = pg.get_keepalives_interval() {
            keepalive = keepalive.with_interval(interval);
        }
        #[cfg(not(any(
            target_os = "aix",
            target_os = "redox",
            target_os = "solaris",
            target_os = "windows",
            target_os = "openbsd"
        )))]
        if let Some(retries) = pg.get_keepalives_retries() {
            keepalive = keepalive.with_retries(retries);
        }
        socket.set_tcp_keepalive(&keepalive)?;
    }
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    if let Some(timeout) = pg.get_tcp_user_timeout() {
        socket.set_tcp_user_timeout(Some(*timeout))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_absent_or_zero_in_the_url_take_the_defaults() {
        let config = PostgresConfig::from_url(
            "postgres://u@127.0.0.1/db?connect_timeout=0&tcp_user_timeout=0&request_timeout=0",
        )
        .expect("a config");
        assert_eq!(config.connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(config.request_timeout(), DEFAULT_REQUEST_TIMEOUT);
        let pg = config.pg();
        assert_eq!(pg.get_tcp_user_timeout(), Some(&DEFAULT_TCP_USER_TIMEOUT));
        assert!(pg.get_keepalives());
        assert_eq!(pg.get_keepalives_idle(), DEFAULT_KEEPALIVES_IDLE);
        assert_eq!(
            pg.get_keepalives_interval(),
            Some(DEFAULT_KEEPALIVES_INTERVAL)
        );
        assert_eq!(
            pg.get_keepalives_retries(),
            Some(DEFAULT_KEEPALIVES_RETRIES)
        );
    }

    #[test]
    fn timeouts_named_in_the_url_are_kept_through_every_copy() {
        let config = PostgresConfig::from_url(
            "postgres://u@127.0.0.1/db?connect_timeout=3&request_timeout=4&keepalives_idle=20\
             &keepalives_interval=6&keepalives_retries=7&tcp_user_timeout=8&keepalives=0",
        )
        .expect("a config");
        // tokio-postgres's own default, named in the URL, is kept too.
        let named = PostgresConfig::from_url("postgres://u@127.0.0.1/db?keepalives_idle=7200")
            .expect("a config");
        assert_eq!(named.pg().get_keepalives_idle(), Duration::from_secs(7200));
        for config in [
            config.clone(),
            config.with_schema("other").expect("a schema"),
            PostgresConfig::new(config.pg().clone(), "other").expect("a config"),
        ] {
            let pg = config.pg();
            assert_eq!(config.connect_timeout(), Duration::from_secs(3));
            assert_eq!(pg.get_keepalives_idle(), Duration::from_secs(20));
            assert_eq!(pg.get_keepalives_interval(), Some(Duration::from_secs(6)));
            assert_eq!(pg.get_keepalives_retries(), Some(7));
            assert_eq!(pg.get_tcp_user_timeout(), Some(&Duration::from_secs(8)));
            assert!(!pg.get_keepalives());
        }
        assert_eq!(config.request_timeout(), Duration::from_secs(4));
        assert_eq!(
            config
                .with_schema("other")
                .map(|c| c.request_timeout())
                .ok(),
            Some(Duration::from_secs(4))
        );
    }

    #[test]
    fn a_request_timeout_that_is_not_a_number_is_refused() {
        match PostgresConfig::from_url("postgres://u:pw@127.0.0.1/db?request_timeout=soon") {
            Err(e @ PostgresError::InvalidUrl { .. }) => {
                let shown = e.to_string();
                assert!(
                    shown.contains("request_timeout") && !shown.contains("pw"),
                    "{shown}"
                );
            }
            other => panic!("expected InvalidUrl, got {other:?}"),
        }
    }

    #[test]
    fn the_socket_gets_keepalive_and_the_user_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
        let stream =
            TcpStream::connect(listener.local_addr().expect("an address")).expect("a connection");
        let config = PostgresConfig::from_url(
            "postgres://u@127.0.0.1/db?keepalives_idle=21&keepalives_interval=4&keepalives_retries=5&tcp_user_timeout=9",
        )
        .expect("a config");
        configure(&stream, config.pg()).expect("the options are set");
        let socket = socket2::SockRef::from(&stream);
        assert!(socket.keepalive().expect("SO_KEEPALIVE"));
        assert!(stream.nodelay().expect("TCP_NODELAY"));
        #[cfg(target_os = "linux")]
        {
            assert_eq!(
                socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"),
                Duration::from_secs(21)
            );
            assert_eq!(
                socket.tcp_keepalive_interval().expect("TCP_KEEPINTVL"),
                Duration::from_secs(4)
            );
            assert_eq!(socket.tcp_keepalive_retries().expect("TCP_KEEPCNT"), 5);
            assert_eq!(
                socket.tcp_user_timeout().expect("TCP_USER_TIMEOUT"),
                Some(Duration::from_secs(9))
            );
        }
    }
}
