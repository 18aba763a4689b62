use clap::Parser;

use devportal::cli::Cli;
use tracing_subscriber::EnvFilter;

/// mimalloc returns freed memory to the OS and fragments less than the system allocator under
/// many small, short-lived allocations across threads (watch events, reconciles): it keeps the
/// controller's resident memory close to what its caches actually hold.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
