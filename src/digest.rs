//! 64-bit digests that the caches keep and compare instead of whole objects.

use std::hash::{Hash, Hasher};

/// A 64-bit digest of `value`, stable within one build of devportal (never persisted).
pub fn digest<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}
