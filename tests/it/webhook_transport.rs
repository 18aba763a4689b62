//! The webhook's HTTPS port as an attack surface. Through the real kube-apiserver: the local
//! control plane's API server presents a client certificate to webhooks (its
//! AdmissionConfiguration) and devportal runs with `--client-ca`, so only it may call; and
//! thousands of idle connections to the port do not keep the API server's calls out. In-process
//! (support::webhook_server): idle timeouts, shedding at the cap, HTTP/2 bodies over the cap.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use devportal::names::API_VERSION;
use devportal::resources::ApprovalMode;
use std::sync::Arc;

use devportal::webhook::connections::Transport;
use devportal::webhook::lookup::MemoryLookup;
use support::https::Https;
use support::webhook_server::{SecretVolume, pair, product, response_of, start, start_transport};
use support::{
    ControlPlane, Persona, TestNamespace, control_plane_with_devportal, fixtures, stdout_of,
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
    fixtures::product_ready(&admin, &ns.name, Duration::from_secs(60)).await;
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

/// Raises this process's soft limit on open files to the hard limit (children inherit it), and
/// returns the new soft limit.
fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

#[tokio::test]
async fn thousands_of_idle_connections_do_not_keep_the_api_server_out() {
    use tokio::io::AsyncWriteExt;

    // 3,000 connections are 3,000 descriptors here and as many in the webhook (which
    // hack/local-cluster.sh starts with its soft limit raised the same way).
    let open_files = raise_open_files_limit();
    assert!(
        open_files > 4000,
        "this test needs more than 4,000 open files (ulimit -Hn is {open_files})"
    );

    let ns = published("transport-idle").await;
    let addr = cp().devportal_webhook_addr();
    let client = with_the_api_servers_certificate();

    // The attack: 3,000 connections (three times the default cap of 1,024 and more than the
    // 2,048 that used to block every write), each with TLS completed and then idle — a third
    // HTTP/2 with no stream (answering PINGs), a third HTTP/1.1 after one request, a third with
    // nothing sent after the handshake.
    const PER_KIND: usize = 1000;
    // Every connection is served: past the cap the server keeps accepting (closing the
    // longest-idle ones) instead of leaving newcomers in the backlog until something times out.
    const SERVED_WITHIN: Duration = Duration::from_secs(20);
    let mut h2 = Vec::new();
    let mut h1 = Vec::new();
    let mut bare = Vec::new();
    for _ in 0..PER_KIND / 50 {
        let opened = futures::future::join_all((0..50).map(|_| async {
            tokio::time::timeout(SERVED_WITHIN, async {
                let h2 = client
                    .connect_h2::<String>(addr)
                    .await
                    .expect("HTTP/2 connection");
                let mut h1 = client.connect(addr).await.expect("HTTP/1.1 connection");
                let reply = h1.request("GET", "/readyz", String::new()).await;
                let mut bare = client.connect_raw(addr).await.expect("TLS connection");
                bare.flush().await.unwrap();
                (h2, (h1, reply.is_ok()), bare)
            })
            .await
            .expect("the webhook accepts and serves every new connection, past its cap too")
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

    // With all of them held (the server's share of them idle for far less than its idle
    // timeout), key requests through the real API server are admitted: its webhook calls (5 s
    // timeout, failurePolicy Fail) are served, not left in the backlog.
    for i in 0..3 {
        let took = apply_key(&ns.name, &format!("while-flooded-{i}"));
        eprintln!("kubectl apply while flooded took {took:?}");
    }
    drop((h2, h1, bare));
}

/// Sends `GET /readyz` on a raw HTTP/1.1 stream and reads until the answer is complete.
async fn ready_over_raw<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream
        .write_all(b"GET /readyz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !seen.ends_with(b"ok\n") {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
    seen.starts_with(b"HTTP/1.1 200")
}

/// Whether the server closes `stream` within a generous deadline (reads return end of stream
/// or an error).
async fn closed_by_server<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn idle_connections_of_both_protocols_are_closed_after_the_idle_timeout() {
    let first = pair();
    let volume = SecretVolume::new(&first);
    let transport = Transport {
        idle_timeout: Duration::from_secs(1),
        ..Transport::default()
    };
    let product = MemoryLookup::default().with_product(product());
    let running = start_transport(volume.files(), 1 << 20, product, transport).await;
    let client = Https::trusting(&[&first.cert]);

    // HTTP/1.1 after one request, HTTP/2 with no stream, and TLS with nothing sent.
    let mut h1 = client.connect_raw(running.addr).await.unwrap();
    assert!(ready_over_raw(&mut h1).await, "answered first");
    let (_sender, h2) = client
        .connect_h2::<String>(running.addr)
        .await
        .expect("HTTP/2 connection");
    let mut bare = client.connect_raw(running.addr).await.unwrap();

    assert!(closed_by_server(&mut h1).await, "idle HTTP/1.1 closed");
    assert!(closed_by_server(&mut bare).await, "silent TLS closed");
    tokio::time::timeout(Duration::from_secs(20), h2)
        .await
        .expect("idle HTTP/2 closed (GOAWAY)")
        .unwrap();

    running.shutdown.cancel();
    running.server.await.expect("server stops");
}

#[tokio::test]
async fn at_the_connection_cap_the_longest_idle_connection_gives_way() {
    let first = pair();
    let volume = SecretVolume::new(&first);
    let transport = Transport {
        max_connections: 4,
        idle_timeout: Duration::from_secs(600),
    };
    let product = MemoryLookup::default().with_product(product());
    let running = start_transport(volume.files(), 1 << 20, product, transport).await;
    let client = Https::trusting(&[&first.cert]);

    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = client.connect_raw(running.addr).await.unwrap();
        assert!(ready_over_raw(&mut stream).await);
        held.push(stream);
    }
    // A fifth caller is served at once, and the first (longest idle) connection is closed.
    let mut newcomer =
        tokio::time::timeout(Duration::from_secs(20), client.connect_raw(running.addr))
            .await
            .expect("a newcomer past the cap is served, not left in the backlog")
            .unwrap();
    assert!(
        ready_over_raw(&mut newcomer).await,
        "the newcomer is served"
    );
    assert!(
        closed_by_server(&mut held[0]).await,
        "the longest-idle is shed"
    );
    // The others were not shed: they still answer.
    for stream in &mut held[1..] {
        assert!(
            ready_over_raw(stream).await,
            "younger idle connections stay"
        );
    }

    running.shutdown.cancel();
    running.server.await.expect("server stops");
}

#[tokio::test]
async fn an_http2_body_over_the_cap_is_cut_off_while_streaming() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::{Bytes, Frame};

    let first = pair();
    let volume = SecretVolume::new(&first);
    let running = start(volume.files(), 64 * 1024).await;
    let client = Https::trusting(&[&first.cert]);

    // A 50 MB body, produced only as fast as the server takes it.
    const CHUNK: usize = 64 * 1024;
    const TOTAL: usize = 50 << 20;
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let head = r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"big-h2","object":""#;
    let chunks = futures::stream::iter((0..TOTAL / CHUNK).map(move |i| {
        let mut chunk = vec![b'x'; CHUNK];
        if i == 0 {
            chunk[..head.len()].copy_from_slice(head.as_bytes());
        }
        counter.fetch_add(CHUNK, Ordering::SeqCst);
        Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(chunk)))
    }));
    let (mut sender, _conn) = client
        .connect_h2::<StreamBody<_>>(running.addr)
        .await
        .expect("HTTP/2 connection");
    let request = hyper::Request::builder()
        .method("POST")
        .uri("https://127.0.0.1/validate/apikeys")
        .header("content-type", "application/json")
        .body(StreamBody::new(chunks))
        .unwrap();
    let response = sender.send_request(request).await.expect("answered");
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let reply = response_of(&body);
    assert_eq!(reply["uid"], "big-h2");
    assert_eq!(reply["status"]["code"], 413);
    let sent = produced.load(Ordering::SeqCst);
    assert!(
        sent < 8 << 20,
        "the body was cut off near the cap, not read whole: {sent} bytes produced"
    );

    running.shutdown.cancel();
    running.server.await.expect("server stops");
}
