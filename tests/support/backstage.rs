//! The Kuadrant Backstage plugin's calls to the API server, replayed call for call from
//! Kuadrant/kuadrant-backstage-plugin @ d9d04d8: `plugins/kuadrant-backend/src/router.ts` (and the
//! key value of `plugins/kuadrant/src/components/RequestAccessDialog/RequestAccessDialog.tsx`).
//! Each method is one route of the plugin: the same requests in the same order, with the plugin's
//! object shapes as JSON (not devportal's types), and the plugin's own reading of the answers.
//! The plugin's Backstage permission checks are the plugin's business and are left out; its
//! ownership filters on the API server's answers are kept.

use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use kube::{Api, Client};
use serde_json::{Value, json};

/// The plugin's label on the consumer namespaces it creates.
pub const CONSUMER_NAMESPACE_LABEL: &str = "devportal.kuadrant.io/consumer-namespace";

/// `n` random bytes as lowercase hex (the plugin's `randomBytes(n).toString('hex')`).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key value the plugin's request dialog generates: `crypto.randomUUID()` without dashes,
/// 32 hex characters (a version-4 UUID).
pub fn key_value() -> String {
    let mut value: Vec<char> = random_hex(16).chars().collect();
    value[12] = '4';
    value[16] = ['8', '9', 'a', 'b'][value[16].to_digit(16).unwrap() as usize % 4];
    value.into_iter().collect()
}

/// The Secret name the dialog picks: `<product>-<Math.random() in base 36, 8 chars>-secret`.
pub fn secret_name(product: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random bytes");
    let suffix: String = bytes
        .iter()
        .map(|b| char::from_digit(u32::from(*b) % 36, 36).unwrap())
        .collect();
    format!("{product}-{suffix}-secret")
}

/// `getConsumerNamespace`: `kuadrant-<name>-<sha256(userEntityRef)[:8]>`.
pub fn consumer_namespace(user_entity_ref: &str) -> String {
    let name = user_entity_ref.rsplit('/').next().unwrap().to_lowercase();
    let sanitized: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut sha = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum runs");
    std::io::Write::write_all(sha.stdin.as_mut().unwrap(), user_entity_ref.as_bytes()).unwrap();
    let out = sha.wait_with_output().unwrap();
    let hash = String::from_utf8(out.stdout).unwrap()[..8].to_string();
    format!("kuadrant-{sanitized}-{hash}")
}

/// The phase the plugin derives from an object's conditions (GET /requests, PATCH /requests):
/// `Approved` if that condition is True, else `Denied` if that one is, else `Pending`.
pub fn phase(object: &Value) -> &'static str {
    let holds = |type_: &str| {
        object["status"]["conditions"]
            .as_array()
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
    serde_json::from_value(value).expect("the plugin's object")
}

/// The plugin's backend, talking to the API server as `client` (its ServiceAccount).
pub struct Plugin {
    /// The plugin's client.
    pub client: Client,
}

