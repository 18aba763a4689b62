//! Issue 27, items 6, 9, 10 and 11, attacked through the real kube-apiserver as the persona who
//! would try each: a consumer flooding dry-run creates while an owner reviews; invisible
//! characters in free text, `javascript:` links and a tenant's tier names; a key requested
//! without an expiry; an e-mail the consumer typed, and APIKeyRequests forged by someone with
//! write access to them. See docs/security.md ("Third wave").

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use devportal::names::product_reason::TIERS_SKIPPED;
use devportal::names::{EMAIL_VERIFIED_ANNOTATION, product_condition};
use devportal::resources::gateway::HTTPRoute;
use devportal::resources::kuadrant::{AuthPolicy, PlanPolicy};
use devportal::resources::{
    APIKey, APIKeyApproval, APIKeyRequest, APIProduct, ApprovalMode, Contact, Documentation,
    RequestedBy,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use support::access::binding_in_effect;
use support::front_end::create_with_warnings;
use support::{Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures, plugin};

const WAIT: Duration = Duration::from_secs(60);

async fn client(persona: Persona) -> Client {
    control_plane_with_devportal().client(persona).await
}

/// The API server's refusal of a write, as `(code, message)`.
fn refusal<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Lets `user` do `verbs` on `resources` (group `group`) in `ns`, as a team might grant, and
/// waits until the authorizer knows.
async fn grant(ns: &str, user: Persona, group: &str, resources: &[&str], verbs: &[&str]) {
    let admin = client(Persona::Admin).await;
    let name = format!("wave3-{}-{}", user.name(), resources.join("-"));
    let role = Role {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![group.into()]),
            resources: Some(resources.iter().map(|r| r.to_string()).collect()),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("role created");
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name,
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: user.name().into(),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(admin, ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("role binding created");
    let resource = format!("{}.{group}", resources[0]);
    binding_in_effect(user, &[verbs[0], &resource, "-n", ns]).await;
}

/// A namespace with the manual product `toys` (gold, silver), Ready.
async fn manual_product(prefix: &str) -> (TestNamespace, Client) {
    control_plane_with_devportal();
    let (ns, admin) =
        fixtures::published_namespace(prefix, Persona::Admin, ApprovalMode::Manual).await;
    fixtures::product_ready(&admin, &ns.name, WAIT).await;
    (ns, admin)
}

/// The APIKeyRequest mirroring key `name` in `ns`, once the controller wrote it.
async fn request_of(admin: &Client, ns: &str, key: &str) -> APIKeyRequest {
    let requests = Api::<APIKeyRequest>::namespaced(admin.clone(), ns);
    eventually(&format!("the request of {key}"), WAIT, || async {
        requests
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|r| r.spec.api_key_ref.name == key)
    })
    .await
}

// ---- Item 6: one consumer starves every review -------------------------------------------

/// The flooding consumer: a user of its own (the admin impersonating it), allowed to request keys
/// in `ns`. Not a shared persona: the tests run side by side, and a persona whose budget the flood
/// spends would see its own lookups refused in other tests while it lasts, which is the point.
async fn flooder(admin: &Client, ns: &str) -> Client {
    const FLOODER: &str = "tenant-input-flooder";
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("flooder-requests-keys".into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: "devportal-api-consumer".into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: FLOODER.into(),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("the flooder may request keys");
    let path = control_plane_with_devportal().kubeconfig(Persona::Admin);
    let mut kubeconfig = kube::config::Kubeconfig::read_from(path).expect("kubeconfig reads");
    for named in &mut kubeconfig.auth_infos {
        if let Some(auth) = named.auth_info.as_mut() {
            auth.impersonate = Some(FLOODER.into());
            auth.impersonate_groups = Some(vec!["system:authenticated".into()]);
        }
    }
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig is valid");
    Client::try_from(config).expect("client builds")
}

#[tokio::test]
async fn a_consumer_flooding_dry_runs_does_not_starve_an_owners_approvals() {
    let (ns, admin) = manual_product("wave3-flood").await;
    // Pending keys for the owner to approve (consumer's: the flooder below is consumer2).
    let keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &ns.name);
    let mut pending = Vec::new();
    // (Five keys per requester and product at most.)
    for i in 0..5 {
        let key = fixtures::key(&format!("wanted-{i}"), "toys", "gold");
        keys.create(&PostParams::default(), &key).await.unwrap();
        pending.push(
            request_of(&admin, &ns.name, &key.name_any())
                .await
                .name_any(),
        );
    }

    // A consumer of their own floods dry-run creates for a product nobody has: each one costs the
    // webhook live lookups (the cache has no such product), as fast as four clients can send them.
    let flooder = flooder(&admin, &ns.name).await;
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let retry_message = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut floods = Vec::new();
    for task in 0..4 {
        let keys = Api::<APIKey>::namespaced(flooder.clone(), &ns.name);
        let (stop, refused, sent, retry_message) = (
            stop.clone(),
            refused.clone(),
            sent.clone(),
            retry_message.clone(),
        );
        floods.push(tokio::spawn(async move {
            let dry_run = PostParams {
                dry_run: true,
                ..PostParams::default()
            };
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let key =
                    fixtures::key(&format!("flood-{task}-{i}"), &format!("ghost-{i}"), "gold");
                sent.fetch_add(1, Ordering::Relaxed);
                if let Err(kube::Error::Api(status)) = keys.create(&dry_run, &key).await
                    && status.message.contains("too many live lookups")
                {
                    refused.fetch_add(1, Ordering::Relaxed);
                    retry_message.lock().unwrap().get_or_insert(status.message);
                }
            }
        }));
    }
    eventually(
        "the flood to exhaust the flooder's budget",
        WAIT,
        || async { (refused.load(Ordering::Relaxed) > 0).then_some(()) },
    )
    .await;

    // While the flood goes on, the owner approves every request: none is refused.
    let approvals = Api::<APIKeyApproval>::namespaced(client(Persona::Owner).await, &ns.name);
    for request in &pending {
        let approval: APIKeyApproval = serde_json::from_value(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyApproval",
            "metadata": {"name": format!("{request}-ok")},
            "spec": {"apiKeyRequestRef": {"name": request}, "approved": true, "reason": "welcome"}
        }))
        .unwrap();
        let result = approvals.create(&PostParams::default(), &approval).await;
        assert!(
            result.is_ok(),
            "the owner's approval of {request} during the flood: {result:?}"
        );
    }
    let still_refusing = refused.load(Ordering::Relaxed);
    eventually("every approved key to be Approved", WAIT, || async {
        let all = keys.list(&ListParams::default()).await.ok()?.items;
        all.iter()
            .filter(|k| k.name_any().starts_with("wanted-"))
            .all(|k| {
                k.status.as_ref().and_then(|s| s.phase).map(|p| p.as_str()) == Some("Approved")
            })
            .then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for flood in floods {
        flood.await.unwrap();
    }
    let message = retry_message.lock().unwrap().clone().unwrap();
    assert!(
        message.contains("too many live lookups from your user") && message.contains("try again"),
        "{message}"
    );
    assert!(
        still_refusing > 0 && refused.load(Ordering::Relaxed) >= still_refusing,
        "the flooder was refused {} times of {} dry runs",
        refused.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed)
    );
}

