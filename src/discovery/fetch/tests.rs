use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;

use super::*;

const OPENAPI: &str = r#"{"openapi":"3.0.3","info":{"title":"toys","version":"1"},"paths":{}}"#;

/// A local server: an OpenAPI document, an internal page, redirects to both and to the metadata
/// address. Returns its base URL and the number of requests it answered.
async fn server() -> (String, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let counted = hits.clone();
    let app = Router::new()
        .route("/openapi.json", get(|| async { OPENAPI }))
        .route(
            "/internal",
            get(|| async { "INTERNAL-ONLY: db_password=hunter2" }),
        )
        .route(
            "/moved",
            get(|| async { Redirect::temporary("/openapi.json") }),
        )
        .route(
            "/metadata",
            get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }),
        )
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                counted.fetch_add(1, Ordering::SeqCst);
                next.run(request)
            },
        ));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

fn fetcher(allow: &[&str]) -> Fetcher {
    let policy = DestinationPolicy::new(
        AllowList::parse(&allow.join(",")).unwrap(),
        DenyList::default(),
        ServiceRanges::fixed(Vec::new()),
    );
    Fetcher::new(policy, 64 * 1024, 2, Duration::from_millis(10)).unwrap()
}

#[tokio::test]
async fn loopback_is_refused_without_a_connection() {
    let (base, hits) = server().await;
    let defaults = fetcher(&[]);
    let literal = defaults
        .openapi(&format!("{base}/internal"))
        .await
        .unwrap_err();
    assert_eq!(literal.failure, FetchFailure::Refused, "{literal}");
    assert!(
        literal.detail.contains("127.0.0.1 is a loopback address"),
        "{literal}"
    );

    // A host name is checked on what it resolves to, before reqwest dials it.
    let port = base.rsplit(':').next().unwrap();
    let named = defaults
        .openapi(&format!("https://localhost:{port}/internal"))
        .await
        .unwrap_err();
    assert_eq!(named.failure, FetchFailure::Refused, "{named}");
    assert!(named.detail.contains("localhost resolves to"), "{named}");
    assert!(named.detail.contains("a loopback address"), "{named}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the server");
}

#[tokio::test]
async fn an_allowed_server_serves_openapi_and_nothing_else() {
    let (base, hits) = server().await;
    let allowing = fetcher(&["127.0.0.1"]);
    assert_eq!(
        allowing.openapi(&format!("{base}/openapi.json")).await,
        Ok(OPENAPI.to_string())
    );
    let internal = allowing
        .openapi(&format!("{base}/internal"))
        .await
        .unwrap_err();
    assert_eq!(internal.failure, FetchFailure::NotOpenApi);
    assert_eq!(internal.failure.condition_reason(), "NotAnOpenAPIDocument");
    assert!(!internal.to_string().contains("hunter2"), "{internal}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "no retry of a wrong document"
    );
}

#[tokio::test]
async fn redirects_are_followed_only_to_allowed_destinations() {
    let (base, _) = server().await;
    let allowing = fetcher(&["127.0.0.1"]);
    assert_eq!(
        allowing.openapi(&format!("{base}/moved")).await,
        Ok(OPENAPI.to_string())
    );
    let metadata = allowing
        .openapi(&format!("{base}/metadata"))
        .await
        .unwrap_err();
    assert_eq!(metadata.failure, FetchFailure::Refused, "{metadata}");
    assert!(
        metadata
            .detail
            .contains("a redirect was refused: 169.254.169.254 is a link-local address"),
        "{metadata}"
    );
}

#[tokio::test]
async fn an_issuer_is_a_plain_url_and_a_refused_one_is_not_fetched() {
    let defaults = fetcher(&[]);
    let query = defaults
        .token_endpoint("https://sso.example.com/?realm=toys")
        .await
        .unwrap_err();
    assert_eq!(query.failure, FetchFailure::InvalidUrl, "{query}");
    let metadata = defaults
        .token_endpoint("http://169.254.169.254/latest")
        .await
        .unwrap_err();
    assert_eq!(metadata.failure.condition_reason(), "DestinationNotAllowed");
    assert_eq!(
        metadata.url,
        "http://169.254.169.254/latest/.well-known/openid-configuration"
    );
}

#[test]
fn the_flags_parse_into_the_policy_lists() {
    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        fetch: FetchArgs,
    }
    use clap::Parser as _;
    let parsed = Command::try_parse_from([
        "devportal",
        "--fetch-allow=127.0.0.1,*.svc.cluster.local",
        "--fetch-deny=203.0.113.0/24",
    ])
    .unwrap();
    assert_eq!(parsed.fetch.allow.0.len(), 2);
    assert_eq!(parsed.fetch.deny.0, vec!["203.0.113.0/24".parse().unwrap()]);
    let empty = Command::try_parse_from(["devportal", "--fetch-allow="]).unwrap();
    assert_eq!(empty.fetch.allow, AllowList::default());
    let typo = Command::try_parse_from(["devportal", "--fetch-allow=10.1.2.3/8"])
        .err()
        .unwrap()
        .to_string();
    assert!(typo.contains("did you mean 10.0.0.0/8?"), "{typo}");
}
