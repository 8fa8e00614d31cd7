//! [`Batch`]: one item held inline, or many in a vector.

use std::fmt;
use std::ops::{Deref, DerefMut};

/// A sequence of items that holds a single item without allocating: the common append of one
/// event ([`Command::Append`](crate::Command::Append)'s `events`) costs no heap allocation of its
/// own. It reads as a slice (`Deref<Target = [T]>`), is built from a `Vec`, one item or an
/// iterator, and is consumed with `for item in batch`. Two batches are equal when their items
/// are, however each is held.
///
/// ```
/// use persevere_core::{Batch, StoredRecord};
///
/// let one = Batch::from(StoredRecord::new(1, b"e1".to_vec()));
/// assert_eq!(one.len(), 1);
/// let mut many: Batch<StoredRecord> = (1..=3).map(|seq| StoredRecord::new(seq, vec![0])).collect();
/// many.push(StoredRecord::new(4, vec![0]));
/// assert_eq!(many.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
/// assert_eq!(one, vec![StoredRecord::new(1, b"e1".to_vec())]);
/// let seqs: Vec<u64> = many.into_iter().map(|r| r.seq).collect();
/// assert_eq!(seqs, [1, 2, 3, 4]);
/// ```
#[derive(Clone)]
pub struct Batch<T>(Repr<T>);

#[derive(Clone)]
enum Repr<T> {
    Empty,
    One(T),
    Many(Vec<T>),
}

impl<T> Batch<T> {
    /// An empty batch (no allocation).
    pub const fn new() -> Self {
        Batch(Repr::Empty)
    }

    /// An empty batch with room for `capacity` items: a vector is allocated only for more
    /// than one.
    pub fn with_capacity(capacity: usize) -> Self {
        if capacity > 1 {
            Batch(Repr::Many(Vec::with_capacity(capacity)))
        } else {
            Self::new()
        }
    }

    /// The items, as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        match &self.0 {
            Repr::Empty => &[],
            Repr::One(item) => std::slice::from_ref(item),
            Repr::Many(items) => items,
        }
    }

    /// The items, as a mutable slice.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        match &mut self.0 {
            Repr::Empty => &mut [],
            Repr::One(item) => std::slice::from_mut(item),
            Repr::Many(items) => items,
        }
    }

    /// Adds `item` at the end. The first item of an empty batch is held inline; a second one
    /// moves both into a vector.
    #[inline]
    pub fn push(&mut self, item: T) {
        match &mut self.0 {
            Repr::Empty => self.0 = Repr::One(item),
            Repr::Many(items) => items.push(item),
            Repr::One(_) => self.spill(item),
        }
    }

    /// Moves the items into a vector, followed by `item` (for the push after the first).
    #[cold]
    fn spill(&mut self, item: T) {
        let items = match std::mem::replace(&mut self.0, Repr::Empty) {
            Repr::Empty => vec![item],
            Repr::One(first) => vec![first, item],
            Repr::Many(mut items) => {
                items.push(item);
                items
            }
        };
        self.0 = Repr::Many(items);
    }

    /// Keeps the first `len` items and drops the rest (nothing when `len` is not below the
    /// length).
    pub fn truncate(&mut self, len: usize) {
        match &mut self.0 {
            Repr::One(_) if len == 0 => self.0 = Repr::Empty,
            Repr::Empty | Repr::One(_) => {}
            Repr::Many(items) => items.truncate(len),
        }
    }

    /// The items, in a vector (which allocates for a batch of one item).
    pub fn into_vec(self) -> Vec<T> {
        match self.0 {
            Repr::Empty => Vec::new(),
            Repr::One(item) => vec![item],
            Repr::Many(items) => items,
        }
    }
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Deref for Batch<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T> DerefMut for Batch<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: fmt::Debug> fmt::Debug for Batch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for Batch<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Eq> Eq for Batch<T> {}

