//! Compact JSON output with fields in the order AWS sends them (a `Map` would sort them).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use serde_json::Value;

/// A JSON object written field by field: no whitespace, fields in the order they are added.
pub(crate) struct Object {
    out: String,
    empty: bool,
}

impl Object {
    pub(crate) fn new() -> Self {
        Self { out: String::from("{"), empty: true }
    }

    /// Writes `"key":`; keys are fixed field names that need no escaping.
    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    pub(crate) fn field_u64(&mut self, key: &str, value: u64) {
        self.key(key);
        // Writing into a `String` cannot fail.
        let _ = write!(self.out, "{value}");
    }

    pub(crate) fn field_str(&mut self, key: &str, value: &str) {
        self.field_value(key, &Value::from(value));
    }

    /// A value, compact (`Value`'s `Display` escapes strings and keys as JSON requires).
    pub(crate) fn field_value(&mut self, key: &str, value: &Value) {
        self.key(key);
        let _ = write!(self.out, "{value}");
    }

    /// A nested object written by another [`Object`].
    pub(crate) fn field_object(&mut self, key: &str, value: Object) {
        self.key(key);
        self.out.push_str(&value.finish_string());
    }

    fn finish_string(mut self) -> String {
        self.out.push('}');
        self.out
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.finish_string().into_bytes()
    }
}

/// The length of `value` written as compact JSON, in bytes.
pub(crate) fn compact_len(value: &Value) -> usize {
    struct Counter(usize);
    impl core::fmt::Write for Counter {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut counter = Counter(0);
    let _ = write!(counter, "{value}");
    counter.0
}
