//! Sets of linearized operations, as the search's memoization keys.

/// A fixed-size set of operation indices, one bit each.
///
/// A `Vec<u64>` rather than a `HashSet<usize>` because the search updates it on every step and
/// derives a memoization key from it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    /// An empty set able to hold `0..len`.
    pub(super) fn new(len: usize) -> Self {
        Bitset {
            words: vec![0; len.div_ceil(64)],
        }
    }

    pub(super) fn insert(&mut self, index: usize) {
        self.words[index / 64] |= 1 << (index % 64);
    }

    pub(super) fn remove(&mut self, index: usize) {
        self.words[index / 64] &= !(1 << (index % 64));
    }

    #[cfg(test)]
    pub(super) fn contains(&self, index: usize) -> bool {
        self.words[index / 64] & (1 << (index % 64)) != 0
    }

    pub(super) fn is_subset_of(&self, other: &Bitset) -> bool {
        // Plain loops rather than iterator chains: this runs for every memo probe, and test
        // builds are unoptimized.
        let mut word = 0;
        while word < self.words.len() {
            if self.words[word] & !other.words[word] != 0 {
                return false;
            }
            word += 1;
        }
        true
    }

    /// A compact encoding of the set: the number of leading all-ones words, then the words from
    /// there to the last non-zero one.
    ///
    /// When bits are numbered in invocation order, the search's sets are "everything invoked
    /// long ago, plus some of the operations in flight", so the key is one to three words
    /// whatever the history's length, instead of `len / 64` words to copy, hash and keep.
    pub(super) fn window_key(&self) -> Vec<u64> {
        let words = &self.words;
        let mut full = 0;
        while full < words.len() && words[full] == u64::MAX {
            full += 1;
        }
        let mut end = words.len();
        while end > full && words[end - 1] == 0 {
            end -= 1;
        }
        let mut key = Vec::with_capacity(1 + end - full);
        key.push(full as u64);
        key.extend_from_slice(&words[full..end]);
        key
    }
}

#[cfg(test)]
mod tests {
    use super::Bitset;

    #[test]
    fn insert_remove_across_word_boundaries() {
        let mut set = Bitset::new(130);
        for index in [0, 63, 64, 129] {
            assert!(!set.contains(index));
            set.insert(index);
            assert!(set.contains(index));
        }
        set.remove(64);
        assert!(!set.contains(64));
        assert!(set.contains(63) && set.contains(129));
        let mut other = Bitset::new(130);
        for index in [0, 63, 129] {
            other.insert(index);
        }
        assert_eq!(set, other, "equality is by membership, whatever the insertion history");
        assert!(set.is_subset_of(&other) && other.is_subset_of(&set));
        other.remove(0);
        assert!(other.is_subset_of(&set) && !set.is_subset_of(&other));
    }

    #[test]
    fn window_key_identifies_the_set() {
        let mut set = Bitset::new(256);
        assert_eq!(set.window_key(), vec![0]);
        for index in 0..128 {
            set.insert(index);
        }
        assert_eq!(set.window_key(), vec![2], "two full words, nothing after");
        set.insert(130);
        assert_eq!(set.window_key(), vec![2, 1 << 2]);
        set.remove(5);
        assert_eq!(set.window_key(), vec![0, !(1 << 5), u64::MAX, 1 << 2]);
    }
}
