//! [`Records`]: one stream's records of one kind, by seq, as the in-memory store keeps them.

use std::collections::vec_deque;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Bound, Index, RangeBounds};

use crate::SharedBytes;

/// Records by seq, in seq order: a sorted map shaped for what a log does — appends at the end,
/// reads of a run from a seq, deletion from the front — kept in one contiguous ring buffer, so
/// that an append is a push and a replay reads neighbouring memory.
///
/// It offers the map operations tests use to tamper with a stored stream (insert anywhere,
/// remove, retain, replace bytes); those in the middle cost a shift of the records after them.
///
/// ```
/// use persevere_core::memory::Records;
/// use persevere_core::SharedBytes;
///
/// let mut records = Records::new();
/// for seq in [1, 2, 4] {
///     records.insert(seq, SharedBytes::from(vec![seq as u8]));
/// }
/// records.insert(3, SharedBytes::from(vec![3])); // in the middle: kept in order
/// assert_eq!(records.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4]);
/// assert_eq!(records.range(3..).map(|(&s, _)| s).collect::<Vec<_>>(), [3, 4]);
/// records.remove_through(2);
/// assert_eq!((records.len(), records.first_key_value().map(|(&s, _)| s)), (2, Some(3)));
/// assert_eq!(records[&4], [4]);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Records {
    // Invariant: strictly increasing seqs.
    entries: VecDeque<(u64, SharedBytes)>,
}

impl Records {
    /// No records.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where `seq` is (`Ok`), or where it would go (`Err`). A seq past the last is found
    /// without a search (every append).
    fn position(&self, seq: u64) -> Result<usize, usize> {
        match self.entries.back() {
            None => Err(0),
            Some(&(last, _)) if last < seq => Err(self.entries.len()),
            Some(_) => self.entries.binary_search_by_key(&seq, |&(s, _)| s),
        }
    }

    /// The index of the first record at or after `bound` seen from below.
    fn start_index(&self, bound: Bound<&u64>) -> usize {
        match bound {
            Bound::Unbounded => 0,
            Bound::Included(&seq) => self.entries.partition_point(|&(s, _)| s < seq),
            Bound::Excluded(&seq) => self.entries.partition_point(|&(s, _)| s <= seq),
        }
    }

    /// The index just past the last record within `bound` seen from above.
    fn end_index(&self, bound: Bound<&u64>) -> usize {
        match bound {
            Bound::Unbounded => self.entries.len(),
            Bound::Included(&seq) => self.entries.partition_point(|&(s, _)| s <= seq),
            Bound::Excluded(&seq) => self.entries.partition_point(|&(s, _)| s < seq),
        }
    }

