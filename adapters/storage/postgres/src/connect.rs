//! Where the store connects, and the connection itself: `tokio-postgres` over an `async-io`
//! socket, its connection future on a thread of its own.

use std::net::{TcpStream, ToSocketAddrs};
use std::str::FromStr;

use async_io::Async;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use crate::error::PostgresError;

/// The schema used when the URL names none.
pub const DEFAULT_SCHEMA: &str = "persevere";

/// Where a [`PostgresStore`](crate::PostgresStore) keeps its journal: a server, a database and
/// a schema.
///
/// ```
/// let config = persevere_postgres::PostgresConfig::from_url(
///     "postgres://app:secret@db.example.com:5432/orders?schema=journal",
/// )?;
/// assert_eq!(config.schema(), "journal");
/// assert!(!config.to_string().contains("secret"));
/// # Ok::<(), persevere_postgres::PostgresError>(())
/// ```
#[derive(Clone)]
pub struct PostgresConfig {
    pg: tokio_postgres::Config,
    schema: String,
    shown: String,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.shown)
            .field("schema", &self.schema)
            .finish()
    }
}

impl std::fmt::Display for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PostgresConfig {
    /// Parses a `postgres://` (or `postgresql://`) URL. The query parameter `schema` names the
    /// schema holding the journal's tables (default `persevere`); every other parameter is
    /// passed to `tokio-postgres` (`connect_timeout`, `application_name`, …).
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
        let mut rest = url::Url::parse(url).map_err(|e| invalid(&shown, e.to_string()))?;
        let pairs: Vec<(String, String)> = rest
            .query_pairs()
            .filter_map(|(k, v)| {
                if k == "schema" {
                    schema = v.into_owned();
                    None
                } else {
                    Some((k.into_owned(), v.into_owned()))
                }
            })
            .collect();
        if pairs.is_empty() {
            rest.set_query(None);
        } else {
            rest.query_pairs_mut().clear().extend_pairs(pairs);
        }
        let pg = tokio_postgres::Config::from_str(rest.as_str())
            .map_err(|e| invalid(&shown, e.to_string()))?;
        Self::new(pg, &schema).map(|mut config| {
            config.shown = shown;
            config
        })
    }

    /// A configuration from `tokio-postgres`'s own, and a schema name.
    pub fn new(pg: tokio_postgres::Config, schema: &str) -> Result<Self, PostgresError> {
        let valid = !schema.is_empty()
            && schema.len() <= 63
            && !schema.starts_with(|c: char| c.is_ascii_digit())
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(PostgresError::InvalidSchema(schema.to_owned()));
        }
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
        })
    }

    /// The same server and database, another schema.
    ///
    /// ```
    /// let config = persevere_postgres::PostgresConfig::from_url("postgres://127.0.0.1/test")?;
    /// assert_eq!(config.with_schema("tenant_7")?.schema(), "tenant_7");
    /// # Ok::<(), persevere_postgres::PostgresError>(())
    /// ```
    pub fn with_schema(&self, schema: &str) -> Result<Self, PostgresError> {
        let mut config = Self::new(self.pg.clone(), schema)?;
        config.shown = self.shown.clone();
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

    /// Connects a client: a TCP socket registered with `async-io`'s reactor, the protocol
    /// handshake with `connect_raw`, and the connection future driven on a thread of its own.
    /// A client connected the way the store connects, for administration (dropping a test
    /// schema, reading the global order). Await its futures on any executor, or block on them.
    ///
    /// ```no_run
    /// let config = persevere_postgres::PostgresConfig::from_url("postgres://postgres@127.0.0.1/test")?;
    /// let client = config.connect()?;
    /// futures::executor::block_on(client.batch_execute("SELECT 1")).expect("a query");
    /// # Ok::<(), persevere_postgres::PostgresError>(())
    /// ```
    pub fn connect(&self) -> Result<Client, PostgresError> {
        crate::block::block_on(self.connect_async())
    }

    async fn connect_async(&self) -> Result<Client, PostgresError> {
        let addresses = address(&self.pg);
        let mut last = None;
        let mut socket = None;
        for shown in &addresses {
            match connect_tcp(shown).await {
                Ok(s) => {
                    socket = Some(s);
                    break;
                }
                Err(e) => last = Some((shown.clone(), e)),
            }
        }
        let socket = match (socket, last) {
            (Some(socket), _) => socket,
            (None, Some((address, source))) => {
                return Err(PostgresError::Unreachable { address, source })
            }
            (None, None) => {
                return Err(PostgresError::InvalidUrl {
                    url: self.shown.clone(),
                    reason: "no TCP host (Unix sockets are not supported)".into(),
                })
            }
        };
        let (client, connection) = self
            .pg
            .connect_raw(socket.compat(), NoTls)
            .await
            .map_err(|e| self.classify(e))?;
        let spawned = std::thread::Builder::new()
            .name("persevere-postgres".into())
            .spawn(move || {
                if let Err(e) = futures::executor::block_on(connection) {
                    tracing::warn!(error = %e, "PostgreSQL connection closed with an error");
                }
            });
        if let Err(e) = spawned {
            return Err(PostgresError::Unreachable {
                address: addresses.join(","),
                source: e,
            });
        }
        Ok(client)
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

async fn connect_tcp(address: &str) -> std::io::Result<Async<TcpStream>> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for addr in address.to_socket_addrs()? {
        match Async::<TcpStream>::connect(addr).await {
            Ok(socket) => {
                let _ = socket.get_ref().set_nodelay(true);
                return Ok(socket);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}
