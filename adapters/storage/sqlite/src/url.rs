//! `sqlite://` URLs naming a database file.

use std::path::PathBuf;

use crate::SqliteError;

/// The database file a `sqlite://` URL names.
///
/// Accepts `sqlite:///absolute/path.db`, `sqlite://localhost/absolute/path.db` and
/// `sqlite://relative/path.db` (no host: the rest is a path relative to the working
/// directory); `%XX` escapes are decoded, a query or fragment is ignored.
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
    let rest = url
        .strip_prefix("sqlite://")
        .ok_or_else(|| SqliteError::Url(format!("{url:?} does not start with sqlite://")))?;
    let rest = match rest.strip_prefix("localhost/") {
        Some(path) => &rest[rest.len() - path.len() - 1..],
        None => rest,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    if rest.is_empty() || rest == "/" {
        return Err(SqliteError::Url(format!("{url:?} names no database file")));
    }
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| SqliteError::Url(format!("{url:?} has a bad %-escape")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(out)
        .map_err(|_| SqliteError::Url(format!("{url:?} does not decode to UTF-8")))?;
    Ok(PathBuf::from(path))
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
