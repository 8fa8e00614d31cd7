//! `sqlite://` URLs naming a database file.

use std::path::PathBuf;

use crate::SqliteError;

/// The database file a `sqlite://` URL names.
///
/// Accepts `sqlite:///absolute/path.db`, `sqlite://localhost/absolute/path.db` and
/// `sqlite://relative/path.db` (no host: the rest is a path relative to the working
/// directory); `%XX` escapes are decoded, a query or fragment is ignored — the rules of
/// [`persevere_core::location::url_path`], shared by every storage adapter.
///
/// ```
/// use std::path::PathBuf;
/// use persevere_sqlite::parse_url;
/// assert_eq!(parse_url("sqlite:///var/lib/app/actors.db")?, PathBuf::from("/var/lib/app/actors.db"));
/// assert_eq!(parse_url("sqlite://data/my%20actors.db")?, PathBuf::from("data/my actors.db"));
/// assert!(parse_url("file:///var/lib/app").is_err());
/// # Ok::<(), persevere_sqlite::SqliteError>(())
/// ```
pub fn parse_url(url: &str) -> Result<PathBuf, SqliteError> {
    persevere_core::location::url_path(url, "sqlite")
        .map(PathBuf::from)
        .map_err(|e| SqliteError::Url(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_database_files() {
        assert_eq!(
            parse_url("sqlite://localhost/a/b.db").ok(),
            Some(PathBuf::from("/a/b.db"))
        );
        assert_eq!(
            parse_url("sqlite:///a/b.db?x=1#y").ok(),
            Some(PathBuf::from("/a/b.db"))
        );
        assert!(parse_url("sqlite://").is_err());
        assert!(parse_url("sqlite:///").is_err());
        assert!(parse_url("sqlite:///a%2").is_err());
    }
}
