//! `kubectl-devportal`: the kubectl plugin (`kubectl devportal ...` once on PATH). The commands
//! live in [`devportal::plugin`].

use devportal::plugin::{completion_request, message, output, parse};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(candidates) = completion_request(&args).await {
        return match output::emit(&candidates) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(_) => std::process::ExitCode::FAILURE,
        };
    }
    match parse().run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", message(&error));
            std::process::ExitCode::FAILURE
        }
    }
}
