//! What the listings print: kubectl-style tables, or the objects as a YAML or JSON `List`; and
//! the small formatters they share (ages, timestamps, missing values).

use std::io::Write;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::listing::{Format, ListArgs};
use super::printers;
pub use super::table::{NONE, Table, inert};
use crate::resources::common::is_hidden;
use crate::{Error, Result};

/// A JSON document with every hidden character in its strings written as a `\uXXXX` escape:
/// the same document, nothing in it acting on the terminal. (JSON text outside strings is ASCII,
/// so every hidden character is inside one.)
fn escaped_json(document: &str) -> String {
    let mut out = String::with_capacity(document.len());
    for c in document.chars() {
        if is_hidden(c) && !matches!(c, '\n' | '\t') {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A YAML document with every hidden character but line breaks and tabs replaced by `?`, as in
/// tables (YAML can escape them only in double-quoted scalars; `-o json` keeps them, escaped).
fn inert_yaml(document: &str) -> String {
    document
        .chars()
        .map(|c| {
            if is_hidden(c) && !matches!(c, '\n' | '\t') {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Writes `text` to stdout.
pub fn emit(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|source| Error::Io {
            path: "stdout".into(),
            source,
        })
}

/// `items` as a `v1` `List` in `format` (YAML or JSON, without managedFields); `None` for
/// the other formats.
pub fn list_document<T: Serialize>(format: &Format, items: &[T]) -> Result<Option<String>> {
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let list = printers::without_managed_fields(list);
    Ok(match format {
        Format::Json => Some(escaped_json(&serde_json::to_string_pretty(&list)?) + "\n"),
        Format::Yaml => Some(inert_yaml(&serde_yaml::to_string(&list)?)),
        _ => None,
    })
}

/// Prints `items` (of kind `resource`, e.g. `apikey`) in the listing's format; `table(wide)`
/// builds the table, `empty` is what a table without rows says.
pub fn print_list<T: Serialize>(
    args: &ListArgs,
    resource: &str,
    items: &[T],
    table: impl FnOnce(bool) -> Table,
    empty: &str,
) -> Result<()> {
    if let Some(document) = list_document(&args.output, items)? {
        return emit(&document);
    }
    let values = || -> Result<Vec<serde_json::Value>> {
        Ok(items
            .iter()
            .map(serde_json::to_value)
            .collect::<std::result::Result<_, _>>()?)
    };
    let text = match &args.output {
        Format::Table => table(false).render_with(empty, !args.no_headers),
        Format::Wide => table(true).render_with(empty, !args.no_headers),
        Format::Name => printers::names(resource, &values()?),
        Format::JsonPath(template) => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": values()?});
            inert_yaml(&printers::jsonpath(template, &list).map_err(Error::Invalid)?)
        }
        Format::CustomColumns(columns) => printers::custom_columns(columns, &values()?)
            .map_err(Error::Invalid)?
            .render_with(empty, !args.no_headers),
        Format::Yaml | Format::Json => String::new(),
    };
    emit(&text)
}

/// How long ago `then` was, the way kubectl's AGE column says it (`45s`, `12m`, `5h`, `3d`).
pub fn age(then: Option<&Time>, now: Timestamp) -> String {
    let Some(then) = then else {
        return String::new();
    };
    let seconds = now.duration_since(then.0).as_secs().max(0);
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    match () {
        _ if seconds < 120 => format!("{seconds}s"),
        _ if minutes < 10 => format!("{minutes}m{}s", seconds % 60),
        _ if hours < 3 => format!("{minutes}m"),
        _ if hours < 8 => format!("{hours}h{}m", minutes % 60),
        _ if hours < 48 => format!("{hours}h"),
        _ if days < 8 => format!("{days}d{}h", hours % 24),
        _ if days < 730 => format!("{days}d"),
        _ => format!("{}y", days / 365),
    }
}

/// A timestamp to the second, in RFC 3339 (UTC); empty when absent.
pub fn timestamp(time: Option<&Time>) -> String {
    time.map(|t| format!("{:.0}", t.0)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Time {
        Time(text.parse().unwrap())
    }

    #[test]
    fn columns_are_padded_to_their_widest_cell_and_empty_cells_say_none() {
        let mut table = Table::new(vec!["NAME", "PHASE"]);
        table.row(vec!["toys-x1".into(), "Approved".into()]);
        table.row(vec!["a".into(), String::new()]);
        assert_eq!(
            table.render("nothing"),
            "NAME      PHASE\ntoys-x1   Approved\na         <none>\n"
        );
        assert_eq!(Table::new(vec!["NAME"]).render("No keys."), "No keys.\n");
    }

    #[test]
    fn cells_cannot_drive_the_terminal() {
        let mut table = Table::new(vec!["USE CASE"]);
        table.row(vec!["\u{1b}]52;c;evil\u{7}ok\u{202E}txt.exe".into()]);
        assert_eq!(table.render(""), "USE CASE\n?]52;c;evil?ok?txt.exe\n");
    }

    #[test]
    fn format_and_invisible_characters_are_shown_not_obeyed() {
        let mut table = Table::new(vec!["USE CASE"]);
        table.row(vec![
            "a\u{200B}b\u{200F}c\u{061C}d\u{FEFF}e\u{2028}f".into(),
        ]);
        assert_eq!(table.render(""), "USE CASE\na?b?c?d?e?f\n");
        let item = serde_json::json!({"spec": {"tier": "gold\u{7}\u{202E}", "note": "a\u{E0041}"}});
        let json = list_document(&Format::Json, &[&item]).unwrap().unwrap();
        assert!(!json.chars().any(is_hidden_but_layout), "{json:?}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back["items"][0], item,
            "-o json keeps the exact value, escaped"
        );
        let yaml = list_document(&Format::Yaml, &[&item]).unwrap().unwrap();
        assert!(!yaml.chars().any(is_hidden_but_layout), "{yaml:?}");
    }

    fn is_hidden_but_layout(c: char) -> bool {
        is_hidden(c) && !matches!(c, '\n' | '\t')
    }

    #[test]
    fn listings_across_namespaces_lead_with_the_namespace() {
        let mut across = Table::of_objects(true, &["NAME"]);
        across.object_row(Some("team-a"), vec!["k".into()]);
        assert_eq!(across.render(""), "NAMESPACE   NAME\nteam-a      k\n");
        let mut here = Table::of_objects(false, &["NAME"]);
        here.object_row(Some("team-a"), vec!["k".into()]);
        assert_eq!(here.render(""), "NAME\nk\n");
    }

    #[test]
    fn ages_read_like_kubectls() {
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let age_of = |t: &str| age(Some(&at(t)), now);
        assert_eq!(age_of("2026-01-09T23:59:15Z"), "45s");
        assert_eq!(age_of("2026-01-09T23:55:30Z"), "4m30s");
        assert_eq!(age_of("2026-01-09T23:00:00Z"), "60m");
        assert_eq!(age_of("2026-01-09T19:30:00Z"), "4h30m");
        assert_eq!(age_of("2026-01-09T00:00:00Z"), "24h");
        assert_eq!(age_of("2026-01-06T12:00:00Z"), "3d12h");
        assert_eq!(age_of("2025-12-01T00:00:00Z"), "40d");
        assert_eq!(age(None, now), "");
    }

    #[test]
    fn timestamps_are_shown_to_the_second() {
        assert_eq!(
            timestamp(Some(&at("2026-01-10T08:15:00.123456Z"))),
            "2026-01-10T08:15:00Z"
        );
        assert_eq!(timestamp(None), "");
    }

    #[test]
    fn lists_are_v1_lists_in_yaml_and_json() {
        let items = vec![serde_json::json!({"metadata": {"name": "a"}})];
        let json = list_document(&Format::Json, &items).unwrap().unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["kind"], "List");
        assert_eq!(parsed["items"][0]["metadata"]["name"], "a");
        let yaml = list_document(&Format::Yaml, &items).unwrap().unwrap();
        let parsed: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(parsed["items"][0]["metadata"]["name"], "a");
        assert!(list_document(&Format::Table, &items).unwrap().is_none());
    }
}
