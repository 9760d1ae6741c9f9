//! Thing names, shadow names and client tokens, checked when they are built (AWS-IOT.md §4.3).
//!
//! ```
//! use iot443_proto::aws::shadow::{ClientToken, NameError, ShadowName, ThingName};
//!
//! assert!(ThingName::new("tls-test").is_ok());
//! assert_eq!(ThingName::new("a/b"), Err(NameError::InvalidCharacter { kind: "thing name", character: '/' }));
//! assert!(ShadowName::new("$config").is_ok());
//! assert!(ClientToken::new("x".repeat(64)).is_ok());
//! assert!(ClientToken::new("x".repeat(65)).is_err());
//! ```

use alloc::string::String;
use core::fmt;

/// The longest thing name, in characters (all of them ASCII).
pub const MAX_THING_NAME_LEN: usize = 128;

/// The longest shadow name, in characters (all of them ASCII).
pub const MAX_SHADOW_NAME_LEN: usize = 64;

/// The longest `clientToken`, in UTF-8 bytes; a longer one is rejected with 400 "Invalid
/// clientToken".
pub const MAX_CLIENT_TOKEN_BYTES: usize = 64;

/// Why a thing name, a shadow name or a client token is not valid.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("{kind} is empty: it needs at least one character")]
    Empty {
        /// What was being named: "thing name" or "shadow name".
        kind: &'static str,
    },
    /// The name or token is longer than its limit.
    #[error("{kind} is {len} bytes long, at most {max} allowed; shorten it")]
    TooLong {
        /// "thing name", "shadow name" or "clientToken".
        kind: &'static str,
        /// The length found.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name holds a character outside its alphabet.
    #[error(
        "{kind} contains {character:?}: only letters, digits, ':', '_' and '-' are allowed (and '$' in a shadow name)"
    )]
    InvalidCharacter {
        /// "thing name" or "shadow name".
        kind: &'static str,
        /// The first character outside the alphabet.
        character: char,
    },
}

/// Checks `name` against `[a-zA-Z0-9:_-]+` (plus `$` when `dollar` is set) and `max` characters.
fn check_name(name: &str, kind: &'static str, max: usize, dollar: bool) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if let Some(character) = name.chars().find(|&c| {
        !(c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-') || (dollar && c == '$'))
    }) {
        return Err(NameError::InvalidCharacter { kind, character });
    }
    // Only ASCII is left, so bytes and characters are the same count.
    if name.len() > max {
        return Err(NameError::TooLong { kind, len: name.len(), max });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(value: &str) -> Result<Self, NameError> {
                Self::new(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, NameError> {
                Self::new(value)
            }
        }
    };
}

name_type!(
    /// A thing name: 1 to 128 characters of `[a-zA-Z0-9:_-]` (AWS discourages `:`, but accepts it).
    ThingName
);

impl ThingName {
    /// Checks and wraps a thing name.
    ///
    /// # Errors
    /// [`NameError`] when it is empty, longer than [`MAX_THING_NAME_LEN`] or holds another character.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        check_name(&name, "thing name", MAX_THING_NAME_LEN, false)?;
        Ok(Self(name))
    }
}

name_type!(
    /// A named shadow's name: 1 to 64 characters of `[$a-zA-Z0-9:_-]`. The classic shadow has none.
    ShadowName
);

impl ShadowName {
    /// Checks and wraps a shadow name.
    ///
    /// # Errors
    /// [`NameError`] when it is empty, longer than [`MAX_SHADOW_NAME_LEN`] or holds another
    /// character.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        check_name(&name, "shadow name", MAX_SHADOW_NAME_LEN, true)?;
        Ok(Self(name))
    }
}

name_type!(
    /// A request's `clientToken`: any string of at most 64 UTF-8 bytes, echoed in every answer.
    ClientToken
);

impl ClientToken {
    /// Checks and wraps a client token.
    ///
    /// AWS documents only the length limit, so any UTF-8 text up to 64 bytes is accepted
    /// (including the empty string).
    ///
    /// # Errors
    /// [`NameError::TooLong`] past [`MAX_CLIENT_TOKEN_BYTES`].
    pub fn new(token: impl Into<String>) -> Result<Self, NameError> {
        let token = token.into();
        if token.len() > MAX_CLIENT_TOKEN_BYTES {
            return Err(NameError::TooLong {
                kind: "clientToken",
                len: token.len(),
                max: MAX_CLIENT_TOKEN_BYTES,
            });
        }
        Ok(Self(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn thing_names_follow_the_aws_alphabet_and_length() {
        // Exactly at the limit is fine, one more is not.
        assert!(ThingName::new("a".repeat(128)).is_ok());
        assert_eq!(
            ThingName::new("a".repeat(129)),
            Err(NameError::TooLong { kind: "thing name", len: 129, max: 128 })
        );
        assert!(ThingName::new("My_IoT-Thing:1").is_ok());
        assert_eq!(ThingName::new(""), Err(NameError::Empty { kind: "thing name" }));
        // `$` belongs to shadow names only; `+`, `#` and `/` would break topics.
        for bad in ["$x", "a+b", "a#", "a/b", "a b", "é"] {
            assert!(ThingName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shadow_names_allow_dollar_and_64_characters() {
        assert!(ShadowName::new("$package").is_ok());
        assert!(ShadowName::new("a".repeat(64)).is_ok());
        assert!(matches!(ShadowName::new("a".repeat(65)), Err(NameError::TooLong { max: 64, .. })));
        assert!(ShadowName::new("a/b").is_err());
    }

    #[test]
    fn client_tokens_are_limited_in_bytes_not_characters() {
        // 32 two-byte characters are 64 bytes: accepted; 33 are 66 bytes: refused.
        assert!(ClientToken::new("é".repeat(32)).is_ok());
        assert_eq!(
            ClientToken::new("é".repeat(33)),
            Err(NameError::TooLong { kind: "clientToken", len: 66, max: 64 })
        );
        assert_eq!(ClientToken::new("tok").map(|t| t.to_string()), Ok("tok".to_string()));
    }
}
