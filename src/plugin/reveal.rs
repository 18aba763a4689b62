//! `kubectl devportal reveal KEY`: the key's value from the consumer Secret, to stdout, and only
//! where it is not shown on a screen by accident: into a pipe or a file, or with `--show`.
//! The value never goes anywhere else (no log, no error message).

use std::io::{IsTerminal, Write};

use clap::Args;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::session::{Connection, Session};
use crate::names::API_KEY_DATA;
use crate::resources::{APIKey, APIKeyPhase};
use crate::{Error, Result};

/// Arguments of `reveal`.
#[derive(Debug, Args)]
pub struct RevealArgs {
    /// The APIKey whose value to print.
    pub key: String,

    /// Print the value even when stdout is a terminal (where others may see it).
    #[arg(long)]
    pub show: bool,
}

/// Whether `reveal` may print the value: stdout is not a terminal, or the user said `--show`.
pub fn may_print(stdout_is_terminal: bool, show: bool) -> bool {
    show || !stdout_is_terminal
}

/// Refuses a terminal on stdout unless `--show`: checked before anything is read from the
/// cluster (or a connection is made).
pub fn check_destination(connection: &Connection, args: &RevealArgs) -> Result<()> {
    if may_print(std::io::stdout().is_terminal(), args.show) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "not printing the value of API key {0:?} to a terminal: pipe it \
         (`kubectl devportal reveal {0}{1} | wl-copy`), redirect it to a file, or pass --show",
        args.key,
        connection.repeated_flags()
    )))
}

/// Prints the key's value (after [`check_destination`]).
pub async fn run(session: &Session, args: &RevealArgs) -> Result<()> {
    let value = value(session, &args.key).await?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&value)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush())
        .map_err(|source| Error::Io {
            path: "stdout".into(),
            source,
        })
}

/// Where the key's value is: the Secret and data key of `status.secretRef`, else the consumer's
/// own Secret of `spec.secretRef` (data key `api_key`).
pub fn secret_of(key: &APIKey) -> Option<(String, String)> {
    let status = key.status.as_ref().and_then(|s| s.secret_ref.as_ref());
    match (status, key.spec.secret_ref.as_ref()) {
        (Some(found), _) => Some((found.name.clone(), found.key.clone())),
        (None, Some(own)) => Some((own.name.clone(), API_KEY_DATA.to_string())),
        (None, None) => None,
    }
}

/// The key's value, read from its Secret.
async fn value(session: &Session, name: &str) -> Result<Vec<u8>> {
    let key = Api::<APIKey>::namespaced(session.client.clone(), &session.namespace)
        .get(name)
        .await?;
    let phase = key.status.as_ref().and_then(|s| s.phase);
    if phase != Some(APIKeyPhase::Approved) {
        return Err(Error::Invalid(format!(
            "API key {name:?} is {}: only an approved key has a value to reveal",
            phase.map_or("not reviewed yet", |p| p.as_str())
        )));
    }
    let (secret, data_key) = secret_of(&key).ok_or_else(|| {
        Error::Invalid(format!(
            "API key {name:?} is approved but names no Secret yet: try again in a moment"
        ))
    })?;
    let stored = Api::<Secret>::namespaced(session.client.clone(), &session.namespace)
        .get(&secret)
        .await?;
    stored
        .data
        .and_then(|mut data| data.remove(&data_key))
        .map(|bytes| bytes.0)
        .filter(|bytes| !bytes.is_empty())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "Secret {secret:?} of API key {name:?} holds no {data_key:?}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_goes_to_pipes_and_files_and_to_a_terminal_only_when_asked() {
        assert!(may_print(false, false), "a pipe or a file");
        assert!(may_print(false, true));
        assert!(may_print(true, true), "a terminal, with --show");
        assert!(!may_print(true, false), "a terminal, without --show");
    }

    #[test]
    fn the_secret_is_the_one_in_the_status_else_the_consumers_own() {
        let key = |value| serde_json::from_value::<APIKey>(value).unwrap();
        let spec = serde_json::json!({"apiProductRef": {"name": "toys"}, "planTier": "gold",
                                      "secretRef": {"name": "mine"}});
        let own = key(serde_json::json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "metadata": {"name": "k"}, "spec": spec
        }));
        assert_eq!(secret_of(&own), Some(("mine".into(), "api_key".into())));
        let written = key(serde_json::json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "metadata": {"name": "k"}, "spec": spec,
            "status": {"secretRef": {"name": "k-apikey", "key": "api_key"}}
        }));
        assert_eq!(
            secret_of(&written),
            Some(("k-apikey".into(), "api_key".into()))
        );
        let none = key(serde_json::json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "metadata": {"name": "k"},
            "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold"}
        }));
        assert_eq!(secret_of(&none), None);
    }
}
