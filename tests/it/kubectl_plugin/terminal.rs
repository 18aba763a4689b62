//! The plugin in a terminal, typed into as a person would (tmux): `<TAB>` completes a subcommand
//! and a key's name from the cluster, through `kubectl-devportal`'s bash completion and through
//! kubectl's own (`kubectl devportal <TAB>`, which runs `kubectl_complete-devportal`); `reveal`
//! refuses to print the value on the screen; `status` shows the key. Skipped, saying so, where
//! tmux is not installed (.ci/run installs it).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support;
use support::plugin::{ok, run, setting};
use support::{Persona, control_plane_with_devportal};

/// bash-completion's loader, which kubectl's bash completion script needs.
const BASH_COMPLETION: &str = "/usr/share/bash-completion/bash_completion";

/// A tmux server of its own (its own socket) running bash, killed when dropped.
struct Terminal {
    socket: String,
}

impl Terminal {
    fn start(env: &[(&str, String)]) -> Self {
        let socket = format!("devportal-plugin-{}", std::process::id());
        let mut command = Command::new("tmux");
        command.args([
            "-L",
            &socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "220",
            "-y",
            "50",
        ]);
        // The environment through env(1): tmux's own `-e` does not reach the shell everywhere.
        command.arg("env");
        for (name, value) in env {
            command.arg(format!("{name}={value}"));
        }
        command.args(["bash", "--norc", "--noprofile"]);
        assert!(command.status().unwrap().success(), "tmux starts");
        let terminal = Self { socket };
        terminal.keys(&["echo started-$((20+6))", "Enter"]);
        terminal.shows("started-26");
        terminal
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "0"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-J", "-t", "0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (at most 30 s) until the screen shows `text`.
    fn shows(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(Instant::now() < deadline, "{text:?} never shown:\n{screen}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Abandons the line typed so far and clears the screen, once the shell is ready again.
    fn clear(&self) {
        self.keys(&["C-c"]);
        self.keys(&["clear; echo ready-$((20+6))", "Enter"]);
        self.shows("ready-26");
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[tokio::test]
async fn a_person_at_a_terminal_completes_names_and_reveal_refuses_the_screen() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("SKIPPED: tmux is not installed (apt-get install tmux; .ci/run installs it)");
        return;
    }
    let (products, consumers) = setting().await;
    let (p, c) = (products.name.as_str(), consumers.name.as_str());
    let name = support::plugin::created_name(&ok(run(
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
            "--name",
            "typed-key",
        ],
    )));
    let cp = control_plane_with_devportal();
    let bin = std::path::Path::new(support::plugin::BINARY)
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}:{}",
        bin.display(),
        cp.state_dir().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubeconfig = cp.kubeconfig(Persona::Consumer).display().to_string();
    let terminal = Terminal::start(&[
        ("PATH", path),
        ("KUBECONFIG", kubeconfig),
        ("PS1", "$ ".into()),
    ]);
    terminal.keys(&["source <(kubectl-devportal completion bash)", "Enter"]);
    terminal.keys(&[
        "source <(kubectl completion bash); echo sourced-$((20+6))",
        "Enter",
    ]);
    terminal.shows("sourced-26");
    terminal.clear();

    // kubectl-devportal sta<TAB> → status; typ<TAB> → the key's name, from the cluster.
    terminal.keys(&[&format!("kubectl-devportal -n {c} sta"), "Tab"]);
    terminal.shows(&format!("kubectl-devportal -n {c} status "));
    terminal.keys(&["typ", "Tab"]);
    terminal.shows(&format!("status {name} "));
    terminal.keys(&["Enter"]);
    let screen = terminal.shows("At the gateway:");
    assert!(screen.contains("Phase:          Pending"), "{screen}");
    terminal.clear();

    // kubectl devportal sta<TAB>: kubectl asks kubectl_complete-devportal. kubectl's bash
    // completion needs the bash-completion package (.ci/run installs it).
    if std::path::Path::new(BASH_COMPLETION).exists() {
        terminal.keys(&[
            &format!("source {BASH_COMPLETION}; echo loaded-$((20+6))"),
            "Enter",
        ]);
        terminal.shows("loaded-26");
        terminal.clear();
        terminal.keys(&["kubectl devportal sta", "Tab"]);
        terminal.shows("kubectl devportal status ");
        terminal.clear();
    } else {
        eprintln!(
            "SKIPPED kubectl devportal <TAB> in the terminal: {BASH_COMPLETION} is missing \
             (apt-get install bash-completion; .ci/run installs it)"
        );
    }

    // reveal refuses the terminal (before reading anything).
    terminal.keys(&[&format!("kubectl-devportal reveal {name} -n {c}"), "Enter"]);
    terminal.shows(&format!(
        "not printing the value of API key \"{name}\" to a terminal"
    ));
}
