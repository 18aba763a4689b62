//! The kubectl-style table every listing prints, the text it shows for a missing value, and
//! [`inert`], what the plugin prints of any text from the cluster.

use crate::resources::common::is_hidden;

/// What a table shows for a missing value, as kubectl does.
pub const NONE: &str = "<none>";

/// A table of text cells, printed with columns padded to their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    namespace_column: bool,
}

impl Table {
    /// A table with these column headers.
    pub fn new(header: Vec<&'static str>) -> Self {
        Self {
            header: header.into_iter().map(str::to_string).collect(),
            ..Self::default()
        }
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Replaces the header line.
    pub fn set_header(&mut self, header: Vec<String>) {
        self.header = header;
    }

    /// A table of objects with these column headers, led by NAMESPACE when the listing spans
    /// all namespaces.
    pub fn of_objects(all_namespaces: bool, header: &[&'static str]) -> Self {
        let mut columns = if all_namespaces {
            vec!["NAMESPACE".to_string()]
        } else {
            Vec::new()
        };
        columns.extend(header.iter().map(|h| h.to_string()));
        Self {
            header: columns,
            rows: Vec::new(),
            namespace_column: all_namespaces,
        }
    }

    /// Adds the row of an object in `namespace` (shown when the table has a NAMESPACE column).
    pub fn object_row(&mut self, namespace: Option<&str>, cells: Vec<String>) {
        let mut row = if self.namespace_column {
            vec![namespace.unwrap_or_default().to_string()]
        } else {
            Vec::new()
        };
        row.extend(cells);
        self.row(row);
    }

    /// Adds a row; an empty cell shows as [`NONE`], and control characters and bidirectional
    /// overrides (which could drive the terminal or make a cell read as something else) as `?`.
    pub fn row(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .map(|c| {
                if c.is_empty() {
                    NONE.to_string()
                } else {
                    inert(&c)
                }
            })
            .collect();
        self.rows.push(cells);
    }

    /// The table as text, one line per row, three spaces between columns; `empty` instead when
    /// there are no rows.
    pub fn render(&self, empty: &str) -> String {
        self.render_with(empty, true)
    }

    /// The table as text, with or without its header line.
    pub fn render_with(&self, empty: &str, headers: bool) -> String {
        if self.rows.is_empty() {
            return format!("{empty}\n");
        }
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let last = cells.len().saturating_sub(1);
            let mut text = String::new();
            for (i, (cell, width)) in cells.into_iter().zip(&widths).enumerate() {
                text.push_str(cell);
                if i < last {
                    let pad = width - cell.chars().count() + 3;
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.push('\n');
            text
        };
        let mut out = if headers {
            line(self.header.iter().map(String::as_str).collect())
        } else {
            String::new()
        };
        for row in &self.rows {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
        }
        out
    }
}

/// `text` with every control, format, separator or invisible character (see
/// [`is_hidden`]) replaced by `?`: what the plugin prints of text from the cluster, whatever
/// the CRDs' schemas let through (objects stored before they refused it, or a cluster without
/// them).
pub fn inert(text: &str) -> String {
    text.chars()
        .map(|c| if is_hidden(c) { '?' } else { c })
        .collect()
}
