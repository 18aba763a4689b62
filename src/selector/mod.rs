//! Kubernetes label selectors, as Authorino applies them to API-key Secrets, and the labels that
//! satisfy them.
//!
//! Authorino indexes a Secret for an AuthConfig's `apiKey` rule when its labels match the rule's
//! `selector` (a `metav1.LabelSelector`: `matchLabels` and `matchExpressions`, ANDed) and the
//! process-wide `--secret-label-selector` (a selector string, by default
//! `authorino.kuadrant.io/managed-by=authorino`). Both become [`Requirement`]s here; [`satisfy`]
//! finds the labels a Secret needs to match them all, or says why no Secret can.

pub mod overlap;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// How a requirement relates a label to its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// The label is set to one of the values.
    In,
    /// The label is absent or set to none of the values.
    NotIn,
    /// The label is set, to any value.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// One requirement of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// The relation.
    pub operator: Operator,
    /// The values of `In` and `NotIn`; empty otherwise.
    pub values: Vec<String>,
}

impl fmt::Display for Requirement {
    /// The selector-string form, as `kubectl get -l` takes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        match self.operator {
            Operator::In if self.values.len() == 1 => write!(f, "{key}={}", self.values[0]),
            Operator::In => write!(f, "{key} in ({})", self.values.join(",")),
            Operator::NotIn if self.values.len() == 1 => write!(f, "{key}!={}", self.values[0]),
            Operator::NotIn => write!(f, "{key} notin ({})", self.values.join(",")),
            Operator::Exists => write!(f, "{key}"),
            Operator::DoesNotExist => write!(f, "!{key}"),
        }
    }
}

impl Requirement {
    fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, String> {
        check_key(key)?;
        for value in &values {
            check_value(value)?;
        }
        let needs_values = matches!(operator, Operator::In | Operator::NotIn);
        if needs_values == values.is_empty() {
            return Err(format!(
                "{operator:?} on {key:?} {}",
                if needs_values {
                    "needs at least one value"
                } else {
                    "takes no values"
                }
            ));
        }
        Ok(Self {
            key: key.to_string(),
            operator,
            values,
        })
    }

    /// Whether `labels` meet this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// The requirements of a `metav1.LabelSelector`, validated as Kubernetes'
/// `LabelSelectorAsSelector` (which Authorino calls) validates them. An empty selector has none
/// and matches every Secret.
pub fn from_label_selector(selector: &LabelSelector) -> Result<Vec<Requirement>, String> {
    let mut requirements = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        requirements.push(
            Requirement::new(key, Operator::In, vec![value.clone()])
                .map_err(|e| format!("matchLabels: {e}"))?,
        );
    }
    for (index, expression) in selector.match_expressions.iter().flatten().enumerate() {
        let operator = match expression.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => {
                return Err(format!(
                    "matchExpressions[{index}]: operator {other:?} is not one of In, NotIn, Exists, DoesNotExist"
                ));
            }
        };
        let values = expression.values.clone().unwrap_or_default();
        requirements.push(
            Requirement::new(&expression.key, operator, values)
                .map_err(|e| format!("matchExpressions[{index}]: {e}"))?,
        );
    }
    Ok(requirements)
}

/// Parses a selector string (`a=b,c!=d,e in (f,g),h notin (i),j,!k`), the syntax of Authorino's
/// `--secret-label-selector`. Numeric comparisons (`>`, `<`) are refused: devportal cannot pick a
/// label for them. Authorino itself treats an unparsable selector as "everything"; devportal
/// refuses it instead, so a typo does not go unnoticed.
pub fn parse(text: &str) -> Result<Vec<Requirement>, String> {
    let mut requirements = Vec::new();
    for part in split_top_level(text)? {
        let part = part.trim();
        if part.is_empty() {
            if text.trim().is_empty() {
                continue;
            }
            return Err(format!("empty requirement in {text:?}"));
        }
        let requirement = if let Some(key) = part.strip_prefix('!') {
            Requirement::new(key.trim(), Operator::DoesNotExist, vec![])
        } else if let Some(open) = part.find('(') {
            let Some(list) = part[open + 1..].strip_suffix(')') else {
                return Err(format!("{part:?}: missing \")\""));
            };
            let head = part[..open].trim_end();
            let (key, operator) = if let Some(key) = head.strip_suffix(" notin") {
                (key, Operator::NotIn)
            } else if let Some(key) = head.strip_suffix(" in") {
                (key, Operator::In)
            } else {
                return Err(format!(
                    "{part:?}: expected \"in\" or \"notin\" before \"(\""
                ));
            };
            let values = list.split(',').map(|v| v.trim().to_string()).collect();
            Requirement::new(key.trim(), operator, values)
        } else if part.contains(['>', '<']) {
            Err(format!(
                "{part:?}: numeric comparisons are not supported; use =, !=, in, notin or a bare key"
            ))
        } else if let Some((key, value)) = part.split_once("!=") {
            Requirement::new(key.trim(), Operator::NotIn, vec![value.trim().to_string()])
        } else if let Some((key, value)) = part.split_once('=') {
            let value = value.strip_prefix('=').unwrap_or(value);
            Requirement::new(key.trim(), Operator::In, vec![value.trim().to_string()])
        } else {
            Requirement::new(part, Operator::Exists, vec![])
        };
        requirements.push(requirement.map_err(|e| format!("{text:?}: {e}"))?);
    }
    Ok(requirements)
}

fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (index, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("{text:?}: unbalanced \")\""))?
            }
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("{text:?}: unbalanced \"(\""));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

/// Whether `labels` meet every requirement.
pub fn matches(requirements: &[Requirement], labels: &BTreeMap<String, String>) -> bool {
    requirements.iter().all(|r| r.matches(labels))
}

/// The labels a Secret needs to meet every requirement, on top of the `fixed` labels it always
/// carries: `In` sets one of the values (the first one allowed, in the selector's order),
/// `Exists` sets the label (to `true`, or another value the `NotIn`s allow), `NotIn` and
/// `DoesNotExist` leave it unset. Fails, saying why, when no set of labels can meet them all.
pub fn satisfy(
    requirements: &[Requirement],
    fixed: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut labels = fixed.clone();
    let keys: BTreeSet<&str> = requirements.iter().map(|r| r.key.as_str()).collect();
    for key in keys {
        let on_key: Vec<&Requirement> = requirements.iter().filter(|r| r.key == key).collect();
        let listed = || {
            on_key
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let excluded: BTreeSet<&str> = on_key
            .iter()
            .filter(|r| r.operator == Operator::NotIn)
            .flat_map(|r| r.values.iter().map(String::as_str))
            .collect();
        let mut allowed: Option<Vec<&str>> = None;
        for r in on_key.iter().filter(|r| r.operator == Operator::In) {
            let values = r.values.iter().map(String::as_str);
            allowed = Some(match allowed {
                None => values.collect(),
                Some(before) => before
                    .into_iter()
                    .filter(|v| r.values.iter().any(|w| w == v))
                    .collect(),
            });
        }
        let must_exist = allowed.is_some() || on_key.iter().any(|r| r.operator == Operator::Exists);
        let must_not = on_key.iter().any(|r| r.operator == Operator::DoesNotExist);
        if let Some(value) = fixed.get(key) {
            if !on_key.iter().all(|r| r.matches(fixed)) {
                return Err(format!(
                    "it requires {}, but devportal sets {key}={value} on every enforcement Secret",
                    listed()
                ));
            }
            continue;
        }
        if must_not && must_exist {
            return Err(format!(
                "label {key} would have to be both set and unset ({})",
                listed()
            ));
        }
        let value = match allowed {
            Some(allowed) => match allowed.into_iter().find(|v| !excluded.contains(v)) {
                Some(v) => v.to_string(),
                None => return Err(format!("no value of label {key} meets {}", listed())),
            },
            None if must_exist => (0..=excluded.len())
                .map(|n| {
                    if n == 0 {
                        "true".to_string()
                    } else {
                        format!("true-{n}")
                    }
                })
                .find(|v| !excluded.contains(v.as_str()))
                .expect("more candidates than exclusions"),
            None => continue,
        };
        labels.insert(key.to_string(), value);
    }
    debug_assert!(matches(requirements, &labels));
    Ok(labels)
}

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters (alphanumerics, `-`, `_`, `.`, alphanumeric at both ends).
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if prefix.is_empty() || prefix.len() > 253 || !prefix.split('.').all(valid_label) {
            return Err(format!(
                "label key {key:?}: the prefix must be a DNS subdomain"
            ));
        }
    }
    if name.is_empty() || !valid_name(name) {
        return Err(format!(
            "label key {key:?}: the name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
        ));
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 characters like a key's name.
fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || valid_name(value) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?} must be at most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
        ))
    }
}

fn valid_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    s.len() <= 63
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests;
