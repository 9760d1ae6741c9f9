//! The tree operations behind the document: merge a partial update, compute a delta, mirror
//! metadata, measure depth. Inputs are validated first ([`within_depth`], [`null_in_array`]), so the
//! recursion here is bounded by [`super::MAX_DEPTH`].

use alloc::collections::BTreeMap;
use alloc::string::String;

use serde_json::{Map, Value};

use super::JsonObject;

/// The metadata of one node of the state: a leaf's (or array's) last update time, or an object's
/// children. It mirrors the state tree exactly.
///
/// UNCONFIRMED: AWS documents per-attribute timestamps but shows no array example; an array is
/// treated as one leaf with one timestamp, as arrays are replaced whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Meta {
    /// A value that is not an object, last written at this unix time.
    Leaf(u64),
    /// An object's members.
    Object(MetaMap),
}

/// The metadata of an object's members.
pub(crate) type MetaMap = BTreeMap<String, Meta>;

impl Meta {
    /// The metadata as AWS writes it: `{"timestamp":t}` at each leaf.
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Self::Leaf(timestamp) => {
                let mut leaf = Map::new();
                leaf.insert("timestamp".into(), Value::from(*timestamp));
                Value::Object(leaf)
            }
            Self::Object(members) => map_to_value(members),
        }
    }
}

/// An object's metadata as JSON.
pub(crate) fn map_to_value(members: &MetaMap) -> Value {
    Value::Object(members.iter().map(|(key, meta)| (key.clone(), meta.to_value())).collect())
}

/// The metadata of a value written at `now`: every leaf stamped, objects mirrored.
pub(crate) fn stamp(value: &Value, now: u64) -> Meta {
    match value {
        Value::Object(members) => Meta::Object(stamp_map(members, now)),
        _ => Meta::Leaf(now),
    }
}

/// [`stamp`] for an object's members.
pub(crate) fn stamp_map(members: &JsonObject, now: u64) -> MetaMap {
    members.iter().map(|(key, value)| (key.clone(), stamp(value, now))).collect()
}

/// Whether `value` nests at most `levels` containers (objects or arrays) deep; a scalar is 0.
pub(crate) fn within_depth(value: &Value, levels: usize) -> bool {
    let fits = |child: &Value| levels.checked_sub(1).is_some_and(|rest| within_depth(child, rest));
    match value {
        Value::Object(members) => levels > 0 && members.values().all(fits),
        Value::Array(items) => levels > 0 && items.iter().all(fits),
        _ => true,
    }
}

/// Whether a `null` appears anywhere inside an array of `value` (arrays are stored whole, so a
/// `null` there would be stored rather than delete anything; AWS rejects it).
pub(crate) fn null_in_array(value: &Value, inside_array: bool) -> bool {
    match value {
        Value::Null => inside_array,
        Value::Array(items) => items.iter().any(|item| null_in_array(item, true)),
        Value::Object(members) => {
            members.values().any(|member| null_in_array(member, inside_array))
        }
        _ => false,
    }
}

/// Applies a partial update to an object and its metadata: `null` removes a member, an object
/// merges into an object (replacing a non-object), anything else replaces the member whole.
/// Objects left empty are removed, so the stored state never holds `{}`.
pub(crate) fn merge(values: &mut JsonObject, meta: &mut MetaMap, patch: &JsonObject, now: u64) {
    for (key, change) in patch {
        match change {
            Value::Null => {
                values.remove(key);
                meta.remove(key);
            }
            Value::Object(change) => {
                let (mut child, mut child_meta) = match (values.remove(key), meta.remove(key)) {
                    (Some(Value::Object(child)), Some(Meta::Object(child_meta))) => {
                        (child, child_meta)
                    }
                    // Not reachable while metadata mirrors the state; rebuilt rather than trusted.
                    (Some(Value::Object(child)), _) => {
                        let child_meta = stamp_map(&child, now);
                        (child, child_meta)
                    }
                    _ => (Map::new(), MetaMap::new()),
                };
                merge(&mut child, &mut child_meta, change, now);
                if !child.is_empty() {
                    values.insert(key.clone(), Value::Object(child));
                    meta.insert(key.clone(), Meta::Object(child_meta));
                }
            }
            value => {
                values.insert(key.clone(), value.clone());
                meta.insert(key.clone(), Meta::Leaf(now));
            }
        }
    }
}

