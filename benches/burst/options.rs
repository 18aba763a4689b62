//! The command line of the burst benchmark: N and the mode flags.

use std::time::Duration;

/// What one invocation measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// devportal's controller reconciles the keys (the default).
    Devportal,
    /// A bare client performs exactly the minimal writes per key, no controller.
    Ideal,
    /// The same client creates 2×N plain Secrets: the API server's plain write rate.
    Raw,
}

impl Mode {
    /// The mode's name in reports and in the summary line `--compare` reads.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Devportal => "devportal",
            Mode::Ideal => "ideal",
            Mode::Raw => "raw",
        }
    }
}

/// The parsed command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// Keys per run.
    pub n: usize,
    /// The admission webhook runs in front (`--webhook`).
    pub webhook: bool,
    /// The mode of this run.
    pub mode: Mode,
    /// Run ideal then devportal, each in a child process with its own control plane (`--compare`).
    pub compare: bool,
    /// After the devportal burst settles, restart the controller and measure it (`--restart`).
    pub restart: bool,
    /// After the devportal burst settles (and the restart, with `--restart`), delete the
    /// enforcement namespace, re-create it and measure the recovery (`--namespace-loss`).
    pub namespace_loss: bool,
    /// How long the enforcement namespace stays gone before it is created again
    /// (`--gone-for SECONDS`, default 0: at once).
    pub gone_for: Duration,
}

/// Requests in flight from the creator, in every mode.
pub const CONCURRENCY: usize = 32;

impl Options {
    /// Parses `std::env::args()`: a number is N (default 1,000); flags `--webhook`, `--ideal`,
    /// `--raw`, `--compare`, `--restart`, `--namespace-loss` (with `--gone-for SECONDS`). Anything
    /// else (cargo's `--bench`) is ignored.
    pub fn from_args() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let has = |flag: &str| args.iter().any(|a| a == flag);
        let mode = if has("--ideal") {
            Mode::Ideal
        } else if has("--raw") {
            Mode::Raw
        } else {
            Mode::Devportal
        };
        Options {
            n: args
                .iter()
                .enumerate()
                .filter(|(i, _)| *i == 0 || args[i - 1] != "--gone-for")
                .find_map(|(_, a)| a.parse().ok())
                .unwrap_or(1000),
            webhook: has("--webhook"),
            mode,
            compare: has("--compare"),
            restart: has("--restart"),
            namespace_loss: has("--namespace-loss"),
            gone_for: Duration::from_secs(
                args.iter()
                    .position(|a| a == "--gone-for")
                    .and_then(|i| args.get(i + 1)?.parse().ok())
                    .unwrap_or(0),
            ),
        }
    }

    /// How long the burst may take to converge: 10 minutes plus 60 ms per key (20 minutes at
    /// 10,000 keys, an hour at 50,000), far above any expected figure.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(600) + Duration::from_millis(60) * self.n as u32
    }
}
