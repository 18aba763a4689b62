//! A minimal HTTPS keep-alive client for tests and the load benchmark: one TLS connection, many
//! requests, and the certificate the server presented; optionally with a client certificate, and
//! HTTP/2 connections that open no stream (idle-connection attacks).

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Connects to a webhook trusting the given PEM certificates.
#[derive(Clone)]
pub struct Https {
    connector: TlsConnector,
}

/// One keep-alive connection.
pub struct Connection {
    sender: SendRequest<String>,
    /// DER of the leaf certificate the server presented.
    pub peer_certificate: Vec<u8>,
}

impl Https {
    /// A client trusting every certificate in `pems` as a root.
    pub fn trusting(pems: &[&str]) -> Self {
        Self::new(pems, None)
    }

    /// A client trusting every certificate in `pems` as a root and presenting `client` (PEM
    /// certificate chain and key), if given, when the server asks for a certificate. It offers no
    /// ALPN protocol: the server tells HTTP/2 from HTTP/1.1 by the connection preface.
    pub fn new(pems: &[&str], client: Option<(&str, &str)>) -> Self {
        let mut roots = RootCertStore::empty();
        for pem in pems {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots
                    .add(cert.expect("PEM certificate"))
                    .expect("root added");
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots);
        let mut config = match client {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("PEM client certificate");
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("PEM client key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client certificate usable")
            }
            None => builder.with_no_client_auth(),
        };
        // Every connection does a full handshake, so it sees the certificate served right now.
        config.resumption = rustls::client::Resumption::disabled();
        Https {
            connector: TlsConnector::from(Arc::new(config)),
        }
    }

    /// Opens a bare TLS stream to `addr`, for tests that write HTTP by hand (half-sent bodies).
    pub async fn connect_raw(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        self.connector
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await
    }

    /// Opens a TLS connection to `addr` and starts HTTP/2 on it (preface and SETTINGS), opening no
    /// stream. The connection answers the server's PINGs until it is dropped or the server closes
    /// it; the handle resolves when it is closed.
    pub async fn connect_h2<B>(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<(
        hyper::client::conn::http2::SendRequest<B>,
        tokio::task::JoinHandle<()>,
    )>
    where
        B: hyper::body::Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let tls = self.connect_raw(addr).await?;
        let (sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(tls),
        )
        .await
        .map_err(std::io::Error::other)?;
        let running = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok((sender, running))
    }

    /// Opens a TLS connection to `addr` (verified as `127.0.0.1`) speaking HTTP/1.1.
    pub async fn connect(&self, addr: SocketAddr) -> std::io::Result<Connection> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(addr.ip().into());
        let tls = self.connector.connect(name, tcp).await?;
        let peer_certificate = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let (sender, conn) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(Connection {
            sender,
            peer_certificate,
        })
    }
}

/// A response read whole.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
    /// The `dur` of the `Server-Timing` header, in milliseconds.
    pub server_ms: Option<f64>,
}

impl Connection {
    /// Sends one request on this connection and reads the whole response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: String,
    ) -> hyper::Result<Reply> {
        self.sender.ready().await?;
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(body)
            .expect("valid request");
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let server_ms = response
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("dur=").nth(1))
            .and_then(|v| v.parse().ok());
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            body: bytes.to_vec(),
            server_ms,
        })
    }
}
