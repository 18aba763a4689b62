//! The HTTP fetches of discovery: bounded in size and time, retried with exponential backoff,
//! sent only where the [`DestinationPolicy`] allows, and returning a document only once it is
//! known to be what was asked for.

use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use reqwest::Url;
use tokio_util::sync::CancellationToken;

use super::destination::{
    AllowList, CheckedResolver, DenyList, DestinationPolicy, Refusal, redirect_policy,
};
use super::documents::{self, PassedDocuments};
use super::service_ranges::ServiceRanges;
use crate::{Error, Result};

/// Wait before the second attempt; doubled for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Time limit of one attempt, connecting included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fetch waits for the cluster's Service ranges after the controller starts.
const SERVICE_RANGES_WAIT: Duration = Duration::from_secs(10);

/// Command-line arguments of discovery fetches.
#[derive(Clone, Debug, clap::Args)]
pub struct FetchArgs {
    /// Largest OpenAPI or OIDC discovery document fetched, in bytes.
    #[arg(long = "fetch-max-bytes", env = "DEVPORTAL_FETCH_MAX_BYTES", default_value_t = 512 * 1024)]
    pub max_bytes: usize,

    /// Attempts per fetch before giving up until the next reconcile.
    #[arg(
        long = "fetch-attempts",
        env = "DEVPORTAL_FETCH_ATTEMPTS",
        default_value_t = 4
    )]
    pub attempts: u32,

    /// Comma-separated host names, `*.domain`s, IP addresses and CIDRs that discovery may fetch
    /// from although they are not public (loopback, private, link-local, the Service range...),
    /// over https or plain http. By default (empty): only https, only to public addresses.
    #[arg(
        long = "fetch-allow",
        env = "DEVPORTAL_FETCH_ALLOW",
        default_value = "",
        value_parser = AllowList::parse
    )]
    pub allow: AllowList,

    /// Comma-separated CIDRs that discovery never fetches from, on top of the built-in ranges and
    /// the cluster's ServiceCIDRs: the Service range before Kubernetes 1.33, a public node range.
    #[arg(
        long = "fetch-deny",
        env = "DEVPORTAL_FETCH_DENY",
        default_value = "",
        value_parser = DenyList::parse
    )]
    pub deny: DenyList,
}

impl FetchArgs {
    /// The fetcher these arguments describe. It follows the cluster's ServiceCIDRs through
    /// `client` until `stop` is cancelled.
    pub fn fetcher(&self, client: Client, stop: CancellationToken) -> Result<Fetcher> {
        let policy = DestinationPolicy::new(
            self.allow.clone(),
            self.deny.clone(),
            ServiceRanges::follow(client, stop),
        );
        Fetcher::new(policy, self.max_bytes, self.attempts, FIRST_BACKOFF)
    }
}

/// What kind of failure a discovery fetch ended in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchFailure {
    /// The URL is not an absolute http(s) URL (or an issuer URL has a query or fragment).
    InvalidUrl,
    /// The destination policy refused the URL, a redirect or an address the host resolved to.
    Refused,
    /// Resolving, connecting, the HTTP exchange or the size cap failed.
    Failed,
    /// The answer is not an OpenAPI 3.x or Swagger 2.0 document.
    NotOpenApi,
    /// The answer is not an OpenID Connect discovery document for the issuer.
    NotOidcDiscovery,
}

impl FetchFailure {
    /// The status condition reason reporting this failure.
    pub fn condition_reason(self) -> &'static str {
        match self {
            FetchFailure::InvalidUrl => "InvalidURL",
            FetchFailure::Refused => "DestinationNotAllowed",
            FetchFailure::Failed => "FetchFailed",
            FetchFailure::NotOpenApi => "NotAnOpenAPIDocument",
            FetchFailure::NotOidcDiscovery => "NotADiscoveryDocument",
        }
    }

    /// Whether trying again soon may help: only a failed exchange; a refusal or a wrong document
    /// stays so until the spec (or the platform's policy) changes.
    pub fn is_transient(self) -> bool {
        self == FetchFailure::Failed
    }
}

/// A failed discovery fetch, the payload of [`Error::Fetch`]. Its message names the URL and the
/// reason, never what the URL answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchError {
    /// What kind of failure.
    pub failure: FetchFailure,
    /// The URL fetched.
    pub url: String,
    /// Why it failed.
    pub detail: String,
}

