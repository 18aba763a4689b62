//! hack/release-krew.sh's manifest step: the published manifest names the release's archives
//! and carries each one's SHA-256, with no placeholder left (the archives here are stand-ins;
//! the build step is a cross-compiling release build, run by the release job).

use std::process::Command;

use crate::support;

#[test]
fn the_release_step_fills_the_krew_manifests_urls_and_checksums() {
    let root = support::repo_root();
    let dist = tempdir();
    let version = env!("CARGO_PKG_VERSION");
    let platforms = ["linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"];
    for platform in platforms {
        let archive = dist.join(format!("kubectl-devportal-v{version}-{platform}.tar.gz"));
        std::fs::write(&archive, format!("stand-in for {platform}")).unwrap();
    }
    let base = "https://example.com/releases/v1";
    let out = Command::new(root.join("hack/release-krew.sh"))
        .arg("manifest")
        .env("RELEASE_BASE_URL", base)
        .env("DIST", &dist)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dist.join("devportal.yaml")).unwrap();
    assert!(
        !text.contains("SHA256_") && !text.contains("RELEASE_BASE_URL"),
        "{text}"
    );
    let manifest: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    for platform in manifest["spec"]["platforms"].as_array().unwrap() {
        let labels = &platform["selector"]["matchLabels"];
        let name = format!(
            "kubectl-devportal-v{version}-{}-{}.tar.gz",
            labels["os"].as_str().unwrap(),
            labels["arch"].as_str().unwrap()
        );
        assert_eq!(platform["uri"], format!("{base}/{name}"));
        let sum = Command::new("sha256sum")
            .arg(dist.join(&name))
            .output()
            .unwrap();
        let sum = String::from_utf8(sum.stdout).unwrap();
        assert_eq!(platform["sha256"], sum.split_whitespace().next().unwrap());
    }
    std::fs::remove_file(
        dist.join("kubectl-devportal-v".to_string() + version + "-darwin-arm64.tar.gz"),
    )
    .unwrap();
    let missing = Command::new(root.join("hack/release-krew.sh"))
        .arg("manifest")
        .env("RELEASE_BASE_URL", base)
        .env("DIST", &dist)
        .output()
        .unwrap();
    assert_eq!(
        missing.status.code(),
        Some(1),
        "a missing archive fails the release"
    );
    std::fs::remove_dir_all(&dist).unwrap();
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "release-krew-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    let dir = std::path::PathBuf::from(dir.to_string_lossy().replace(
        |c: char| !c.is_ascii_alphanumeric() && c != '/' && c != '-',
        "-",
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
