//! kubectl's `-o` printers beyond tables and YAML/JSON: `name` (`apikey/<name>` lines),
//! `jsonpath=TEMPLATE` and `custom-columns=HEADER:.path,...`, over the same `v1` `List`
//! document `-o json` prints. The JSONPath subset is kubectl's everyday one: `{.a.b}`, indexes
//! `[0]`, wildcards `[*]`, literal text and `{"\n"}` between expressions.

use serde_json::Value;

use super::table::{NONE, Table};

/// One column of `-o custom-columns`: its header and the path of its cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The header.
    pub header: String,
    /// The path, e.g. `.status.phase`.
    pub path: String,
}

/// The columns of `custom-columns=NAME:.metadata.name,PHASE:.status.phase`.
pub fn parse_columns(spec: &str) -> Result<Vec<Column>, String> {
    spec.split(',')
        .map(|column| match column.split_once(':') {
            Some((header, path)) if !header.is_empty() && !path.is_empty() => Ok(Column {
                header: header.to_string(),
                path: path
                    .trim_start_matches('{')
                    .trim_end_matches('}')
                    .to_string(),
            }),
            _ => Err(format!(
                "custom-columns: {column:?} is not HEADER:.path (e.g. NAME:.metadata.name)"
            )),
        })
        .collect()
}

/// The values at `path` (`.a.b[0].c`, `.items[*].metadata.name`; `.` alone is the value).
pub fn select<'a>(path: &str, value: &'a Value) -> Result<Vec<&'a Value>, String> {
    let mut current = vec![value];
    let path = path.trim();
    let path = path.strip_prefix('.').unwrap_or(path);
    if path.is_empty() {
        return Ok(current);
    }
    for step in split_steps(path)? {
        let mut next = Vec::new();
        for v in current {
            match &step {
                Step::Field(name) => next.extend(v.get(name.as_str())),
                Step::Index(i) => next.extend(v.as_array().and_then(|a| a.get(*i))),
                Step::All => next.extend(v.as_array().into_iter().flatten()),
            }
        }
        current = next;
    }
    Ok(current)
}

enum Step {
    Field(String),
    Index(usize),
    All,
}

fn split_steps(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (field, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !field.is_empty() {
            steps.push(Step::Field(field.to_string()));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let end = inner
                .find(']')
                .ok_or_else(|| format!("unclosed [ in {path:?}"))?;
            let index = &inner[..end];
            steps.push(match index {
                "*" => Step::All,
                n => Step::Index(
                    n.parse()
                        .map_err(|_| format!("{n:?} is not an index in {path:?}"))?,
                ),
            });
            rest = &inner[end + 1..];
        }
        if !rest.is_empty() {
            return Err(format!("unexpected {rest:?} in {path:?}"));
        }
    }
    Ok(steps)
}

/// A value as kubectl's printers show it: strings bare, everything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `template` applied to `document`: literal text kept, each `{expression}` replaced by the
/// values it selects, separated by spaces; `{"text"}` is the text (with `\n` and `\t`).
pub fn jsonpath(template: &str, document: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("jsonpath: unclosed {{ in {template:?}"))?;
        let expression = &rest[start + 1..start + end];
        if let Some(literal) = expression
            .strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
        {
            out.push_str(&literal.replace("\\n", "\n").replace("\\t", "\t"));
        } else {
            let values = select(expression, document).map_err(|e| format!("jsonpath: {e}"))?;
            out.push_str(&values.into_iter().map(text).collect::<Vec<_>>().join(" "));
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The items as a table of `columns` (cells of several values joined by `,`; none: `<none>`).
pub fn custom_columns(columns: &[Column], items: &[Value]) -> Result<Table, String> {
    let mut table = Table::new(Vec::new());
    table.set_header(columns.iter().map(|c| c.header.clone()).collect());
    for item in items {
        let mut row = Vec::new();
        for column in columns {
            let values = select(&column.path, item)?;
            row.push(if values.is_empty() {
                NONE.to_string()
            } else {
                values.into_iter().map(text).collect::<Vec<_>>().join(",")
            });
        }
        table.row(row);
    }
    Ok(table)
}

/// The items as `resource/name` lines, as `-o name` prints them.
pub fn names(resource: &str, items: &[Value]) -> String {
    items
        .iter()
        .filter_map(|item| item["metadata"]["name"].as_str())
        .map(|name| format!("{resource}/{name}\n"))
        .collect()
}

/// The document without `metadata.managedFields` on it or its items (as kubectl prints it).
pub fn without_managed_fields(mut document: Value) -> Value {
    if let Some(metadata) = document.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    if let Some(items) = document.get_mut("items").and_then(Value::as_array_mut) {
        for item in items.iter_mut() {
            if let Some(metadata) = item.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.remove("managedFields");
            }
        }
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list() -> Value {
        json!({"apiVersion": "v1", "kind": "List", "items": [
            {"metadata": {"name": "a", "managedFields": [{"manager": "x"}]},
             "status": {"phase": "Approved"}},
            {"metadata": {"name": "b"}}]})
    }

    #[test]
    fn jsonpath_selects_fields_indexes_and_wildcards() {
        let doc = list();
        assert_eq!(jsonpath("{.items[*].metadata.name}", &doc).unwrap(), "a b");
        assert_eq!(
            jsonpath("{.items[0].status.phase}{\"\\n\"}", &doc).unwrap(),
            "Approved\n"
        );
        assert_eq!(jsonpath("kind={.kind}", &doc).unwrap(), "kind=List");
        assert_eq!(jsonpath("{.items[5].metadata.name}", &doc).unwrap(), "");
        assert!(jsonpath("{.items[x]}", &doc).is_err());
        assert!(jsonpath("{.kind", &doc).is_err());
    }

    #[test]
    fn custom_columns_print_a_cell_per_path() {
        let columns = parse_columns("NAME:.metadata.name,PHASE:.status.phase").unwrap();
        let items = list()["items"].as_array().unwrap().clone();
        let table = custom_columns(&columns, &items).unwrap();
        assert_eq!(
            table.render(""),
            "NAME   PHASE\na      Approved\nb      <none>\n"
        );
        assert!(parse_columns("NAME").is_err());
    }

    #[test]
    fn names_and_managed_fields() {
        let doc = without_managed_fields(list());
        assert_eq!(doc["items"][0]["metadata"], json!({"name": "a"}));
        assert_eq!(
            names("apikey", doc["items"].as_array().unwrap()),
            "apikey/a\napikey/b\n"
        );
    }
}
