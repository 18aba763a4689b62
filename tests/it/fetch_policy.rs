//! Discovery fetches as an API owner can aim them (namespace-scoped rights on their own product,
//! nothing else), against a controller with the default destination policy, as installed: no
//! `--fetch-allow` (the shared `devportal run`). The node, the pod network, cloud metadata and the
//! cluster's Services stay out of reach, and nothing they would answer reaches a product's status.
//! (tests/controllers/controller.rs runs the allowed side: 127.0.0.1 on the allow-list.)

use crate::support;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use devportal::resources::kuadrant::AuthPolicy;
use devportal::resources::{APIProduct, ApprovalMode};
use ipnet::IpNet;
use k8s_openapi::api::networking::v1::ServiceCIDR;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use support::{
    Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures, stdout_of,
};

const WAIT: Duration = Duration::from_secs(30);

/// A service on loopback answering every request as an internal one would; returns its port and
/// how many requests reached it.
async fn internal_service() -> (u16, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let counted = hits.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { "INTERNAL-ONLY: db_password=hunter2" }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, hits)
}

/// A published product `toys` in a fresh namespace, and the owner's and the admin's clients.
async fn published(prefix: &str) -> (TestNamespace, Api<APIProduct>, Client) {
    let ns = TestNamespace::new(prefix).await;
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let owner = control_plane_with_devportal().client(Persona::Owner).await;
    fixtures::published_product(&admin, &owner, &ns.name, ApprovalMode::Automatic).await;
    let products = Api::<APIProduct>::namespaced(owner, &ns.name);
    (ns, products, admin)
}

fn condition(product: &APIProduct, type_: &str) -> Option<Condition> {
    product
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// Points the product's OpenAPI URL at `url`, as the owner, and waits for the controller to
/// refuse it with a message containing `says`.
async fn refused_openapi(owner: &Api<APIProduct>, url: &str, says: &str) -> APIProduct {
    owner
        .patch(
            "toys",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"documentation": {"openAPISpecURL": url}}})),
        )
        .await
        .expect("the owner sets the OpenAPI URL");
    let product = eventually(&format!("{url} to be refused"), WAIT, || async {
        let p = owner.get("toys").await.ok()?;
        let c = condition(&p, "OpenAPISpecReady")?;
        (c.status == "False" && c.message.contains(says)).then_some(p)
    })
    .await;
    let refusal = condition(&product, "OpenAPISpecReady").unwrap();
    assert_eq!(
        refusal.reason, "DestinationNotAllowed",
        "{}",
        refusal.message
    );
    assert!(!refusal.message.contains("hunter2"), "{}", refusal.message);
    assert!(product.status.as_ref().unwrap().openapi.is_none());
    product
}

#[tokio::test]
async fn a_loopback_url_is_refused_and_never_fetched() {
    let (port, hits) = internal_service().await;
    let (ns, owner, _) = published("ssrf-loopback").await;
    for (url, says) in [
        (
            format!("http://127.0.0.1:{port}/internal"),
            "127.0.0.1 is a loopback address, which discovery does not fetch from unless the \
             platform engineer allows it (--fetch-allow)",
        ),
        (
            format!("https://[::ffff:127.0.0.1]:{port}/internal"),
            "127.0.0.1 is a loopback address",
        ),
        (
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_string(),
            "169.254.169.254 is a link-local address",
        ),
    ] {
        refused_openapi(&owner, &url, says).await;
    }
    let consumer = Api::<APIProduct>::namespaced(
        control_plane_with_devportal()
            .client(Persona::Consumer)
            .await,
        &ns.name,
    );
    let published = consumer.get("toys").await.unwrap();
    assert!(published.status.unwrap().openapi.is_none());
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing reached the service"
    );
}

#[tokio::test]
async fn a_host_name_resolving_to_loopback_is_refused() {
    let (port, hits) = internal_service().await;
    let (_ns, owner, _) = published("ssrf-localhost").await;
    // https, so the scheme is fine: the refusal comes from the resolved address.
    let product = refused_openapi(
        &owner,
        &format!("https://localhost:{port}/internal"),
        "localhost resolves to",
    )
    .await;
    let message = condition(&product, "OpenAPISpecReady").unwrap().message;
    assert!(message.contains("a loopback address"), "{message}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing reached the service"
    );
}

#[tokio::test]
async fn an_oidc_issuer_on_loopback_is_refused() {
    let (port, hits) = internal_service().await;
    let (ns, owner, admin) = published("ssrf-issuer").await;
    Api::<AuthPolicy>::namespaced(admin, &ns.name)
        .patch(
            "auth",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"rules": {"authentication": {
                "sso": {"jwt": {"issuerUrl": format!("http://127.0.0.1:{port}")}}
            }}}})),
        )
        .await
        .unwrap();
    let product = eventually("the issuer to be refused", WAIT, || async {
        let p = owner.get("toys").await.ok()?;
        let c = condition(&p, "OIDCDiscovered")?;
        (c.reason == "DestinationNotAllowed").then_some(p)
    })
    .await;
    let refusal = condition(&product, "OIDCDiscovered").unwrap();
    assert_eq!(refusal.status, "False");
    assert!(
        refusal.message.contains(&format!(
            "not fetching http://127.0.0.1:{port}/.well-known/openid-configuration: 127.0.0.1 is \
             a loopback address"
        )),
        "{}",
        refusal.message
    );
    assert!(product.status.unwrap().oidc_discovery.is_none());
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing reached the service"
    );
}

