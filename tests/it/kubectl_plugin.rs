//! The `kubectl-devportal` binary run as the personas against the real API server, with
//! devportal's webhook and controller running: a consumer lists products, requests keys and
//! reveals the approved one; an owner bound in the product's namespace only (no access to
//! APIKeys) lists the inbox, approves one request and denies another. And what must fail, with
//! the API server's or the webhook's own message and a non-zero exit: a consumer approving, a
//! request for a missing product, an owner rotating a consumer's key. The consumer's rotation
//! gives both Secrets a new value before the command returns. Plus the krew manifest and the
//! completion script.

mod conventions;
mod release;
mod terminal;

use crate::support;

use serde_json::Value;
use support::plugin::{
    self, OWNER, WAIT, condition_holds, consumer_may_create_approvals, created_name, failed,
    impersonating_kubeconfig, inbox_until, json, ok, request_of, run, run_with, setting,
};
use support::secrets::{api_key, consumer, enforcement, secrets_of};
use support::{Persona, control_plane_with_devportal, eventually};

#[tokio::test]
async fn a_consumer_requests_keys_and_an_owner_reviews_them_with_the_plugin() {
    let (products, consumers) = setting().await;
    let (p, c) = (products.name.as_str(), consumers.name.as_str());

    // The consumer browses the product's namespace.
    let table = ok(run(Persona::Consumer, &["products", "-n", p]));
    let row = table
        .lines()
        .find(|l| l.starts_with("toys "))
        .unwrap_or_else(|| panic!("toys is listed: {table}"));
    for cell in [
        "The toys API",
        "manual",
        "gold: 100/day, silver: 10/day",
        "apiKey (Authorization: APIKEY)",
    ] {
        assert!(row.contains(cell), "{cell:?} missing from {row:?}");
    }
    let listed = json(&ok(run(
        Persona::Consumer,
        &["products", "-n", p, "-o", "json"],
    )));
    assert_eq!(listed["kind"], "List");
    assert_eq!(listed["items"][0]["metadata"]["name"], "toys");
    assert_eq!(
        listed["items"][0]["status"]["discoveredPlans"][0]["tier"],
        "gold"
    );

    // Two requests: a generated name, and a named one.
    let first = ok(run(
        Persona::Consumer,
        &[
            "request",
            "toys",
            "--plan",
            "gold",
            "--use-case",
            "nightly sync",
            "--expires-in",
            "30d",
            "--product-namespace",
            p,
            "-n",
            c,
        ],
    ));
    let approved_key = created_name(&first);
    assert!(approved_key.starts_with("toys-"), "{first}");
    assert!(
        first.contains(&format!(
            "phase: Pending (waiting for an owner of APIProduct {p}/toys to approve)"
        )),
        "{first}"
    );
    let second = ok(run(
        Persona::Consumer,
        &[
            "request",
            "toys",
            "--plan",
            "silver",
            "--product-namespace",
            p,
            "--name",
            "second",
            "-n",
            c,
        ],
    ));
    assert_eq!(created_name(&second), "second");

    // The consumer's keys, as a table and as YAML.
    let keys = ok(run(Persona::Consumer, &["keys", "-n", c]));
    let row = keys
        .lines()
        .find(|l| l.starts_with(&format!("{approved_key} ")))
        .unwrap_or_else(|| panic!("{approved_key} listed: {keys}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[1..4],
        ["Pending", format!("{p}/toys").as_str(), "gold"]
    );
    let yaml: Value = serde_yaml::from_str(&ok(run(
        Persona::Consumer,
        &["keys", "-n", c, "-o", "yaml"],
    )))
    .expect("-o yaml parses");
    let items = yaml["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let stored = items
        .iter()
        .find(|k| k["metadata"]["name"] == approved_key.as_str())
        .unwrap();
    assert_eq!(stored["spec"]["requestedBy"]["userId"], "consumer");
    assert_eq!(stored["spec"]["useCase"], "nightly sync");
    assert!(stored["spec"]["expiresAt"].is_string(), "{stored}");

    // The owner, through a context whose namespace is the product's, has no access to keys...
    let owner = impersonating_kubeconfig(OWNER, p);
    let refused = failed(run_with(&owner, &["--context", OWNER, "keys", "-n", c]));
    assert!(
        refused.starts_with("error: ") && refused.contains("forbidden"),
        "{refused}"
    );
    // ...but lists both requests, pending, in the inbox (no -n: the context's namespace).
    let names = inbox_until(&owner, "both requests in the inbox", |items| {
        let first = request_of(items, &approved_key)?;
        let second = request_of(items, "second")?;
        Some((
            first["metadata"]["name"].as_str()?.to_string(),
            second["metadata"]["name"].as_str()?.to_string(),
        ))
    })
    .await;
    let pending = ok(run_with(&owner, &["--context", OWNER, "requests"]));
    for name in [&names.0, &names.1] {
        let row = pending
            .lines()
            .find(|l| l.starts_with(name.as_str()))
            .unwrap_or_else(|| panic!("{name} pending: {pending}"));
        assert!(row.contains("Pending") && row.contains("consumer"), "{row}");
        assert!(row.contains(&format!("{c}/")), "the key's namespace: {row}");
    }

    // The consumer cannot approve their own request, even allowed to create APIKeyApprovals:
    // the webhook says why, and the plugin shows its message and fails.
    consumer_may_create_approvals(p).await;
    let denial = eventually(
        "the consumer's approval to be refused by the webhook",
        WAIT,
        || async {
            let output = run(Persona::Consumer, &["approve", &names.0, "-n", p]);
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            stderr.contains("may not review").then(|| failed(output))
        },
    )
    .await;
    assert!(
        denial.starts_with("error: admission webhook") && denial.contains("denied the request"),
        "the webhook's own message: {denial}"
    );
    assert!(
        denial.contains("user \"consumer\" may not review requests for APIProduct")
            && denial.contains("needs verb \"approve\""),
        "{denial}"
    );
    assert_eq!(denial.lines().count(), 1, "one line: {denial}");

    // The owner approves one and denies the other; the webhook stamps the reviewer.
    let approve = ok(run_with(
        &owner,
        &[
            "--context",
            OWNER,
            "approve",
            &names.0,
            "--reason",
            "welcome",
        ],
    ));
    assert!(
        approve.contains(&format!("approved by {OWNER}")),
        "{approve}"
    );
    let deny = ok(run_with(
        &owner,
        &[
            "--context",
            OWNER,
            "deny",
            &names.1,
            "--reason",
            "use the sandbox",
        ],
    ));
    assert!(deny.contains(&format!("denied by {OWNER}")), "{deny}");
    inbox_until(&owner, "the reviews to be applied", |items| {
        let approved = request_of(items, &approved_key)?;
        let denied = request_of(items, "second")?;
        (condition_holds(approved, "Approved")
            && condition_holds(denied, "Denied")
            && denied["status"]["reason"] == "use the sandbox"
            && approved["status"]["reviewedBy"] == OWNER)
            .then_some(())
    })
    .await;
    let still_pending = ok(run_with(&owner, &["--context", OWNER, "requests"]));
    assert!(
        !still_pending.contains(&names.0) && !still_pending.contains(&names.1),
        "decided requests leave the default listing: {still_pending}"
    );

    // The consumer sees the outcome and reveals the approved key into a pipe.
    eventually("the keys to be Approved and Denied", WAIT, || async {
        let listed = json(&ok(run(
            Persona::Consumer,
            &["keys", "-n", c, "-o", "json"],
        )));
        let phase = |name: &str| {
            listed["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|k| k["metadata"]["name"] == name)
                .map(|k| k["status"]["phase"].clone())
        };
        (phase(&approved_key)? == "Approved" && phase("second")? == "Denied").then_some(())
    })
    .await;
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let secrets = eventually("the key's Secrets", WAIT, || async {
        let secrets = secrets_of(&admin, c, &approved_key).await;
        (secrets.len() == 2).then_some(secrets)
    })
    .await;
    let value = api_key(consumer(&secrets));
    assert_eq!(value, api_key(enforcement(&secrets)));
    let revealed = ok(run(Persona::Consumer, &["reveal", &approved_key, "-n", c]));
    assert_eq!(
        revealed,
        format!("{value}\n"),
        "reveal prints the value and a newline"
    );

    // Nothing else prints it; a denied key has no value to reveal.
    for args in [
        vec!["keys", "-n", c, "-o", "yaml"],
        vec!["keys", "-n", c],
        vec!["products", "-n", p, "-o", "json"],
    ] {
        let out = run(Persona::Consumer, &args);
        assert!(out.status.success(), "{args:?}");
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains(&value),
                "{args:?} printed the key value"
            );
        }
    }
    let none = failed(run(Persona::Consumer, &["reveal", "second", "-n", c]));
    assert!(
        none.contains("is Denied") && none.contains("only an approved key"),
        "{none}"
    );

    // The owner may not rotate the consumer's key; the consumer may, and the old value goes.
    let refused = failed(run_with(
        &owner,
        &["--context", OWNER, "rotate", &approved_key, "-n", c],
    ));
    assert!(refused.starts_with("error: "), "{refused}");
    let rotated = ok(run(Persona::Consumer, &["rotate", &approved_key, "-n", c]));
    assert!(
        rotated.contains(&format!("apikey/{approved_key} rotated")),
        "{rotated}"
    );
    assert!(!rotated.contains(&value), "rotate never prints a value");
    let secrets = secrets_of(&admin, c, &approved_key).await;
    let new_value = api_key(consumer(&secrets));
    assert_ne!(new_value, value, "a new value");
    assert_eq!(
        new_value,
        api_key(enforcement(&secrets)),
        "enforced at once"
    );
    let revealed = ok(run(Persona::Consumer, &["reveal", &approved_key, "-n", c]));
    assert_eq!(revealed, format!("{new_value}\n"));
}

#[tokio::test]
async fn a_request_for_a_missing_product_shows_the_webhooks_message() {
    let (products, consumers) = setting().await;
    let refused = failed(run(
        Persona::Consumer,
        &[
            "request",
            "nosuch",
            "--plan",
            "gold",
            "--product-namespace",
            &products.name,
            "-n",
            &consumers.name,
        ],
    ));
    assert!(
        refused.starts_with("error: admission webhook")
            && refused.contains(&format!(
                "APIProduct \"nosuch\" not found in namespace \"{}\"",
                products.name
            )),
        "the webhook's own message: {refused}"
    );
    let keys = ok(run(Persona::Consumer, &["keys", "-n", &consumers.name]));
    assert_eq!(keys, "No API keys.\n", "nothing was created");
}

#[test]
fn completion_bash_prints_a_script_and_usage_errors_exit_2() {
    let output = std::process::Command::new(plugin::BINARY)
        .args(["completion", "bash"])
        .output()
        .unwrap();
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success());
    assert!(
        script.contains("complete -F") && script.contains("kubectl-devportal __complete"),
        "a bash completion script asking the plugin: {script}"
    );
    let asked = std::process::Command::new(plugin::BINARY)
        .args(["__complete", ""])
        .output()
        .unwrap();
    let candidates = String::from_utf8(asked.stdout).unwrap();
    for subcommand in [
        "products", "request", "keys", "status", "delete", "reveal", "requests", "approve", "deny",
    ] {
        assert!(
            candidates
                .lines()
                .any(|l| l.split('\t').next() == Some(subcommand)),
            "completes {subcommand}: {candidates}"
        );
    }
    assert!(candidates.ends_with("\n:4\n"), "cobra's no-file directive");
    let usage = std::process::Command::new(plugin::BINARY)
        .args(["deny", "some-request"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2), "deny needs --reason");
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--reason"));
    let version = std::process::Command::new(plugin::BINARY)
        .arg("version")
        .output()
        .unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    assert!(
        version.starts_with(&format!(
            "Client Version: {}\nGit Commit: ",
            env!("CARGO_PKG_VERSION")
        )) && version.contains("\nBuild Date: ")
            && version.contains("\nServer Version: "),
        "{version}"
    );
}