// ---- Item 9: text that reaches terminals and front ends --------------------------------------

#[tokio::test]
async fn invisible_characters_and_script_links_are_refused_in_free_text() {
    let (ns, _admin) = manual_product("wave3-text").await;
    let owner = Api::<APIProduct>::namespaced(client(Persona::Owner).await, &ns.name);
    for (name, hidden) in [
        ("zwsp", "\u{200B}"),
        ("rlm", "\u{200F}"),
        ("alm", "\u{061C}"),
        ("bom", "\u{FEFF}"),
        ("lsep", "\u{2028}"),
    ] {
        let mut product = fixtures::product(&format!("text-{name}"), "toystore");
        product.spec.description = Some(format!("Orders{hidden} API"));
        let (code, message) = refusal(owner.create(&PostParams::default(), &product).await);
        assert_eq!(code, 422, "{message}");
        assert!(message.contains("spec.description"), "{name}: {message}");
        let mut product = fixtures::product(&format!("tag-{name}"), "toystore");
        product.spec.tags = vec![format!("pay{hidden}ments")];
        let (code, message) = refusal(owner.create(&PostParams::default(), &product).await);
        assert_eq!(code, 422, "{message}");
        assert!(message.contains("spec.tags"), "{name}: {message}");
    }
    for (field, url) in [
        ("docsURL", "javascript:alert(document.cookie)"),
        ("docsURL", "data:text/html;base64,PHNjcmlwdD4="),
        ("openAPISpecURL", "file:///etc/passwd"),
        ("gitRepository", "javascript://%0aalert(1)"),
    ] {
        let mut product = fixtures::product("links", "toystore");
        let documentation: Documentation = serde_json::from_value(json!({ field: url })).unwrap();
        product.spec.documentation = Some(documentation);
        let (code, message) = refusal(owner.create(&PostParams::default(), &product).await);
        assert_eq!(code, 422, "{message}");
        assert!(message.contains(field), "{url}: {message}");
    }
    let mut product = fixtures::product("contact", "toystore");
    product.spec.contact = Some(Contact {
        url: Some("javascript:alert(1)".into()),
        ..Contact::default()
    });
    let (_, message) = refusal(owner.create(&PostParams::default(), &product).await);
    assert!(message.contains("spec.contact.url"), "{message}");
    // Web links, an ssh repository and emoji text stay fine.
    let mut fine = fixtures::product("fine", "toystore");
    fine.spec.description = Some("Orders 🙂 — Bücher".into());
    fine.spec.documentation = Some(
        serde_json::from_value(json!({
            "docsURL": "https://docs.example.com/orders",
            "gitRepository": "git@github.com:shop/orders.git"
        }))
        .unwrap(),
    );
    fine.spec.contact = Some(Contact {
        url: Some("https://shop.example.com/team".into()),
        ..Contact::default()
    });
    owner
        .create(&PostParams::default(), &fine)
        .await
        .expect("ordinary text and web links are stored");

    // The consumer's use case, as a reviewer's terminal would show it.
    let keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &ns.name);
    for hidden in ["\u{200B}", "\u{2028}", "\u{202E}"] {
        let mut key = fixtures::key("hidden", "toys", "gold");
        key.spec.use_case = Some(format!("please{hidden}approve"));
        let (code, message) = refusal(keys.create(&PostParams::default(), &key).await);
        assert_eq!(code, 422, "{message}");
        assert!(message.contains("spec.useCase"), "{message}");
    }
    let mut key = fixtures::key("bell-tier", "toys", "gold\u{7}");
    key.spec.use_case = None;
    let (_, message) = refusal(keys.create(&PostParams::default(), &key).await);
    assert!(message.contains("spec.planTier"), "{message}");
}

