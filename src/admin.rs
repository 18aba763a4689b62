//! The plain-HTTP admin port: `/metrics`, `/livez` and `/readyz`.
//!
//! Readiness is the conjunction of every registered component (the webhook's TLS listener and
//! caches, the controller's election and caches) and turns false the moment shutdown begins, so
//! load balancers stop sending traffic before the process drains.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::{Error, Result};

/// Command-line arguments of the admin port.
#[derive(Clone, Debug, clap::Args)]
pub struct AdminArgs {
    /// Address of the plain-HTTP admin port (`/metrics`, `/livez`, `/readyz`).
    /// Defaults to the pod's IP (`POD_IP`) on port 8080, else 127.0.0.1:8080.
    #[arg(long, env = "DEVPORTAL_ADMIN_LISTEN", default_value_t = crate::flags::default_listen(8080))]
    pub admin_listen: SocketAddr,
}

/// Whether the process is ready to serve, component by component.
#[derive(Default)]
pub struct Health {
    components: Mutex<BTreeMap<&'static str, bool>>,
    stopping: AtomicBool,
}

impl Health {
    /// Declares a component that is not ready yet.
    pub fn register(&self, component: &'static str) {
        self.components
            .lock()
            .expect("health lock")
            .insert(component, false);
    }

    /// Marks a component ready or not.
    pub fn set_ready(&self, component: &'static str, ready: bool) {
        self.components
            .lock()
            .expect("health lock")
            .insert(component, ready);
    }

    /// Marks the process as shutting down: not ready from now on.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// The components that are not ready, or `None` when everything is.
    pub fn not_ready(&self) -> Option<String> {
        if self.stopping.load(Ordering::SeqCst) {
            return Some("shutting down".into());
        }
        let components = self.components.lock().expect("health lock");
        let waiting: Vec<_> = components
            .iter()
            .filter(|(_, ready)| !**ready)
            .map(|(name, _)| *name)
            .collect();
        (!waiting.is_empty() || components.is_empty())
            .then(|| format!("not ready: {}", waiting.join(", ")))
    }
}

/// What every role reports into: the metrics registry and the readiness of each component.
#[derive(Clone, Default)]
pub struct Telemetry {
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Readiness.
    pub health: Arc<Health>,
}

struct Admin {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// The admin routes.
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(Admin { metrics, health }))
}

async fn metrics_text(State(admin): State<Arc<Admin>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        admin.metrics.encode(),
    )
}

async fn readyz(State(admin): State<Arc<Admin>>) -> (StatusCode, String) {
    match admin.health.not_ready() {
        None => (StatusCode::OK, "ok\n".into()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

/// Binds the admin port; fails at once when the address is taken.
pub async fn bind(args: &AdminArgs) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(args.admin_listen)
        .await
        .map_err(|source| Error::Listen {
            addr: args.admin_listen,
            source,
        })
}

/// Serves the admin port on `listener` until `done`. Readiness turns false as soon as `stopping`
/// is cancelled, while the port keeps answering so probes see the drain.
pub async fn serve(
    listener: tokio::net::TcpListener,
    telemetry: Telemetry,
    stopping: CancellationToken,
    done: CancellationToken,
) -> Result<()> {
    let addr = listener.local_addr().map_err(|source| Error::Io {
        path: "admin listener".into(),
        source,
    })?;
    tracing::info!(listen = %addr, "admin port serving /metrics, /livez, /readyz");
    let health = telemetry.health.clone();
    tokio::spawn(async move {
        stopping.cancelled().await;
        health.set_stopping();
    });
    axum::serve(listener, router(telemetry.metrics, telemetry.health))
        .with_graceful_shutdown(done.cancelled_owned())
        .await
        .map_err(|source| Error::Listen { addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_component_is_and_never_while_stopping() {
        let health = Health::default();
        assert!(health.not_ready().is_some(), "nothing registered yet");
        health.register("webhook");
        health.register("controller");
        health.set_ready("webhook", true);
        assert_eq!(health.not_ready().as_deref(), Some("not ready: controller"));
        health.set_ready("controller", true);
        assert_eq!(health.not_ready(), None);
        health.set_stopping();
        assert_eq!(health.not_ready().as_deref(), Some("shutting down"));
    }
}
