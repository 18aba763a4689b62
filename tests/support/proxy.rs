//! [`RoundRobin`]: a tiny proxy that hands each new connection to the next of several webhook
//! replicas and forwards the bytes both ways, as a Service in front of several replicas would.
//!
//! It terminates TLS itself (with the webhook's certificate) and offers only HTTP/1.1, then
//! opens a TLS connection of its own to the replica. Over HTTP/2 the API server would send every
//! admission down one multiplexed connection, so one replica would see them all; over HTTP/1.1
//! concurrent admissions need one connection each and are spread over the replicas.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use devportal::tls::{CertFiles, ReloadingCert};
use tokio_rustls::TlsAcceptor;

use super::https::Https;

/// A round-robin proxy on 127.0.0.1, running on a thread of its own for the rest of the process
/// (so it outlives the test that started it, like the processes behind it).
pub struct RoundRobin {
    /// Where it listens.
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl RoundRobin {
    /// Starts a proxy in front of `backends`, serving the certificate `files` and trusting
    /// `ca_pem` for the backends' certificates.
    pub fn start(backends: Vec<SocketAddr>, files: CertFiles, ca_pem: &str) -> Self {
        assert!(!backends.is_empty(), "a proxy needs a backend");
        let cert = Arc::new(ReloadingCert::load(files).expect("proxy certificate"));
        let mut server = cert.server_config(None).expect("proxy TLS configuration");
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(server));
        let upstream = Https::trusting(&[ca_pem]);
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("proxy address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(serve(listener, backends, acceptor, upstream, counter));
        });
        RoundRobin { addr, connections }
    }

    /// How many connections it has accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

async fn serve(
    listener: TcpListener,
    backends: Vec<SocketAddr>,
    acceptor: TlsAcceptor,
    upstream: Https,
    counter: Arc<AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let backend = backends[counter.fetch_add(1, Ordering::Relaxed) % backends.len()];
        let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
        tokio::spawn(async move {
            let Ok(mut inbound) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(mut outbound) = upstream.connect_raw(backend).await else {
                return;
            };
            // Either side closing or failing ends the connection; nothing to report.
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        });
    }
}