#[tokio::test]
async fn a_tenants_tier_names_with_hidden_characters_are_not_copied_into_status() {
    control_plane_with_devportal();
    let ns = TestNamespace::new("wave3-tiers").await;
    let admin = client(Persona::Admin).await;
    // The tenant writes the PlanPolicy of their own API (given the rights to).
    grant(
        &ns.name,
        Persona::Owner,
        "extensions.kuadrant.io",
        &["planpolicies"],
        &["create", "get"],
    )
    .await;
    let mut plans = fixtures::plan_policy("plans", "toystore");
    let mut bell = plans.spec.plans[0].clone();
    bell.tier = "gold\u{7}".into();
    let mut rlo = plans.spec.plans[1].clone();
    rlo.tier = "\u{202E}revlis".into();
    plans.spec.plans.extend([bell, rlo]);
    // The platform's part: the exposed route, accepted, with an enforced AuthPolicy.
    Api::<HTTPRoute>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &fixtures::route("toystore"))
        .await
        .unwrap();
    fixtures::accept_route(&admin, &ns.name, "toystore").await;
    Api::<AuthPolicy>::namespaced(admin.clone(), &ns.name)
        .create(
            &PostParams::default(),
            &fixtures::auth_policy("auth", "toystore"),
        )
        .await
        .unwrap();
    fixtures::enforce_auth_policy(&admin, &ns.name, "auth").await;
    Api::<PlanPolicy>::namespaced(client(Persona::Owner).await, &ns.name)
        .create(&PostParams::default(), &plans)
        .await
        .expect("the tenant's PlanPolicy is stored (it is not devportal's to refuse)");
    Api::<APIProduct>::namespaced(admin.clone(), &ns.name)
        .create(
            &PostParams::default(),
            &fixtures::product("toys", "toystore"),
        )
        .await
        .unwrap();

    let products = Api::<APIProduct>::namespaced(client(Persona::Consumer).await, &ns.name);
    let (tiers, condition) = eventually("the plans to be discovered", WAIT, || async {
        let status = products.get("toys").await.ok()?.status?;
        let condition = status
            .conditions
            .iter()
            .find(|c| c.type_ == product_condition::PLAN_POLICY && c.reason == TIERS_SKIPPED)?
            .clone();
        let tiers: Vec<String> = status
            .discovered_plans
            .into_iter()
            .map(|p| p.tier)
            .collect();
        Some((tiers, condition))
    })
    .await;
    assert_eq!(
        tiers,
        ["gold", "silver"],
        "only the harmless tiers are copied"
    );
    assert_eq!(condition.status, "True");
    assert!(
        condition.message.contains(r#""gold\u{7}""#)
            && condition.message.contains(r#""\u{202e}revlis""#),
        "{}",
        condition.message
    );
    assert!(
        !condition.message.contains(['\u{7}', '\u{202E}']),
        "{:?}",
        condition.message
    );
    let listed = support::stdout_of(&control_plane_with_devportal().kubectl(
        Persona::Consumer,
        &["get", "apiproducts", "-n", &ns.name, "-o", "wide"],
        None,
    ));
    assert!(!listed.contains(['\u{7}', '\u{202E}']), "{listed:?}");
}

// ---- Item 10: a key without expiry never expired ----------------------------------------

#[tokio::test]
async fn a_key_requested_without_expiry_gets_the_maximum_lifetime() {
    let (ns, _admin) = manual_product("wave3-expiry").await;
    let consumer = client(Persona::Consumer).await;
    let mut key = fixtures::key("forever", "toys", "gold");
    key.spec.expires_at = None;
    let before = k8s_openapi::jiff::Timestamp::now();
    let (stored, warnings) = create_with_warnings(&consumer, &ns.name, &key).await;
    let expires = stored
        .spec
        .expires_at
        .as_ref()
        .expect("an expiresAt was set")
        .0;
    let year = k8s_openapi::jiff::SignedDuration::from_hours(365 * 24);
    let lifetime = expires.duration_since(before);
    assert!(
        lifetime <= year && lifetime > year - k8s_openapi::jiff::SignedDuration::from_mins(5),
        "expiresAt {expires} is the default --max-key-lifetime (365d) from now"
    );
    let warnings = warnings.join("\n");
    assert!(
        warnings.contains("spec.expiresAt was set to") && warnings.contains("365 days"),
        "{warnings}"
    );

    // The consumer cannot take it off again while the key is Pending.
    let keys = Api::<APIKey>::namespaced(consumer, &ns.name);
    let (code, message) = refusal(
        keys.patch(
            "forever",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"expiresAt": null}})),
        )
        .await,
    );
    assert_eq!(code, 422, "{message}");
    assert!(
        message.contains("spec.expiresAt may not be removed"),
        "{message}"
    );
    let kept = keys.get("forever").await.unwrap();
    assert_eq!(kept.spec.expires_at, stored.spec.expires_at);
}

