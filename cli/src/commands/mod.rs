//! One module per command, each with its arguments, its call and its rendering; this one finds the
//! deployment, dispatches, and gives every command `--json` and its exit status.

pub mod companies;
pub mod completions;
pub mod dlq;
pub mod forget;
pub mod keeper;
pub mod log;
pub mod mirror;
pub mod quarantine;
pub mod replay;
pub mod resync;
pub mod send;
pub mod show;
pub mod status;

use clap::{Parser, Subcommand};

pub use crate::context::{
    Answer, CliError, Context, Target, object_key, tripletex_access, tripletex_now,
};

#[derive(Debug, Parser)]
#[command(
    name = "tripletex-webhooks",
    version,
    about = "See and tend a Tripletex webhook bundle: its status, an object of the copy (show), \
what each webhook became (log), dead letters (dlq), a replay of the change events (replay), the quarantine, resyncs, a test webhook (send), erasure (forget), the keeper, \
the Postgres mirror, the companies, and shell completions and man pages."
)]
pub struct Cli {
    #[command(flatten)]
    pub target: Target,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Queues, each company's subscriptions (the keeper's dry run), last sync run per object type
    /// and resync requests; exits 1 when something needs a person.
    Status(status::StatusArgs),
    /// One stored object: version, deleted, source, when it was received and updated, its value.
    Show(show::ShowArgs),
    /// What Tripletex sent and what became of each call, from the receipt journal: one line per
    /// request with its outcome at the receiver and the worker; exits 1 when one needs a person.
    Log(log::LogArgs),
    /// Sends a window of the change bus's archived events to its consumers again (all of them,
    /// or one company's or type's), and follows the replay to its end.
    Replay(replay::ReplayArgs),
    /// Webhooks that failed every delivery, with their attributes.
    Dlq(dlq::DlqArgs),
    /// Authenticated bodies that were not envelopes, with the reason for each.
    Quarantine(quarantine::QuarantineArgs),
    /// Starts a sync run for a company and follows it to its end (or returns at once, --no-wait),
    /// then prints its counts per object type; exits 1 when the run failed.
    Resync(resync::ResyncArgs),
    /// Posts a webhook to the receiver as Tripletex would (the company's credentials, the object as
    /// Tripletex has it now) and waits until the worker has stored it: the whole loop, end to end.
    /// A delete is only sent for an object the copy holds and Tripletex no longer has.
    Send(send::SendArgs),
    /// Erases one object's value on request (a GDPR erasure) from the table, the payload bucket,
    /// the quarantine and the dead letters, and keeps it erased: only a newer version than the one
    /// it had is stored again. Prints what it erased.
    Forget(forget::ForgetArgs),
    /// The subscription keeper, now.
    Keeper(keeper::KeeperArgs),
    /// The Postgres mirror: rebuild it from the table, see how far behind it is, check it row by row.
    Mirror(mirror::MirrorArgs),
    /// The companies this deployment looks after: discover, add, list, remove.
    Companies(companies::CompaniesArgs),
    /// Prints a completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Prints the man page (roff), or writes one per command into a directory.
    Man(completions::ManArgs),
}

pub async fn run(cli: &Cli) -> Result<Answer, CliError> {
    // These two need no deployment.
    match &cli.command {
        Command::Completions(args) => return completions::completions(args),
        Command::Man(args) => return completions::man(args),
        _ => {}
    }
    let ctx = Context::find(&cli.target).await?;
    match &cli.command {
        Command::Status(args) => status::run(&ctx, args).await,
        Command::Show(args) => show::run(&ctx, args).await,
        Command::Log(args) => log::run(&ctx, args).await,
        Command::Replay(args) => replay::run(&ctx, args).await,
        Command::Dlq(args) => dlq::run(&ctx, args).await,
        Command::Quarantine(args) => quarantine::run(&ctx, args).await,
        Command::Resync(args) => resync::run(&ctx, args).await,
        Command::Send(args) => send::run(&ctx, args).await,
        Command::Forget(args) => forget::run(&ctx, args).await,
        Command::Keeper(args) => keeper::run(&ctx, args).await,
        Command::Mirror(args) => mirror::run(&ctx, args).await,
        Command::Companies(args) => companies::run(&ctx, args).await,
        Command::Completions(_) | Command::Man(_) => unreachable_without_deployment(),
    }
}

/// The commands answered above never reach the dispatch that needs a deployment.
fn unreachable_without_deployment() -> Result<Answer, CliError> {
    Err(CliError::Usage("this command needs no deployment"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::path::PathBuf;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn local_alone_takes_the_summary_scripts_run_writes_and_never_the_subcommand() {
        let cli = Cli::try_parse_from(["tripletex-webhooks", "--local", "status"]).unwrap();
        assert_eq!(cli.target.local, Some(PathBuf::from(".local/stack.json")));
        assert!(matches!(cli.command, Command::Status(_)));
        let cli = Cli::try_parse_from([
            "tripletex-webhooks",
            "--local=x.json",
            "show",
            "a",
            "customer",
            "7",
        ])
        .unwrap();
        assert_eq!(cli.target.local, Some(PathBuf::from("x.json")));
        assert!(matches!(cli.command, Command::Show(_)));
        let cli = Cli::try_parse_from(["tripletex-webhooks", "status", "--json"]).unwrap();
        assert!(cli.target.json && cli.target.local.is_none());
        assert!(
            Cli::try_parse_from(["tripletex-webhooks", "--stack", "s", "--local", "status"])
                .is_err()
        );
    }
}
