//! `companies add | list | remove`: the company registry as an operator works it. Adding writes the
//! company (`onboarding`), runs the keeper for it (our subscriptions, its backfill requested), asks
//! the sync to start that backfill and follows it per type; removing marks it `offboarding` (its
//! webhooks are refused from then on), runs the keeper (our subscriptions deleted, the company
//! `removed`) and, with `--purge`, erases its copy.

use crate::commands::resync::run_progress;
use crate::commands::tripletex_access;
use crate::commands::{Answer, CliError, Context};
use crate::render::{or_dash, table};
use clap::Subcommand;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_adapters::dynamodb::DynamoObjectStore;
use aws_adapters::resync_ledger::DynamoResyncLedger;
use domain::ids::TenantId;
use domain::ports::CompanyRegistry;
use domain::registry::{self, Change, CompanyState, RegisteredCompany};
use domain::tripletex::CredentialsSecret;
use serde::Serialize;

use crate::aws;
use crate::commands::resync::RunProgress;
use crate::deployment::Deployment;
use domain::keeper::{CompanyReport, KeeperRequest};
use domain::sync::{StartMode, StartRequest};

#[derive(Debug, clap::Args)]
pub struct CompaniesArgs {
    #[command(subcommand)]
    action: CompaniesAction,
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

pub async fn run(ctx: &Context, args: &CompaniesArgs) -> Result<Answer, CliError> {
    let (deployment, dynamodb) = (&ctx.deployment, ctx.dynamodb());
    match &args.action {
        CompaniesAction::Discover { credential, using } => {
            let (base_url, credentials) = tripletex_access(ctx).await?;
            let registered = registered(&dynamodb, deployment).await?;
            let asking = match (credential, using) {
                (Some(credential), _) => crate::tripletex::Asking::Credential(credential),
                (None, Some(using)) => crate::tripletex::Asking::Company(using),
                (None, None) => return Err(CliError::Usage("name --credential or --using")),
            };
            let found =
                crate::tripletex::discover(base_url, &credentials, &registered, asking).await?;
            ctx.answer(&found, render_discovered, false)
        }
        CompaniesAction::Add {
            company_ids,
            all_discovered,
            credential,
            tenant,
            no_wait,
            timeout_seconds,
        } => {
            let (base_url, secret_json) = tripletex_access(ctx).await?;
            let added = add(
                ctx,
                TripletexAccess {
                    base_url,
                    secret_json: &secret_json,
                },
                Add {
                    company_ids,
                    all_discovered: *all_discovered,
                    credential,
                    tenant: tenant.as_deref(),
                    wait: !no_wait,
                    timeout: Duration::from_secs(*timeout_seconds),
                    quiet: ctx.json,
                },
            )
            .await?;
            let failed = added.iter().any(|a| a.failed);
            ctx.answer(&added, |a| render_added(a), failed)
        }
        CompaniesAction::List => {
            let (_, secret_json) = tripletex_access(ctx).await?;
            let listed = list(deployment, &dynamodb, &secret_json).await?;
            ctx.answer(&listed, |l| render_listed(l), false)
        }
        CompaniesAction::Remove { tenant, purge } => {
            let removed = remove(ctx, tenant, *purge, ctx.json).await?;
            let failed = removed.failed;
            ctx.answer(&removed, render_removed, failed)
        }
    }
}

/// After a company is marked offboarding, the worker drops its records within its registry TTL;
/// a batch it began before then is given a few seconds more.
const WORKER_SETTLES: Duration = Duration::from_secs(registry::WORKER_REGISTRY_TTL.as_secs() + 5);

/// How often a backfill's run record is read while it is followed.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum CompaniesError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
    #[error(transparent)]
    Tripletex(#[from] crate::tripletex::TripletexError),
}

/// Where the deployment's Tripletex is, and the text of its credentials secret.
pub struct TripletexAccess<'a> {
    pub base_url: &'a str,
    pub secret_json: &'a str,
}

