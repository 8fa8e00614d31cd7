//! [`SharedBytes`]: an immutable, cheaply cloned view of a shared buffer.
//!
//! Records travel from a store to the codec without a copy: a store keeps (or reads) records
//! in shared buffers and answers reads with handles to them — a clone is a reference-count
//! increment, a sub-slice is a clone with a narrower range — and the core decodes from the
//! borrowed bytes. A byte string of at most [`SharedBytes::INLINE`] bytes copied in (a small
//! record the journal encoded) is held in the handle itself: no allocation, and a clone copies
//! those few bytes instead of touching a reference count.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Bound, Deref, RangeBounds};
use std::sync::Arc;

/// An immutable byte string sharing its buffer: a reference-counted buffer and a range in it,
/// or, for at most [`INLINE`](Self::INLINE) bytes copied in, the bytes themselves.
///
/// Cloning and [`slice`](Self::slice) never copy a shared buffer's bytes (a handle holding
/// its bytes in place copies those few). Build one from a `Vec<u8>` (no copy) or a `&[u8]`
/// (one copy); read it as a `&[u8]` through `Deref`.
///
/// ```
/// use persevere_core::SharedBytes;
/// let run = SharedBytes::from(b"headerpayload".to_vec());
/// let payload = run.slice(6..);
/// assert_eq!(&payload[..], b"payload");
/// assert_eq!(payload, b"payload"[..]);
/// assert!(run.slice_checked(6..14).is_none());
/// ```
#[derive(Clone)]
pub struct SharedBytes(Repr);

#[derive(Clone)]
enum Repr {
    /// At most `INLINE` bytes, in place (`len` of `bytes` are the string).
    Inline {
        len: u8,
        bytes: [u8; SharedBytes::INLINE],
    },
    /// A range of a shared buffer. Invariant: `start <= end <= buf.len()`.
    Shared {
        buf: Buffer,
        start: usize,
        end: usize,
    },
}

/// The shared buffer: a vector taken as it is, or bytes copied into one allocation with the
/// reference count.
#[derive(Clone)]
enum Buffer {
    Vec(Arc<Vec<u8>>),
    Slice(Arc<[u8]>),
}

impl Buffer {
    #[inline]
    fn bytes(&self) -> &[u8] {
        match self {
            Buffer::Vec(vec) => vec,
            Buffer::Slice(slice) => slice,
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.bytes().len()
    }
}

impl SharedBytes {
    /// The most bytes a handle holds in place, when they are copied in (`From<&[u8]>`): the
    /// room the handle has beside its shared-buffer form, so it is no larger for it.
    pub const INLINE: usize = 38;

    /// An empty byte string.
    pub fn new() -> Self {
        Self::from(&[][..])
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Shared { buf, start, end } => &buf.bytes()[*start..*end],
        }
    }

    /// The bytes in `range` (relative to this view), sharing the buffer; `None` if the range
    /// is inverted or reaches past the end.
    pub fn slice_checked(&self, range: impl RangeBounds<usize>) -> Option<Self> {
        let len = self.len();
        let from = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&n) => n.checked_add(1)?,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => len,
        };
        if from > to || to > len {
            return None;
        }
        Some(match &self.0 {
            Repr::Inline { .. } => Self::from(&self.as_slice()[from..to]),
            Repr::Shared { buf, start, .. } => Self(Repr::Shared {
                buf: buf.clone(),
                start: start + from,
                end: start + to,
            }),
        })
    }

    /// The bytes in `range` (relative to this view), sharing the buffer.
    ///
    /// # Panics
    ///
    /// If the range is inverted or reaches past the end, as slicing a `[u8]` would.
    pub fn slice(&self, range: impl RangeBounds<usize> + fmt::Debug) -> Self {
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        match self.slice_checked(bounds) {
            Some(slice) => slice,
            None => panic!("range {range:?} out of bounds of {} bytes", self.len()),
        }
    }

    /// The bytes, writable: copies them first unless they are held in place, or this is the
    /// buffer's only handle and covers all of it (for tests that tamper with stored records).
    pub fn make_mut(&mut self) -> &mut [u8] {
        let in_place = match &self.0 {
            Repr::Inline { .. } => true,
            Repr::Shared { buf, start, end } => {
                *start == 0 && *end == buf.len() && matches!(buf, Buffer::Vec(_))
            }
        };
        if !in_place {
            // A vector is taken as the buffer (`From<Vec<u8>>`), whatever its length.
            *self = Self::from(self.as_slice().to_vec());
        }
        match &mut self.0 {
            Repr::Inline { len, bytes } => &mut bytes[..usize::from(*len)],
            Repr::Shared {
                buf: Buffer::Vec(vec),
                ..
            } => Arc::make_mut(vec).as_mut_slice(),
            // Replaced by a vector just above.
            Repr::Shared { .. } => &mut [],
        }
    }

    /// The bytes as a vector, without a copy when this is the buffer's only handle and covers
    /// all of it.
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Repr::Shared {
                buf: Buffer::Vec(buf),
                start: 0,
                end,
            } if end == buf.len() => match Arc::try_unwrap(buf) {
                Ok(vec) => vec,
                Err(buf) => buf.as_slice().to_vec(),
            },
            _ => self.as_slice().to_vec(),
        }
    }
}

