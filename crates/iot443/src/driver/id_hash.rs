//! A hasher for the driver's maps keyed by message ids and packet ids: sequential numbers the
//! client picks itself, so they need no protection from chosen keys (SipHash's reason to be
//! slow), only a spread of their bits (one multiplication, Fibonacci hashing).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`IdHasher`].
pub(super) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Hashes integers by multiplying them with 2⁶⁴/φ.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct IdHasher(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(GOLDEN);
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(GOLDEN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_spread_over_the_top_bits_and_the_map_works() {
        let mut top_bits = std::collections::HashSet::new();
        for n in 0_u64..128 {
            let mut hasher = IdHasher::default();
            hasher.write_u64(n);
            top_bits.insert(hasher.finish() >> 57);
        }
        assert!(top_bits.len() > 64, "only {} distinct top-7-bit values", top_bits.len());

        let mut map: IdMap<u64, u64> = IdMap::default();
        for n in 0..10_000 {
            map.insert(n, n * 2);
        }
        assert!((0..10_000).all(|n| map.get(&n) == Some(&(n * 2))));
        assert_eq!(map.len(), 10_000);
    }
}
