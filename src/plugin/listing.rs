//! The flags of every listing (`-A`, `-o`, `-l`, `--no-headers`), as kubectl spells them.

use clap::Args;

use super::printers;
use crate::Result;

/// How a listing is printed (`-o`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The table with more columns (`-o wide`).
    Wide,
    /// `resource/name` lines.
    Name,
    /// A `v1` `List` of the objects, as YAML.
    Yaml,
    /// A `v1` `List` of the objects, as JSON.
    Json,
    /// `-o jsonpath=TEMPLATE` over the `List`.
    JsonPath(String),
    /// `-o custom-columns=HEADER:.path,...`, one row per object.
    CustomColumns(Vec<printers::Column>),
}

/// Parses `-o`: `table`, `wide`, `name`, `yaml`, `json`, `jsonpath=...`,
/// `custom-columns=...`.
pub fn parse_format(text: &str) -> Result<Format, String> {
    Ok(match text {
        "table" => Format::Table,
        "wide" => Format::Wide,
        "name" => Format::Name,
        "yaml" => Format::Yaml,
        "json" => Format::Json,
        _ => match text.split_once('=') {
            Some(("jsonpath", template)) => Format::JsonPath(template.to_string()),
            Some(("custom-columns", spec)) => Format::CustomColumns(printers::parse_columns(spec)?),
            _ => {
                return Err(format!(
                    "unknown output format {text:?}: one of table, wide, name, yaml, json, \
                     jsonpath=TEMPLATE, custom-columns=HEADER:.path,..."
                ));
            }
        },
    })
}

/// The flags of every listing.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// List across all namespaces instead of one.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,

    /// Output format: table, wide, name, yaml, json, jsonpath=TEMPLATE,
    /// custom-columns=HEADER:.path,...
    #[arg(short = 'o', long, default_value = "table", value_parser = parse_format,
          value_name = "FORMAT")]
    pub output: Format,

    /// Only the objects with these labels (`key=value,key2!=value`, as kubectl's `-l`).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Print tables without their header line.
    #[arg(long)]
    pub no_headers: bool,
}

impl ListArgs {
    /// The list parameters: the label selector.
    pub fn params(&self) -> kube::api::ListParams {
        let params = kube::api::ListParams::default();
        match &self.selector {
            Some(selector) => params.labels(selector),
            None => params,
        }
    }
}
