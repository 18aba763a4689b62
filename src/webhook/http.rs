//! The routes of the HTTPS server: the body cap and budget, the body read timeout, per-admission
//! metrics and logs. Connections (TLS, timeouts, the cap) are [`super::connections`]'.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use k8s_openapi::jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::body_budget::{BodyBudget, Reservation};
use super::lookup::Lookup;
use super::review::{Endpoint, Reply, Webhook};
use crate::metrics::{AdmissionLabels, Metrics};

/// A request body must arrive whole within this time.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Request bodies held in memory at once, in maximum-size bodies: with the default 4 MiB cap, at
/// most 64 MiB of bodies, whatever number of connections send them (see [`BodyBudget`]).
const BODIES_IN_FLIGHT: usize = 16;

struct AppState<C> {
    webhook: Arc<Webhook<C>>,
    max_body_bytes: usize,
    budget: BodyBudget,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

/// The routes: one POST path per [`Endpoint`] and `GET /readyz`.
pub fn router<C: Lookup>(
    webhook: Arc<Webhook<C>>,
    max_body_bytes: usize,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Router {
    let state = Arc::new(AppState {
        webhook,
        max_body_bytes,
        budget: BodyBudget::new(max_body_bytes.saturating_mul(BODIES_IN_FLIGHT)),
        metrics,
        shutdown,
    });
    let mut router = Router::new().route("/readyz", get(readyz::<C>));
    for endpoint in Endpoint::ALL {
        router = router.route(
            endpoint.path(),
            post(move |state: State<Arc<AppState<C>>>, body: Body| admit(state, endpoint, body)),
        );
    }
    router.with_state(state)
}

async fn readyz<C: Lookup>(State(state): State<Arc<AppState<C>>>) -> (StatusCode, &'static str) {
    if state.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

/// Why a body could not be read whole.
enum BodyError {
    /// Over the cap; what was read of it.
    TooLarge(Vec<u8>),
    /// The client failed or stalled.
    Read(String),
    /// The process-wide budget for bodies in memory is spent.
    Busy,
}

/// Reads at most `limit` bytes of `body`, holding them against `budget` as they arrive; the
/// reservation is returned with the bytes and released when the caller drops it.
async fn read_capped(
    body: Body,
    limit: usize,
    budget: &BodyBudget,
) -> Result<(Vec<u8>, Reservation), BodyError> {
    let mut body = body;
    let mut bytes = Vec::new();
    let mut reservation = Reservation::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                let room = limit - bytes.len();
                bytes.extend_from_slice(&data[..room]);
                return Err(BodyError::TooLarge(bytes));
            }
            if !budget.grow(&mut reservation, bytes.len() + data.len()) {
                return Err(BodyError::Busy);
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok((bytes, reservation))
}

async fn admit<C: Lookup>(
    State(state): State<Arc<AppState<C>>>,
    endpoint: Endpoint,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let read = tokio::time::timeout(
        READ_TIMEOUT,
        read_capped(body, state.max_body_bytes, &state.budget),
    )
    .await;
    let reply = match read {
        Ok(Ok((bytes, _held))) => {
            state
                .webhook
                .admit(endpoint, &bytes, Timestamp::now())
                .await
        }
        Ok(Err(BodyError::Busy)) => {
            tracing::warn!("admission request bodies in memory are at their budget; shedding");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the webhook holds as many request bodies as it may; retry\n",
            )
                .into_response();
        }
        Ok(Err(BodyError::TooLarge(prefix))) => {
            state
                .webhook
                .too_large(endpoint, &prefix, state.max_body_bytes)
        }
        Ok(Err(BodyError::Read(err))) => {
            tracing::debug!(error = %err, "reading an admission request failed");
            return (StatusCode::BAD_REQUEST, "could not read the request body\n").into_response();
        }
        Err(_) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time\n",
            )
                .into_response();
        }
    };
    log(&reply);
    let took = started.elapsed();
    let outcome = reply.outcome;
    state.metrics.admission.observe(
        AdmissionLabels {
            resource: outcome.endpoint.resource(),
            operation: outcome.operation,
            decision: if outcome.reason.allows() {
                "allowed"
            } else {
                "denied"
            },
            reason: outcome.reason.as_str(),
        },
        took,
    );
    // Time spent in devportal (body read, decision, encoding), for clients and load tests.
    let timing = format!("admit;dur={:.3}", took.as_secs_f64() * 1e3);
    Response::builder()
        .status(reply.http_status)
        .header(header::CONTENT_TYPE, "application/json")
        .header("server-timing", timing)
        .body(Body::from(reply.body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn log(reply: &Reply) {
    let o = reply.outcome;
    if o.reason.allows() {
        tracing::debug!(
            resource = o.endpoint.resource(),
            path = o.endpoint.path(),
            operation = o.operation,
            reason = o.reason.as_str(),
            "admitted"
        );
    } else {
        tracing::info!(
            resource = o.endpoint.resource(),
            path = o.endpoint.path(),
            operation = o.operation,
            reason = o.reason.as_str(),
            "denied"
        );
    }
}
