//! The command line, as clap reads it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    Status {
        /// Leave out the subscriptions (no keeper dry run, no call to Tripletex).
        #[arg(long)]
        no_subscriptions: bool,
    },
    /// One stored object: version, deleted, source, when it was received and updated, its value.
    Show {
        /// The company (tenant), e.g. default.
        company: String,
        /// The object type, as in the event name (customer, product, closeGroup, ...).
        object_type: String,
        id: i64,
        /// Also the version Tripletex has now, side by side (one call to Tripletex).
        #[arg(long)]
        tripletex: bool,
    },
    /// Webhooks that failed every delivery, with their attributes.
    Dlq {
        #[command(subcommand)]
        action: Option<DlqAction>,
        /// The sync's dead-letter queue instead of the webhooks'.
        #[arg(long)]
        sync: bool,
        /// At most this many messages.
        #[arg(long, default_value_t = 50)]
        max: usize,
    },
    /// Authenticated bodies that were not envelopes, with the reason for each.
    Quarantine {
        #[command(subcommand)]
        action: Option<QuarantineAction>,
        #[arg(long, default_value_t = 50)]
        max: usize,
    },
    /// Starts a sync run for a company and follows it to its end (or returns at once, --no-wait),
    /// then prints its counts per object type; exits 1 when the run failed.
    Resync {
        #[arg(long)]
        company: String,
        /// An object type to sync (repeat for more; default: every subscribed type).
        #[arg(long = "type", value_name = "TYPE")]
        types: Vec<String>,
        #[arg(long, value_enum, default_value_t = SyncMode::Reconcile)]
        mode: SyncMode,
        #[arg(long)]
        no_wait: bool,
        /// How long to follow the run before giving up on waiting (it goes on).
        #[arg(long, default_value_t = 3600)]
        timeout_seconds: u64,
    },
    /// Posts a webhook to the receiver as Tripletex would (the company's credentials, the object as
    /// Tripletex has it now) and waits until the worker has stored it: the whole loop, end to end.
    /// A delete is only sent for an object the copy holds and Tripletex no longer has.
    Send {
        /// The event, e.g. customer.update or product.delete.
        event: String,
        id: i64,
        #[arg(long, default_value = "default")]
        company: String,
        /// How long to wait for the worker.
        #[arg(long, default_value_t = 120)]
        timeout_seconds: u64,
    },
    /// Erases one object's value on request (a GDPR erasure) from the table, the payload bucket,
    /// the quarantine and the dead letters, and keeps it erased: only a newer version than the one
    /// it had is stored again. Prints what it erased.
    Forget {
        /// The company (tenant), e.g. default.
        company: String,
        /// The object type, as in the event name (customer, contact, employee, ...).
        object_type: String,
        id: i64,
    },
    /// The subscription keeper, now.
    Keeper {
        #[command(subcommand)]
        action: KeeperAction,
    },
    /// The Postgres mirror: rebuild it from the table, see how far behind it is, check it row by row.
    Mirror {
        #[command(subcommand)]
        action: MirrorAction,
        /// The database, instead of the one the deployment's secret names (e.g. through a tunnel).
        #[arg(long, global = true)]
        database_url: Option<String>,
    },
    /// The companies this deployment looks after: discover, add, list, remove.
    Companies {
        #[command(subcommand)]
        action: CompaniesAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum CompaniesAction {
    /// Lists the client companies an accountant's key may log into (`/company/>withLoginAccess`),
    /// each with the tenant that already looks after it, if any.
    Discover {
        /// The named credential of the Tripletex credentials secret to ask with (an accountant's
        /// key).
        #[arg(long, conflicts_with = "using", required_unless_present = "using")]
        credential: Option<String>,
        /// Or the company of the credentials secret whose tokens to ask with (the key's own
        /// company is asked for, whatever `companyId` the entry acts for).
        #[arg(long)]
        using: Option<String>,
    },
    /// Adds client companies: registers each (onboarding), runs the keeper for them (our
    /// subscriptions, their backfill requested), starts their backfill and follows it per type.
    Add {
        /// Tripletex company ids; each becomes the tenant of the same name unless --tenant says.
        #[arg(required_unless_present = "all_discovered")]
        company_ids: Vec<i64>,
        /// Every client company the credential reaches that is not added yet.
        #[arg(long)]
        all_discovered: bool,
        /// The named credential of the Tripletex credentials secret that acts for them.
        #[arg(long)]
        credential: String,
        /// The tenant (receiver path /t/<tenant>) of the one company added.
        #[arg(long)]
        tenant: Option<String>,
        /// Register and return: the keeper's next scheduled run subscribes them.
        #[arg(long)]
        no_wait: bool,
        /// How long to follow the backfill.
        #[arg(long, default_value_t = 1800)]
        timeout_seconds: u64,
    },
    /// The companies: state, our subscriptions, the last keeper and sync runs, objects per type.
    List,
    /// Removes a company: its webhooks are refused from now, the keeper deletes our subscriptions
    /// in it (others' stay), and its syncs stop; --purge also erases its copy.
    Remove {
        tenant: String,
        /// Delete every item of the company's copy, tombstones included (counted).
        #[arg(long)]
        purge: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    /// Compare with Tripletex and correct what differs (the nightly run).
    Reconcile,
    /// Fill the copy of a type (what a new subscription gets).
    Backfill,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reconcile => "reconcile",
            Self::Backfill => "backfill",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeeperAction {
    /// Runs the keeper and prints its report per company; exits 1 when a company or a step failed.
    Run {
        /// Say what it would do, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Give every active subscription of ours the current credentials (after a secret rotation).
        #[arg(long)]
        resend_auth: bool,
        /// Only this company (repeat for more).
        #[arg(long = "company", value_name = "COMPANY")]
        companies: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MirrorAction {
    /// Writes every item of the table (or of one company, one type) into the mirror with the
    /// mirror's own rule, by a parallel scan: idempotent, and safe while the stream runs (neither
    /// can move a row back).
    Rebuild {
        #[arg(long)]
        company: Option<String>,
        #[arg(long = "type", value_name = "TYPE")]
        object_type: Option<String>,
        /// Scan segments read at once.
        #[arg(long, default_value_t = 4)]
        segments: i32,
    },
    /// The stream's lag (IteratorAge) and the rows per company and type beside the table's items.
    Status,
    /// Every object's (tenant, type, id, version, deleted) in the table against the mirror; the
    /// differences listed, exit 1 if any.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineAction {
    /// Sends one quarantined message to the webhook queue once it can be applied (after a fix): it
    /// is read as the worker reads a record first, and left in the quarantine with the reason if it
    /// still cannot be.
    Replay {
        /// The message's id, as `quarantine` lists it.
        message_id: String,
        /// Send it even though this command's reading refuses it (the deployed worker may be newer);
        /// a worker that cannot apply it quarantines it again.
        #[arg(long)]
        anyway: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// Moves the webhook dead letters back to the webhook queue (the worker's dedup makes a replay
    /// safe).
    Redrive,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_alone_takes_the_summary_scripts_run_writes_and_never_the_subcommand() {
        let cli = Cli::try_parse_from(["tripletex-webhooks", "--local", "status"]).unwrap();
        assert_eq!(cli.local, Some(PathBuf::from(".local/stack.json")));
        assert!(matches!(cli.command, Command::Status { .. }));
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
        assert!(matches!(cli.command, Command::Show { id: 7, .. }));
        let cli = Cli::try_parse_from(["tripletex-webhooks", "status", "--json"]).unwrap();
        assert!(cli.json && cli.local.is_none());
        assert!(
            Cli::try_parse_from(["tripletex-webhooks", "--stack", "s", "--local", "status"])
                .is_err()
        );
    }
}
