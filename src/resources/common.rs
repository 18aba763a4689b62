//! Shapes shared between devportal's resources and the Kuadrant read models.

use schemars::JsonSchema;

/// Schema pattern for one line of free text: no control characters (a BEL or an escape sequence
/// would reach every terminal that runs `kubectl get`) and no bidirectional overrides (which make
/// text read differently from what it is). Go regexp syntax, as the API server evaluates it.
pub const SINGLE_LINE: &str = r"^[^\p{Cc}\x{202A}-\x{202E}\x{2066}-\x{2069}]*$";

/// Like [`SINGLE_LINE`], but line breaks and tabs are allowed.
pub const MULTI_LINE: &str = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F\x{202A}-\x{202E}\x{2066}-\x{2069}]*$";
use serde::{Deserialize, Serialize};

/// Rate limits of one plan tier, as a Kuadrant `PlanPolicy` declares them.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Requests allowed per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<i64>,
    /// Requests allowed per week.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<i64>,
    /// Requests allowed per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<i64>,
    /// Requests allowed per year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yearly: Option<i64>,
    /// Limits over custom windows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<CustomLimit>,
}

/// A limit over a custom window such as `1m` or `10s`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomLimit {
    /// Requests allowed per window.
    pub limit: i64,
    /// Window length in Gateway API duration form (`1m`, `30s`, `1h`).
    pub window: String,
}
