//! Tests of the C boundary, from Rust: NULL pointers, invalid UTF-8, refused arguments, and
//! callbacks that call back into the API, against the emulator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod arguments;
mod callbacks;
mod header;
mod support;
