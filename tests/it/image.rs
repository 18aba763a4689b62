//! The container image `make image` builds (hack/image.sh), checked from the outside: its OCI
//! layout and config, every file in it, and the binary in it running `devportal run` against the
//! local control plane, where it serves real admissions and issues a key.
//!
//! The image test builds the statically linked fat-LTO release binary (about 7 minutes on a cold
//! build cache), so `make test` leaves it out (`#[ignore]`) and `make image` runs it right after
//! building the image: `cargo test --test it image:: -- --ignored`, where it reuses that build
//! and only packs the image again. It then starts this binary's control plane with the image's
//! devportal, so it runs alone (the filter above), never with the rest of the binary. It says on
//! stderr what it is doing. The Containerfile's test is a plain one and runs in `make test`.

use crate::support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use devportal::resources::{APIKey, APIKeyPhase, ApprovalMode, RequestedBy};
use kube::Api;
use kube::api::PostParams;
use serde::Deserialize;
use serde_json::{Value, json};
use support::{
    Persona, TestNamespace, control_plane_with_devportal_binary, eventually, fixtures, repo_root,
    stdout_of,
};

/// What the image runs, and as whom (the manifests' `runAsUser`); the Containerfile's too.
const ENTRYPOINT: &str = "/usr/local/bin/devportal";
const USER: &str = "65532:65532";
/// Any fixed time: every timestamp in the image must be exactly this.
const SOURCE_DATE_EPOCH: i64 = 1_700_000_000;
const WAIT: Duration = Duration::from_secs(60);

/// A progress line on stderr, written past the test harness's output capture.
fn say(what: &str) {
    let _ = writeln!(std::io::stderr(), "[image test] {what}");
}

