//! Wiring only: read the command line, run the command, print its answer, exit with its status.

use std::process::ExitCode;

use clap::Parser;
use domain::error::error_chain;
use tripletex_webhooks::commands::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(answer) => {
            print!("{}", answer.text);
            ExitCode::from(u8::from(answer.needs_a_person))
        }
        Err(error) => {
            eprintln!("tripletex-webhooks: {}", error_chain(&error));
            ExitCode::from(2)
        }
    }
}
