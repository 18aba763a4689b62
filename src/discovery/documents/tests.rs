use super::*;

const PETSTORE_3: &str = r#"{
  "openapi": "3.0.3",
  "info": {"title": "Petstore", "version": "1.0.0"},
  "servers": [{"url": "https://petstore.example.com/v1"}],
  "paths": {"/pets": {"get": {"responses": {"200": {"description": "pets"}}}}},
  "x-owner": "team-pets"
}"#;

const PETSTORE_2_YAML: &str = r#"
swagger: "2.0"
info:
  title: Petstore
  version: 1.0
host: petstore.example.com
basePath: /v1
schemes: [https]
paths:
  /pets:
    get:
      responses:
        "200": {description: pets}
"#;

#[test]
fn openapi_3_json_and_swagger_2_yaml_are_accepted() {
    assert_eq!(check_openapi(PETSTORE_3), Ok(()));
    assert_eq!(check_openapi(PETSTORE_2_YAML), Ok(()));
    let components_only = r#"{"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
        "components": {"schemas": {}}}"#;
    assert_eq!(check_openapi(components_only), Ok(()));
    let yaml_3_2 = "openapi: 3.2.0\ninfo: {title: t, version: '2'}\npaths: {}\n";
    assert_eq!(check_openapi(yaml_3_2), Ok(()));
}

#[test]
fn whatever_else_a_url_answers_is_refused_without_being_quoted() {
    let secret = "db_password=hunter2";
    for body in [
        format!("INTERNAL-ONLY: {secret}"),
        format!("<html><body>{secret}</body></html>"),
        format!(r#"{{"AccessKeyId": "ASIA", "SecretAccessKey": "{secret}"}}"#),
        format!(r#"["{secret}"]"#),
        format!(
            r#"{{"openapi": "{secret}", "info": {{"title": "t", "version": "1"}}, "paths": {{}}}}"#
        ),
        format!(
            r#"{{"swagger": "{secret}", "info": {{"title": "t", "version": "1"}}, "paths": {{}}}}"#
        ),
        format!("{{{secret}"),
        String::new(),
    ] {
        let reason = check_openapi(&body).expect_err(&body);
        assert!(!reason.contains("hunter2"), "{reason}");
    }
}

#[test]
fn each_missing_piece_is_named() {
    let cases = [
        ("[1, 2]", "not a mapping"),
        (
            "{\"title\": \"x\"}",
            "no `openapi` (3.x) or `swagger` (2.0) field",
        ),
        (r#"{"openapi": "2.0"}"#, "not a 3.x version"),
        (r#"{"openapi": 3.1}"#, "not a 3.x version"),
        (r#"{"openapi": "3.0.0.1"}"#, "not a 3.x version"),
        (r#"{"swagger": "1.2"}"#, "not \"2.0\""),
        (r#"{"openapi": "3.0.0", "swagger": "2.0"}"#, "both"),
        (r#"{"openapi": "3.0.0", "paths": {}}"#, "no `info`"),
        (
            r#"{"openapi": "3.0.0", "info": {"title": "t"}, "paths": {}}"#,
            "no `info`",
        ),
        (
            r#"{"openapi": "3.0.0", "info": {"title": "t", "version": "1"}}"#,
            "no `paths` object",
        ),
        (
            r#"{"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": []}"#,
            "no `paths` object",
        ),
        (
            r#"{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}}"#,
            "none of `paths`, `components` or `webhooks`",
        ),
        (
            r#"{"openapi": "3.0.0", "info": {"title": "t", "version": "1"}, "paths": {},
                "db_password": "x", "definitions": {}}"#,
            "2 top-level field(s)",
        ),
    ];
    for (body, expected) in cases {
        let reason = check_openapi(body).expect_err(body);
        assert!(reason.contains(expected), "{body}: {reason}");
    }
}

#[test]
fn oidc_discovery_keeps_only_the_token_endpoint() {
    let issuer = "https://sso.example.com/realms/toys";
    let document = r#"{
        "issuer": "https://sso.example.com/realms/toys",
        "authorization_endpoint": "https://sso.example.com/realms/toys/auth",
        "token_endpoint": "https://sso.example.com/realms/toys/token",
        "jwks_uri": "https://sso.example.com/realms/toys/certs",
        "response_types_supported": ["code"]
    }"#;
    assert_eq!(
        oidc_token_endpoint(document, issuer).as_deref(),
        Ok("https://sso.example.com/realms/toys/token")
    );
    assert!(oidc_token_endpoint(document, &format!("{issuer}/")).is_ok());
}

#[test]
fn anything_but_a_discovery_document_for_the_issuer_is_refused() {
    let issuer = "https://sso.example.com";
    let with = |issuer_field: &str, token: &str, jwks: &str| {
        format!(r#"{{"issuer": {issuer_field}, "token_endpoint": {token}, "jwks_uri": {jwks}}}"#)
    };
    let token = r#""https://sso.example.com/token""#;
    let jwks = r#""https://sso.example.com/certs""#;
    let cases = [
        (
            "INTERNAL-ONLY: db_password=hunter2".to_string(),
            "not a JSON object",
        ),
        (
            "issuer: https://sso.example.com".to_string(),
            "not a JSON object",
        ),
        (
            with(r#""https://evil.example.com""#, token, jwks),
            "`issuer`",
        ),
        (with("null", token, jwks), "`issuer`"),
        (
            with(r#""https://sso.example.com""#, token, "null"),
            "`jwks_uri`",
        ),
        (
            with(r#""https://sso.example.com""#, "7", jwks),
            "`token_endpoint`",
        ),
        (
            with(r#""https://sso.example.com""#, r#""hunter2""#, jwks),
            "`token_endpoint`",
        ),
        (
            with(
                r#""https://sso.example.com""#,
                r#""file:///etc/passwd""#,
                jwks,
            ),
            "`token_endpoint`",
        ),
        (
            with(
                r#""https://sso.example.com""#,
                r#""https://user:hunter2@sso.example.com/token""#,
                jwks,
            ),
            "`token_endpoint`",
        ),
    ];
    for (body, expected) in cases {
        let reason = oidc_token_endpoint(&body, issuer).expect_err(&body);
        assert!(reason.contains(expected), "{body}: {reason}");
        assert!(!reason.contains("hunter2"), "{reason}");
    }
}

#[test]
fn a_document_that_passed_is_remembered_and_others_are_still_checked() {
    let passed = PassedDocuments::default();
    assert_eq!(passed.check(PETSTORE_3), Ok(()));
    assert_eq!(passed.check(PETSTORE_3), Ok(()));
    assert_eq!(passed.passed.lock().unwrap().len(), 1);
    assert!(passed.check("INTERNAL-ONLY: db_password=hunter2").is_err());
    assert!(passed.check("INTERNAL-ONLY: db_password=hunter2").is_err());
    assert_eq!(
        passed.passed.lock().unwrap().len(),
        1,
        "failures are not remembered"
    );
}