/// The delta of AWS-IOT.md §4.2: walking `desired`, every member whose value differs from
/// `reported` (absent there included), with nested differences under their full path and a
/// differing array or scalar copied whole. Reported-only members are not part of it.
pub(crate) fn delta(desired: &JsonObject, reported: Option<&JsonObject>) -> JsonObject {
    let mut out = Map::new();
    for (key, wanted) in desired {
        let have = reported.and_then(|reported| reported.get(key));
        match (wanted, have) {
            (Value::Object(wanted), Some(Value::Object(have))) => {
                let nested = delta(wanted, Some(have));
                if !nested.is_empty() {
                    out.insert(key.clone(), Value::Object(nested));
                }
            }
            (wanted, Some(have)) if wanted == have => {}
            (wanted, _) => {
                out.insert(key.clone(), wanted.clone());
            }
        }
    }
    out
}

/// The part of `delta` at the paths `request` names (what an update's `/update/delta` carries).
pub(crate) fn restrict(delta: &JsonObject, request: &JsonObject) -> JsonObject {
    let mut out = Map::new();
    for (key, asked) in request {
        match (delta.get(key), asked) {
            (Some(Value::Object(nested)), Value::Object(asked)) => {
                let nested = restrict(nested, asked);
                if !nested.is_empty() {
                    out.insert(key.clone(), Value::Object(nested));
                }
            }
            (Some(value), _) => {
                out.insert(key.clone(), value.clone());
            }
            (None, _) => {}
        }
    }
    out
}

/// The metadata of the members of `values` (a delta, or a request's section), taken from `meta`
/// (the desired metadata); a member `meta` does not know gets `now`.
pub(crate) fn meta_of(values: &JsonObject, meta: &MetaMap, now: u64) -> Value {
    let mut out = Map::new();
    for (key, value) in values {
        let member = match (value, meta.get(key)) {
            (Value::Object(nested), Some(Meta::Object(nested_meta))) => {
                meta_of(nested, nested_meta, now)
            }
            (Value::Object(_), _) | (_, None) => stamp(value, now).to_value(),
            (_, Some(known)) => known.to_value(),
        };
        out.insert(key.clone(), member);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> JsonObject {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn depth_counts_objects_and_arrays() {
        assert!(within_depth(&json!(1), 0));
        assert!(within_depth(&json!({"a": 1}), 1));
        assert!(!within_depth(&json!({"a": {"b": 1}}), 1));
        // An array is a level too: object, array, object.
        assert!(within_depth(&json!({"a": [{"b": 1}]}), 3));
        assert!(!within_depth(&json!({"a": [{"b": 1}]}), 2));
    }

    #[test]
    fn a_nested_difference_keeps_its_path_and_arrays_are_copied_whole() {
        let desired = object(json!({"a": {"b": 1, "c": 2}, "list": [1, 2], "same": true}));
        let reported =
            object(json!({"a": {"b": 1, "c": 3}, "list": [1], "same": true, "extra": 0}));
        assert_eq!(
            Value::Object(delta(&desired, Some(&reported))),
            json!({"a": {"c": 2}, "list": [1, 2]})
        );
    }

    #[test]
    fn merging_nulls_into_a_missing_object_stores_nothing() {
        let mut values = Map::new();
        let mut meta = MetaMap::new();
        merge(&mut values, &mut meta, &object(json!({"a": {"b": null}})), 5);
        assert!(values.is_empty() && meta.is_empty());
    }
}