impl FetchError {
    fn new(failure: FetchFailure, url: &str, detail: impl Into<String>) -> Self {
        Self {
            failure,
            url: url.to_string(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { url, detail, .. } = self;
        match self.failure {
            FetchFailure::InvalidUrl => write!(f, "{url:?} is not a usable URL: {detail}"),
            FetchFailure::Refused => write!(f, "not fetching {url}: {detail}"),
            FetchFailure::Failed => write!(f, "fetching {url}: {detail}"),
            FetchFailure::NotOpenApi => write!(
                f,
                "{url} is not an OpenAPI 3.x or Swagger 2.0 document: {detail}"
            ),
            FetchFailure::NotOidcDiscovery => write!(
                f,
                "{url} is not an OpenID Connect discovery document: {detail}"
            ),
        }
    }
}

impl From<FetchError> for Error {
    fn from(error: FetchError) -> Self {
        Error::Fetch(error)
    }
}

/// One failed attempt: the failure, whether another attempt may help, and why.
type AttemptFailure = (FetchFailure, bool, String);

/// HTTP fetches for discovery: bounded in size and time, retried with exponential backoff, and
/// only to destinations the policy allows.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: Arc<DestinationPolicy>,
    passed: Arc<PassedDocuments>,
    max_bytes: usize,
    attempts: u32,
    first_backoff: Duration,
}

impl Fetcher {
    /// A fetcher sending requests only where `policy` allows, reading at most `max_bytes` per
    /// document and trying `attempts` times, waiting `first_backoff`, then twice that, and so on.
    pub fn new(
        policy: DestinationPolicy,
        max_bytes: usize,
        attempts: u32,
        first_backoff: Duration,
    ) -> Result<Self> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT)
            .user_agent(concat!("devportal/", env!("CARGO_PKG_VERSION")))
            // A proxy would resolve and dial on our behalf, past the policy's checks.
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver(policy.clone())))
            .redirect(redirect_policy(policy.clone()))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            client,
            policy,
            passed: Arc::default(),
            max_bytes,
            attempts: attempts.max(1),
            first_backoff,
        })
    }

    /// The largest document it reads, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The OpenAPI 3.x or Swagger 2.0 document at `url`, as served (JSON or YAML).
    pub async fn openapi(&self, url: &str) -> Result<String, FetchError> {
        let body = self.fetch(url).await?;
        self.passed
            .check(&body)
            .map_err(|why| FetchError::new(FetchFailure::NotOpenApi, url, why))?;
        Ok(body)
    }

    /// Whether a stored document is an OpenAPI document (one stored by an older devportal may not
    /// be). Cheap for documents this fetcher fetched or checked before.
    pub fn is_openapi(&self, stored: &str) -> bool {
        self.passed.check(stored).is_ok()
    }

    /// The `token_endpoint` of the OIDC issuer at `issuer`, from its discovery document.
    pub async fn token_endpoint(&self, issuer: &str) -> Result<String, FetchError> {
        let parsed = Url::parse(issuer)
            .map_err(|e| FetchError::new(FetchFailure::InvalidUrl, issuer, e.to_string()))?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(FetchError::new(
                FetchFailure::InvalidUrl,
                issuer,
                "an issuer URL has no query or fragment",
            ));
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let body = self.fetch(&url).await?;
        documents::oidc_token_endpoint(&body, issuer)
            .map_err(|why| FetchError::new(FetchFailure::NotOidcDiscovery, &url, why))
    }

    /// Fetches `url` as text, retrying failures (connection errors and 5xx/429) with backoff.
    /// A refused destination, an oversized document or a 4xx answer fails at once.
    async fn fetch(&self, url: &str) -> Result<String, FetchError> {
        let parsed = Url::parse(url)
            .map_err(|e| FetchError::new(FetchFailure::InvalidUrl, url, e.to_string()))?;
        if !self
            .policy
            .service_ranges()
            .known(SERVICE_RANGES_WAIT)
            .await
        {
            return Err(FetchError::new(
                FetchFailure::Failed,
                url,
                "the cluster's Service ranges are not known yet",
            ));
        }
        self.policy
            .check_url(&parsed)
            .map_err(|refusal| FetchError::new(FetchFailure::Refused, url, refusal.to_string()))?;
        let mut delay = self.first_backoff;
        let mut attempt = 1;
        loop {
            match self.fetch_once(parsed.clone()).await {
                Ok(body) => return Ok(body),
                Err((_, true, reason)) if attempt < self.attempts => {
                    tracing::debug!(%url, attempt, %reason, "fetch failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err((failure, _, reason)) => {
                    let detail = if attempt > 1 {
                        format!("{reason} (after {attempt} attempts)")
                    } else {
                        reason
                    };
                    return Err(FetchError::new(failure, url, detail));
                }
            }
        }
    }

    async fn fetch_once(&self, url: Url) -> Result<String, AttemptFailure> {
        let failed = |retry: bool, reason: String| (FetchFailure::Failed, retry, reason);
        let response = self.client.get(url).send().await.map_err(|e| judge(&e))?;
        let status = response.status();
        if !status.is_success() {
            let retryable = status.is_server_error() || status.as_u16() == 429;
            return Err(failed(retryable, format!("HTTP {status}")));
        }
        let too_large = || {
            failed(
                false,
                format!("document larger than the {} byte limit", self.max_bytes),
            )
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| judge(&e))?;
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| failed(false, "document is not UTF-8 text".into()))
    }
}

/// A reqwest error as an attempt failure: a refusal by the resolver or the redirect policy, or
/// a failed exchange described by its innermost cause (never by anything the server sent).
fn judge(error: &reqwest::Error) -> AttemptFailure {
    let mut innermost = None;
    let mut next = error.source();
    while let Some(cause) = next {
        if let Some(refusal) = cause.downcast_ref::<Refusal>() {
            return (FetchFailure::Refused, false, refusal.to_string());
        }
        innermost = Some(cause);
        next = cause.source();
    }
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirect failed"
    } else {
        "request failed"
    };
    let reason = match innermost {
        Some(cause) => format!("{what}: {cause}"),
        None => what.to_string(),
    };
    (FetchFailure::Failed, !error.is_redirect(), reason)
}

#[cfg(test)]
mod tests;
