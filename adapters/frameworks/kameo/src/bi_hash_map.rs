//! [`BiHashMap`]: a one-to-one map readable from both sides, as kameo-persistence's
//! `bi_hash_map` module has it (kameo-persistence's derive keeps its registry in one).

use std::collections::HashMap;
use std::hash::Hash;

/// A one-to-one map between left values `L` and right values `R`, looked up from either side.
///
/// Each left value has at most one right value and the other way round: inserting a pair
/// removes any pair that shared its left or its right value, so both sides always agree.
///
/// ```
/// use persevere_kameo::BiHashMap;
///
/// let mut map = BiHashMap::new();
/// assert_eq!(map.insert("a", 1), None);
/// assert_eq!(map.get_right(&"a"), Some(&1));
/// assert_eq!(map.get_left(&1), Some(&"a"));
/// assert_eq!(map.insert("a", 1), Some(("a", 1)));
/// map.insert("a", 2); // "a" now maps to 2, and 1 to nothing
/// assert!(!map.contains_right(&1));
/// assert_eq!(map.remove_left(&"a"), Some(2));
/// assert!(!map.contains_right(&2));
/// ```
#[derive(Debug, Clone)]
pub struct BiHashMap<L, R> {
    right_of: HashMap<L, R>,
    left_of: HashMap<R, L>,
}

impl<L: Eq + Hash, R: Eq + Hash> PartialEq for BiHashMap<L, R> {
    fn eq(&self, other: &Self) -> bool {
        self.right_of == other.right_of
    }
}

impl<L: Eq + Hash, R: Eq + Hash> Eq for BiHashMap<L, R> {}

impl<L, R> Default for BiHashMap<L, R>
where
    L: Clone + Eq + Hash,
    R: Clone + Eq + Hash,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<L, R> BiHashMap<L, R>
where
    L: Clone + Eq + Hash,
    R: Clone + Eq + Hash,
{
    /// An empty map.
    pub fn new() -> Self {
        Self {
            right_of: HashMap::new(),
            left_of: HashMap::new(),
        }
    }

    /// Inserts the pair `left ↔ right`, removing any pair that had the same left or the same
    /// right value. Returns `(the left value right had, the right value left had)` when both
    /// had one — as kameo-persistence's `insert` does (re-inserting a pair returns it) —
    /// otherwise `None`.
    pub fn insert(&mut self, left: L, right: R) -> Option<(L, R)> {
        let old_right = self.right_of.remove(&left);
        let old_left = self.left_of.remove(&right);
        if let Some(old_right) = &old_right {
            self.left_of.remove(old_right);
        }
        if let Some(old_left) = &old_left {
            self.right_of.remove(old_left);
        }
        self.right_of.insert(left.clone(), right.clone());
        self.left_of.insert(right, left);
        old_left.zip(old_right)
    }

    /// The left value paired with `right`.
    pub fn get_left(&self, right: &R) -> Option<&L> {
        self.left_of.get(right)
    }

    /// The right value paired with `left`.
    pub fn get_right(&self, left: &L) -> Option<&R> {
        self.right_of.get(left)
    }

    /// Whether `left` is in a pair.
    pub fn contains_left(&self, left: &L) -> bool {
        self.right_of.contains_key(left)
    }

    /// Whether `right` is in a pair.
    pub fn contains_right(&self, right: &R) -> bool {
        self.left_of.contains_key(right)
    }

    /// Removes the pair of `left`, returning its right value.
    pub fn remove_left(&mut self, left: &L) -> Option<R> {
        let right = self.right_of.remove(left)?;
        self.left_of.remove(&right);
        Some(right)
    }

    /// Removes the pair of `right`, returning its left value.
    pub fn remove_right(&mut self, right: &R) -> Option<L> {
        let left = self.left_of.remove(right)?;
        self.right_of.remove(&left);
        Some(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_always_agree() {
        let mut map = BiHashMap::new();
        map.insert(1, 'a');
        map.insert(2, 'b');
        // 1 takes b: the pairs 1↔a and 2↔b both go.
        assert_eq!(map.insert(1, 'b'), Some((2, 'a')));
        assert_eq!(map.get_right(&1), Some(&'b'));
        assert_eq!(map.get_left(&'b'), Some(&1));
        assert!(!map.contains_left(&2));
        assert!(!map.contains_right(&'a'));
        assert_eq!(map.remove_right(&'b'), Some(1));
        assert_eq!(map, BiHashMap::new());
    }
}
