//! The Kuadrant OpenShift console plugin's calls to the API server, replayed call for call from
//! Kuadrant/kuadrant-console-plugin @ 0e33297e: `src/components/apikey/RequestAPIKeyModal.tsx`
//! (request), `MyAPIKeysPage.tsx` and `APIKeyDetailPage.tsx` (my keys, delete),
//! `APIKeyRevealModal.tsx` (reveal), `APIKeyApprovalPage.tsx` (approval table, bulk), `utils.ts`
//! (`handleAPIKeyApprovalOrDenial`, `getRequestStatus`) and `src/utils/resources.ts`
//! (`getAPIKeyPhase`). The console runs in the user's browser and calls the API server with the
//! user's own identity, so each [`Console`] is one user's client; the objects are the console's
//! JSON shapes, not devportal's types, and the answers are read as the console reads them.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use kube::{Api, Client};
use serde_json::{Value, json};

/// `getAPIKeyPhase` (src/utils/resources.ts), ported line for line: the first of `Expired`,
/// `Approved`, `Denied`, `Failed`, `Pending` whose condition is True, else `Pending`.
pub fn api_key_phase(key: &Value) -> &'static str {
    let holds = |type_: &str| {
        key["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    };
    // "Check for Expired condition first — controller sets this instead of Approved when
    // expiresAt has passed".
    for phase in ["Expired", "Approved", "Denied", "Failed", "Pending"] {
        if holds(phase) {
            return phase;
        }
    }
    "Pending"
}

/// `getRequestStatus` (src/components/apikey/utils.ts): `Pending` without conditions, else
/// `Approved` if that condition is True, else `Denied` if that one is, else `Pending`.
pub fn request_status(request: &Value) -> &'static str {
    let conditions = request["status"]["conditions"].as_array();
    if conditions.is_none_or(|c| c.is_empty()) {
        return "Pending";
    }
    let holds = |type_: &str| {
        conditions
            .into_iter()
            .flatten()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    };
    if holds("Approved") {
        "Approved"
    } else if holds("Denied") {
        "Denied"
    } else {
        "Pending"
    }
}

/// `generateApiKey`: 32 random bytes as 64 lowercase hex characters.
pub fn generate_api_key() -> String {
    super::backstage::random_hex(32)
}

/// `sanitizeUsernameForEmail`: every character outside `[a-zA-Z0-9._%+-]` becomes `-`.
pub fn sanitize_username_for_email(username: &str) -> String {
    username
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._%+-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn resource(plural: &str, kind: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("devportal.kuadrant.io", "v1alpha1", kind),
        plural,
    )
}

fn to_json(object: DynamicObject) -> Value {
    serde_json::to_value(object).expect("an object serializes")
}

fn object(value: Value) -> DynamicObject {
    serde_json::from_value(value).expect("the console's object")
}

/// What the request form holds when the user clicks Request.
pub struct RequestForm<'a> {
    /// The API key name the user typed (also the APIKey's name).
    pub name: &'a str,
    /// The APIProduct picked: (namespace, name).
    pub product: (&'a str, &'a str),
    /// The tier picked.
    pub tier: &'a str,
    /// The use case typed (omitted when empty).
    pub use_case: &'a str,
    /// `computeExpiresAt()`: an ISO string, or none for "No expiration".
    pub expires_at: Option<String>,
}

/// The console in one user's browser: every call made with that user's identity.
pub struct Console {
    /// The user's client.
    pub client: Client,
    /// `username` as the console knows it (the `reviewedBy` and `requestedBy.userId` it sends).
    pub user: String,
}

