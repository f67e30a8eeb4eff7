//! Input text quoted in error messages, cut to a bounded length: a 10 MB cell must give a short
//! error, not a 10 MB one (nor 20 MB when the reason quotes it too).

use std::fmt;

/// At most this many characters of a value are quoted.
pub const EXCERPT_CHARS: usize = 80;

/// At most this many characters of a message that may hold input text (a reason, a parser's
/// message) are shown.
pub const MESSAGE_CHARS: usize = 1_000;

/// Displays text as `{:?}` does, cut after [`EXCERPT_CHARS`] characters with an ellipsis and the
/// whole length: `"9999…" (10000001 bytes)`.
#[derive(Clone, Copy, Debug)]
pub struct Excerpt<'a>(pub &'a str);

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(EXCERPT_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((end, _)) => write!(f, "{:?}… ({} bytes)", &self.0[..end], self.0.len()),
        }
    }
}

/// A message cut after [`MESSAGE_CHARS`] characters, with an ellipsis and the whole length:
/// for messages that may quote input text whole.
pub fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    clip_to(text, MESSAGE_CHARS)
}

/// `text` cut after `chars` characters, with an ellipsis and the whole length; unquoted (for
/// text quoted already, such as a TOML value as written).
pub fn clip_to(text: &str, chars: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(chars) {
        None => text.into(),
        Some((end, _)) => format!("{}… ({} bytes)", &text[..end], text.len()).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole_and_long_text_cut_with_its_length() {
        assert_eq!(Excerpt("a\"b").to_string(), r#""a\"b""#);
        let long = "é".repeat(100);
        let shown = Excerpt(&long).to_string();
        assert_eq!(shown, format!("{:?}… (200 bytes)", "é".repeat(80)));
        assert_eq!(clip(&long), long);
        assert_eq!(clip_to(&long, 2), "éé… (200 bytes)");
        let longer = "é".repeat(1_500);
        assert_eq!(
            clip(&longer),
            format!("{}… (3000 bytes)", "é".repeat(1_000))
        );
        let ten_mb = "9".repeat(10_000_000);
        assert!(Excerpt(&ten_mb).to_string().len() < 120);
    }
}
