//! `kubectl devportal` at the level of cmctl and kubectl-cnpg (issue 30), through the real API
//! server: a product found by name in the one namespace the user can read, an ambiguous name
//! answered with the candidates, `rotate` refusing a key that is not Approved before writing
//! anything, `--secret` checked first, `status` showing a denial's reason and reviewer, `delete`
//! waiting until the key is gone, kubectl's printers and writes under the plugin's own field
//! manager, and a server that never answers failing after `--request-timeout`, named.

use std::time::{Duration, Instant};

use devportal::names::{PLUGIN_MANAGER, ROTATION_REQUEST_ANNOTATION};
use devportal::resources::{APIKey, ApprovalMode};
use kube::Api;

use crate::support;
use support::plugin::{
    OWNER, WAIT, condition_holds, created_name, failed, impersonating_kubeconfig, inbox_until,
    json, ok, request_of, run, run_with, setting,
};
use support::{Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures};

/// A Pending key of the consumer's in `c` for product toys of `p`.
fn pending_key(p: &str, c: &str) -> String {
    created_name(&ok(run(
        Persona::Consumer,
        &[
            "request",
            "toys",
            "--plan",
            "gold",
            "--product-namespace",
            p,
            "-n",
            c,
        ],
    )))
}

#[tokio::test]
async fn request_finds_the_product_in_the_namespace_the_user_can_read() {
    let (products, consumers) = setting().await;
    let (p, c) = (products.name.as_str(), consumers.name.as_str());
    // The consumer may not list products cluster-wide; the context `consumer` names `p`.
    let kubeconfig = impersonating_kubeconfig("consumer", p);
    let out = ok(run_with(
        &kubeconfig,
        &[
            "--context",
            "consumer",
            "request",
            "toys",
            "--plan",
            "gold",
            "-n",
            c,
        ],
    ));
    let name = created_name(&out);
    assert!(
        out.contains(&format!("waiting for an owner of APIProduct {p}/toys")),
        "{out}"
    );
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let key = Api::<APIKey>::namespaced(admin, c)
        .get(&name)
        .await
        .unwrap();
    assert_eq!(key.spec.api_product_ref.namespace.as_deref(), Some(p));
    let managers: Vec<_> = key
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|f| f.manager.clone())
        .collect();
    assert!(managers.iter().any(|m| m == PLUGIN_MANAGER), "{managers:?}");
}

#[tokio::test]
async fn an_ambiguous_product_name_lists_the_candidates_and_creates_nothing() {
    let (products, consumers) = setting().await;
    let (p, c) = (products.name.as_str(), consumers.name.as_str());
    let other = TestNamespace::new("plugin-other").await;
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    fixtures::published_product(&admin, &admin, &other.name, ApprovalMode::Manual).await;
    // The admin may list products cluster-wide: toys is in p, in other (and in other tests').
    let refused = failed(run(
        Persona::Admin,
        &["request", "toys", "--plan", "gold", "-n", c],
    ));
    assert!(
        refused.starts_with("error: APIProduct \"toys\" exists in several namespaces (")
            && refused.contains(&format!("{p}/toys"))
            && refused.contains(&format!("{}/toys", other.name))
            && refused.contains("pass --product-namespace with one of"),
        "{refused}"
    );
    let keys = ok(run(Persona::Admin, &["keys", "-n", c]));
    assert_eq!(keys, "No API keys.\n", "nothing was created");
}

#[tokio::test]
async fn rotate_on_a_pending_key_exits_1_at_once_and_writes_nothing() {
    let (products, consumers) = setting().await;
    let (p, c) = (products.name.as_str(), consumers.name.as_str());
    let name = pending_key(p, c);
    let started = Instant::now();
    let refused = failed(run(Persona::Consumer, &["rotate", &name, "-n", c]));
    assert!(started.elapsed() < Duration::from_secs(10), "at once");
    assert!(
        refused.contains(&format!("apikey/{name} is Pending, not Approved")),
        "{refused}"
    );
    assert!(
        refused.contains(&format!("`kubectl devportal status {name} --kubeconfig "))
            && refused.contains(&format!(" -n {c}` says why")),
        "the hint runs as written: {refused}"
    );
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let key = Api::<APIKey>::namespaced(admin, c)
        .get(&name)
        .await
        .unwrap();
    assert!(
        !key.metadata
            .annotations
            .unwrap_or_default()
            .contains_key(ROTATION_REQUEST_ANNOTATION),
        "no rotation request left behind"
    );
}

