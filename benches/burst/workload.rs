//! What the creator sends: N keys, 32 in flight; and the ideal pipeline's minimal writes per key
//! (the key, its two Secrets as devportal shapes them, one status write), no controller logic.

use std::future::Future;
use std::time::Duration;

use devportal::keys::{self, DEFAULT_PREFIX};
use devportal::names::{
    AUTHORINO_DEFAULT_SECRET_SELECTOR, CONTROLLER_MANAGER, DEFAULT_KUADRANT_NAMESPACE,
    key_reason::AUTO_APPROVED,
};
use devportal::resources::{APIKey, APIKeyPhase, RequestedBy};
use devportal::secrets::{self, Enforcement};
use devportal::selector::{self, Requirement};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};

use super::options::CONCURRENCY;
use crate::support::{Devportal, fixtures};

/// Runs `one(i)` for i in 0..n, [`CONCURRENCY`] at a time.
pub async fn burst<F, Fut>(n: usize, one: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    futures::stream::iter(0..n)
        .map(one)
        .buffer_unordered(CONCURRENCY)
        .collect::<()>()
        .await;
}

/// Key `i` of the burst on product `toys`. Without the webhook the requester is set here (97
/// users in turn); with it, the webhook stamps it from the request's identity.
pub fn key(i: usize, webhook: bool) -> APIKey {
    let mut key = fixtures::key(
        &format!("key-{i:05}"),
        "toys",
        if i.is_multiple_of(2) {
            "gold"
        } else {
            "silver"
        },
    );
    key.spec.requested_by = (!webhook).then(|| RequestedBy {
        user_id: format!("user-{}", i % 97),
        email: None,
    });
    key
}

/// Creates key `i` as `keys`' client (the admin), through the webhook when one is registered.
pub async fn create_key(keys: &Api<APIKey>, i: usize, webhook: bool) -> APIKey {
    keys.create(&PostParams::default(), &key(i, webhook))
        .await
        .expect("create key")
}

/// The ideal pipeline: for each key exactly the create, the two Secret creates (in parallel) and
/// one status write, the last three as the controller identity.
pub struct Ideal {
    keys: Api<APIKey>,
    writer: Client,
    authorino: Vec<Requirement>,
    rule: LabelSelector,
    webhook: bool,
}

impl Ideal {
    /// Keys created by `admin` in `namespace`, written onward by `controller`; the enforcement
    /// Secrets carry the labels Authorino's default selector and the fixture's apiKey rule
    /// (`app: toystore`) need, as devportal's do.
    pub fn new(admin: &Client, controller: &Client, namespace: &str, webhook: bool) -> Self {
        Ideal {
            keys: Api::namespaced(admin.clone(), namespace),
            writer: controller.clone(),
            authorino: selector::parse(AUTHORINO_DEFAULT_SECRET_SELECTOR).expect("a selector"),
            rule: LabelSelector {
                match_labels: Some([("app".to_string(), "toystore".to_string())].into()),
                match_expressions: None,
            },
            webhook,
        }
    }

    /// Every write of key `i`, in order: create; both Secrets; status.
    pub async fn one(&self, i: usize) {
        let key = create_key(&self.keys, i, self.webhook).await;
        let namespace = key.namespace().unwrap_or_default();
        let uid = key.uid().unwrap_or_default();
        let value = keys::generate(DEFAULT_PREFIX).expect("a key value");
        let labels = secrets::labels_for_rule(
            &uid,
            secrets::ProductId {
                namespace: &namespace,
                name: "toys",
            },
            &self.authorino,
            &self.rule,
        )
        .expect("labels that satisfy both selectors");
        let target = Enforcement::for_key(&key, DEFAULT_KUADRANT_NAMESPACE.into(), labels);
        let consumer = secrets::consumer_secret(&key, &value);
        let enforcement = secrets::enforcement_secret(&key, &target, &value);
        let params = PostParams {
            field_manager: Some(CONTROLLER_MANAGER.into()),
            ..PostParams::default()
        };
        let consumer_api = Api::<Secret>::namespaced(self.writer.clone(), &namespace);
        let enforcement_api =
            Api::<Secret>::namespaced(self.writer.clone(), DEFAULT_KUADRANT_NAMESPACE);
        let (a, b) = futures::join!(
            consumer_api.create(&params, &consumer),
            enforcement_api.create(&params, &enforcement),
        );
        a.expect("create the consumer Secret");
        b.expect("create the enforcement Secret");
        let approved = APIKeyPhase::Approved.as_str();
        let status = serde_json::json!({"status": {
            "observedGeneration": key.metadata.generation,
            "phase": approved,
            "conditions": [{"type": approved, "status": "True", "reason": AUTO_APPROVED,
                            "message": "approved automatically",
                            "lastTransitionTime": Time(k8s_openapi::jiff::Timestamp::now())}],
            "secretRef": {"name": consumer.metadata.name, "key": devportal::names::API_KEY_DATA},
        }});
        Api::<APIKey>::namespaced(self.writer.clone(), &namespace)
            .patch_status(
                &key.name_any(),
                &PatchParams {
                    field_manager: Some(CONTROLLER_MANAGER.into()),
                    ..PatchParams::default()
                },
                &Patch::Merge(status),
            )
            .await
            .expect("write the key's status");
    }
}

/// For the ideal run, which has no controller: the product's status (its discovered plan tiers,
/// which the webhook checks a key's tier against) written by a devportal controller that is
/// started for it and stopped (SIGTERM) before the burst.
pub async fn product_status_then_no_controller(admin: &Client, namespace: &str, args: &[&str]) {
    let mut controller = Devportal::controller(args, &[("DEVPORTAL_LOG", "warn")]);
    fixtures::product_ready(admin, namespace, Duration::from_secs(120)).await;
    controller.terminate(Duration::from_secs(60));
}
