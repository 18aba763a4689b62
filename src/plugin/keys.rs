//! `kubectl devportal request` and `keys`: a consumer's APIKeys, created and listed.

use std::time::Duration;

use clap::Args;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use super::output::{self, ListArgs, Table};
use super::resolve;
use super::session::Session;
use crate::names::{API_KEY_DATA, PLUGIN_MANAGER};
use crate::resources::{APIKey, APIKeySpec, LocalSecretRef};
use crate::{Error, Result};
use k8s_openapi::api::core::v1::Secret;

/// Arguments of `request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The APIProduct to request a key for.
    pub product: String,

    /// The plan tier (one of the product's PLANS in `kubectl devportal products`).
    #[arg(long, value_name = "TIER")]
    pub plan: String,

    /// Why you need access, for the product's owners.
    #[arg(long, value_name = "TEXT")]
    pub use_case: Option<String>,

    /// Make the key stop working after this long (`30d`, `12h`, `90m`).
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub expires_in: Option<Duration>,

    /// Bring your own key: a Secret in the key's namespace holding it under `api_key`.
    #[arg(long, value_name = "NAME")]
    pub secret: Option<String>,

    /// The product's namespace (default: the key's namespace if the product is there, else the
    /// one namespace you can read that has a product of that name).
    #[arg(long, value_name = "NAMESPACE")]
    pub product_namespace: Option<String>,

    /// The APIKey's name (default: the product's name and a random suffix).
    #[arg(long)]
    pub name: Option<String>,

    /// How long to wait for devportal to give the new key a phase (0s: do not wait).
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = crate::flags::parse_duration)]
    pub wait: Duration,
}

/// A duration flag (`30d`, see [`crate::flags::parse_duration`]) that must be longer than zero.
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    match crate::flags::parse_duration(text)? {
        Duration::ZERO => Err(format!("{text:?} is not a positive duration")),
        duration => Ok(duration),
    }
}

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

/// The APIKey `request` creates, expiring `expires_in` after `now`.
pub fn new_key(args: &RequestArgs, now: Timestamp) -> Result<APIKey> {
    let expires_at = args
        .expires_in
        .map(|after| {
            SignedDuration::try_from(after)
                .ok()
                .and_then(|after| now.checked_add(after).ok())
                .map(Time)
                .ok_or_else(|| Error::Invalid("--expires-in is too far in the future".into()))
        })
        .transpose()?;
    let mut key = APIKey::new(
        args.name.as_deref().unwrap_or_default(),
        APIKeySpec {
            use_case: args.use_case.clone(),
            expires_at,
            secret_ref: args.secret.clone().map(|name| LocalSecretRef { name }),
            ..APIKeySpec::new(&args.product, &args.plan)
        },
    );
    key.spec.api_product_ref.namespace = args.product_namespace.clone();
    if args.name.is_none() {
        key.metadata.name = None;
        key.metadata.generate_name = Some(format!("{}-", args.product));
    }
    Ok(key)
}

/// Checks that the Secret `--secret` names exists before anything is written; a user who may
/// not read Secrets gets a warning instead.
async fn check_own_secret(session: &Session, name: &str) -> Result<()> {
    let secrets = Api::<Secret>::namespaced(session.client.clone(), &session.namespace);
    match secrets.get_metadata_opt(name).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Error::Invalid(format!(
            "--secret {name:?}: no Secret {name:?} in namespace {}: create it first (holding the \
             key under {API_KEY_DATA:?}), or leave --secret out for a generated key",
            session.namespace
        ))),
        Err(kube::Error::Api(status)) if status.code == 403 => {
            eprintln!(
                "warning: cannot check that Secret {name:?} exists in namespace {} (forbidden)",
                session.namespace
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates the key and prints its name and, once devportal has set it, its phase.
pub async fn request(session: &Session, args: &RequestArgs) -> Result<()> {
    if let Some(secret) = &args.secret {
        check_own_secret(session, secret).await?;
    }
    let mut key = new_key(args, Timestamp::now())?;
    if args.product_namespace.is_none() {
        let namespace = resolve::product_namespace(session, &args.product).await?;
        if namespace != session.namespace {
            key.spec.api_product_ref.namespace = Some(namespace);
        }
    }
    let api = Api::<APIKey>::namespaced(session.client.clone(), &session.namespace);
    let params = PostParams {
        field_manager: Some(PLUGIN_MANAGER.into()),
        ..PostParams::default()
    };
    let created = api.create(&params, &key).await?;
    let name = created.name_any();
    output::emit(&format!(
        "apikey/{name} created in namespace {}\n",
        session.namespace
    ))?;
    let key = settled(&api, &name, args.wait).await?;
    output::emit(&format!(
        "phase: {}\n`kubectl devportal status {name}{}` follows it\n",
        phase_line(&key),
        session.flags
    ))
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

/// The key, polled for up to `wait` until devportal has given it a phase.
async fn settled(api: &Api<APIKey>, name: &str, wait: Duration) -> Result<APIKey> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let key = api.get(name).await?;
        let phased = key.status.as_ref().is_some_and(|s| s.phase.is_some());
        if phased || tokio::time::Instant::now() >= deadline {
            return Ok(key);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
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
    let wide = args.list.output == output::Format::Wide;
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Line {
        #[command(flatten)]
        args: RequestArgs,
    }

    fn args(line: &[&str]) -> RequestArgs {
        Line::try_parse_from(std::iter::once("request").chain(line.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn a_request_without_a_name_asks_the_server_for_one_after_the_product() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let key = new_key(&args(&["toys", "--plan", "gold"]), now).unwrap();
        assert_eq!(key.metadata.name, None);
        assert_eq!(key.metadata.generate_name.as_deref(), Some("toys-"));
        assert_eq!(key.spec.plan_tier, "gold");
        assert_eq!(key.spec.expires_at, None);
        assert_eq!(
            key.spec.requested_by, None,
            "the webhook stamps the requester"
        );
    }

    #[test]
    fn a_request_carries_every_flag() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let line = [
            "toys",
            "--plan",
            "silver",
            "--use-case",
            "CI",
            "--expires-in",
            "30d",
            "--secret",
            "mine",
            "--product-namespace",
            "shop",
            "--name",
            "ci-key",
        ];
        let key = new_key(&args(&line), now).unwrap();
        assert_eq!(key.metadata.name.as_deref(), Some("ci-key"));
        assert_eq!(key.metadata.generate_name, None);
        assert_eq!(key.spec.use_case.as_deref(), Some("CI"));
        assert_eq!(
            key.spec.expires_at.unwrap().0,
            "2026-01-31T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(key.spec.secret_ref.unwrap().name, "mine");
        assert_eq!(key.spec.api_product_ref.namespace.as_deref(), Some("shop"));
        assert_eq!(
            args(&["toys", "--plan", "gold"]).wait,
            Duration::from_secs(10)
        );
        assert_eq!(
            args(&["toys", "--plan", "gold", "--wait", "0s"]).wait,
            Duration::ZERO
        );
    }

    #[test]
    fn expiry_durations_read_like_the_servers_flags_and_must_be_positive() {
        assert_eq!(
            positive_duration("30d"),
            Ok(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            positive_duration("12h"),
            Ok(Duration::from_secs(12 * 3_600))
        );
        assert_eq!(positive_duration("90m"), Ok(Duration::from_secs(5_400)));
        for bad in ["0s", "0d", "30", "30x", "-1d", "d"] {
            assert!(positive_duration(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(
            Line::try_parse_from(["request", "toys", "--plan", "gold", "--expires-in", "0d"])
                .is_err()
        );
    }

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