#[tokio::test]
async fn a_missing_own_secret_is_refused_before_anything_is_written() {
    let (products, consumers) = setting().await;
    let (p, c) = (products.name.as_str(), consumers.name.as_str());
    let refused = failed(run(
        Persona::Consumer,
        &[
            "request",
            "toys",
            "--plan",
            "gold",
            "--product-namespace",
            p,
            "--secret",
            "nosuch",
            "-n",
            c,
        ],
    ));
    assert!(
        refused.contains(&format!(
            "--secret \"nosuch\": no Secret \"nosuch\" in namespace {c}"
        )),
        "{refused}"
    );
    assert_eq!(
        ok(run(Persona::Consumer, &["keys", "-n", c])),
        "No API keys.\n"
    );
}

#[tokio::test]
async fn status_shows_the_denial_reason_and_the_reviewer() {
    let (products, consumers) = setting().await;
    let (p, c) = (products.name.as_str(), consumers.name.as_str());
    let name = pending_key(p, c);
    let owner = impersonating_kubeconfig(OWNER, p);
    let request = inbox_until(&owner, "the request in the inbox", |items| {
        Some(
            request_of(items, &name)?["metadata"]["name"]
                .as_str()?
                .to_string(),
        )
    })
    .await;
    ok(run_with(
        &owner,
        &[
            "--context",
            OWNER,
            "deny",
            &request,
            "--reason",
            "use the sandbox",
        ],
    ));
    inbox_until(&owner, "the request denied", |items| {
        condition_holds(request_of(items, &name)?, "Denied").then_some(())
    })
    .await;
    let status = eventually("the key Denied", WAIT, || async {
        let status = ok(run(Persona::Consumer, &["status", &name, "-n", c]));
        status.contains("Phase:          Denied").then_some(status)
    })
    .await;
    let field = |f: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{f}:")))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {f} in {status}"))
            .to_string()
    };
    assert!(field("Message").contains("use the sandbox"), "{status}");
    assert!(
        field("Reviewed").starts_with(&format!("by {OWNER} at ")),
        "{status}"
    );
    assert_eq!(field("Product"), format!("{p}/toys"));
    assert_eq!(field("At the gateway"), "no (Denied)");
    // keys -o wide shows the same reason in its MESSAGE column.
    let wide = ok(run(
        Persona::Consumer,
        &["keys", &name, "-n", c, "-o", "wide"],
    ));
    assert!(wide.lines().next().unwrap().ends_with("MESSAGE"), "{wide}");
    assert!(
        wide.lines().nth(1).unwrap().contains("use the sandbox"),
        "{wide}"
    );
}

#[tokio::test]
async fn printers_print_exactly_what_kubectls_would() {
    let (products, consumers) = setting().await;
    let (p, c) = (products.name.as_str(), consumers.name.as_str());
    let name = pending_key(p, c);
    let keys = |args: &[&str]| {
        let mut line = vec!["keys", "-n", c];
        line.extend_from_slice(args);
        ok(run(Persona::Consumer, &line))
    };
    assert_eq!(keys(&["-o", "name"]), format!("apikey/{name}\n"));
    assert_eq!(keys(&["-o", "jsonpath={.items[*].spec.planTier}"]), "gold");
    let width = name.len().max(4) + 3;
    assert_eq!(
        keys(&[
            "-o",
            "custom-columns=NAME:.metadata.name,PLAN:.spec.planTier"
        ]),
        format!("{:<width$}PLAN\n{name:<width$}gold\n", "NAME")
    );
    assert!(keys(&["--no-headers"]).starts_with(&format!("{name} ")));
    assert_eq!(keys(&["-l", "nosuch=1"]), "No API keys.\n");
    let listed = json(&keys(&["-o", "json"]));
    assert!(
        listed["items"][0]["metadata"]
            .get("managedFields")
            .is_none()
    );
    let bad = failed(run(Persona::Consumer, &["keys", "nosuch", "-n", c]));
    assert!(bad.contains("apikey \"nosuch\" not found"), "{bad}");
}

#[tokio::test]
async fn delete_waits_until_the_key_is_gone() {
    let (products, consumers) = setting().await;
    let (p, c) = (products.name.as_str(), consumers.name.as_str());
    let name = pending_key(p, c);
    let out = ok(run(Persona::Consumer, &["delete", &name, "-n", c]));
    assert_eq!(out, format!("apikey/{name} deleted\n"));
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let gone = Api::<APIKey>::namespaced(admin, c)
        .get_opt(&name)
        .await
        .unwrap();
    assert!(gone.is_none(), "the key is gone when delete returns");
}

