//! The bounded form in which text supplied by a peer (topics, client ids, certificate names,
//! ALPN lists) reaches a log line.
//!
//! A peer controls the length and the content of that text: a 65,535-byte topic written whole
//! makes one 65 KB log line per refused PUBLISH, and a newline inside a client id forges a log
//! line of its own. [`peer_text`] keeps the first [`PEER_TEXT_MAX_BYTES`] bytes (every topic and
//! client id within IoT Core's limits is shown whole), escapes control characters, and says how
//! long the text really was:
//!
//! ```text
//! aaaaaaaa…aaaa…(65535 bytes)
//! ```

use std::fmt;

/// The most bytes of one piece of peer text written to a log line: IoT Core's longest topic
/// (256 bytes), so that only text breaking IoT Core's limits is cut.
pub(crate) const PEER_TEXT_MAX_BYTES: usize = 256;

/// Text from a peer, for a log line: `Display` writes at most [`PEER_TEXT_MAX_BYTES`] bytes of
/// it with control characters escaped, then `…(N bytes)` when it was cut; `Debug` writes the
/// same excerpt quoted and escaped like `str`'s `Debug`.
#[derive(Clone, Copy)]
pub(crate) struct PeerText<'a> {
    excerpt: &'a str,
    /// The length of the whole text when it was cut.
    cut_from: Option<usize>,
}

/// The bounded form of `text` (see [`PeerText`]).
pub(crate) fn peer_text(text: &str) -> PeerText<'_> {
    if text.len() <= PEER_TEXT_MAX_BYTES {
        return PeerText { excerpt: text, cut_from: None };
    }
    let mut end = PEER_TEXT_MAX_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    PeerText { excerpt: text.get(..end).unwrap_or_default(), cut_from: Some(text.len()) }
}

impl PeerText<'_> {
    fn write_suffix(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cut_from {
            Some(len) => write!(f, "…({len} bytes)"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for PeerText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.excerpt.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        self.write_suffix(f)
    }
}

impl fmt::Debug for PeerText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.excerpt, f)?;
        self.write_suffix(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_within_the_limit_is_written_whole() {
        let topic = "a/".repeat(128);
        assert_eq!(topic.len(), PEER_TEXT_MAX_BYTES);
        assert_eq!(peer_text(&topic).to_string(), topic);
        assert_eq!(format!("{:?}", peer_text("dev")), "\"dev\"");
    }

    #[test]
    fn long_text_is_cut_and_its_length_given() {
        let topic = "a".repeat(65_535);
        let shown = peer_text(&topic).to_string();
        assert_eq!(shown, format!("{}…(65535 bytes)", "a".repeat(PEER_TEXT_MAX_BYTES)));
        let debug = format!("{:?}", peer_text(&topic));
        assert!(debug.ends_with("\"…(65535 bytes)") && debug.len() < 300, "{debug}");
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        // 'é' is two bytes: 255 of 'x' and then 'é' would end at byte 257.
        let text = format!("{}é{}", "x".repeat(255), "y".repeat(10));
        assert_eq!(peer_text(&text).to_string(), format!("{}…(267 bytes)", "x".repeat(255)));
    }

    #[test]
    fn control_characters_cannot_forge_a_line() {
        let shown = peer_text("dev\nINFO fake line\u{1b}[2J").to_string();
        assert_eq!(shown, "dev\\nINFO fake line\\u{1b}[2J");
        assert!(!format!("{:?}", peer_text("a\nb")).contains('\n'));
    }
}
