//! URLs naming a store's location (`file:///var/lib/app`, `sqlite://data/actors.db`): the
//! text rules every storage adapter shares, with no file system access.

/// Why a URL names no location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL does not start with `SCHEME://`.
    #[error("{url:?} does not start with {scheme}://")]
    WrongScheme {
        /// The URL as given.
        url: String,
        /// The scheme expected.
        scheme: String,
    },
    /// Nothing (or only `/`) follows the scheme and host.
    #[error("{url:?} names no path")]
    NoPath {
        /// The URL as given.
        url: String,
    },
    /// A `%` is not followed by two hex digits.
    #[error("{url:?} has a bad %-escape")]
    BadEscape {
        /// The URL as given.
        url: String,
    },
    /// A `%`-escape hides a path separator (`%2F`, `%5C`) or a NUL (`%00`): decoded, it would
    /// name another place than the URL's segments show.
    #[error("{url:?} hides a path separator or NUL in a %-escape (%2F, %5C, %00); write a separator as a plain /")]
    HiddenSeparator {
        /// The URL as given.
        url: String,
    },
    /// The decoded path is not UTF-8.
    #[error("{url:?} does not decode to UTF-8")]
    NotUtf8 {
        /// The URL as given.
        url: String,
    },
}

/// The path a `SCHEME://` URL names.
///
/// Accepts `SCHEME:///absolute/path`, `SCHEME://localhost/absolute/path` and
/// `SCHEME://relative/path` (no host: the rest is a path relative to the working directory);
/// `%XX` escapes are decoded, a query or fragment is ignored, and a URL naming no path or the
/// root `/` alone is refused, as is an escape of a path separator or NUL (`%2F`, `%5C`,
/// `%00`), which would make one segment of the URL several of the path.
///
/// ```
/// use persevere_core::location::{url_path, UrlError};
/// assert_eq!(url_path("file:///var/lib/app", "file").unwrap(), "/var/lib/app");
/// assert_eq!(url_path("file://localhost/a/b?x=1", "file").unwrap(), "/a/b");
/// assert_eq!(url_path("sqlite://data/my%20actors.db", "sqlite").unwrap(), "data/my actors.db");
/// assert!(matches!(url_path("sqlite:///", "sqlite"), Err(UrlError::NoPath { .. })));
/// assert!(matches!(url_path("/a", "file"), Err(UrlError::WrongScheme { .. })));
/// assert!(matches!(url_path("file:///a%2", "file"), Err(UrlError::BadEscape { .. })));
/// assert!(matches!(
///     url_path("file:///d/k%2F..%2F..%2Fetc", "file"),
///     Err(UrlError::HiddenSeparator { .. })
/// ));
/// ```
pub fn url_path(url: &str, scheme: &str) -> Result<String, UrlError> {
    let rest = url
        .strip_prefix(scheme)
        .and_then(|rest| rest.strip_prefix("://"))
        .ok_or_else(|| UrlError::WrongScheme {
            url: url.to_owned(),
            scheme: scheme.to_owned(),
        })?;
    let rest = match rest.strip_prefix("localhost/") {
        Some(path) => &rest[rest.len() - path.len() - 1..],
        None => rest,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    if rest.is_empty() || rest == "/" {
        return Err(UrlError::NoPath {
            url: url.to_owned(),
        });
    }
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UrlError::BadEscape {
                    url: url.to_owned(),
                })?;
            if matches!(byte, b'/' | b'\\' | 0) {
                return Err(UrlError::HiddenSeparator {
                    url: url.to_owned(),
                });
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::NotUtf8 {
        url: url.to_owned(),
    })
}
