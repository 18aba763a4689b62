//! `kubectl devportal request PRODUCT --plan TIER`: a consumer's new APIKey, for a product found
//! by name ([`super::resolve`]), with `--secret` checked before anything is written.

use std::time::Duration;

use clap::Args;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::ResourceExt;
use kube::api::PostParams;

use super::keys::phase_line;
use super::output;
use super::resolve;
use super::session::Session;
use crate::names::{API_KEY_DATA, PLUGIN_MANAGER};
use crate::resources::{APIKey, APIKeySpec, LocalSecretRef};
use crate::{Error, Result};

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
}
