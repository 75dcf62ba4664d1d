//! The set value type (placeholder until its command family lands).

/// A set value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetValue {}

impl SetValue {
    /// Number of elements.
    pub fn len(&self) -> usize {
        0
    }

    /// True when empty (an empty collection is never stored: the key is deleted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rough payload size in bytes (for the memory estimate).
    pub fn size_bytes(&self) -> usize {
        0
    }
}
