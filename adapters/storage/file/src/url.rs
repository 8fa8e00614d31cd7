//! `file://` URLs naming a store directory.

use std::path::PathBuf;

use crate::FileError;

/// The directory a `file://` URL names.
///
/// Accepts `file:///absolute/path`, `file://localhost/absolute/path` and `file://relative/path`
/// (no host: the rest is a path relative to the working directory); `%XX` escapes are decoded,
/// a query or fragment is ignored, and the root `/` alone is refused — the rules of
/// [`persevere_core::location::url_path`], shared by every storage adapter.
///
/// ```
/// use std::path::PathBuf;
/// assert_eq!(persevere_file::parse_url("file:///var/lib/app").unwrap(), PathBuf::from("/var/lib/app"));
/// assert_eq!(persevere_file::parse_url("file://data/my%20store").unwrap(), PathBuf::from("data/my store"));
/// assert!(persevere_file::parse_url("sqlite://x").is_err());
/// ```
pub fn parse_url(url: &str) -> Result<PathBuf, FileError> {
    persevere_core::location::url_path(url, "file")
        .map(PathBuf::from)
        .map_err(|e| FileError::Url(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_directories() {
        assert_eq!(
            parse_url("file://localhost/a/b").ok(),
            Some(PathBuf::from("/a/b"))
        );
        assert_eq!(parse_url("file:///a?x=1").ok(), Some(PathBuf::from("/a")));
        assert!(parse_url("file://").is_err());
        assert!(parse_url("file:///a%2").is_err());
        assert!(parse_url("/a").is_err());
    }
}