    /// Stores `bytes` at `seq`, returning the record it replaces, if any.
    pub fn insert(&mut self, seq: u64, bytes: SharedBytes) -> Option<SharedBytes> {
        match self.position(seq) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, bytes)),
            Err(at) if at == self.entries.len() => {
                self.entries.push_back((seq, bytes));
                None
            }
            Err(at) => {
                self.entries.insert(at, (seq, bytes));
                None
            }
        }
    }

    /// The record at `seq`.
    pub fn get(&self, seq: &u64) -> Option<&SharedBytes> {
        let at = self.position(*seq).ok()?;
        self.entries.get(at).map(|(_, bytes)| bytes)
    }

    /// The record at `seq`, writable (to tamper with it).
    pub fn get_mut(&mut self, seq: &u64) -> Option<&mut SharedBytes> {
        let at = self.position(*seq).ok()?;
        self.entries.get_mut(at).map(|(_, bytes)| bytes)
    }

    /// Whether there is a record at `seq`.
    pub fn contains_key(&self, seq: &u64) -> bool {
        self.position(*seq).is_ok()
    }

    /// Removes the record at `seq`, returning it.
    pub fn remove(&mut self, seq: &u64) -> Option<SharedBytes> {
        let at = self.position(*seq).ok()?;
        self.entries.remove(at).map(|(_, bytes)| bytes)
    }

    /// Removes every record with a seq up to `seq` (inclusive), at a cost in the records
    /// removed only.
    pub fn remove_through(&mut self, seq: u64) {
        let end = self.end_index(Bound::Included(&seq));
        self.entries.drain(..end);
    }

    /// The records whose seqs are in `range`, in seq order.
    pub fn range(&self, range: impl RangeBounds<u64>) -> Iter<'_> {
        let start = self.start_index(range.start_bound());
        let end = self.end_index(range.end_bound()).max(start);
        Iter(self.entries.range(start..end))
    }

    /// Every record, in seq order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries.iter())
    }

    /// Every record, in seq order, the bytes writable.
    pub fn iter_mut(&mut self) -> IterMut<'_> {
        IterMut(self.entries.iter_mut())
    }

    /// Every seq, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &u64> + ExactSizeIterator {
        self.entries.iter().map(|(seq, _)| seq)
    }

    /// Every record's bytes, in seq order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &SharedBytes> + ExactSizeIterator {
        self.entries.iter().map(|(_, bytes)| bytes)
    }

    /// Every record's bytes, in seq order, writable.
    pub fn values_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut SharedBytes> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, bytes)| bytes)
    }

    /// The record with the lowest seq.
    pub fn first_key_value(&self) -> Option<(&u64, &SharedBytes)> {
        self.entries.front().map(|(seq, bytes)| (seq, bytes))
    }

    /// The record with the highest seq.
    pub fn last_key_value(&self) -> Option<(&u64, &SharedBytes)> {
        self.entries.back().map(|(seq, bytes)| (seq, bytes))
    }

    /// Removes and returns the record with the lowest seq.
    pub fn pop_first(&mut self) -> Option<(u64, SharedBytes)> {
        self.entries.pop_front()
    }

    /// Removes and returns the record with the highest seq.
    pub fn pop_last(&mut self) -> Option<(u64, SharedBytes)> {
        self.entries.pop_back()
    }

    /// Splits off the records with a seq at or after `seq` and returns them; the others stay.
    pub fn split_off(&mut self, seq: &u64) -> Self {
        let at = self.start_index(Bound::Included(seq));
        Self {
            entries: self.entries.split_off(at),
        }
    }

    /// Keeps only the records for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&u64, &mut SharedBytes) -> bool) {
        self.entries.retain_mut(|(seq, bytes)| keep(seq, bytes));
    }

    /// Removes every record.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Index<&u64> for Records {
    type Output = SharedBytes;

    /// The record at `seq`.
    ///
    /// # Panics
    ///
    /// If there is none, as a map's index does.
    fn index(&self, seq: &u64) -> &SharedBytes {
        match self.get(seq) {
            Some(bytes) => bytes,
            None => panic!("no record at seq {seq}"),
        }
    }
}

impl Extend<(u64, SharedBytes)> for Records {
    fn extend<I: IntoIterator<Item = (u64, SharedBytes)>>(&mut self, records: I) {
        for (seq, bytes) in records {
            self.insert(seq, bytes);
        }
    }
}

impl FromIterator<(u64, SharedBytes)> for Records {
    /// The records in seq order; of two with the same seq, the later one is kept.
    fn from_iter<I: IntoIterator<Item = (u64, SharedBytes)>>(records: I) -> Self {
        let mut all = Self::new();
        all.extend(records);
        all
    }
}