#[tokio::test]
async fn the_cluster_service_range_is_refused() {
    // The range the API server serves Services from, as the controller reads it from the
    // ServiceCIDR API (which needs `list` and `watch` on servicecidrs).
    for verb in ["list", "watch"] {
        let answer = stdout_of(&control_plane_with_devportal().kubectl(
            Persona::Controller,
            &["auth", "can-i", verb, "servicecidrs.networking.k8s.io"],
            None,
        ));
        assert_eq!(answer.trim(), "yes", "{verb} servicecidrs");
    }
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let cidrs = Api::<ServiceCIDR>::all(admin)
        .list(&ListParams::default())
        .await
        .expect("the API server serves ServiceCIDRs");
    let range: IpNet = cidrs
        .items
        .iter()
        .flat_map(|c| c.spec.iter().flat_map(|s| s.cidrs.iter().flatten()))
        .next()
        .expect("a Service range")
        .parse()
        .unwrap();
    let service_ip: IpAddr = range.hosts().next().unwrap();
    let host = match service_ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let (_ns, owner, _) = published("ssrf-service").await;
    refused_openapi(
        &owner,
        &format!("https://{host}/openapi.json"),
        &format!("{service_ip} is in the cluster's Service range {range}"),
    )
    .await;
}

#[tokio::test]
async fn the_strict_egress_component_keeps_the_pod_off_private_networks() {
    // An overlay as an operator would write it (kustomize wants relative paths).
    let dir = support::repo_root()
        .join("target/tmp")
        .join(format!("strict-egress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "resources: [../../../manifests]\ncomponents: [../../../manifests/strict-egress]\n",
    )
    .unwrap();
    let rendered = stdout_of(&control_plane_with_devportal().kubectl(
        Persona::Admin,
        &["kustomize", dir.to_str().unwrap()],
        None,
    ));
    let policies: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&rendered)
        .map(|document| serde::Deserialize::deserialize(document).unwrap())
        .filter(|o: &serde_json::Value| o["kind"] == "NetworkPolicy")
        .collect();
    assert_eq!(policies.len(), 1, "the component narrows the one policy");
    let egress = policies[0]["spec"]["egress"].as_array().unwrap();
    assert_eq!(
        egress.len(),
        3,
        "DNS, the API server, public HTTPS: {egress:?}"
    );
    let https = &egress[2];
    assert_eq!(https["ports"], json!([{"port": 443, "protocol": "TCP"}]));
    let except: Vec<&str> = https["to"][0]["ipBlock"]["except"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for private in [
        "10.0.0.0/8",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "100.64.0.0/10",
    ] {
        assert!(except.contains(&private), "{private} in {except:?}");
    }
    // The API server validates it strictly (unknown or misplaced fields are refused). The policy
    // alone: the rest of the install is this control plane's own devportal's already
    // (tests/serial/manifests.rs dry-runs the whole of it on a bare one).
    let accepted = stdout_of(&control_plane_with_devportal().kubectl(
        Persona::Admin,
        &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
        Some(&policies[0].to_string()),
    ));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        accepted.contains("networkpolicy.networking.k8s.io/devportal"),
        "{accepted}"
    );
}

#[tokio::test]
async fn a_stored_document_that_is_not_openapi_is_dropped() {
    // What a devportal from before these checks may have left in a status: an internal answer.
    let (port, _) = internal_service().await;
    let (ns, owner, admin) = published("ssrf-upgrade").await;
    let url = format!("http://127.0.0.1:{port}/internal");
    let refused = refused_openapi(&owner, &url, "127.0.0.1 is a loopback address").await;
    let mut leaked = refused.status.clone().unwrap();
    leaked.openapi = Some(devportal::resources::OpenApiStatus {
        raw: "INTERNAL-ONLY: db_password=hunter2".into(),
        last_sync_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ),
        max_size_used: None,
    });
    // Written as the controller writes, so its next apply owns (and may drop) the field.
    let as_admin = Api::<APIProduct>::namespaced(admin.clone(), &ns.name);
    as_admin
        .patch_status(
            "toys",
            &PatchParams::apply("devportal-controller").force(),
            &Patch::Apply(json!({
                "apiVersion": "devportal.kuadrant.io/v1alpha1",
                "kind": "APIProduct",
                "status": leaked,
            })),
        )
        .await
        .unwrap();
    assert!(
        owner
            .get("toys")
            .await
            .unwrap()
            .status
            .unwrap()
            .openapi
            .is_some()
    );
    // Any change around the product makes the controller look again.
    Api::<devportal::resources::kuadrant::PlanPolicy>::namespaced(admin, &ns.name)
        .patch(
            "plans",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    eventually("the stored answer to be dropped", WAIT, || async {
        let p = owner.get("toys").await.ok()?;
        p.status?.openapi.is_none().then_some(())
    })
    .await;
}
