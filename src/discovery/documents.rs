//! What a fetched document must be before anything of it is stored: an OpenAPI 3.x or Swagger
//! 2.0 document, or an OpenID Connect discovery document. Whatever else a URL answers (an
//! internal service's page, a metadata endpoint's credentials) is dropped, and the reasons given
//! here never quote it.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use serde_json::{Map, Value};

/// Documents remembered by [`PassedDocuments`] before it starts over.
const REMEMBERED_DOCUMENTS: usize = 4096;

/// Top-level fields OpenAPI 3.x defines (3.0 to 3.2); `x-` extensions are allowed besides.
const OPENAPI3_FIELDS: &[&str] = &[
    "openapi",
    "$self",
    "info",
    "jsonSchemaDialect",
    "servers",
    "paths",
    "webhooks",
    "components",
    "security",
    "tags",
    "externalDocs",
];

/// Top-level fields Swagger 2.0 defines; `x-` extensions are allowed besides.
const SWAGGER2_FIELDS: &[&str] = &[
    "swagger",
    "info",
    "host",
    "basePath",
    "schemes",
    "consumes",
    "produces",
    "paths",
    "definitions",
    "parameters",
    "responses",
    "securityDefinitions",
    "security",
    "tags",
    "externalDocs",
];

/// Checks that `body` (JSON or YAML) is an OpenAPI 3.x or Swagger 2.0 document: the version
/// field, `info` with a title and a version, `paths` (or, from 3.1, `components` or `webhooks`),
/// and no top-level field the specification does not define.
pub fn check_openapi(body: &str) -> Result<(), String> {
    let document = parse(body)?;
    let Value::Object(fields) = document else {
        return Err("it is not a mapping at the top level".into());
    };
    let (defined, needs_paths) = match (fields.get("openapi"), fields.get("swagger")) {
        (Some(version), None) => match version.as_str().and_then(openapi3_minor) {
            Some(minor) => (OPENAPI3_FIELDS, minor == 0),
            None => return Err("its `openapi` field is not a 3.x version".into()),
        },
        (None, Some(version)) if version.as_str() == Some("2.0") => (SWAGGER2_FIELDS, true),
        (None, Some(_)) => return Err("its `swagger` field is not \"2.0\"".into()),
        (Some(_), Some(_)) => return Err("it has both `openapi` and `swagger` fields".into()),
        (None, None) => return Err("it has no `openapi` (3.x) or `swagger` (2.0) field".into()),
    };
    check_info(&fields)?;
    let is_object = |name: &str| fields.get(name).is_some_and(Value::is_object);
    if needs_paths && !is_object("paths") {
        return Err("it has no `paths` object".into());
    }
    if !needs_paths
        && !["paths", "components", "webhooks"]
            .iter()
            .any(|f| is_object(f))
    {
        return Err("it has none of `paths`, `components` or `webhooks`".into());
    }
    let undefined = fields
        .keys()
        .filter(|key| !key.starts_with("x-") && !defined.contains(&key.as_str()))
        .count();
    if undefined > 0 {
        return Err(format!(
            "it has {undefined} top-level field(s) the specification does not define"
        ));
    }
    Ok(())
}

/// The OpenAPI documents that passed [`check_openapi`] in this process, remembered by a keyed hash
/// (unpredictable from outside, so no document can be made to collide with one that passed):
/// a stored document is then checked once per process, not parsed again on every reconcile.
#[derive(Debug, Default)]
pub struct PassedDocuments {
    keys: RandomState,
    passed: Mutex<HashSet<u64>>,
}

impl PassedDocuments {
    /// [`check_openapi`], skipped for a document that already passed it.
    pub fn check(&self, body: &str) -> Result<(), String> {
        let key = self.keys.hash_one(body);
        if self.passed.lock().expect("passed documents").contains(&key) {
            return Ok(());
        }
        check_openapi(body)?;
        let mut passed = self.passed.lock().expect("passed documents");
        if passed.len() >= REMEMBERED_DOCUMENTS {
            passed.clear();
        }
        passed.insert(key);
        Ok(())
    }
}

/// The token endpoint of an OpenID Connect discovery document fetched for `issuer`. The document
/// must be a JSON object whose `issuer` is `issuer` (as the specification requires) and that has
/// `jwks_uri` and an http(s) `token_endpoint`; only the token endpoint is kept.
pub fn oidc_token_endpoint(body: &str, issuer: &str) -> Result<String, String> {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(body) else {
        return Err("it is not a JSON object".into());
    };
    let same_issuer = fields
        .get("issuer")
        .and_then(Value::as_str)
        .is_some_and(|found| found.trim_end_matches('/') == issuer.trim_end_matches('/'));
    if !same_issuer {
        return Err("its `issuer` is missing or is not the issuer URL it was fetched for".into());
    }
    let web_url = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|u| is_web_url(u))
    };
    if web_url("jwks_uri").is_none() {
        return Err("it has no http(s) `jwks_uri`".into());
    }
    web_url("token_endpoint")
        .map(str::to_string)
        .ok_or_else(|| "it has no http(s) `token_endpoint`".into())
}

/// JSON first (the common case, and fast), then YAML.
fn parse(body: &str) -> Result<Value, String> {
    serde_json::from_str(body)
        .or_else(|_| serde_yaml::from_str(body))
        .map_err(|_| "it is neither JSON nor YAML".to_string())
}

/// The minor version of an OpenAPI 3 version string (`3.1.0` → 1), if it is one.
fn openapi3_minor(version: &str) -> Option<u32> {
    let mut parts = version.split('.');
    let numeric = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let (major, minor) = (parts.next()?, parts.next()?);
    let patch_ok = parts.next().is_none_or(numeric) && parts.next().is_none();
    (major == "3" && numeric(minor) && patch_ok)
        .then(|| minor.parse().ok())
        .flatten()
}

fn check_info(fields: &Map<String, Value>) -> Result<(), String> {
    let info = fields.get("info").and_then(Value::as_object);
    let title = info
        .and_then(|i| i.get("title"))
        .is_some_and(Value::is_string);
    // The specification wants a string; YAML reads an unquoted `version: 1.0` as a number.
    let version = info
        .and_then(|i| i.get("version"))
        .is_some_and(|v| v.is_string() || v.is_number());
    if title && version {
        Ok(())
    } else {
        Err("it has no `info` with a `title` and a `version`".into())
    }
}

/// An absolute http or https URL without credentials in it.
fn is_web_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.has_host()
            && url.username().is_empty()
            && url.password().is_none()
    })
}

#[cfg(test)]
mod tests;