impl IntoIterator for Records {
    type Item = (u64, SharedBytes);
    type IntoIter = vec_deque::IntoIter<(u64, SharedBytes)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a Records {
    type Item = (&'a u64, &'a SharedBytes);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Records {
    type Item = (&'a u64, &'a mut SharedBytes);
    type IntoIter = IterMut<'a>;

    fn into_iter(self) -> IterMut<'a> {
        self.iter_mut()
    }
}

/// Records in seq order, borrowed (see [`Records::iter`] and [`Records::range`]).
#[derive(Debug, Clone)]
pub struct Iter<'a>(vec_deque::Iter<'a, (u64, SharedBytes)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a u64, &'a SharedBytes);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(seq, bytes)| (seq, bytes))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(seq, bytes)| (seq, bytes))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Records in seq order, the bytes writable (see [`Records::iter_mut`]).
#[derive(Debug)]
pub struct IterMut<'a>(vec_deque::IterMut<'a, (u64, SharedBytes)>);

impl<'a> Iterator for IterMut<'a> {
    type Item = (&'a u64, &'a mut SharedBytes);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(seq, bytes)| (&*seq, bytes))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for IterMut<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(seq, bytes)| (&*seq, bytes))
    }
}

impl ExactSizeIterator for IterMut<'_> {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn bytes(n: u64) -> SharedBytes {
        SharedBytes::from(n.to_le_bytes().to_vec())
    }

    /// A tiny deterministic generator (xorshift), for the model test.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn behaves_as_a_sorted_map() {
        let mut state = 0x9e37_79b9_7f4a_7c15;
        let mut model = BTreeMap::new();
        let mut records = Records::new();
        for step in 0..4_000u64 {
            let seq = next(&mut state) % 64;
            match next(&mut state) % 8 {
                0..=2 => assert_eq!(
                    records.insert(seq, bytes(step)),
                    model.insert(seq, bytes(step))
                ),
                3 => {
                    // An append past the end, as the store does.
                    let last = model.keys().next_back().map_or(0, |&s| s + 1);
                    assert_eq!(
                        records.insert(last, bytes(step)),
                        model.insert(last, bytes(step))
                    );
                }
                4 => assert_eq!(records.remove(&seq), model.remove(&seq)),
                5 => {
                    records.remove_through(seq / 4);
                    model = model.split_off(&(seq / 4 + 1));
                }
                6 => {
                    let (from, to) = (seq, next(&mut state) % 64);
                    let ours: Vec<_> = records.range(from..to).collect();
                    let theirs: Vec<_> = if from <= to {
                        model.range(from..to).collect()
                    } else {
                        Vec::new()
                    };
                    assert_eq!(ours, theirs);
                    let ours: Vec<_> = records.range(..=from).rev().collect();
                    let theirs: Vec<_> = model.range(..=from).rev().collect();
                    assert_eq!(ours, theirs);
                }
                _ => {
                    let mut ours = records.clone();
                    let mut theirs = model.clone();
                    assert_eq!(
                        ours.split_off(&seq).iter().collect::<Vec<_>>(),
                        theirs.split_off(&seq).iter().collect::<Vec<_>>()
                    );
                    ours.retain(|&s, _| s % 3 != 0);
                    theirs.retain(|&s, _| s % 3 != 0);
                    assert_eq!(
                        ours.iter().collect::<Vec<_>>(),
                        theirs.iter().collect::<Vec<_>>()
                    );
                }
            }
            assert_eq!(records.len(), model.len());
            assert_eq!(
                records.iter().collect::<Vec<_>>(),
                model.iter().collect::<Vec<_>>()
            );
            assert_eq!(records.get(&seq), model.get(&seq));
            assert_eq!(records.contains_key(&seq), model.contains_key(&seq));
            assert_eq!(records.first_key_value(), model.first_key_value());
            assert_eq!(records.last_key_value(), model.last_key_value());
        }
    }

    #[test]
    fn collects_in_order_keeping_the_last_of_a_seq() {
        let records: Records = [(3, bytes(1)), (1, bytes(2)), (3, bytes(3))]
            .into_iter()
            .collect();
        assert_eq!(
            records.into_iter().collect::<Vec<_>>(),
            [(1, bytes(2)), (3, bytes(3))]
        );
    }
}
