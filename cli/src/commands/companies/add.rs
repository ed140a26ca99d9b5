//! `companies add`: the companies wanted, registered (onboarding), subscribed by the keeper now,
//! and their backfills followed per type, each ending in a verdict.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_adapters::resync_ledger::DynamoResyncLedger;
use domain::ids::TenantId;
use domain::keeper::{CompanyReport, KeeperRequest};
use domain::ports::CompanyRegistry;
use domain::registry::{self, Change, CompanyState, RegisteredCompany};
use domain::sync::{StartMode, StartRequest};
use domain::tripletex::CredentialsSecret;
use serde::Serialize;

use super::{CompaniesError, TripletexAccess, invalid, registry_failed, registry_of};
use crate::context::Context;
use crate::ops;
use crate::ops::sync_runs::{RunProgress, run_progress};
use crate::render::table;

/// How often a backfill's run record is read while it is followed.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

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

/// Adds the companies: registers each (onboarding), then, unless told not to wait, runs the keeper
/// for them and follows their backfills, each ending in a verdict.
pub async fn add(
    ctx: &Context,
    tripletex: TripletexAccess<'_>,
    request: Add<'_>,
) -> Result<Vec<Added>, CompaniesError> {
    let secret = CredentialsSecret::from_json(tripletex.secret_json)
        .map_err(crate::tripletex::TripletexError::Credentials)?;
    let registry = registry_of(ctx.dynamodb(), &ctx.deployment);
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
    if !wanted.is_empty() {
        named_from_tripletex(base_url, credentials, &mut wanted).await;
    }
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
    // A company the key cannot reach is refused before anything is registered (one discovered
    // was just listed as reachable).
    for &company_id in request.company_ids {
        if let Err(error) = crate::tripletex::reaches(base_url, credentials, company_id).await {
            let cause = domain::error::error_chain(&error);
            return Err(invalid(if error.is_refused() {
                format!(
                    "credential {:?} does not reach company {company_id}: Tripletex refused ({cause}); \
                     nothing was added. `tripletex-webhooks companies discover --credential {}` lists \
                     the companies it reaches",
                    request.credential, request.credential
                )
            } else {
                format!(
                    "could not check that credential {:?} reaches company {company_id}: {cause}; \
                     nothing was added, try again",
                    request.credential
                )
            }));
        }
    }
    Ok(wanted)
}