#[test]
fn the_krew_manifest_installs_this_binary_on_every_platform() {
    let path = support::repo_root().join("plugins/devportal.yaml");
    let manifest: Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).expect("YAML");
    assert_eq!(
        manifest["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(manifest["kind"], "Plugin");
    // `kubectl devportal` runs `kubectl-<metadata.name>`: the Cargo [[bin]].
    let bin = std::path::Path::new(plugin::BINARY)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(bin, "kubectl-devportal");
    assert_eq!(
        format!("kubectl-{}", manifest["metadata"]["name"].as_str().unwrap()),
        bin
    );
    assert_eq!(
        manifest["spec"]["version"],
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
    let mut platforms = Vec::new();
    for platform in manifest["spec"]["platforms"].as_array().unwrap() {
        assert_eq!(platform["bin"], bin);
        let labels = &platform["selector"]["matchLabels"];
        let (os, arch) = (
            labels["os"].as_str().unwrap(),
            labels["arch"].as_str().unwrap(),
        );
        let uri = platform["uri"].as_str().unwrap();
        assert!(
            uri.starts_with("RELEASE_BASE_URL/") && uri.ends_with(&format!("-{os}-{arch}.tar.gz")),
            "{uri}"
        );
        assert_eq!(
            platform["sha256"],
            format!("SHA256_{}_{}", os.to_uppercase(), arch.to_uppercase()),
            "the placeholder the release fills in"
        );
        let files: Vec<&str> = platform["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["from"].as_str().unwrap())
            .collect();
        assert_eq!(files, [bin, "kubectl_complete-devportal", "LICENSE"]);
        platforms.push(format!("{os}/{arch}"));
    }
    platforms.sort();
    let expected = ["darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64"];
    assert_eq!(platforms, expected);
}

#[tokio::test]
async fn kubectl_runs_the_plugin_found_on_path() {
    let cp = control_plane_with_devportal();
    let (products, _) = setting().await;
    let dir = std::path::Path::new(plugin::BINARY).parent().unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let consumer = cp.kubeconfig(Persona::Consumer);
    let output = std::process::Command::new(cp.state_dir().join("bin/kubectl"))
        .env("PATH", path)
        .args([
            "devportal",
            "products",
            "-n",
            &products.name,
            "--kubeconfig",
        ])
        .arg(&consumer)
        .output()
        .expect("kubectl runs");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "kubectl devportal: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        table.starts_with("NAME ") && table.contains("\ntoys "),
        "{table}"
    );
}