pub struct Add<'a> {
    pub company_ids: &'a [i64],
    pub all_discovered: bool,
    pub credential: &'a str,
    pub tenant: Option<&'a str>,
    pub wait: bool,
    pub timeout: Duration,
    pub quiet: bool,
}

/// What adding did for each company, ending in a one-line verdict.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Added {
    pub tenant: String,
    pub company_id: i64,
    pub state: CompanyState,
    pub subscriptions_created: u64,
    pub backfill: Vec<RunProgress>,
    pub verdict: String,
    /// The company is not onboarded: its keeper run or its backfill failed.
    pub failed: bool,
}

/// The registry as it stands.
pub async fn registered(
    dynamodb: &aws_sdk_dynamodb::Client,
    deployment: &Deployment,
) -> Result<Vec<RegisteredCompany>, CompaniesError> {
    registry_of(dynamodb, deployment)
        .registered()
        .await
        .map_err(registry_failed)
}

fn registry_of(dynamodb: &aws_sdk_dynamodb::Client, deployment: &Deployment) -> DynamoResyncLedger {
    DynamoResyncLedger::new(dynamodb.clone(), &deployment.resync_table)
}

fn invalid(text: impl Into<String>) -> CompaniesError {
    CompaniesError::Invalid(text.into())
}

fn registry_failed(error: domain::ports::RegistryError) -> CompaniesError {
    invalid(domain::error::error_chain(&error))
}

/// Adds the companies: registers each (onboarding), then, unless told not to wait, runs the keeper
/// for them and follows their backfills, each ending in a verdict.
pub async fn add(
    ctx: &Context,
    tripletex: TripletexAccess<'_>,
    request: Add<'_>,
) -> Result<Vec<Added>, CompaniesError> {
    let secret = CredentialsSecret::from_json(tripletex.secret_json)
        .map_err(crate::tripletex::TripletexError::Credentials)?;
    let registry = registry_of(&ctx.dynamodb(), &ctx.deployment);
    let registered = registry.registered().await.map_err(registry_failed)?;
    let wanted = wanted(tripletex.base_url, &secret, &registered, &request).await?;
    let mut added = register(&registry, &secret, &registered, wanted, &request).await?;
    if !request.wait {
        return Ok(added);
    }
    subscribe(ctx, &mut added).await?;
    let following: Vec<&str> = added
        .iter()
        .filter(|a| !a.failed && a.subscriptions_created > 0)
        .map(|a| a.tenant.as_str())
        .collect();
    let runs = follow_backfills(ctx, &following, request.timeout, request.quiet).await?;
    for company in &mut added {
        if company.failed {
            continue;
        }
        company.backfill = runs
            .iter()
            .filter(|run| run.tenant == company.tenant)
            .cloned()
            .collect();
        company.verdict = backfill_verdict(company);
        company.failed = company.backfill.iter().any(|run| run.state == "failed");
    }
    Ok(added)
}

/// The companies asked for: the ids named, and with --all-discovered every client company the
/// credential reaches that no tenant looks after yet (with its name).
async fn wanted(
    base_url: &str,
    secret: &CredentialsSecret,
    registered: &[RegisteredCompany],
    request: &Add<'_>,
) -> Result<Vec<(i64, Option<String>)>, CompaniesError> {
    let Some(credentials) = secret.credentials.get(request.credential) else {
        return Err(invalid(format!(
            "the Tripletex credentials secret has no credential {:?}: add \
             {{\"credentials\": {{\"{}\": {{\"consumerToken\": \"…\", \"employeeToken\": \"…\"}}}}}} to it first",
            request.credential, request.credential
        )));
    };
    let mut wanted: Vec<(i64, Option<String>)> =
        request.company_ids.iter().map(|id| (*id, None)).collect();
    if request.all_discovered {
        let directory = registry::directory(&secret.companies, &secret.credentials, registered);
        let clients = crate::tripletex::clients_of(base_url, credentials).await?;
        let found = domain::tripletex::discovered(&clients, &directory.looked_after);
        wanted.extend(
            found
                .into_iter()
                .filter(|company| company.tenant.is_none())
                .map(|company| (company.company_id, company.name)),
        );
    }
    if wanted.is_empty() {
        return Err(invalid(
            "no company to add: name company ids, or --all-discovered",
        ));
    }
    if request.tenant.is_some() && wanted.len() != 1 {
        return Err(invalid("--tenant names the tenant of one company only"));
    }
    Ok(wanted)
}