// ---- Item 11: the requester's e-mail, and forged APIKeyRequests --------------------------

#[tokio::test]
async fn an_email_the_consumer_typed_reaches_the_inbox_marked_unverified() {
    let (ns, admin) = manual_product("wave3-email").await;
    let consumer = client(Persona::Consumer).await;
    // The consumer poses as the product team, and marks the address verified themselves.
    let mut key = fixtures::key("posing", "toys", "gold");
    key.spec.requested_by = Some(RequestedBy {
        user_id: Persona::Consumer.name().into(),
        email: Some("owners@shop.example.com".into()),
    });
    key.metadata.annotations =
        Some([(EMAIL_VERIFIED_ANNOTATION.to_string(), "true".to_string())].into());
    let (stored, warnings) = create_with_warnings(&consumer, &ns.name, &key).await;
    assert_eq!(
        stored
            .annotations()
            .get(EMAIL_VERIFIED_ANNOTATION)
            .map(String::as_str),
        Some("false")
    );
    assert!(
        warnings
            .join("\n")
            .contains("shown to reviewers as unverified"),
        "{warnings:?}"
    );
    // Nor can they mark it verified afterwards.
    let keys = Api::<APIKey>::namespaced(consumer, &ns.name);
    let patched = keys
        .patch(
            "posing",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {EMAIL_VERIFIED_ANNOTATION: "true"}}}),
            ),
        )
        .await
        .expect("metadata writes pass");
    assert_eq!(
        patched
            .annotations()
            .get(EMAIL_VERIFIED_ANNOTATION)
            .map(String::as_str),
        Some("false"),
        "the webhook restores the mark"
    );

    // The owner's inbox says so.
    let request = request_of(&admin, &ns.name, "posing").await;
    let request = eventually("the request to carry the mark", WAIT, || async {
        let r = Api::<APIKeyRequest>::namespaced(admin.clone(), &ns.name)
            .get(&request.name_any())
            .await
            .ok()?;
        r.annotations()
            .contains_key(EMAIL_VERIFIED_ANNOTATION)
            .then_some(r)
    })
    .await;
    assert_eq!(
        request
            .annotations()
            .get(EMAIL_VERIFIED_ANNOTATION)
            .map(String::as_str),
        Some("false")
    );
    let inbox = plugin::ok(plugin::run(Persona::Owner, &["requests", "-n", &ns.name]));
    let row = inbox
        .lines()
        .find(|l| l.starts_with(request.name_any().as_str()))
        .unwrap_or_else(|| panic!("{inbox}"));
    assert!(
        row.contains("owners@shop.example.com (unverified)"),
        "{inbox}"
    );
}

