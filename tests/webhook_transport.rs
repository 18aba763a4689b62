//! The webhook's HTTPS port as an attack surface, through the real kube-apiserver: the local
//! control plane's API server presents a client certificate to webhooks (its
//! AdmissionConfiguration) and devportal runs with `--client-ca`, so only it may call; and
//! thousands of idle connections to the port do not keep the API server's calls out.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use devportal::names::API_VERSION;
use devportal::resources::{APIProduct, ApprovalMode};
use kube::Api;
use support::https::Https;
use support::{
    ControlPlane, Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures,
    stdout_of,
};

fn cp() -> &'static ControlPlane {
    control_plane_with_devportal()
}

/// A namespace with the published product `toys` (automatic approval), once its plans are
/// discovered so key requests for `gold` are admitted.
async fn published(prefix: &str) -> TestNamespace {
    cp();
    let (ns, admin) =
        fixtures::published_namespace(prefix, Persona::Owner, ApprovalMode::Automatic).await;
    let products = Api::<APIProduct>::namespaced(admin, &ns.name);
    eventually(
        "the product's plans discovered",
        Duration::from_secs(60),
        || async {
            let product = products.get("toys").await.ok()?;
            product.status?.plan_tiers.filter(|t| t.contains("gold"))
        },
    )
    .await;
    ns
}

/// `kubectl apply` of a key request as the consumer; returns how long it took.
fn apply_key(ns: &str, name: &str) -> Duration {
    let manifest = format!(
        "apiVersion: {API_VERSION}\nkind: APIKey\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  apiProductRef: {{name: toys}}\n  planTier: gold\n  useCase: transport test\n"
    );
    let started = Instant::now();
    stdout_of(&cp().kubectl(Persona::Consumer, &["apply", "-f", "-"], Some(&manifest)));
    started.elapsed()
}

/// A client trusting the webhook's serving CA, presenting the API server's webhook client
/// certificate (as an insider who has it, or anyone when --client-ca is off, could).
fn with_the_api_servers_certificate() -> Https {
    let (cert, key) = (
        cp().pki_file("webhook-client.crt"),
        cp().pki_file("webhook-client.key"),
    );
    Https::new(&[&cp().pki_file("webhook/ca.crt")], Some((&cert, &key)))
}

/// Whether a GET /readyz over a fresh connection made by `client` is answered.
async fn answered(client: &Https, addr: SocketAddr) -> bool {
    match client.connect(addr).await {
        Ok(mut conn) => conn
            .request("GET", "/readyz", String::new())
            .await
            .is_ok_and(|reply| reply.status == 200),
        Err(_) => false,
    }
}

#[tokio::test]
async fn only_clients_with_a_certificate_from_the_client_ca_reach_the_webhook() {
    let ns = published("transport-ca").await;
    let addr = cp().devportal_webhook_addr();
    let serving_ca = cp().pki_file("webhook/ca.crt");

    // No client certificate: the handshake is refused, nothing is answered.
    assert!(
        !answered(&Https::trusting(&[&serving_ca]), addr).await,
        "a caller without a client certificate was answered"
    );
    // A certificate from another CA, with the same subject the API server's has.
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver-webhook-client");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let forged = params.self_signed(&key).unwrap();
    let forger = Https::new(&[&serving_ca], Some((&forged.pem(), &key.serialize_pem())));
    assert!(
        !answered(&forger, addr).await,
        "a caller with a certificate from another CA was answered"
    );
    // A raw AdmissionReview from such a caller gets no answer either.
    let mut raw = forger.connect(addr).await;
    if let Ok(conn) = raw.as_mut() {
        let review = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x"}}"#;
        assert!(
            conn.request("POST", "/validate/apikeys", review.into())
                .await
                .is_err(),
            "an AdmissionReview from a forged certificate was answered"
        );
    }

    // The positive controls: the API server's certificate is accepted, and so a key request
    // through the API server is admitted.
    assert!(answered(&with_the_api_servers_certificate(), addr).await);
    apply_key(&ns.name, "through-the-api-server");
}

#[tokio::test]
async fn thousands_of_idle_connections_do_not_keep_the_api_server_out() {
    use tokio::io::AsyncWriteExt;

    let ns = published("transport-idle").await;
    let addr = cp().devportal_webhook_addr();
    let client = with_the_api_servers_certificate();

    // The attack: 3,000 connections (three times the default cap of 1,024 and more than the
    // 2,048 that used to block every write), each with TLS completed and then idle — a third
    // HTTP/2 with no stream (answering PINGs), a third HTTP/1.1 after one request, a third with
    // nothing sent after the handshake.
    const PER_KIND: usize = 1000;
    let mut h2 = Vec::new();
    let mut h1 = Vec::new();
    let mut bare = Vec::new();
    for _ in 0..PER_KIND / 50 {
        let opened = futures::future::join_all((0..50).map(|_| async {
            let h2 = client
                .connect_h2::<String>(addr)
                .await
                .expect("HTTP/2 connection");
            let mut h1 = client.connect(addr).await.expect("HTTP/1.1 connection");
            let reply = h1.request("GET", "/readyz", String::new()).await;
            let mut bare = client.connect_raw(addr).await.expect("TLS connection");
            bare.flush().await.unwrap();
            (h2, (h1, reply.is_ok()), bare)
        }))
        .await;
        for (a, b, c) in opened {
            h2.push(a);
            h1.push(b);
            bare.push(c);
        }
    }
    let answered_first = h1.iter().filter(|(_, ok)| *ok).count();
    assert!(answered_first > 0, "the HTTP/1.1 connections were served");
    let status = std::fs::read_to_string(format!("/proc/{}/status", cp().devportal_pid()))
        .unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or("VmRSS: ?");
    let still_open = h2
        .iter()
        .filter(|(_, running)| !running.is_finished())
        .count();
    eprintln!(
        "held {} connections ({still_open} HTTP/2 still open); webhook {rss}",
        3 * PER_KIND
    );

    // With all of them held, key requests through the real API server are admitted: its
    // webhook calls (5 s timeout, failurePolicy Fail) are served, not left in the backlog.
    for i in 0..3 {
        let took = apply_key(&ns.name, &format!("while-flooded-{i}"));
        eprintln!("kubectl apply while flooded took {took:?}");
    }
    drop((h2, h1, bare));
}