/// Registers each company (onboarding) under its tenant, refusing one the registry or the
/// credentials secret already has.
async fn register(
    registry: &DynamoResyncLedger,
    secret: &CredentialsSecret,
    registered: &[RegisteredCompany],
    wanted: Vec<(i64, Option<String>)>,
    request: &Add<'_>,
) -> Result<Vec<Added>, CompaniesError> {
    let now = jiff::Timestamp::now();
    let mut added = Vec::new();
    for (company_id, name) in wanted {
        let tenant = match request.tenant {
            Some(tenant) => TenantId::parse(tenant).map_err(|e| invalid(e.to_string()))?,
            None => registry::tenant_for(company_id)
                .ok_or_else(|| invalid(format!("{company_id} is not a Tripletex company id")))?,
        };
        let known = registered.iter().find(|c| c.tenant == tenant);
        if let Err(refused) = registry::next_state(known.map(|c| c.state), Change::Add) {
            return Err(invalid(format!("{tenant}: {refused}")));
        }
        if secret.companies.0.contains_key(&tenant) {
            return Err(invalid(format!(
                "{tenant} is already a company of the credentials secret"
            )));
        }
        let company = RegisteredCompany {
            name,
            ..RegisteredCompany::added(tenant.clone(), company_id, request.credential, now)
        };
        if !registry.add(&company).await.map_err(registry_failed)? {
            return Err(invalid(format!(
                "{tenant} was added by someone else meanwhile"
            )));
        }
        added.push(Added {
            tenant: tenant.to_string(),
            company_id,
            state: CompanyState::Onboarding,
            subscriptions_created: 0,
            backfill: Vec::new(),
            verdict: "added; the keeper's next scheduled run subscribes it".to_owned(),
            failed: false,
        });
    }
    Ok(added)
}

/// Runs the keeper for the added companies now, and says of each what it did.
async fn subscribe(ctx: &Context, added: &mut [Added]) -> Result<(), CompaniesError> {
    let request = KeeperRequest {
        tenants: Some(added.iter().map(|a| a.tenant.clone()).collect()),
        ..KeeperRequest::manual()
    };
    let report = aws::invoke_keeper(&ctx.sdk, &ctx.deployment, &request).await?;
    for company in added {
        let kept = report.companies.iter().find(|c| c.tenant == company.tenant);
        keeper_verdict(company, kept);
    }
    Ok(())
}

/// What the keeper's run did for one added company: its subscriptions created, its state, and a
/// failed verdict when the keeper did not reach it or could not subscribe it.
fn keeper_verdict(company: &mut Added, kept: Option<&CompanyReport>) {
    let Some(kept) = kept else {
        company.failed = true;
        company.verdict = "the keeper did not reach it; its next run will".to_owned();
        return;
    };
    company.subscriptions_created = kept.created.len() as u64;
    company.state = kept.state.unwrap_or(company.state);
    if let Some(error) = &kept.error {
        company.failed = true;
        company.verdict = format!("the keeper could not subscribe it: {error}");
    } else if !kept.failed.is_empty() {
        company.failed = true;
        let failed: Vec<String> = kept
            .failed
            .iter()
            .map(|f| format!("{} {}: {}", f.event, f.action, f.error))
            .collect();
        company.verdict = format!("some subscriptions failed: {}", failed.join("; "));
    }
}

