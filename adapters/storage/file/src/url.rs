//! `file://` URLs naming a store directory.

use std::path::PathBuf;

use crate::FileError;

/// The directory a `file://` URL names.
///
/// Accepts `file:///absolute/path`, `file://localhost/absolute/path` and `file://relative/path`
/// (no host: the rest is a path relative to the working directory); `%XX` escapes are decoded.
///
/// ```
/// use std::path::PathBuf;
/// assert_eq!(persevere_file::parse_url("file:///var/lib/app").unwrap(), PathBuf::from("/var/lib/app"));
/// assert_eq!(persevere_file::parse_url("file://data/my%20store").unwrap(), PathBuf::from("data/my store"));
/// assert!(persevere_file::parse_url("sqlite://x").is_err());
/// ```
pub fn parse_url(url: &str) -> Result<PathBuf, FileError> {
    let rest = url
        .strip_prefix("file://")
        .ok_or_else(|| FileError::Url(format!("{url:?} does not start with file://")))?;
    let rest = match rest.strip_prefix("localhost/") {
        Some(path) => &rest[rest.len() - path.len() - 1..],
        None => rest,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    if rest.is_empty() {
        return Err(FileError::Url(format!("{url:?} names no directory")));
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
                .ok_or_else(|| FileError::Url(format!("{url:?} has a bad %-escape")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(out)
        .map_err(|_| FileError::Url(format!("{url:?} does not decode to UTF-8")))?;
    Ok(PathBuf::from(path))
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
