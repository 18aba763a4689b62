//! The HTTPS server in-process, with an in-memory cluster: certificate rotation under a running
//! server (including a Secret volume's `..data` symlink swap) without dropping open connections,
//! the body cap, readiness and graceful shutdown. Connection limits are in
//! tests/it/webhook_transport.rs.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use devportal::resources::APIProduct;
use devportal::resources::gateway::HTTPRoute;
use devportal::webhook::key_counts::Claim;
use devportal::webhook::lookup::{Lookup, Read};
use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::jiff::Timestamp;
use support::https::Https;
use support::webhook_server::{
    SecretVolume, der, key_review, pair, product, response_of, start, start_with,
};

#[tokio::test]
async fn rotating_the_certificate_files_swaps_the_certificate_without_dropping_connections() {
    let (first, second) = (pair(), pair());
    let mut volume = SecretVolume::new(&first);
    let running = start(volume.files(), 1 << 20).await;
    let client = Https::trusting(&[&first.cert, &second.cert]);

    let mut open = client.connect(running.addr).await.expect("TLS connection");
    assert_eq!(open.peer_certificate, der(&first.cert));
    let reply = open
        .request("POST", "/validate/apikeys", key_review())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(response_of(&reply.body)["allowed"], true);
    assert!(reply.server_ms.is_some(), "the Server-Timing header is set");

    volume.write(&second);
    let mut rotated = false;
    for _ in 0..200 {
        let fresh = client.connect(running.addr).await.expect("TLS connection");
        if fresh.peer_certificate == der(&second.cert) {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(rotated, "new handshakes get the new certificate");

    // The connection opened before the rotation still serves requests.
    let reply = open
        .request("POST", "/validate/apikeys", key_review())
        .await
        .expect("the old connection survives the rotation");
    assert_eq!(reply.status, 200);
    assert_eq!(response_of(&reply.body)["uid"], "u-1");

    running.shutdown.cancel();
    running.server.await.expect("server drains and stops");
}

#[tokio::test]
async fn the_body_cap_readiness_and_shutdown_behave_over_https() {
    let first = pair();
    let volume = SecretVolume::new(&first);
    let running = start(volume.files(), 4096).await;
    let client = Https::trusting(&[&first.cert]);
    let mut conn = client.connect(running.addr).await.unwrap();

    let reply = conn.request("GET", "/readyz", String::new()).await.unwrap();
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"ok\n"[..]));

    // Oversized, with the uid up front as the API server writes it: a denial the user can read.
    let padded = format!(
        r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{"uid":"big-1","object":"{}"}}}}"#,
        "x".repeat(10_000)
    );
    let reply = conn
        .request("POST", "/validate/apikeys", padded)
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let response = response_of(&reply.body);
    assert_eq!(response["uid"], "big-1");
    assert_eq!(response["status"]["code"], 413);

    // Garbage gets a 400 with an AdmissionReview body.
    let mut conn = client.connect(running.addr).await.unwrap();
    let reply = conn
        .request("POST", "/mutate/apikeys", "{not json".into())
        .await
        .unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(response_of(&reply.body)["allowed"], false);

    running.shutdown.cancel();
    running.server.await.expect("server stops");
    assert!(
        client.connect(running.addr).await.is_err(),
        "nothing listens after shutdown"
    );
}

/// A cluster whose product lookups take a while, like a slow live read.
struct Slow(Duration);

impl Lookup for Slow {
    async fn product(
        &self,
        _: &str,
        _: &str,
        _: Read,
    ) -> devportal::Result<Option<Arc<APIProduct>>> {
        tokio::time::sleep(self.0).await;
        Ok(Some(Arc::new(product())))
    }
    async fn route(&self, _: &str, _: &str, _: Read) -> devportal::Result<Option<Arc<HTTPRoute>>> {
        Ok(None)
    }
    async fn key_request(
        &self,
        _: &str,
        _: &str,
    ) -> devportal::Result<Option<Arc<devportal::resources::APIKeyRequest>>> {
        Ok(None)
    }
    fn admit_key(&self, _: &Claim, _: Timestamp) -> Result<(), usize> {
        Ok(())
    }
    async fn may_approve(&self, _: &UserInfo, _: &str, _: &str) -> devportal::Result<bool> {
        Ok(false)
    }
    async fn may_impersonate(&self, _: &UserInfo, _: &str) -> devportal::Result<bool> {
        Ok(false)
    }
}

#[tokio::test]
async fn shutdown_drains_admissions_in_flight() {
    let first = pair();
    let volume = SecretVolume::new(&first);
    let running = start_with(volume.files(), 1 << 20, Slow(Duration::from_millis(500))).await;
    let mut conn = Https::trusting(&[&first.cert])
        .connect(running.addr)
        .await
        .unwrap();
    let in_flight = tokio::spawn(async move {
        conn.request("POST", "/validate/apikeys", key_review())
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    running.shutdown.cancel();
    let reply = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(reply.status, 200);
    assert_eq!(response_of(&reply.body)["allowed"], true);
    running.server.await.expect("server stops after draining");
}

#[tokio::test]
async fn half_sent_bodies_cannot_hold_more_than_the_body_budget() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // A 64 KiB cap gives a budget of 16 such bodies (1 MiB) in memory at once.
    let first = pair();
    let volume = SecretVolume::new(&first);
    let running = start(volume.files(), 64 * 1024).await;
    let client = Https::trusting(&[&first.cert]);

    // The attack: many connections, each announcing a body just under the cap and sending most
    // of it, then stalling.
    let chunk = vec![b'x'; 60 * 1024];
    let mut held = Vec::new();
    for _ in 0..40 {
        let mut stream = client.connect_raw(running.addr).await.unwrap();
        let head = format!(
            "POST /validate/apikeys HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            chunk.len() + 1024
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&chunk).await.unwrap();
        stream.flush().await.unwrap();
        held.push(stream);
    }
    // Bodies past the budget are refused at once with 503, not buffered.
    // Every connection is read at once, for up to 2 s: the held ones never answer.
    let answers = futures::future::join_all(held.iter_mut().map(|stream| async move {
        let mut answer = [0u8; 32];
        match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut answer)).await {
            Ok(Ok(n)) => answer[..n].starts_with(b"HTTP/1.1 503"),
            _ => false,
        }
    }))
    .await;
    let shed = answers.into_iter().filter(|shed| *shed).count();
    assert!(
        (40 - 17..=40 - 15).contains(&shed),
        "about 16 half-sent bodies fit the budget, the rest were shed: {shed} shed"
    );

    // Once the stalled clients go, the budget is back and admissions flow.
    drop(held);
    let mut conn = client.connect(running.addr).await.unwrap();
    let reply = conn
        .request("POST", "/mutate/apikeys", "{not json".into())
        .await
        .unwrap();
    assert_eq!(reply.status, 400, "answered, not shed");
    running.shutdown.cancel();
    running.server.await.expect("server stops");
}