/// One line on how a company's onboarding ended.
fn backfill_verdict(company: &Added) -> String {
    let listed: u64 = company
        .backfill
        .iter()
        .flat_map(|run| &run.types)
        .map(|t| t.listed)
        .sum();
    let types = company
        .backfill
        .iter()
        .map(|run| run.types.len())
        .sum::<usize>();
    let state = company.state.as_str();
    match company
        .backfill
        .iter()
        .map(|run| run.state.as_str())
        .collect::<Vec<_>>()
    {
        states if states.is_empty() && company.subscriptions_created == 0 => {
            format!("{state}; its subscriptions were already in place, nothing to backfill")
        }
        states if states.is_empty() => {
            format!("{state}; its backfill did not start in time: follow it with `status`")
        }
        states if states.contains(&"failed") => format!(
            "{state}; its backfill failed: {}",
            company
                .backfill
                .iter()
                .flat_map(|run| &run.types)
                .filter_map(|t| t.failure.clone())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        states if states.contains(&"running") => format!(
            "{state}; backfill still running ({listed} listed so far): follow it with `status`"
        ),
        _ => format!(
            "{state}; backfill done: {listed} objects listed in {types} types, the copy complete"
        ),
    }
}

/// Asks the sync to start the keeper's backfill requests until it has a run for every company
/// (the sync sees a new company within its registry TTL), then follows the runs with a bar per
/// company and type: listed of Tripletex's `fullResultSize`, fetched, rate and time left.
async fn follow_backfills(
    ctx: &Context,
    tenants: &[&str],
    timeout: Duration,
    quiet: bool,
) -> Result<Vec<RunProgress>, CompaniesError> {
    let deadline = Instant::now() + timeout;
    let mut started: BTreeMap<String, String> = BTreeMap::new();
    while tenants.iter().any(|t| !started.contains_key(*t)) && Instant::now() < deadline {
        let answer = aws::invoke_sync(
            &ctx.sdk,
            &ctx.deployment,
            &StartRequest::every_company(StartMode::Pending),
        )
        .await?;
        for run in answer.runs {
            if tenants.contains(&run.tenant.as_str()) {
                started.insert(run.tenant, run.run_id);
            }
        }
        if tenants.iter().any(|t| !started.contains_key(*t)) {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let progress = indicatif::MultiProgress::new();
    if quiet {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:<24} [{bar:28}] {human_pos}/{human_len} listed, {msg}, {per_sec}, {eta} left",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    let mut bars: BTreeMap<String, indicatif::ProgressBar> = BTreeMap::new();
    let mut finished = Vec::new();
    let mut following: Vec<(String, String)> = started.into_iter().collect();
    while !following.is_empty() {
        let mut still = Vec::new();
        for (tenant, run_id) in following {
            let Some(run) = run_progress(ctx, &tenant, &run_id).await? else {
                return Err(invalid(format!("run {run_id} has no record")));
            };
            for t in &run.types {
                let bar = bars
                    .entry(format!("{tenant}/{}", t.object_type))
                    .or_insert_with(|| {
                        let bar = progress.add(indicatif::ProgressBar::new(0));
                        bar.set_style(style.clone());
                        bar.set_prefix(format!("{tenant} {}", t.object_type));
                        bar
                    });
                bar.set_length(t.listing_size.max(t.listed));
                bar.set_position(t.listed);
                bar.set_message(format!("{} fetched", t.fetched));
            }
            if run.state == "running" && Instant::now() < deadline {
                still.push((tenant, run_id));
            } else {
                finished.push(run);
            }
        }
        following = still;
        if !following.is_empty() {
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    }
    for bar in bars.values() {
        bar.finish();
    }
    Ok(finished)
}

/// One company as `companies list` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub tenant: String,
    pub company_id: Option<i64>,
    pub name: Option<String>,
    /// The registry's state, or `configured` for a company of the credentials secret.
    pub state: String,
    pub credential: Option<String>,
    pub added_at: Option<String>,
    /// Our subscriptions the keeper's last run saw, and when it ran.
    pub subscriptions: Option<u64>,
    pub keeper_ran_at: Option<String>,
    pub keeper_error: Option<String>,
    /// The last sync run: when it started and how it stands.
    pub last_sync: Option<String>,
    /// Items in the copy per type, tombstones included.
    pub objects: BTreeMap<String, u64>,
}

pub async fn list(
    deployment: &Deployment,
    dynamodb: &aws_sdk_dynamodb::Client,
    secret_json: &str,
) -> Result<Vec<Listed>, CompaniesError> {
    let secret = CredentialsSecret::from_json(secret_json)
        .map_err(crate::tripletex::TripletexError::Credentials)?;
    let registered = registry_of(dynamodb, deployment)
        .registered()
        .await
        .map_err(registry_failed)?;
    let mut rows: BTreeMap<String, Listed> = BTreeMap::new();
    for (tenant, credentials) in &secret.companies.0 {
        rows.insert(
            tenant.to_string(),
            Listed::new(tenant.to_string(), credentials.company_id, "configured"),
        );
    }
    for company in &registered {
        let mut row = Listed::new(
            company.tenant.to_string(),
            Some(company.company_id),
            company.state.as_str(),
        );
        row.credential = Some(company.credential.clone());
        row.name = company.name.clone();
        row.added_at = Some(company.added_at.to_string());
        rows.insert(company.tenant.to_string(), row);
    }
    let copy = DynamoObjectStore::new(dynamodb.clone(), &deployment.objects_table);
    for status in crate::commands::status::companies(dynamodb, deployment).await? {
        let Some(row) = rows.get_mut(&status.tenant) else {
            continue;
        };
        if let Some(run) = &status.keeper_last_run {
            row.subscriptions = Some(run.seen);
            row.keeper_ran_at = Some(run.finished_at.clone());
            row.keeper_error = run.error.clone();
        }
        row.last_sync = status
            .types
            .iter()
            .max_by_key(|t| t.started_at.clone())
            .map(|t| {
                format!(
                    "{} {} ({})",
                    t.mode,
                    t.state,
                    t.started_at.as_deref().unwrap_or("-")
                )
            });
        if row.state == CompanyState::Removed.as_str() {
            continue;
        }
        let Ok(tenant) = TenantId::parse(&status.tenant) else {
            continue;
        };
        for t in &status.types {
            let count = copy
                .count_of_type(&tenant, &t.object_type)
                .await
                .map_err(|e| invalid(domain::error::error_chain(&e)))?;
            row.objects.insert(t.object_type.clone(), count);
        }
    }
    Ok(rows.into_values().collect())
}

impl Listed {
    fn new(tenant: String, company_id: Option<i64>, state: &str) -> Self {
        Self {
            tenant,
            company_id,
            name: None,
            state: state.to_owned(),
            credential: None,
            added_at: None,
            subscriptions: None,
            keeper_ran_at: None,
            keeper_error: None,
            last_sync: None,
            objects: BTreeMap::new(),
        }
    }
}

/// What removing did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    pub tenant: String,
    pub state: CompanyState,
    /// Our subscriptions the keeper deleted in Tripletex.
    pub subscriptions_deleted: u64,
    /// Items of the copy deleted by `--purge`, tombstones included; none without it.
    pub purged: Option<u64>,
    pub verdict: String,
    pub failed: bool,
}

pub async fn remove(
    ctx: &Context,
    tenant: &str,
    purge: bool,
    quiet: bool,
) -> Result<Removed, CompaniesError> {
    let (deployment, dynamodb) = (&ctx.deployment, &ctx.dynamodb());
    let tenant = TenantId::parse(tenant).map_err(|e| invalid(e.to_string()))?;
    let registry = registry_of(dynamodb, deployment);
    let Some(company) = registry
        .registered_one(&tenant)
        .await
        .map_err(registry_failed)?
    else {
        return Err(invalid(format!(
            "{tenant} is not in the company registry (a company of the credentials secret is \
             removed from that secret)"
        )));
    };
    let mut state = company.state;
    let left_at = if state.refuses_webhooks() {
        company.changed_at
    } else {
        jiff::Timestamp::now()
    };
    if state != CompanyState::Removed {
        let leaving = registry::next_state(Some(state), Change::Remove)
            .map_err(|refused| invalid(format!("{tenant}: {refused}")))?;
        if leaving != state
            && !registry
                .change_state(&tenant, state, leaving, jiff::Timestamp::now())
                .await
                .map_err(registry_failed)?
        {
            return Err(invalid(format!("{tenant} changed meanwhile; try again")));
        }
        state = leaving;
    }
    let mut removed = Removed {
        tenant: tenant.to_string(),
        state,
        subscriptions_deleted: 0,
        purged: None,
        verdict: String::new(),
        failed: false,
    };
    if state == CompanyState::Offboarding {
        let request = KeeperRequest {
            tenants: Some(vec![tenant.to_string()]),
            ..KeeperRequest::manual()
        };
        let report = aws::invoke_keeper(&ctx.sdk, &ctx.deployment, &request).await?;
        if let Some(kept) = report
            .companies
            .iter()
            .find(|c| c.tenant == tenant.as_str())
        {
            removed.subscriptions_deleted = kept.unsubscribed.len() as u64;
            removed.state = kept.state.unwrap_or(state);
            if let Some(error) = &kept.error {
                removed.verdict = format!("its subscriptions could not be deleted: {error}");
            }
        }
    }
    removed.failed = removed.state != CompanyState::Removed;
    if purge {
        // What the worker took before it saw the company leave must land before the copy goes.
        let since_left =
            Duration::try_from(jiff::Timestamp::now().duration_since(left_at)).unwrap_or_default();
        if let Some(wait) = WORKER_SETTLES.checked_sub(since_left) {
            tokio::time::sleep(wait).await;
        }
        let copy = DynamoObjectStore::new(dynamodb.clone(), &deployment.objects_table);
        let spinner = indicatif::ProgressBar::new_spinner();
        if quiet {
            spinner.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        spinner.set_message(format!("purging {tenant}'s copy"));
        let purged = copy
            .purge_tenant(&tenant, |so_far| {
                spinner.set_message(format!("purging {tenant}'s copy: {so_far} items deleted"));
                spinner.tick();
            })
            .await
            .map_err(|e| invalid(domain::error::error_chain(&e)))?;
        spinner.finish_and_clear();
        removed.purged = Some(purged);
    }
    if removed.verdict.is_empty() {
        removed.verdict = match (removed.failed, removed.purged) {
            (true, _) => "offboarding: its webhooks are refused; the keeper's next run deletes our subscriptions".to_owned(),
            (false, Some(purged)) => format!(
                "removed: {} of our subscriptions deleted, its webhooks refused, {purged} items of its copy deleted",
                removed.subscriptions_deleted
            ),
            (false, None) => format!(
                "removed: {} of our subscriptions deleted, its webhooks refused; its copy is kept (--purge erases it)",
                removed.subscriptions_deleted
            ),
        };
    }
    Ok(removed)
}

/// The client companies a key reaches, and which are looked after already.
pub fn render_discovered(companies: &Vec<domain::tripletex::DiscoveredCompany>) -> String {
    let mut rows = table(&["company id", "name", "organization number", "tenant"]);
    for company in companies {
        rows.add_row(vec![
            company.company_id.to_string(),
            company.name.clone().unwrap_or_default(),
            company.organization_number.clone().unwrap_or_default(),
            company
                .tenant
                .clone()
                .unwrap_or_else(|| "not added".to_owned()),
        ]);
    }
    let added = companies.iter().filter(|c| c.tenant.is_some()).count();
    format!(
        "{rows}\n{} client companies, {added} of them added\n",
        companies.len()
    )
}

pub fn render_added(companies: &[crate::commands::companies::Added]) -> String {
    let mut rows = table(&["tenant", "company id", "state", "subscribed", "backfill"]);
    for company in companies {
        let backfill: Vec<String> = company
            .backfill
            .iter()
            .flat_map(|run| {
                run.types.iter().map(|t| {
                    format!(
                        "{} {}: {} listed, {} fetched",
                        t.object_type, t.state, t.listed, t.fetched
                    )
                })
            })
            .collect();
        rows.add_row(vec![
            company.tenant.clone(),
            company.company_id.to_string(),
            company.state.as_str().to_owned(),
            company.subscriptions_created.to_string(),
            if backfill.is_empty() {
                "-".to_owned()
            } else {
                backfill.join("\n")
            },
        ]);
    }
    let verdicts: Vec<String> = companies
        .iter()
        .map(|c| format!("{}: {}", c.tenant, c.verdict))
        .collect();
    format!("{rows}\n{}\n", verdicts.join("\n"))
}

pub fn render_listed(companies: &[crate::commands::companies::Listed]) -> String {
    let mut rows = table(&[
        "tenant",
        "company id",
        "name",
        "state",
        "subscriptions",
        "keeper ran",
        "last sync",
        "objects",
    ]);
    for company in companies {
        let objects: Vec<String> = company
            .objects
            .iter()
            .map(|(object_type, count)| format!("{object_type} {count}"))
            .collect();
        rows.add_row(vec![
            company.tenant.clone(),
            company
                .company_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            or_dash(company.name.as_deref()),
            company.state.clone(),
            company
                .subscriptions
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            match (&company.keeper_ran_at, &company.keeper_error) {
                (_, Some(error)) => format!("failed: {error}"),
                (Some(at), None) => at.clone(),
                (None, None) => "-".to_owned(),
            },
            or_dash(company.last_sync.as_deref()),
            if objects.is_empty() {
                "-".to_owned()
            } else {
                objects.join("\n")
            },
        ]);
    }
    format!("{rows}\n{} companies\n", companies.len())
}

pub fn render_removed(removed: &crate::commands::companies::Removed) -> String {
    format!("{}: {}\n", removed.tenant, removed.verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::keeper::{Done, Failed, Reason};

    fn onboarding() -> Added {
        Added {
            tenant: "201".into(),
            company_id: 201,
            state: CompanyState::Onboarding,
            subscriptions_created: 0,
            backfill: Vec::new(),
            verdict: String::new(),
            failed: false,
        }
    }

    #[test]
    fn the_keepers_report_says_what_became_of_each_added_company() {
        let created = |event: &str| Done {
            subscription_id: Some(1),
            event: event.into(),
            reason: Reason::Missing,
            drift: Vec::new(),
        };
        let subscribed = CompanyReport {
            tenant: "201".into(),
            created: vec![created("customer.create"), created("customer.update")],
            state: Some(CompanyState::Active),
            ..CompanyReport::default()
        };
        let mut company = onboarding();
        keeper_verdict(&mut company, Some(&subscribed));
        assert_eq!(
            (company.subscriptions_created, company.state, company.failed),
            (2, CompanyState::Active, false)
        );

        let mut company = onboarding();
        keeper_verdict(&mut company, None);
        assert!(company.failed && company.verdict.contains("did not reach it"));

        let refused = CompanyReport {
            error: Some("401 from Tripletex".into()),
            ..subscribed.clone()
        };
        let mut company = onboarding();
        keeper_verdict(&mut company, Some(&refused));
        assert_eq!(
            company.verdict,
            "the keeper could not subscribe it: 401 from Tripletex"
        );

        let partly = CompanyReport {
            failed: vec![Failed {
                subscription_id: None,
                event: "order.create".into(),
                action: "create".into(),
                kind: "conflict".into(),
                error: "409".into(),
            }],
            ..subscribed
        };
        let mut company = onboarding();
        keeper_verdict(&mut company, Some(&partly));
        assert!(company.failed);
        assert_eq!(
            company.verdict,
            "some subscriptions failed: order.create create: 409"
        );
    }
}