impl<T: PartialEq> PartialEq<Vec<T>> for Batch<T> {
    fn eq(&self, other: &Vec<T>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: PartialEq> PartialEq<[T]> for Batch<T> {
    fn eq(&self, other: &[T]) -> bool {
        self.as_slice() == other
    }
}

impl<T> From<T> for Batch<T> {
    fn from(item: T) -> Self {
        Batch(Repr::One(item))
    }
}

impl<T> From<Vec<T>> for Batch<T> {
    fn from(items: Vec<T>) -> Self {
        Batch(Repr::Many(items))
    }
}

impl<T> From<Batch<T>> for Vec<T> {
    fn from(batch: Batch<T>) -> Self {
        batch.into_vec()
    }
}

/// One item is held inline, more go into a vector.
impl<T> FromIterator<T> for Batch<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        let Some(first) = iter.next() else {
            return Self::new();
        };
        match iter.next() {
            None => Batch(Repr::One(first)),
            Some(second) => {
                let mut items = Vec::with_capacity(iter.size_hint().0.saturating_add(2));
                items.extend([first, second]);
                items.extend(iter);
                Batch(Repr::Many(items))
            }
        }
    }
}

impl<T> Extend<T> for Batch<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for item in iter {
            self.push(item);
        }
    }
}

impl<T> IntoIterator for Batch<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter(match self.0 {
            Repr::Empty => IterRepr::One(None),
            Repr::One(item) => IterRepr::One(Some(item)),
            Repr::Many(items) => IterRepr::Many(items.into_iter()),
        })
    }
}

impl<'a, T> IntoIterator for &'a Batch<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut Batch<T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

/// The owning iterator of a [`Batch`].
#[derive(Debug)]
pub struct IntoIter<T>(IterRepr<T>);

#[derive(Debug)]
enum IterRepr<T> {
    One(Option<T>),
    Many(std::vec::IntoIter<T>),
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    #[inline]
    fn next(&mut self) -> Option<T> {
        match &mut self.0 {
            IterRepr::One(item) => item.take(),
            IterRepr::Many(items) => items.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::One(item) => {
                let n = usize::from(item.is_some());
                (n, Some(n))
            }
            IterRepr::Many(items) => items.size_hint(),
        }
    }
}

impl<T> DoubleEndedIterator for IntoIter<T> {
    fn next_back(&mut self) -> Option<T> {
        match &mut self.0 {
            IterRepr::One(item) => item.take(),
            IterRepr::Many(items) => items.next_back(),
        }
    }
}

impl<T> ExactSizeIterator for IntoIter<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_item_is_held_inline_and_a_second_moves_both_into_a_vector() {
        let mut batch = Batch::new();
        assert!(matches!(batch.0, Repr::Empty));
        batch.push(1);
        assert!(matches!(batch.0, Repr::One(1)));
        batch.push(2);
        batch.push(3);
        assert!(matches!(&batch.0, Repr::Many(items) if items == &[1, 2, 3]));
        // Collected the same way: one item inline, none empty, more in a vector.
        assert!(matches!(
            [7].into_iter().collect::<Batch<_>>().0,
            Repr::One(7)
        ));
        assert!(matches!(
            std::iter::empty::<u8>().collect::<Batch<_>>().0,
            Repr::Empty
        ));
        assert!(matches!((1..=3).collect::<Batch<_>>().0, Repr::Many(items) if items == [1, 2, 3]));
        batch.truncate(1);
        assert_eq!(batch, vec![1]);
        batch.truncate(0);
        assert!(batch.is_empty());
        let mut one = Batch::from(7);
        one.truncate(1);
        assert_eq!(one, [7][..]);
        one.truncate(0);
        assert!(one.is_empty());
        one.push(8);
        assert_eq!(one.into_vec(), vec![8]);
    }

    #[test]
    fn every_form_reads_iterates_and_compares_by_its_items() {
        let forms = [
            Batch::from(5),
            Batch::from(vec![5]),
            [5].into_iter().collect(),
        ];
        for form in &forms {
            assert_eq!(form, &forms[0]);
            assert_eq!(form.len(), 1);
            assert_eq!(format!("{form:?}"), "[5]");
            assert_eq!(form.clone().into_iter().len(), 1);
            assert_eq!(form.clone().into_iter().next_back(), Some(5));
            assert_eq!(form.iter().copied().collect::<Vec<_>>(), vec![5]);
        }
        let mut many = Batch::from(vec![1, 2, 3]);
        many[1] = 20;
        many.extend([4]);
        assert_eq!(
            many.clone().into_iter().rev().collect::<Vec<_>>(),
            vec![4, 3, 20, 1]
        );
        assert_ne!(many, forms[0]);
        assert_eq!(Vec::from(many), vec![1, 20, 3, 4]);
    }
}
