//! `file://` URLs naming a store directory.

use std::path::PathBuf;

use crate::{FileError, FileOptions, Recovery};

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

/// The store options a `file://` URL's query gives: `strict` (or `strict=true`) refuses to
/// open a store that needs repair instead of setting anything aside ([`Recovery::Strict`]);
/// `strict=false` is the default, [`Recovery::Repair`]. Any other option is
/// [`FileError::Url`], naming it.
///
/// ```
/// use persevere_file::{url_options, Recovery};
/// assert_eq!(url_options("file:///data?strict").unwrap().recovery, Recovery::Strict);
/// assert_eq!(url_options("file:///data").unwrap().recovery, Recovery::Repair);
/// assert!(url_options("file:///data?fast").is_err());
/// ```
pub fn url_options(url: &str) -> Result<FileOptions, FileError> {
    let mut options = FileOptions::default();
    let query = url.split('#').next().unwrap_or_default();
    let query = query.split_once('?').map_or("", |(_, query)| query);
    for option in query.split('&').filter(|option| !option.is_empty()) {
        match option {
            "strict" | "strict=true" => options.recovery = Recovery::Strict,
            "strict=false" => options.recovery = Recovery::Repair,
            other => {
                return Err(FileError::Url(format!(
                    "unknown file store option {other:?} in {url} (known: strict)"
                )))
            }
        }
    }
    Ok(options)
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

    #[test]
    fn queries_carry_the_strict_option() {
        let strict = |l: &str| url_options(l).map(|o| o.recovery == Recovery::Strict).ok();
        assert_eq!(strict("file:///a"), Some(false));
        assert_eq!(strict("file:///a?strict"), Some(true));
        assert_eq!(strict("file:///a?strict=true#x"), Some(true));
        assert_eq!(strict("file:///a?strict=false"), Some(false));
        assert_eq!(strict("file:///a?fast"), None);
    }
}