impl Plugin {
    fn custom(&self, plural: &str, kind: &str, ns: Option<&str>) -> Api<DynamicObject> {
        let resource = resource(plural, kind);
        match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// `ensureConsumerNamespace`: GET the namespace, on 404 create it with the plugin's label
    /// (409 counts as success).
    pub async fn ensure_consumer_namespace(&self, ns: &str) {
        let namespaces = Api::<Namespace>::all(self.client.clone());
        match namespaces.get(ns).await {
            Ok(_) => return,
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => panic!("get namespace {ns}: {error}"),
        }
        let namespace: Namespace = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {CONSUMER_NAMESPACE_LABEL: "true"}}
        }))
        .unwrap();
        match namespaces.create(&PostParams::default(), &namespace).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => panic!("create namespace {ns}: {error}"),
        }
    }

    /// POST /secrets: ensure the user's namespace, create the unlabelled Secret holding the key.
    pub async fn create_secret(&self, user: &str, name: &str, value: &str) -> Secret {
        let ns = consumer_namespace(user);
        self.ensure_consumer_namespace(&ns).await;
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": ns},
            "type": "Opaque",
            "data": {"api_key": k8s_openapi::ByteString(value.as_bytes().to_vec())},
        }))
        .unwrap();
        Api::<Secret>::namespaced(self.client.clone(), &ns)
            .create(&PostParams::default(), &secret)
            .await
            .expect("POST /secrets: the Secret is created")
    }

    /// POST /requests: ensure the user's namespace, create the APIKey `<product>-<hex8>` there.
    pub async fn create_request(
        &self,
        user: &str,
        email: Option<&str>,
        product: (&str, &str),
        plan_tier: &str,
        use_case: &str,
        secret: &str,
    ) -> kube::Result<Value> {
        let ns = consumer_namespace(user);
        self.ensure_consumer_namespace(&ns).await;
        let (product_ns, product_name) = product;
        let mut requested_by = json!({"userId": user});
        if let Some(email) = email {
            requested_by["email"] = email.into();
        }
        let request = object(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "metadata": {"name": format!("{product_name}-{}", random_hex(4)), "namespace": ns},
            "spec": {
                "apiProductRef": {"name": product_name, "namespace": product_ns},
                "secretRef": {"name": secret},
                "planTier": plan_tier,
                "useCase": use_case,
                "requestedBy": requested_by,
            },
        }));
        self.custom("apikeys", "APIKey", Some(&ns))
            .create(&PostParams::default(), &request)
            .await
            .map(to_json)
    }

    /// GET /requests/my: the APIKeys in the user's namespace whose `requestedBy.userId` is the
    /// user, for `product` (name, namespace).
    pub async fn my_requests(&self, user: &str, product: (&str, &str)) -> Vec<Value> {
        let ns = consumer_namespace(user);
        let listed = match self
            .custom("apikeys", "APIKey", Some(&ns))
            .list(&ListParams::default())
            .await
        {
            Ok(listed) => listed,
            Err(kube::Error::Api(status)) if status.code == 404 => return Vec::new(),
            Err(error) => panic!("GET /requests/my: {error}"),
        };
        listed
            .items
            .into_iter()
            .map(to_json)
            .filter(|k| k["spec"]["requestedBy"]["userId"] == user)
            .filter(|k| k["spec"]["apiProductRef"]["name"] == product.1)
            .filter(|k| k["spec"]["apiProductRef"]["namespace"] == product.0)
            .collect()
    }

    /// GET /requests?namespace=…&apiProductName=…&status=… (the owner's inbox, read-own): the
    /// APIKeyRequests in `ns` (or cluster-wide for `None`), of the products annotated
    /// `backstage.io/owner: <owner>`, of product `product`, in `status` if given.
    pub async fn requests(
        &self,
        owner: &str,
        ns: Option<&str>,
        product: &str,
        status: Option<&str>,
    ) -> Vec<Value> {
        let listed = self
            .custom("apikeyrequests", "APIKeyRequest", ns)
            .list(&ListParams::default())
            .await
            .expect("GET /requests: apikeyrequests listed");
        let owned: Vec<String> = self
            .custom("apiproducts", "APIProduct", None)
            .list(&ListParams::default())
            .await
            .expect("GET /requests: apiproducts listed")
            .items
            .into_iter()
            .filter(|p| {
                p.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("backstage.io/owner"))
                    .is_some_and(|o| o == owner)
            })
            .filter_map(|p| p.metadata.name)
            .collect();
        listed
            .items
            .into_iter()
            .map(to_json)
            .filter(|r| {
                r["spec"]["apiProductRef"]["name"]
                    .as_str()
                    .is_some_and(|n| owned.iter().any(|o| o == n))
            })
            .filter(|r| r["spec"]["apiProductRef"]["name"] == product)
            .filter(|r| status.is_none_or(|s| phase(r) == s))
            .collect()
    }

    /// POST /requests/:ns/:name/approve (`approved`) or /reject: GET the APIKeyRequest, then
    /// create the APIKeyApproval `<name>-approval-<hex8>` (or `-denial-`) reviewed by `reviewer`.
    pub async fn review(
        &self,
        reviewer: &str,
        ns: &str,
        name: &str,
        approved: bool,
    ) -> kube::Result<Value> {
        self.review_with(reviewer, ns, name, approved, None).await
    }

    /// POST /requests/bulk-approve (`approved`) or /bulk-reject: per item, the calls of
    /// [`Plugin::review`], with the bulk form's `spec.comment` when one is given; one result each.
    pub async fn bulk_review(
        &self,
        reviewer: &str,
        requests: &[(&str, &str)],
        approved: bool,
        comment: Option<&str>,
    ) -> Vec<kube::Result<Value>> {
        let mut results = Vec::new();
        for (ns, name) in requests {
            results.push(
                self.review_with(reviewer, ns, name, approved, comment)
                    .await,
            );
        }
        results
    }

    async fn review_with(
        &self,
        reviewer: &str,
        ns: &str,
        name: &str,
        approved: bool,
        comment: Option<&str>,
    ) -> kube::Result<Value> {
        let request = self
            .custom("apikeyrequests", "APIKeyRequest", Some(ns))
            .get(name)
            .await?;
        assert!(
            request.data["spec"]["apiProductRef"]["name"].is_string(),
            "apiProductRef.name is required in APIKeyRequest spec"
        );
        let word = if approved { "approval" } else { "denial" };
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let approval = object(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyApproval",
            "metadata": {"name": format!("{name}-{word}-{}", random_hex(4)), "namespace": ns},
            "spec": {
                "apiKeyRequestRef": {"name": name},
                "approved": approved,
                "reviewedBy": reviewer,
                "reviewedAt": now,
            },
        }));
        let mut approval = approval;
        if let Some(comment) = comment {
            approval.data["spec"]["comment"] = comment.into();
        }
        self.custom("apikeyapprovals", "APIKeyApproval", Some(ns))
            .create(&PostParams::default(), &approval)
            .await
            .map(to_json)
    }

    /// GET /apikeys/:ns/:name (read-own): the APIKey, if it is `user`'s.
    pub async fn api_key(&self, user: &str, ns: &str, name: &str) -> Value {
        let key = to_json(
            self.custom("apikeys", "APIKey", Some(ns))
                .get(name)
                .await
                .expect("GET /apikeys: the APIKey"),
        );
        assert_eq!(key["spec"]["requestedBy"]["userId"], user, "not authorised");
        key
    }

    /// PATCH /requests/:ns/:name: GET the APIKey, only a Pending one of `user`'s, merge-patch
    /// `patch` (`{"spec": {useCase|planTier|expiresAt}}`).
    pub async fn edit_request(
        &self,
        user: &str,
        ns: &str,
        name: &str,
        patch: Value,
    ) -> kube::Result<Value> {
        let existing = self.api_key(user, ns, name).await;
        assert_eq!(
            phase(&existing),
            "Pending",
            "only pending requests can be edited"
        );
        self.custom("apikeys", "APIKey", Some(ns))
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(to_json)
    }

    /// GET /apikeys/:ns/:name/secret: the APIKey (the user's), then its `spec.secretRef`
    /// Secret's `api_key`.
    pub async fn show_key(&self, user: &str, ns: &str, name: &str) -> String {
        let key = self.api_key(user, ns, name).await;
        let secret = key["spec"]["secretRef"]["name"]
            .as_str()
            .expect("secretRef not found in APIKey spec");
        let secret = Api::<Secret>::namespaced(self.client.clone(), ns)
            .get(secret)
            .await
            .expect("GET /apikeys/…/secret: the Secret");
        let value = secret.data.as_ref().and_then(|d| d.get("api_key"));
        String::from_utf8(value.expect("secret key 'api_key'").0.clone()).unwrap()
    }

    /// DELETE /requests/:ns/:name: GET the APIKey (the user's), then DELETE it.
    pub async fn delete_request(&self, user: &str, ns: &str, name: &str) {
        self.api_key(user, ns, name).await;
        self.custom("apikeys", "APIKey", Some(ns))
            .delete(name, &DeleteParams::default())
            .await
            .expect("DELETE /requests: the APIKey is deleted");
    }

    /// The product page (GET /apiproducts/:ns/:name read-own, then ApiProductDetailPage.tsx):
    /// the AuthPolicy's name, the third word of a True `AuthPolicyDiscovered` message ("" if
    /// none).
    pub async fn product_auth_policy(&self, owner: &str, ns: &str, name: &str) -> String {
        let product = to_json(
            self.custom("apiproducts", "APIProduct", Some(ns))
                .get(name)
                .await
                .expect("GET /apiproducts: the APIProduct"),
        );
        assert_eq!(
            product["metadata"]["annotations"]["backstage.io/owner"], owner,
            "you can only read your own api products"
        );
        let condition = product["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "AuthPolicyDiscovered");
        match condition {
            Some(c) if c["status"] == "True" => {
                let parts: Vec<&str> = c["message"].as_str().unwrap_or("").split(' ').collect();
                parts.get(2).copied().unwrap_or("").to_string()
            }
            _ => String::new(),
        }
    }
}