/// Creates `key` in `ns` as the admin impersonating `user` with an e-mail in `userInfo.extra`
/// (as an authenticator that knows the user's address provides it); the stored key.
async fn create_as_user_with_email(ns: &str, user: &str, email: &str, key: &APIKey) -> APIKey {
    let admin = client(Persona::Admin).await;
    let mut request = kube::core::Request::new(format!(
        "/apis/devportal.kuadrant.io/v1alpha1/namespaces/{ns}/apikeys"
    ))
    .create(&PostParams::default(), serde_json::to_vec(key).unwrap())
    .unwrap();
    let headers = request.headers_mut();
    headers.insert("Impersonate-User", user.parse().unwrap());
    headers.insert("Impersonate-Group", "system:authenticated".parse().unwrap());
    headers.insert("Impersonate-Extra-email", email.parse().unwrap());
    admin
        .request::<APIKey>(request)
        .await
        .expect("the impersonated create is admitted")
}

#[tokio::test]
async fn an_email_from_the_identity_reaches_the_inbox_verified() {
    let (ns, admin) = manual_product("wave3-email-ok").await;
    let mut key = fixtures::key("known", "toys", "gold");
    key.spec.requested_by = Some(RequestedBy {
        user_id: Persona::Consumer.name().into(),
        email: Some("typo@shop.example.com".into()),
    });
    let stored = create_as_user_with_email(
        &ns.name,
        Persona::Consumer.name(),
        "consumer@corp.example.com",
        &key,
    )
    .await;
    let requested_by = stored.spec.requested_by.clone().unwrap();
    assert_eq!(
        (requested_by.user_id.as_str(), requested_by.email.as_deref()),
        ("consumer", Some("consumer@corp.example.com"))
    );
    assert_eq!(
        stored
            .annotations()
            .get(EMAIL_VERIFIED_ANNOTATION)
            .map(String::as_str),
        Some("true")
    );
    let request = request_of(&admin, &ns.name, "known").await;
    let request = eventually("the request to carry the mark", WAIT, || async {
        let r = Api::<APIKeyRequest>::namespaced(admin.clone(), &ns.name)
            .get(&request.name_any())
            .await
            .ok()?;
        r.annotations()
            .contains_key(EMAIL_VERIFIED_ANNOTATION)
            .then_some(r)
    })
    .await;
    assert_eq!(
        request
            .annotations()
            .get(EMAIL_VERIFIED_ANNOTATION)
            .map(String::as_str),
        Some("true")
    );
    let inbox = plugin::ok(plugin::run(Persona::Owner, &["requests", "-n", &ns.name]));
    let row = inbox
        .lines()
        .find(|l| l.starts_with(request.name_any().as_str()))
        .unwrap_or_else(|| panic!("{inbox}"));
    assert!(
        row.contains("consumer@corp.example.com") && !row.contains("unverified"),
        "{inbox}"
    );
}