impl Default for SharedBytes {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for SharedBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for SharedBytes {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for SharedBytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Vec<u8>> for SharedBytes {
    /// Takes the vector as the buffer: no copy.
    fn from(vec: Vec<u8>) -> Self {
        let end = vec.len();
        Self(Repr::Shared {
            buf: Buffer::Vec(Arc::new(vec)),
            start: 0,
            end,
        })
    }
}

impl From<&[u8]> for SharedBytes {
    /// Copies the bytes: into the handle when they are at most [`SharedBytes::INLINE`], else
    /// into one allocation with the reference count.
    #[inline]
    fn from(bytes: &[u8]) -> Self {
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= Self::INLINE => {
                let mut inline = [0; Self::INLINE];
                inline[..bytes.len()].copy_from_slice(bytes);
                Self(Repr::Inline { len, bytes: inline })
            }
            _ => Self(Repr::Shared {
                buf: Buffer::Slice(Arc::from(bytes)),
                start: 0,
                end: bytes.len(),
            }),
        }
    }
}

impl<const N: usize> From<&[u8; N]> for SharedBytes {
    fn from(bytes: &[u8; N]) -> Self {
        Self::from(&bytes[..])
    }
}

impl FromIterator<u8> for SharedBytes {
    fn from_iter<I: IntoIterator<Item = u8>>(iter: I) -> Self {
        Self::from(iter.into_iter().collect::<Vec<u8>>())
    }
}

impl From<SharedBytes> for Vec<u8> {
    fn from(bytes: SharedBytes) -> Self {
        bytes.into_vec()
    }
}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl PartialEq for SharedBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SharedBytes {}

impl PartialEq<[u8]> for SharedBytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[u8]> for SharedBytes {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_slice() == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for SharedBytes {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for SharedBytes {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_slice() == *other
    }
}

impl PartialEq<Vec<u8>> for SharedBytes {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<SharedBytes> for Vec<u8> {
    fn eq(&self, other: &SharedBytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<SharedBytes> for [u8] {
    fn eq(&self, other: &SharedBytes) -> bool {
        self == other.as_slice()
    }
}

impl PartialOrd for SharedBytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedBytes {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl Hash for SharedBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slices_share_the_buffer_and_stay_in_range() {
        let all = SharedBytes::from((0u8..10).collect::<Vec<_>>());
        let mid = all.slice(2..8);
        assert_eq!(mid, [2, 3, 4, 5, 6, 7]);
        assert_eq!(buffer(&all), buffer(&mid));
        assert!(buffer(&all).is_some());
        let inner = mid.slice(1..=2);
        assert_eq!(inner, [3, 4]);
        assert_eq!(mid.slice(..), mid);
        assert_eq!(mid.slice(6..), SharedBytes::new());
        // A sub-slice never reaches outside its parent's range, even where the buffer goes on.
        assert!(mid.slice_checked(..7).is_none());
        assert!(mid.slice_checked(7..).is_none());
        #[allow(clippy::reversed_empty_ranges)]
        let inverted = 4..3;
        assert!(mid.slice_checked(inverted).is_none());
        assert!(mid.slice_checked(..=usize::MAX).is_none());
        assert!(inner.slice_checked(0..3).is_none());
    }

    /// Where a handle's shared buffer is (`None` for bytes held in place).
    fn buffer(bytes: &SharedBytes) -> Option<*const u8> {
        match &bytes.0 {
            Repr::Shared { buf, .. } => Some(buf.bytes().as_ptr()),
            Repr::Inline { .. } => None,
        }
    }

    #[test]
    fn copied_bytes_are_one_buffer_and_tamper_like_any_other() {
        let long: Vec<u8> = (0..64).collect();
        let mut copied = SharedBytes::from(&long[..]);
        let shared = copied.clone();
        assert!(matches!(
            copied.0,
            Repr::Shared {
                buf: Buffer::Slice(_),
                ..
            }
        ));
        assert_eq!(buffer(&copied), buffer(&shared));
        assert_eq!(copied.slice(1..), long[1..]);
        copied.make_mut()[0] = 9;
        let mut tampered = long.clone();
        tampered[0] = 9;
        assert_eq!(
            (copied, shared.clone()),
            (SharedBytes::from(tampered), SharedBytes::from(&long[..]))
        );
        assert_eq!(shared.into_vec(), long);
    }

    #[test]
    fn small_copies_are_held_in_place_and_the_handle_stays_small() {
        assert_eq!(std::mem::size_of::<SharedBytes>(), 40);
        let most: Vec<u8> = (1..=38).collect();
        let mut small = SharedBytes::from(&most[..]);
        assert!(buffer(&small).is_none());
        assert!(buffer(&SharedBytes::from(&[7; 39][..])).is_some());
        assert!(buffer(&SharedBytes::new()).is_none());
        assert_eq!(small, most[..]);
        // Sub-slices and clones copy, and tampering with one leaves the others as they were.
        let tail = small.slice(30..);
        assert!(buffer(&tail).is_none());
        assert_eq!(tail, most[30..]);
        assert!(small.slice_checked(30..39).is_none());
        let clone = small.clone();
        small.make_mut()[0] = 99;
        assert_eq!((small[0], clone[0], tail[0]), (99, 1, 31));
        assert_eq!(clone.into_vec(), most);
        assert_eq!(SharedBytes::from(&[][..]), SharedBytes::from(Vec::new()));
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn slice_past_the_end_panics() {
        let _ = SharedBytes::from(vec![1, 2]).slice(1..3);
    }

    #[test]
    fn make_mut_never_writes_through_to_another_handle() {
        let all = SharedBytes::from(vec![1, 2, 3, 4]);
        let mut tail = all.slice(2..);
        tail.make_mut()[0] = 9;
        assert_eq!(tail, [9, 4]);
        assert_eq!(all, [1, 2, 3, 4]);
        let mut copy = all.clone();
        copy.make_mut()[0] = 7;
        assert_eq!(all, [1, 2, 3, 4]);
        assert_eq!(copy, [7, 2, 3, 4]);
        assert_eq!(tail.into_vec(), vec![9, 4]);
    }
}
