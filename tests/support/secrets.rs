//! devportal's two API-key Secrets of a key, found the way the crate marks them: the managed label,
//! the role label and the annotation naming the key.

use devportal::names::{API_KEY_DATA, APIKEY_ANNOTATION, MANAGED_SELECTOR, ROLE_LABEL};
use devportal::secrets::Role;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::{Api, Client};

/// devportal's Secrets for the key `ns/name`, as `admin` sees them: (role label value, Secret).
pub async fn secrets_of(admin: &Client, ns: &str, name: &str) -> Vec<(String, Secret)> {
    let all = Api::<Secret>::all(admin.clone())
        .list(&ListParams::default().labels(MANAGED_SELECTOR))
        .await
        .unwrap();
    let reference = format!("{ns}/{name}");
    all.items
        .into_iter()
        .filter(|s| {
            s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(APIKEY_ANNOTATION))
                == Some(&reference)
        })
        .map(|s| (s.metadata.labels.as_ref().unwrap()[ROLE_LABEL].clone(), s))
        .collect()
}

/// The Secret of `role` among `secrets`; fails the test if there is none.
pub fn with_role(secrets: &[(String, Secret)], role: Role) -> &Secret {
    &secrets
        .iter()
        .find(|(label, _)| label == role.as_str())
        .unwrap_or_else(|| panic!("a Secret of role {}", role.as_str()))
        .1
}

/// The enforcement Secret among `secrets` (the one Authorino matches).
pub fn enforcement(secrets: &[(String, Secret)]) -> &Secret {
    with_role(secrets, Role::Enforcement)
}

/// The consumer Secret among `secrets` (the one the consumer reads).
pub fn consumer(secrets: &[(String, Secret)]) -> &Secret {
    with_role(secrets, Role::Consumer)
}

/// The API key a Secret holds.
pub fn api_key(secret: &Secret) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[API_KEY_DATA].0.clone()).unwrap()
}

/// The annotation `key` of a Secret, if it has it.
pub fn annotation<'a>(secret: &'a Secret, key: &str) -> Option<&'a str> {
    secret
        .metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}