#[tokio::test]
#[ignore = "a fat-LTO static release build: `make image` runs it"]
async fn the_image_holds_only_a_static_devportal_that_serves_admissions() {
    let dir = repo_root()
        .join("target/local/tests")
        .join(format!("image-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");

    say(
        "building the image with `hack/image.sh build` (a static release build: minutes when cold)",
    );
    let started = Instant::now();
    let digest = build_image(&dir);
    say(&format!("built {digest} in {:.0?}", started.elapsed()));
    say("packing it again: the same binary and time must give the same digest");
    assert_eq!(build_image(&dir), digest, "the image is not reproducible");

    say("checking the OCI layout, every blob's digest, the manifest and the config");
    let reference = stdout_of(
        &Command::new(repo_root().join("hack/image.sh"))
            .arg("ref")
            .output()
            .unwrap(),
    );
    let reference = reference.trim();
    let layout = Layout(dir.join("oci"));
    let (config, layer) = layout.image(&digest, reference);
    check_config(&config);

    say("checking the files in the layer: the binary, nsswitch.conf and their directories only");
    let entries = tar_entries(&layer);
    let listing: Vec<(&str, char, u32)> = entries
        .iter()
        .map(|e| (e.name.as_str(), e.kind, e.mode))
        .collect();
    assert_eq!(
        listing,
        [
            ("etc/", '5', 0o755),
            ("etc/nsswitch.conf", '0', 0o444),
            ("usr/", '5', 0o755),
            ("usr/local/", '5', 0o755),
            ("usr/local/bin/", '5', 0o755),
            ("usr/local/bin/devportal", '0', 0o555),
        ]
    );
    for entry in &entries {
        assert_eq!(
            (entry.uid, entry.gid),
            (0, 0),
            "{} is owned by root",
            entry.name
        );
        assert_eq!(
            entry.mtime, SOURCE_DATE_EPOCH,
            "{} has the fixed time",
            entry.name
        );
    }
    let nsswitch = std::fs::read(repo_root().join("hack/image/nsswitch.conf")).unwrap();
    assert_eq!(entries[1].data, nsswitch);

    say("checking the binary: statically linked, no build paths in it, runs");
    let binary = &entries[5].data;
    assert!(
        !has_interpreter(binary),
        "the binary must not need a dynamic loader"
    );
    for path in [repo_root().to_path_buf(), cargo_home()] {
        let needle = path.to_string_lossy().into_owned();
        assert!(
            !binary.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the build path {needle} leaked into the binary"
        );
    }
    let extracted = dir.join("devportal");
    std::fs::write(&extracted, binary).unwrap();
    std::fs::set_permissions(&extracted, std::fs::Permissions::from_mode(0o755)).unwrap();
    let version = stdout_of(&Command::new(&extracted).arg("--version").output().unwrap());
    assert_eq!(
        version.trim(),
        format!("devportal {}", env!("CARGO_PKG_VERSION"))
    );

    say("starting the local control plane with the image's binary as `devportal run`");
    let cp = control_plane_with_devportal_binary(&extracted);
    let rendered = stdout_of(&cp.kubectl(
        Persona::Admin,
        &["kustomize", repo_root().join("manifests").to_str().unwrap()],
        None,
    ));
    assert_eq!(
        deployment_image(&rendered),
        reference,
        "`kubectl apply -k manifests/` installs the image `make image` builds"
    );

    say("publishing a product and requesting a key through the image's webhook and controller");
    let ns = TestNamespace::new("image").await;
    let admin = cp.client(Persona::Admin).await;
    let owner = cp.client(Persona::Owner).await;
    fixtures::published_product(&admin, &owner, &ns.name, ApprovalMode::Automatic).await;
    fixtures::product_ready(&admin, &ns.name, WAIT).await;
    let keys = Api::<APIKey>::namespaced(cp.client(Persona::Consumer).await, &ns.name);
    let mut key = fixtures::key("mine", "toys", "gold");
    key.spec.requested_by = Some(RequestedBy {
        user_id: "admin".into(),
        email: None,
    });
    let stored = keys
        .create(&PostParams::default(), &key)
        .await
        .expect("the webhook admits a consumer's key request");
    assert_eq!(
        stored.spec.requested_by.map(|r| r.user_id).as_deref(),
        Some("consumer"),
        "the mutating webhook replaced the spoofed requester"
    );
    eventually("the key to be approved and issued", WAIT, || async {
        let status = keys.get("mine").await.ok()?.status?;
        (status.phase == Some(APIKeyPhase::Approved) && status.secret_ref.is_some()).then_some(())
    })
    .await;
    say("done");
}

/// The Containerfile (which cannot be built here) describes the image `make image` builds.
#[test]
fn the_containerfile_builds_the_same_image() {
    let text = std::fs::read_to_string(repo_root().join("Containerfile")).unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let has = |line: &str| lines.contains(&line);
    assert!(has("FROM scratch"), "an empty runtime base");
    assert!(has(&format!("ENTRYPOINT [\"{ENTRYPOINT}\"]")));
    assert!(has(&format!("USER {USER}")));
    assert!(has("ENV PATH=/usr/local/bin"));
    assert!(has(&format!("ARG VERSION={}", env!("CARGO_PKG_VERSION"))));
    assert!(text.contains(&format!(
        "org.opencontainers.image.licenses=\"{}\"",
        env!("CARGO_PKG_LICENSE")
    )));
    assert!(has(
        "COPY --chown=0:0 --chmod=0444 hack/image/nsswitch.conf /etc/nsswitch.conf"
    ));
    assert!(has(
        "COPY --from=build --chown=0:0 --chmod=0555 /devportal /usr/local/bin/devportal"
    ));
}

/// Runs `hack/image.sh build` into `dir` at [`SOURCE_DATE_EPOCH`]; returns the manifest digest.
fn build_image(dir: &Path) -> String {
    let output = Command::new(repo_root().join("hack/image.sh"))
        .arg("build")
        .env("DEVPORTAL_IMAGE_DIR", dir)
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH.to_string())
        .stderr(Stdio::inherit())
        .output()
        .expect("hack/image.sh runs");
    assert!(output.status.success(), "hack/image.sh build failed");
    let digest = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert!(
        digest.starts_with("sha256:"),
        "a digest on stdout, not {digest:?}"
    );
    digest
}

/// An OCI image layout directory.
struct Layout(PathBuf);

