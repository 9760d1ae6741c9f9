//! Benchmarks of iot443; see `benches/`.
