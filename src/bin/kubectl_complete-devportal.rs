//! `kubectl_complete-devportal`: what kubectl (≥ 1.26) runs for `kubectl devportal <TAB>`, with
//! the words typed after `devportal`; prints the candidates in cobra's format, the same as
//! `kubectl-devportal __complete` (see [`devportal::plugin::complete`]).

use devportal::plugin::{completion_request, output};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::iter::once("__complete".to_string())
        .chain(std::env::args().skip(1))
        .collect();
    let candidates = completion_request(&args).await.unwrap_or_default();
    match output::emit(&candidates) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::FAILURE,
    }
}