#[tokio::test]
async fn a_server_that_never_answers_fails_after_the_request_timeout_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    // Accepts connections and never answers.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let server = format!("https://{address}");
    let started = Instant::now();
    let error = failed(run(
        Persona::Consumer,
        &[
            "--server",
            &server,
            "--request-timeout",
            "2s",
            "keys",
            "-n",
            "default",
        ],
    ));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert!(
        error.starts_with(&format!("error: cannot reach the API server at {server}")),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "one line: {error}");
}

#[tokio::test]
async fn a_refused_connection_names_the_server_and_the_cause() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let server = format!("https://{address}");
    let error = failed(run(Persona::Consumer, &["--server", &server, "keys"]));
    assert!(
        error.starts_with(&format!("error: cannot reach the API server at {server}"))
            && error.to_lowercase().contains("refused"),
        "{error}"
    );
}

#[tokio::test]
async fn kubectl_completes_the_plugins_subcommands_and_the_users_key_names() {
    let (products, consumers) = setting().await;
    let (p, c) = (products.name.as_str(), consumers.name.as_str());
    let name = pending_key(p, c);
    let cp = control_plane_with_devportal();
    let dir = std::path::Path::new(support::plugin::BINARY)
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let complete = |words: &[&str]| {
        let out = std::process::Command::new(cp.state_dir().join("bin/kubectl"))
            .env("PATH", &path)
            .env("KUBECONFIG", cp.kubeconfig(Persona::Consumer))
            .arg("__complete")
            .args(words)
            .output()
            .expect("kubectl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let subcommands = complete(&["devportal", "re"]);
    for word in ["request", "requests", "reveal"] {
        assert!(
            subcommands
                .lines()
                .any(|l| l.split('\t').next() == Some(word)),
            "{word} in {subcommands}"
        );
    }
    let keys = complete(&["devportal", "status", "-n", c, ""]);
    assert!(keys.lines().any(|l| l == name), "{name} in {keys}");
    let tiers = complete(&[
        "devportal",
        "request",
        "toys",
        "--product-namespace",
        p,
        "--plan",
        "",
    ]);
    let tiers: Vec<&str> = tiers.lines().filter(|l| !l.starts_with(':')).collect();
    assert_eq!(tiers, ["gold", "silver"]);
}

#[tokio::test]
async fn keys_watch_prints_a_row_for_a_key_created_after_the_listing() {
    let (products, consumers) = setting().await;
    let (p, c) = (products.name.as_str(), consumers.name.as_str());
    let cp = control_plane_with_devportal();
    let mut watching = std::process::Command::new(support::plugin::BINARY)
        .arg("--kubeconfig")
        .arg(cp.kubeconfig(Persona::Consumer))
        .args(["keys", "-w", "--no-headers", "-n", c])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl-devportal runs");
    let stdout = watching.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(
        received.recv_timeout(WAIT).unwrap(),
        "No API keys.",
        "the listing"
    );
    let name = pending_key(p, c);
    let deadline = Instant::now() + WAIT;
    let row = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = received
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no row for {name}"));
        if line.starts_with(&format!("{name} ")) {
            break line;
        }
    };
    watching.kill().unwrap();
    watching.wait().unwrap();
    assert!(row.contains("gold"), "{row}");
}

#[tokio::test]
async fn run_by_kubectl_the_usage_says_kubectl_devportal_and_version_names_the_server() {
    let cp = control_plane_with_devportal();
    let dir = std::path::Path::new(support::plugin::BINARY)
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new(cp.state_dir().join("bin/kubectl"))
            .env("PATH", &path)
            .env("KUBECONFIG", cp.kubeconfig(Persona::Consumer))
            .args(args)
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let help = kubectl(&["devportal", "status", "--help"]);
    assert!(help.contains("Usage: kubectl devportal status"), "{help}");
    assert!(
        help.contains("Examples:\n  kubectl devportal status toys-8bjlg -n team-a"),
        "{help}"
    );
    let version = kubectl(&["devportal", "version"]);
    assert!(version.contains("\nServer Version: v1."), "{version}");
    // Typed by hand, found on PATH: argv[0] is the bare name.
    let direct = std::process::Command::new("kubectl-devportal")
        .env("PATH", &path)
        .args(["status", "--help"])
        .output()
        .expect("kubectl-devportal runs");
    let direct = String::from_utf8(direct.stdout).unwrap();
    assert!(
        direct.contains("Usage: kubectl-devportal status"),
        "{direct}"
    );
}