impl Layout {
    /// A blob's bytes, after checking they have the digest they are named by.
    fn blob(&self, digest: &str) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        let data = std::fs::read(self.0.join("blobs/sha256").join(hex)).expect("the blob exists");
        assert_eq!(sha256(&data), hex, "blob {digest} has its digest");
        data
    }

    fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest)).expect("a JSON blob")
    }

    /// Checks the layout holds exactly the image `digest`, tagged `reference`, with one layer;
    /// returns its config and its uncompressed layer.
    fn image(&self, digest: &str, reference: &str) -> (Value, Vec<u8>) {
        let read = |name: &str| -> Value {
            serde_json::from_slice(&std::fs::read(self.0.join(name)).unwrap()).unwrap()
        };
        assert_eq!(read("oci-layout"), json!({"imageLayoutVersion": "1.0.0"}));
        let index = read("index.json");
        let manifests = index["manifests"].as_array().expect("manifests");
        assert_eq!(manifests.len(), 1, "one image in the layout");
        assert_eq!(manifests[0]["digest"], digest);
        assert_eq!(
            manifests[0]["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        let tag = reference.rsplit_once(':').expect("a tagged reference").1;
        assert_eq!(
            manifests[0]["annotations"]["org.opencontainers.image.ref.name"],
            tag
        );
        assert_eq!(
            manifests[0]["annotations"]["io.containerd.image.name"],
            reference
        );

        let manifest = self.json(digest);
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1, "one layer on an empty base");
        assert_eq!(
            layers[0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let config = self.json(manifest["config"]["digest"].as_str().unwrap());
        let compressed = self.blob(layers[0]["digest"].as_str().unwrap());
        assert_eq!(layers[0]["size"], compressed.len());
        let layer = gunzip(&compressed);
        assert_eq!(
            config["rootfs"]["diff_ids"],
            json!([format!("sha256:{}", sha256(&layer))])
        );
        (config, layer)
    }
}

/// The runtime config: `devportal` as 65532, no shell command, the OCI labels, the fixed time.
fn check_config(config: &Value) {
    let at = time::OffsetDateTime::from_unix_timestamp(SOURCE_DATE_EPOCH).unwrap();
    let created = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some(arch))
    );
    assert_eq!(config["created"], created);
    assert_eq!(config["history"][0]["created"], created);
    let run = &config["config"];
    assert_eq!(run["Entrypoint"], json!([ENTRYPOINT]));
    assert_eq!(run["User"], USER);
    assert!(run["Cmd"].is_null(), "no default command: {}", run["Cmd"]);
    assert_eq!(run["Env"], json!(["PATH=/usr/local/bin"]));
    let labels = &run["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        labels["org.opencontainers.image.licenses"],
        env!("CARGO_PKG_LICENSE")
    );
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://github.com/kuadrant/devportal"
    );
    assert!(
        labels["org.opencontainers.image.revision"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "the commit is recorded: {labels}"
    );
}

/// One entry of a ustar archive.
struct TarEntry {
    name: String,
    /// The ustar type flag: '0' a file, '5' a directory.
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    data: Vec<u8>,
}

/// Parses a ustar archive (what hack/image writes), in order.
fn tar_entries(tar: &[u8]) -> Vec<TarEntry> {
    let mut entries = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
        let header = &tar[at..at + 512];
        let text = |from: usize, to: usize| {
            String::from_utf8_lossy(&header[from..to])
                .trim_end_matches('\0')
                .to_string()
        };
        let octal =
            |from, to| i64::from_str_radix(text(from, to).trim(), 8).expect("an octal field");
        assert_eq!(&header[257..263], b"ustar\0", "a ustar header");
        let prefix = text(345, 500);
        let name = text(0, 100);
        let size = octal(124, 136) as usize;
        entries.push(TarEntry {
            name: if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            },
            kind: header[156] as char,
            mode: octal(100, 108) as u32,
            uid: octal(108, 116) as u32,
            gid: octal(116, 124) as u32,
            mtime: octal(136, 148),
            data: tar[at + 512..at + 512 + size].to_vec(),
        });
        at += 512 + size.div_ceil(512) * 512;
    }
    entries
}

/// Whether an ELF executable names a program interpreter (is dynamically linked).
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF executable");
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let program_headers = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    (0..count).any(|i| {
        let at = program_headers + i * size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == PT_INTERP
    })
}

/// The image of the Deployment in rendered manifests.
fn deployment_image(rendered: &str) -> String {
    serde_yaml::Deserializer::from_str(rendered)
        .map(|document| Value::deserialize(document).expect("kustomize renders YAML"))
        .find(|object| object["kind"] == "Deployment")
        .expect("a Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .expect("an image")
        .to_string()
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cargo"))
}

/// Runs `program` with `input` on stdin; returns its stdout.
fn pipe(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "{program} failed");
    output.stdout
}

fn sha256(data: &[u8]) -> String {
    let out = pipe("sha256sum", &[], data);
    String::from_utf8(out).unwrap()[..64].to_string()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    pipe("gzip", &["-dc"], data)
}
