//! The `pulsebus` binary: parse the command line and hand it to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = pulsebus::cli::Cli::parse();
    match pulsebus::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader took what it wanted (`pulsebus read lessons | head -1`).
        Err(err) if err.is_broken_pipe() => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pulsebus: {err}");
            std::process::ExitCode::from(err.exit_code())
        }
    }
}
