//! `kubectl devportal keys`: a consumer's APIKeys listed (and watched), and the phase line
//! `request` and the MESSAGE column share.

use clap::Args;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, ResourceExt};

use super::listing::ListArgs;
use super::output::{self, Table};
use super::session::Session;
use crate::resources::APIKey;
use crate::{Error, Result};

/// Arguments of `keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Only these keys (default: all).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,

    /// After listing, print a row for every change (until interrupted).
    #[arg(short = 'w', long)]
    pub watch: bool,

    /// Namespace selection and output format.
    #[command(flatten)]
    pub list: ListArgs,
}

/// Lists the keys.
pub async fn list(session: &Session, args: &KeysArgs) -> Result<()> {
    let api: Api<APIKey> = if args.list.all_namespaces {
        Api::all(session.client.clone())
    } else {
        Api::namespaced(session.client.clone(), &session.namespace)
    };
    let mut keys = api.list(&args.list.params()).await?.items;
    if !args.names.is_empty() {
        keys.retain(|k| args.names.contains(&k.name_any()));
        if let Some(missing) = args
            .names
            .iter()
            .find(|n| !keys.iter().any(|k| &k.name_any() == *n))
        {
            return Err(Error::Invalid(format!(
                "apikey {missing:?} not found in namespace {}",
                session.namespace
            )));
        }
    }
    keys.sort_by_key(|k| (k.namespace(), k.name_any()));
    let all = args.list.all_namespaces;
    let wide = args.list.output == super::listing::Format::Wide;
    output::print_list(
        &args.list,
        "apikey",
        &keys,
        |wide| table(&keys, all, wide, Timestamp::now()),
        "No API keys.",
    )?;
    if !args.watch {
        return Ok(());
    }
    super::watch::follow(api, &args.list, |key| {
        if args.names.is_empty() || args.names.contains(&key.name_any()) {
            table(std::slice::from_ref(key), all, wide, Timestamp::now())
        } else {
            Table::default()
        }
    })
    .await
}

/// The keys as a table; `wide` adds the MESSAGE column (why the key is in its phase).
pub fn table(keys: &[APIKey], all_namespaces: bool, wide: bool, now: Timestamp) -> Table {
    let mut header = vec!["NAME", "PHASE", "PRODUCT", "PLAN", "EXPIRES", "AGE"];
    if wide {
        header.push("MESSAGE");
    }
    let mut table = Table::of_objects(all_namespaces, &header);
    for key in keys {
        let product = &key.spec.api_product_ref;
        let product = match product.namespace.as_deref() {
            Some(ns) if Some(ns) != key.metadata.namespace.as_deref() => {
                format!("{ns}/{}", product.name)
            }
            _ => product.name.clone(),
        };
        let phase = key.status.as_ref().and_then(|s| s.phase);
        let mut cells = vec![
            key.name_any(),
            phase.map(|p| p.as_str().to_string()).unwrap_or_default(),
            product,
            key.spec.plan_tier.clone(),
            output::timestamp(key.spec.expires_at.as_ref()),
            output::age(key.metadata.creation_timestamp.as_ref(), now),
        ];
        if wide {
            cells.push(phase_message(key).unwrap_or_default());
        }
        table.object_row(key.metadata.namespace.as_deref(), cells);
    }
    table
}

/// The first line of the message of the key's condition that holds (why it is in its phase).
pub fn phase_message(key: &APIKey) -> Option<String> {
    let status = key.status.as_ref()?;
    let phase = status.phase?.as_str();
    status
        .conditions
        .iter()
        .find(|c| c.type_ == phase && c.status == "True")
        .map(|c| c.message.lines().next().unwrap_or_default().to_string())
        .filter(|message| !message.is_empty())
}

/// The key's phase, and why (the message of its condition that holds), or `not set yet`.
pub fn phase_line(key: &APIKey) -> String {
    let Some(phase) = key
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .map(|p| p.as_str())
    else {
        return "not set yet".into();
    };
    match phase_message(key) {
        Some(message) => format!("{phase} ({})", output::inert(&message)),
        None => phase.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phase_line_says_why() {
        let key = |status| {
            serde_json::from_value::<APIKey>(serde_json::json!({
                "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
                "metadata": {"name": "k"},
                "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold"},
                "status": status
            }))
            .unwrap()
        };
        let condition = |type_: &str, status: &str, message: &str| {
            serde_json::json!({"type": type_, "status": status, "reason": "R",
                "message": message, "lastTransitionTime": "2026-01-01T00:00:00Z"})
        };
        let waiting = key(serde_json::json!({"phase": "Pending", "conditions": [
            condition("Approved", "False", "not approved"),
            condition("Pending", "True", "waiting for an owner of shop/toys")]}));
        assert_eq!(
            phase_line(&waiting),
            "Pending (waiting for an owner of shop/toys)"
        );
        let bare = key(serde_json::json!({"phase": "Approved"}));
        assert_eq!(phase_line(&bare), "Approved");
        assert_eq!(phase_line(&key(serde_json::json!({}))), "not set yet");
    }

    #[test]
    fn the_table_names_a_product_in_another_namespace_with_it() {
        let key: APIKey = serde_json::from_value(serde_json::json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "metadata": {"name": "toys-x1", "namespace": "team-a",
                         "creationTimestamp": "2026-01-09T23:59:00Z"},
            "spec": {"apiProductRef": {"name": "toys", "namespace": "shop"}, "planTier": "gold",
                     "expiresAt": "2026-02-01T00:00:00Z"},
            "status": {"phase": "Approved"}
        }))
        .unwrap();
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let text = table(std::slice::from_ref(&key), false, false, now).render("");
        let wide = table(&[key], false, true, now).render("");
        assert!(wide.lines().next().unwrap().ends_with("MESSAGE"), "{wide}");
        assert_eq!(
            text.lines()
                .nth(1)
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            [
                "toys-x1",
                "Approved",
                "shop/toys",
                "gold",
                "2026-02-01T00:00:00Z",
                "60s"
            ]
        );
    }
}