/// The names Tripletex gives the companies named by id (the key's client companies), so that a
/// company added by id is named as one added with --all-discovered. A key that may not list them
/// leaves the names empty: the add goes on, and the reach of each id is checked after.
async fn named_from_tripletex(
    base_url: &str,
    credentials: &domain::tripletex::TripletexCredentials,
    wanted: &mut [(i64, Option<String>)],
) {
    let Ok(clients) = crate::tripletex::clients_of(base_url, credentials).await else {
        return;
    };
    for (company_id, name) in wanted.iter_mut() {
        *name = clients
            .iter()
            .find(|client| client.customer_company_id == Some(*company_id))
            .and_then(|client| client.name.clone());
    }
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
    let report = ops::invoke::invoke_keeper(&ctx.sdk, &ctx.deployment, &request).await?;
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
        _ => {
            let not_stored: u64 = company
                .backfill
                .iter()
                .flat_map(|run| &run.types)
                .map(|t| t.not_stored)
                .sum();
            if not_stored == 0 {
                format!(
                    "{state}; backfill done: {listed} objects listed in {types} types, every one \
                     of them in the copy: complete"
                )
            } else {
                format!(
                    "{state}; backfill done: {listed} objects listed in {types} types, {not_stored} \
                     of them not yet in the copy when checked (queued again): not complete yet, \
                     `status` says when a run confirms it"
                )
            }
        }
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
        let answer = ops::invoke::invoke_sync(
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
    let mut bars: BTreeMap<String, TypeBar> = BTreeMap::new();
    let mut finished = Vec::new();
    let mut following: Vec<(String, String)> = started.into_iter().collect();
    while !following.is_empty() {
        let mut still = Vec::new();
        for (tenant, run_id) in following {
            let Some(run) = run_progress(ctx.dynamodb(), &ctx.deployment, &tenant, &run_id).await?
            else {
                return Err(invalid(format!("run {run_id} has no record")));
            };
            for t in &run.types {
                bars.entry(format!("{tenant}/{}", t.object_type))
                    .or_insert_with(|| {
                        TypeBar::new(&progress, &format!("{tenant} {}", t.object_type))
                    })
                    .show(t, Instant::now());
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
        bar.bar.finish();
    }
    Ok(finished)
}

/// How far back the rate of a type's listing is measured.
const RATE_WINDOW: Duration = Duration::from_secs(30);

/// One type's bar: a line that waits until Tripletex has said how much there is, then listed of
/// that, with the rate of the last half minute in whole objects a second and the time left at that
/// rate; frozen once the type is done, so that its rate does not fall while the others go on.
struct TypeBar {
    bar: indicatif::ProgressBar,
    recent: std::collections::VecDeque<(Instant, u64)>,
    sized: bool,
}

impl TypeBar {
    fn new(progress: &indicatif::MultiProgress, prefix: &str) -> Self {
        let bar = progress.add(indicatif::ProgressBar::new(0));
        bar.set_style(style("{prefix:<24} {msg}"));
        bar.set_prefix(prefix.to_owned());
        bar.set_message("waiting for Tripletex's first page");
        Self {
            bar,
            recent: std::collections::VecDeque::new(),
            sized: false,
        }
    }

    fn show(&mut self, t: &crate::ops::sync_runs::TypeStatus, now: Instant) {
        if self.bar.is_finished() {
            return;
        }
        if t.listing_size == 0 && t.listed == 0 && t.state == "running" {
            return;
        }
        if !self.sized {
            self.bar
                .set_style(style("{prefix:<24} [{bar:28}] {pos}/{len} listed, {msg}"));
            self.sized = true;
        }
        self.bar.set_length(t.listing_size.max(t.listed));
        self.bar.set_position(t.listed);
        self.recent.push_back((now, t.listed));
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            self.recent.pop_front();
        }
        let rate = recent_rate(&self.recent);
        let left = t.listing_size.saturating_sub(t.listed);
        let eta = match rate {
            Some(rate) if rate > 0 && left > 0 => format!(", {} s left", left.div_ceil(rate)),
            _ => String::new(),
        };
        let rate = rate.map_or_else(|| "-".to_owned(), |rate| format!("{rate}/s"));
        self.bar
            .set_message(format!("{} fetched, {rate}{eta}", t.fetched));
        if t.state != "running" {
            self.bar
                .set_message(format!("{} fetched, {}", t.fetched, t.state));
            self.bar.finish();
        }
    }
}

fn style(template: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Objects listed a second over the samples kept (the last `RATE_WINDOW`), in whole objects; none
/// until two samples a second apart.
fn recent_rate(samples: &std::collections::VecDeque<(Instant, u64)>) -> Option<u64> {
    let (first_at, first) = samples.front()?;
    let (last_at, last) = samples.back()?;
    let seconds = last_at.duration_since(*first_at).as_secs_f64();
    (seconds >= 1.0).then(|| (last.saturating_sub(*first) as f64 / seconds).round() as u64)
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

    #[test]
    fn the_rate_is_of_the_recent_samples_in_whole_objects_and_none_before_a_second() {
        let start = Instant::now();
        let at = |seconds: u64, listed: u64| (start + Duration::from_secs(seconds), listed);
        let samples =
            |s: &[(Instant, u64)]| s.iter().copied().collect::<std::collections::VecDeque<_>>();
        assert_eq!(recent_rate(&samples(&[])), None);
        assert_eq!(
            recent_rate(&samples(&[at(0, 0)])),
            None,
            "one sample says no rate"
        );
        assert_eq!(
            recent_rate(&samples(&[at(0, 0), at(2, 150), at(4, 301)])),
            Some(75)
        );
        assert_eq!(
            recent_rate(&samples(&[at(10, 400), at(20, 400), at(30, 400)])),
            Some(0),
            "a type that listed all it had goes at 0/s, not a falling average"
        );
    }
}