#[tokio::test]
async fn only_the_controller_writes_apikeyrequests() {
    let (ns, admin) = manual_product("wave3-forge").await;
    let keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &ns.name);
    keys.create(
        &PostParams::default(),
        &fixtures::key("real", "toys", "gold"),
    )
    .await
    .unwrap();
    let real = request_of(&admin, &ns.name, "real").await;
    // A team grants write access to the inbox (as `edit` would, were the CRDs aggregated into it).
    for persona in [Persona::Owner, Persona::Consumer] {
        grant(
            &ns.name,
            persona,
            "devportal.kuadrant.io",
            &["apikeyrequests"],
            &["create", "update", "patch", "get"],
        )
        .await;
    }

    // The consumer forges a request naming another user, for the owner's inbox.
    let mut forged = real.clone();
    forged.metadata = ObjectMeta {
        name: Some("forged-00000000".into()),
        ..ObjectMeta::default()
    };
    forged.status = None;
    forged.spec.requested_by = Some(RequestedBy {
        user_id: "ceo".into(),
        email: Some("ceo@shop.example.com".into()),
    });
    let consumer_requests =
        Api::<APIKeyRequest>::namespaced(client(Persona::Consumer).await, &ns.name);
    let (code, message) = refusal(
        consumer_requests
            .create(&PostParams::default(), &forged)
            .await,
    );
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("APIKeyRequests mirror APIKeys")
            && message.contains("\"consumer\" may not create APIKeyRequests"),
        "{message}"
    );

    // The owner rewrites a real request's use case, and marks its e-mail verified.
    let owner_requests = Api::<APIKeyRequest>::namespaced(client(Persona::Owner).await, &ns.name);
    for patch in [
        json!({"spec": {"useCase": "approved already, just click"}}),
        json!({"metadata": {"annotations": {EMAIL_VERIFIED_ANNOTATION: "true"}}}),
        json!({"metadata": {"labels": {devportal::names::APIKEY_UID_LABEL: "someone-else"}}}),
    ] {
        let (code, message) = refusal(
            owner_requests
                .patch(
                    &real.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await,
        );
        assert_eq!(code, 403, "{patch}: {message}");
        assert!(message.contains("only devportal's controller"), "{message}");
    }
    assert!(
        Api::<APIKeyRequest>::namespaced(admin.clone(), &ns.name)
            .get_opt("forged-00000000")
            .await
            .unwrap()
            .is_none()
    );
    let unchanged = owner_requests.get(&real.name_any()).await.unwrap();
    assert_eq!(unchanged.spec, real.spec);
    // Labels of their own are still theirs to add.
    owner_requests
        .patch(
            &real.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"triage": "later"}}})),
        )
        .await
        .expect("other metadata stays writable");
}
