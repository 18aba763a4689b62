//! `kubectl-devportal`: the kubectl plugin (`kubectl devportal ...` once on PATH). The commands
//! live in [`devportal::plugin`].

use devportal::plugin::{message, parse};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match parse().run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", message(&error));
            std::process::ExitCode::FAILURE
        }
    }
}
