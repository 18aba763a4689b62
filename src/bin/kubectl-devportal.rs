//! `kubectl-devportal`: the kubectl plugin (`kubectl devportal ...` once on PATH). The commands
//! live in [`devportal::plugin`].

use clap::Parser;
use devportal::plugin::{Cli, message};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Cli::parse().run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", message(&error));
            std::process::ExitCode::FAILURE
        }
    }
}
