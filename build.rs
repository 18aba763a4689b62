//! Build script: records the git revision devportal is built from as `DEVPORTAL_REVISION` (for
//! `devportal_build_info`). `DEVPORTAL_REVISION` in the environment wins (builds from a source
//! archive); without it and without git, the revision is `unknown`. Never fails the build.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=DEVPORTAL_REVISION");
    let revision = match std::env::var("DEVPORTAL_REVISION") {
        Ok(revision) if !revision.is_empty() => revision,
        _ => {
            // Rebuild when HEAD moves: HEAD itself and the branch it points to.
            if let Some(dir) = git(&["rev-parse", "--git-dir"]).map(PathBuf::from) {
                println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
                if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"])
                    && let Some(common) = git(&["rev-parse", "--git-common-dir"])
                {
                    let reference = PathBuf::from(common).join(&head);
                    if reference.exists() {
                        println!("cargo:rerun-if-changed={}", reference.display());
                    }
                }
            }
            git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
    };
    println!("cargo:rustc-env=DEVPORTAL_REVISION={revision}");
}