impl Console {
    fn custom(&self, plural: &str, kind: &str, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &resource(plural, kind))
    }

    /// RequestAPIKeyModal's submit in the active namespace `ns`: k8sCreate the APIKey (with
    /// `secretRef` `<name>-secret`), then k8sCreate that Secret owned by the APIKey holding a
    /// fresh 64-hex key; if the Secret fails, k8sDelete the APIKey (the rollback) and fail.
    /// Returns the created APIKey and the key value.
    pub async fn request_api_key(
        &self,
        ns: &str,
        form: RequestForm<'_>,
    ) -> kube::Result<(Value, String)> {
        let secret_name = format!("{}-secret", form.name);
        let generated = generate_api_key();
        let mut spec = json!({
            "apiProductRef": {"name": form.product.1, "namespace": form.product.0},
            "secretRef": {"name": secret_name},
            "planTier": form.tier,
            "requestedBy": {
                "userId": self.user,
                "email": format!("{}@example.com", sanitize_username_for_email(&self.user)),
            },
        });
        if !form.use_case.is_empty() {
            spec["useCase"] = form.use_case.into();
        }
        if let Some(at) = form.expires_at {
            spec["expiresAt"] = at.into();
        }
        let api_key = object(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "metadata": {"name": form.name, "namespace": ns},
            "spec": spec,
        }));
        let keys = self.custom("apikeys", "APIKey", ns);
        let created = to_json(keys.create(&PostParams::default(), &api_key).await?);
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {
                "name": secret_name, "namespace": ns,
                "ownerReferences": [{
                    "apiVersion": created["apiVersion"], "kind": created["kind"],
                    "name": created["metadata"]["name"], "uid": created["metadata"]["uid"],
                    "blockOwnerDeletion": false,
                }],
            },
            "type": "Opaque",
            "stringData": {"api_key": generated},
        }))
        .unwrap();
        if let Err(error) = Api::<Secret>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &secret)
            .await
        {
            let _ = keys.delete(form.name, &DeleteParams::default()).await;
            return Err(error);
        }
        Ok((created, generated))
    }

    /// My API Keys (`useK8sWatchResource` on APIKeys in the active namespace): the list.
    pub async fn my_api_keys(&self, ns: &str) -> Vec<Value> {
        self.custom("apikeys", "APIKey", ns)
            .list(&ListParams::default())
            .await
            .expect("My API Keys: apikeys listed")
            .items
            .into_iter()
            .map(to_json)
            .collect()
    }

    /// The API key detail page (`useK8sWatchResource` on one APIKey).
    pub async fn api_key(&self, ns: &str, name: &str) -> kube::Result<Value> {
        self.custom("apikeys", "APIKey", ns)
            .get(name)
            .await
            .map(to_json)
    }

    /// APIKeyRevealModal's `fetchSecret`, offered only for an `Approved` key with a
    /// `spec.secretRef` (MyAPIKeysPage): k8sGet the Secret it names in the key's namespace, then
    /// `atob(data.api_key || data.key)`.
    pub async fn reveal(&self, key: &Value) -> kube::Result<String> {
        assert_eq!(
            api_key_phase(key),
            "Approved",
            "the reveal is offered for Approved keys"
        );
        let name = key["spec"]["secretRef"]["name"]
            .as_str()
            .expect("secretRef.name");
        let ns = key["metadata"]["namespace"].as_str().unwrap();
        let secret = Api::<Secret>::namespaced(self.client.clone(), ns)
            .get(name)
            .await?;
        let data = secret.data.unwrap_or_default();
        let encoded = data.get("api_key").or_else(|| data.get("key"));
        Ok(String::from_utf8(encoded.expect("API key not found in secret").0.clone()).unwrap())
    }

    /// APIKeyDeleteModal's confirm: k8sDelete the APIKey.
    pub async fn delete_api_key(&self, key: &Value) -> kube::Result<()> {
        let ns = key["metadata"]["namespace"].as_str().unwrap();
        let name = key["metadata"]["name"].as_str().unwrap();
        self.custom("apikeys", "APIKey", ns)
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ())
    }

    /// The API key approval page (`useK8sWatchResource` on APIKeyRequests in `ns`).
    pub async fn approval_requests(&self, ns: &str) -> kube::Result<Vec<Value>> {
        Ok(self
            .custom("apikeyrequests", "APIKeyRequest", ns)
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .map(to_json)
            .collect())
    }

    /// `handleAPIKeyApprovalOrDenial(request, approved, currentUser, message)`: for a request
    /// `getRequestStatus` calls Approved, k8sList the APIKeyApprovals of its namespace, find the
    /// first for the request and k8sUpdate it with the new spec; otherwise k8sCreate
    /// `<request>-approval`.
    pub async fn approve_or_deny(
        &self,
        request: &Value,
        approved: bool,
        message: Option<&str>,
    ) -> kube::Result<Value> {
        let name = request["metadata"]["name"].as_str().unwrap();
        let ns = request["metadata"]["namespace"].as_str().unwrap();
        let spec = json!({
            "apiKeyRequestRef": {"name": name},
            "approved": approved,
            "reviewedBy": self.user,
            "reviewedAt": k8s_openapi::jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
            "reason": if approved { "ApprovedByOwner" } else { "DeniedByOwner" },
            "message": message.unwrap_or(if approved { "Approved" } else { "Denied" }),
        });
        let approvals = self.custom("apikeyapprovals", "APIKeyApproval", ns);
        if request_status(request) == "Approved" {
            let listed = approvals.list(&ListParams::default()).await?;
            let existing = listed
                .items
                .into_iter()
                .map(to_json)
                .find(|a| a["spec"]["apiKeyRequestRef"]["name"] == name)
                .unwrap_or_else(|| {
                    panic!("Could not find existing approval for active API key: {name}")
                });
            let mut updated = existing;
            updated["spec"] = spec;
            let approval = name_of(&updated).to_string();
            approvals
                .replace(&approval, &PostParams::default(), &object(updated))
                .await
                .map(to_json)
        } else {
            let approval = object(json!({
                "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyApproval",
                "metadata": {"name": format!("{name}-approval"), "namespace": ns},
                "spec": spec,
            }));
            approvals
                .create(&PostParams::default(), &approval)
                .await
                .map(to_json)
        }
    }

    /// The bulk approve / bulk reject buttons: `Promise.allSettled` of
    /// [`Console::approve_or_deny`] over the selected requests (only Pending rows can be
    /// selected), all at once; one result each.
    pub async fn bulk(
        &self,
        requests: &[Value],
        approved: bool,
        reason: Option<&str>,
    ) -> Vec<kube::Result<Value>> {
        for request in requests {
            assert_eq!(
                request_status(request),
                "Pending",
                "only pending rows are selectable"
            );
        }
        futures::future::join_all(
            requests
                .iter()
                .map(|r| self.approve_or_deny(r, approved, reason)),
        )
        .await
    }
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap()
}
