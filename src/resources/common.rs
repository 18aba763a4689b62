//! Shapes shared between devportal's resources and the Kuadrant read models, and the rules that
//! keep free text from the cluster harmless on terminals and front ends.

use schemars::JsonSchema;

// The characters no free text may hold, as a regexp class body (Go syntax, as the API server
// evaluates schema patterns): control characters (a BEL or an escape sequence would reach every
// terminal that runs `kubectl get`), format characters (bidirectional overrides and marks that
// make text read differently from what it is, zero-width spaces and joiners, the byte order
// mark), line and paragraph separators, and the fillers that render as nothing. [`is_hidden`]
// is the same set in Rust.
macro_rules! hidden {
    () => {
        r"\p{Cf}\p{Zl}\p{Zp}\x{034F}\x{115F}\x{1160}\x{17B4}\x{17B5}\x{3164}\x{FFA0}"
    };
}

/// Schema pattern for one line of free text: no control, format, separator or invisible
/// characters (see [`is_hidden`]).
pub const SINGLE_LINE: &str = concat!(r"^[^\p{Cc}", hidden!(), "]*$");

/// Like [`SINGLE_LINE`], but line breaks (`\n`) and tabs are allowed.
pub const MULTI_LINE: &str = concat!(r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F", hidden!(), "]*$");

/// Schema pattern for a link front ends render: an `http` or `https` URL (never `javascript:`
/// or `data:`), without spaces or hidden characters.
pub const WEB_URL: &str = concat!(r"^(?i:https?)://[^\p{Z}\p{Cc}", hidden!(), "]+$");

/// Schema pattern for a source repository: an `http(s)`, `ssh` or `git` URL, or the scp-like
/// `user@host:path` form.
pub const GIT_URL: &str = concat!(
    r"^((?i:https?|ssh|git)://|[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:)[^\p{Z}\p{Cc}",
    hidden!(),
    "]+$"
);

/// Whether `c` is a format character (Unicode general category Cf, Unicode 16).
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{0600}'..='\u{0605}'
        | '\u{061C}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{0890}'..='\u{0891}'
        | '\u{08E2}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}'
        | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}')
}

/// Whether `c` is one of the characters free text may not hold: a control character, a format
/// character, a line or paragraph separator, or a filler that renders as nothing (the set
/// [`SINGLE_LINE`] refuses).
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || is_format(c)
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{3164}'
                | '\u{FFA0}'
        )
}

/// `text` with every [hidden](is_hidden) character written as a `\u{...}` escape, for messages
/// that name a value people must be able to see.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_hidden(c) || c == '\\' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

use serde::{Deserialize, Serialize};

/// Rate limits of one plan tier, as a Kuadrant `PlanPolicy` declares them.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Requests allowed per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<i64>,
    /// Requests allowed per week.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<i64>,
    /// Requests allowed per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<i64>,
    /// Requests allowed per year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yearly: Option<i64>,
    /// Limits over custom windows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<CustomLimit>,
}

/// A limit over a custom window such as `1m` or `10s`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomLimit {
    /// Requests allowed per window.
    pub limit: i64,
    /// Window length in Gateway API duration form (`1m`, `30s`, `1h`).
    pub window: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_the_ones_people_cannot_see() {
        for c in [
            '\u{7}',
            '\u{1b}',
            '\u{85}',
            '\u{200B}',
            '\u{200D}',
            '\u{200F}',
            '\u{061C}',
            '\u{FEFF}',
            '\u{2028}',
            '\u{2029}',
            '\u{202E}',
            '\u{2066}',
            '\u{E0041}',
            '\u{3164}',
        ] {
            assert!(is_hidden(c), "{:?}", c.escape_unicode().to_string());
        }
        for c in ['a', 'é', 'ß', '東', '🙂', ' ', '\u{A0}', '-', '\u{FE0F}'] {
            assert!(!is_hidden(c), "{c}");
        }
    }

    #[test]
    fn escaped_text_shows_what_is_hidden_and_keeps_the_rest() {
        assert_eq!(escaped("gold\u{7}"), "gold\\u{7}");
        assert_eq!(escaped("\u{202E}gnp.exe"), "\\u{202e}gnp.exe");
        assert_eq!(escaped("plain tier"), "plain tier");
        assert_eq!(
            escaped(r"a\u{7}"),
            r"a\u{5c}u{7}",
            "a backslash cannot fake an escape"
        );
    }

    fn matches(pattern: &str, text: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(text)
    }

    #[test]
    fn free_text_refuses_what_people_cannot_see() {
        for text in ["Orders for the shop", "Bücher & 東京 🙂", ""] {
            assert!(
                matches(SINGLE_LINE, text) && matches(MULTI_LINE, text),
                "{text}"
            );
        }
        assert!(matches(MULTI_LINE, "line one\n\tline two"));
        assert!(!matches(SINGLE_LINE, "line one\nline two"));
        for hidden in [
            "\u{7}", "\u{200B}", "\u{200F}", "\u{061C}", "\u{FEFF}", "\u{2028}", "\u{202E}",
        ] {
            let text = format!("use case{hidden}");
            assert!(!matches(SINGLE_LINE, &text), "{}", escaped(&text));
            assert!(!matches(MULTI_LINE, &text), "{}", escaped(&text));
        }
        // The schema and the Rust rule agree, character by character.
        for c in (0..0x3200)
            .chain(0xFE00..0x10000)
            .chain(0xE0000..0xE0080)
            .filter_map(char::from_u32)
        {
            let text = c.to_string();
            assert_eq!(
                matches(SINGLE_LINE, &text),
                !is_hidden(c),
                "{}",
                escaped(&text)
            );
        }
    }

    #[test]
    fn links_are_web_urls() {
        for url in ["https://docs.example.com/api?x=1#y", "HTTP://intranet/docs"] {
            assert!(matches(WEB_URL, url), "{url}");
        }
        for url in [
            "javascript:alert(1)",
            "JavaScript://%0aalert(1)",
            "data:text/html;base64,PHNjcmlwdD4=",
            " https://x",
            "https://x y",
            "https://x\u{200B}",
            "//example.com",
            "https://",
        ] {
            assert!(!matches(WEB_URL, url), "{}", escaped(url));
        }
        for url in [
            "https://github.com/org/repo",
            "ssh://git@host/repo.git",
            "git@github.com:org/repo.git",
        ] {
            assert!(matches(GIT_URL, url), "{url}");
        }
        for url in ["javascript:alert(1)", "data:,x", "file:///etc/passwd"] {
            assert!(!matches(GIT_URL, url), "{url}");
        }
    }
}
