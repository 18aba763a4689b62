//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in devportal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    /// An object could not be turned into JSON.
    #[error("serializing to JSON: {0}")]
    Json(#[from] serde_json::Error),

    /// An object could not be turned into YAML.
    #[error("serializing to YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },

    /// Checked-in generated files differ from what the code generates.
    #[error("{0}")]
    Drift(String),

    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),

    /// A discovery fetch (OIDC discovery, OpenAPI document) failed, was refused by the
    /// destination policy or did not answer with the document asked for.
    #[error("{0}")]
    Fetch(crate::discovery::FetchError),

    /// An object devportal relies on is missing or malformed.
    #[error("{0}")]
    Invalid(String),

    /// The work was abandoned because the process is shutting down or lost leadership.
    #[error("shutting down")]
    ShuttingDown,

    /// Adding or removing the APIKey finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// A TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),

    /// A network listener could not be set up or failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },

    /// A call did not finish in time.
    #[error("{0} timed out")]
    Timeout(&'static str),

    /// A live call was not made: too many were made recently.
    #[error("{0} not made: too many live lookups at once")]
    RateLimited(&'static str),

    /// A live call was not made: its caller made too many recently.
    #[error("{0} not made: too many live lookups from your user at once")]
    CallerRateLimited(&'static str),

    /// The watch caches stopped before they were synced.
    #[error("watch caches: {0}")]
    Cache(String),
}

impl Error {
    /// A short, bounded label for metrics (`error="kube"`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Json(_) => "json",
            Error::Yaml(_) => "yaml",
            Error::Io { .. } => "io",
            Error::Drift(_) => "drift",
            Error::Config(_) => "config",
            Error::Fetch(_) => "fetch",
            Error::Invalid(_) => "invalid",
            Error::ShuttingDown => "shutting_down",
            Error::Finalizer(_) => "finalizer",
            Error::Tls(_) => "tls",
            Error::Listen { .. } => "listen",
            Error::Cache(_) => "cache",
            Error::Timeout(_) => "timeout",
            Error::RateLimited(_) => "rate_limited",
            Error::CallerRateLimited(_) => "caller_rate_limited",
        }
    }

    /// Whether retrying soon is likely to succeed: the API server was unreachable, overloaded or
    /// briefly unavailable (a restart, an etcd election), rather than refusing the request.
    pub fn is_transient(&self) -> bool {
        fn transient(error: &kube::Error) -> bool {
            match error {
                kube::Error::Api(status) => {
                    status.code == 429 || status.code == 409 || status.code >= 500
                }
                kube::Error::HyperError(_) | kube::Error::Service(_) => true,
                _ => false,
            }
        }
        match self {
            Error::Kube(error) => transient(error),
            Error::Finalizer(boxed) => match boxed.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.is_transient(),
                // The finalizer patch tests the list it read; 422 means the key changed meanwhile.
                kube::runtime::finalizer::Error::AddFinalizer(error)
                | kube::runtime::finalizer::Error::RemoveFinalizer(error) => {
                    transient(error)
                        || matches!(error, kube::Error::Api(status) if status.code == 422)
                }
                _ => false,
            },
            Error::Timeout(_) => true,
            _ => false,
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
