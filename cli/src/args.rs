//! The command line, as clap reads it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::companies::CompaniesArgs;
use crate::commands::completions::{CompletionsArgs, ManArgs};
use crate::commands::dlq::DlqArgs;
use crate::commands::forget::ForgetArgs;
use crate::commands::keeper::KeeperArgs;
use crate::commands::mirror::MirrorArgs;
use crate::commands::quarantine::QuarantineArgs;
use crate::commands::resync::ResyncArgs;
use crate::commands::send::SendArgs;
use crate::commands::show::ShowArgs;
use crate::commands::status::StatusArgs;

#[derive(Debug, Parser)]
#[command(
    name = "tripletex-webhooks",
    version,
    about = "See and tend a Tripletex webhook bundle: \
status, stored objects, dead letters, quarantine, resyncs and a test webhook."
)]
pub struct Cli {
    /// The deployed stack (default: stack_name in infra/samconfig.toml).
    #[arg(long, global = true, conflicts_with = "local")]
    pub stack: Option<String>,

    /// The local stack of `scripts/run`, from the summary it writes (`--local=FILE` for another).
    #[arg(
        long,
        global = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = ".local/stack.json"
    )]
    pub local: Option<PathBuf>,

    /// Where samconfig.toml is, for the default stack name.
    #[arg(
        long,
        global = true,
        default_value = "infra/samconfig.toml",
        hide = true
    )]
    pub samconfig: PathBuf,

    /// JSON instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Queues, each company's subscriptions (the keeper's dry run), last sync run per object type
    /// and resync requests; exits 1 when something needs a person.
    Status(StatusArgs),
    /// One stored object: version, deleted, source, when it was received and updated, its value.
    Show(ShowArgs),
    /// Webhooks that failed every delivery, with their attributes.
    Dlq(DlqArgs),
    /// Authenticated bodies that were not envelopes, with the reason for each.
    Quarantine(QuarantineArgs),
    /// Starts a sync run for a company and follows it to its end (or returns at once, --no-wait),
    /// then prints its counts per object type; exits 1 when the run failed.
    Resync(ResyncArgs),
    /// Posts a webhook to the receiver as Tripletex would (the company's credentials, the object as
    /// Tripletex has it now) and waits until the worker has stored it: the whole loop, end to end.
    /// A delete is only sent for an object the copy holds and Tripletex no longer has.
    Send(SendArgs),
    /// Erases one object's value on request (a GDPR erasure) from the table, the payload bucket,
    /// the quarantine and the dead letters, and keeps it erased: only a newer version than the one
    /// it had is stored again. Prints what it erased.
    Forget(ForgetArgs),
    /// The subscription keeper, now.
    Keeper(KeeperArgs),
    /// The Postgres mirror: rebuild it from the table, see how far behind it is, check it row by row.
    Mirror(MirrorArgs),
    /// The companies this deployment looks after: discover, add, list, remove.
    Companies(CompaniesArgs),
    /// Prints a completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Prints the man page (roff), or writes one per command into a directory.
    Man(ManArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn local_alone_takes_the_summary_scripts_run_writes_and_never_the_subcommand() {
        let cli = Cli::try_parse_from(["tripletex-webhooks", "--local", "status"]).unwrap();
        assert_eq!(cli.local, Some(PathBuf::from(".local/stack.json")));
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
        assert_eq!(cli.local, Some(PathBuf::from("x.json")));
        assert!(matches!(cli.command, Command::Show(_)));
        let cli = Cli::try_parse_from(["tripletex-webhooks", "status", "--json"]).unwrap();
        assert!(cli.json && cli.local.is_none());
        assert!(
            Cli::try_parse_from(["tripletex-webhooks", "--stack", "s", "--local", "status"])
                .is_err()
        );
    }
}
