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

    /// An HTTP fetch (OIDC discovery, OpenAPI document) failed.
    #[error("fetching {url}: {reason}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// Why it failed.
        reason: String,
    },

    /// An object devportal relies on is missing or malformed.
    #[error("{0}")]
    Invalid(String),

    /// The work was abandoned because the process is shutting down or lost leadership.
    #[error("shutting down")]
    ShuttingDown,

    /// Adding or removing the APIKey finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
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
            Error::Fetch { .. } => "fetch",
            Error::Invalid(_) => "invalid",
            Error::ShuttingDown => "shutting_down",
            Error::Finalizer(_) => "finalizer",
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
