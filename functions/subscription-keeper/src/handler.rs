//! Turns a scheduled (or hand-made) event into a keeper run over every configured company, and the
//! run into a JSON report, log lines and metrics.

use aws_adapters::secrets::SecretSource;
use aws_adapters::telemetry::emit_metrics;
use domain::auth::AuthConfig;
use domain::error::error_chain;
use domain::ids::TenantId;
use domain::keeper::schedule::{self, Job, LimitedKeys, Pace};
use domain::keeper::{
    CompanyReport, KeeperPolicy, KeeperRequest, KeeperSettings, LastRun, RunReport, Totals,
};
use domain::ports::{
    CompanyRegistry, PendingResyncs, RegistryError, ResyncLedger, TripletexCompanies,
};
use domain::registry::{self, Change, CompanyState};
use domain::sync::RunState;
use domain::tripletex::CredentialsSecret;
use futures_util::StreamExt as _;
use futures_util::stream;
use std::collections::BTreeMap;
use std::time::Instant;
use tracing::{info, warn};

use crate::run::{offboard_company, run_company};

const FUNCTION_NAME: &str = "subscription-keeper";

fn log_totals(dry_run: bool, totals: &Totals) {
    info!(
        dry_run,
        companies = totals.companies,
        companies_failed = totals.companies_failed,
        companies_not_reached = totals.companies_not_reached,
        seen = totals.counts.seen,
        re_enabled = totals.counts.re_enabled,
        created = totals.counts.created,
        updated = totals.counts.updated,
        left_alone = totals.counts.left_alone,
        failed = totals.counts.failed,
        "keeper run done"
    );
}

/// The run's totals as the metrics it emits.
fn totals_metrics(totals: &Totals) -> [(&'static str, u64); 8] {
    let n = |v: usize| v as u64;
    let counts = &totals.counts;
    [
        ("SubscriptionsSeen", n(counts.seen)),
        ("SubscriptionsReEnabled", n(counts.re_enabled)),
        ("SubscriptionsCreated", n(counts.created)),
        ("SubscriptionsUpdated", n(counts.updated)),
        ("SubscriptionsLeftAlone", n(counts.left_alone)),
        ("SubscriptionStepsFailed", n(counts.failed)),
        ("CompaniesFailed", n(totals.companies_failed)),
        ("CompaniesNotReached", n(totals.companies_not_reached)),
    ]
}

pub struct Keeper<C, L> {
    /// One client per company, kept across invocations so that sessions are reused.
    tripletex: C,
    /// The resync ledger, and in its table the company registry.
    ledger: L,
    credentials: SecretSource<CredentialsSecret>,
    receiver_auth: SecretSource<AuthConfig>,
    policy: KeeperPolicy,
    pace: Pace,
}

/// The run id a removed company's requests are closed under.
const OFFBOARDED: &str = "company-removed";

impl<C: TripletexCompanies, L: ResyncLedger + CompanyRegistry + PendingResyncs> Keeper<C, L> {
    pub fn new(
        tripletex: C,
        ledger: L,
        credentials: SecretSource<CredentialsSecret>,
        receiver_auth: SecretSource<AuthConfig>,
        policy: KeeperPolicy,
    ) -> Self {
        Self {
            tripletex,
            ledger,
            credentials,
            receiver_auth,
            policy,
            pace: Pace::default(),
        }
    }

    pub fn with_pace(mut self, pace: Pace) -> Self {
        self.pace = pace;
        self
    }

    /// A run with no deadline (tests, benches): every company is started.
    pub async fn handle(&self, request: KeeperRequest) -> Result<RunReport, KeeperError> {
        self.handle_until(request, None).await
    }

    pub async fn handle_until(
        &self,
        request: KeeperRequest,
        deadline: Option<Instant>,
    ) -> Result<RunReport, KeeperError> {
        let dry_run = request.dry_run.unwrap_or(self.policy.dry_run);
        let secret = self.credentials.current().await;
        let registered = self
            .ledger
            .registered()
            .await
            .map_err(KeeperError::Registry)?;
        let directory = registry::directory(&secret.companies, &secret.credentials, &registered);
        for problem in &directory.problems {
            warn!(problem, "a registered company cannot be handled");
        }
        let auth = self.receiver_auth.current().await;
        let wanted = request
            .wanted()
            .map_err(|unknown| KeeperError::UnknownTenant(unknown.0))?;
        let not_reached_before = self.ledger.not_reached().await.unwrap_or_else(|error| {
            warn!(error = %error_chain(&error), "the companies the last run did not reach are unknown");
            Vec::new()
        });
        let jobs = schedule::jobs(&directory, wanted.as_deref(), &not_reached_before)
            .map_err(|unknown| KeeperError::UnknownTenant(unknown.0))?;
        if jobs.is_empty() {
            warn!("no Tripletex company is configured: nothing to keep");
        }
        let latest_start =
            deadline.map(|deadline| self.pace.latest_start(deadline, Instant::now()));
        let states: BTreeMap<&TenantId, CompanyState> =
            registered.iter().map(|c| (&c.tenant, c.state)).collect();
        let limited = LimitedKeys::default();
        let outcomes: Vec<Option<CompanyReport>> = stream::iter(jobs.iter().copied())
            .map(|job| {
                let state = states.get(job.tenant()).copied();
                let (auth, dry_run, resend_auth) = (&auth, dry_run, request.resend_auth);
                let limited = &limited;
                async move {
                    if !schedule::may_start(Instant::now(), latest_start, limited, job.credentials())
                    {
                        return None;
                    }
                    let report = self.run_job(job, state, auth, dry_run, resend_auth).await;
                    if report.rate_limited {
                        warn!(tenant = report.tenant, "rate-limited by Tripletex: its credential's companies wait for the next run");
                        limited.limit(job.credentials());
                    }
                    Some(report)
                }
            })
            .buffered(self.pace.company_concurrency.max(1))
            .collect()
            .await;
        let reports: Vec<CompanyReport> = outcomes.into_iter().flatten().collect();
        // Not started, or cut short by Tripletex's rate limit: first in line next run.
        let not_reached = schedule::not_reached(&jobs, &reports);
        let totals = Totals::of(&reports, not_reached.len());
        log_totals(dry_run, &totals);
        if !dry_run {
            emit_metrics(FUNCTION_NAME, &totals_metrics(&totals));
            self.keep_last_runs(&reports).await;
            if let Some(line) = schedule::line_after(&not_reached_before, &reports, &not_reached)
                && let Err(error) = self.ledger.keep_not_reached(&line).await
            {
                warn!(error = %error_chain(&error), "the companies not reached were not kept");
            }
        }
        Ok(RunReport {
            dry_run,
            totals,
            companies: reports,
            not_reached,
        })
    }

    /// What `status` shows of the run. Word of a run, not part of it: a ledger that cannot take it
    /// is logged, and the run's report stands.
    async fn keep_last_runs(&self, reports: &[CompanyReport]) {
        let finished_at = jiff::Timestamp::now();
        for run in reports.iter().filter_map(|r| LastRun::of(r, finished_at)) {
            if let Err(error) = self.ledger.record_run(&run).await {
                warn!(tenant = run.tenant, error = %error_chain(&error), "the keeper's last run was not kept");
            }
        }
    }

    async fn run_job(
        &self,
        job: Job<'_>,
        state: Option<CompanyState>,
        auth: &AuthConfig,
        dry_run: bool,
        resend_auth: bool,
    ) -> CompanyReport {
        let (tenant, credentials) = match job {
            Job::Keep(tenant, credentials) | Job::Offboard(tenant, credentials) => {
                (tenant, credentials)
            }
        };
        let failed = |error: String| CompanyReport {
            tenant: tenant.to_string(),
            dry_run,
            error: Some(error),
            state,
            ..CompanyReport::default()
        };
        let settings = match KeeperSettings::for_tenant(
            &self.policy,
            tenant,
            auth.tenant(tenant).as_deref(),
            resend_auth,
        ) {
            Ok(settings) => settings,
            Err(error) => return failed(error_chain(&error)),
        };
        let api = match self.tripletex.company(tenant, credentials) {
            Ok(api) => api,
            Err(error) => return failed(error_chain(&error)),
        };
        let (mut report, change, done) = match job {
            Job::Keep(..) => {
                let report =
                    run_company(api.as_ref(), &self.ledger, tenant, &settings, dry_run).await;
                let done = !report.is_failure();
                (report, Change::Subscribed, done)
            }
            Job::Offboard(..) => {
                let report = offboard_company(api.as_ref(), tenant, &settings, dry_run).await;
                let done = report.offboarding_done();
                (report, Change::Unsubscribed, done)
            }
        };
        report.state = state;
        if let Some(from) = state
            && !dry_run
            && done
        {
            report.state = Some(self.move_on(tenant, from, change).await);
            if report.state == Some(CompanyState::Removed) {
                self.close_requests(tenant).await;
            }
        }
        report
    }

    /// A removed company's backfill and resync requests that no run took are closed (failed, by
    /// the offboarding), so that the sync stops finding them. Word of the removal, not part of it:
    /// a ledger that cannot take it is logged, and the sync leaves them pending.
    async fn close_requests(&self, tenant: &TenantId) {
        let pending = match self.ledger.pending().await {
            Ok(pending) => pending,
            Err(error) => {
                warn!(%tenant, error = %error_chain(&error), "a removed company's requests stay pending");
                return;
            }
        };
        for request in pending.iter().filter(|r| &r.request.tenant == tenant) {
            let closed = async {
                if self.ledger.claim(&request.key, OFFBOARDED).await? {
                    self.ledger
                        .settle(&request.key, OFFBOARDED, RunState::Failed)
                        .await?;
                }
                Ok::<_, domain::ports::LedgerError>(())
            };
            if let Err(error) = closed.await {
                warn!(%tenant, error = %error_chain(&error), "a removed company's request stays pending");
            }
        }
    }

    /// The registry's next state after a run that did all it had to; a move the rule does not
    /// allow (an active company kept again) or that another writer made first leaves it as read.
    async fn move_on(&self, tenant: &TenantId, from: CompanyState, change: Change) -> CompanyState {
        let Ok(to) = registry::next_state(Some(from), change) else {
            return from;
        };
        if to == from {
            return from;
        }
        match self
            .ledger
            .change_state(tenant, from, to, jiff::Timestamp::now())
            .await
        {
            Ok(true) => {
                info!(%tenant, from = from.as_str(), to = to.as_str(), "company moved on");
                to
            }
            Ok(false) => from,
            Err(error) => {
                warn!(%tenant, error = %error_chain(&error), "the company's new state was not kept");
                from
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    #[error("tenant {0:?} is not among the configured companies")]
    UnknownTenant(String),
    #[error("the company registry could not be read")]
    Registry(#[source] RegistryError),
}

impl From<KeeperError> for lambda_runtime::Diagnostic {
    fn from(error: KeeperError) -> Self {
        let error_type = match error {
            KeeperError::UnknownTenant(_) => "UnknownTenant",
            KeeperError::Registry(_) => "RegistryUnavailable",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error_chain(&error),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The keeper's orchestration in process: `FakeTripletex` plays each company's API (versions
    //! checked on PUT, failures scripted), `InMemoryResyncLedger` the ledger.

    use std::sync::Arc;
    use std::time::Duration;

    use domain::keeper::{DEFAULT_RESYNC_LOOKBACK, Done, ReEnablePolicy};
    use domain::resync::ResyncReason;
    use domain::tripletex::{Subscription, SubscriptionStatus, SubscriptionWrite};
    use serde_json::json;
    use test_support::tripletex::{conflict, forbidden, rate_limited, unauthorized, unavailable};
    use test_support::{CallKind, FakeTripletex, InMemoryResyncLedger, TripletexCall};

    use super::*;

    const RECEIVER: &str = "https://receiver.example.com/";
    const HEADER_NAME: &str = "X-Tripletex-Webhook-Token";
    const HEADER_VALUE: &str = "hook-token-current";

    struct Harness {
        tripletex: FakeTripletex,
        ledger: InMemoryResyncLedger,
        keeper: Keeper<FakeTripletex, InMemoryResyncLedger>,
    }

    fn policy(fields: &str) -> KeeperPolicy {
        KeeperPolicy {
            receiver_url: RECEIVER.into(),
            events: vec!["product.create".into(), "product.update".into()],
            fields: fields.into(),
            reenable: ReEnablePolicy::default(),
            resync_lookback: DEFAULT_RESYNC_LOOKBACK,
            dry_run: false,
        }
    }

    fn harness_with(tenants: &[&str], fields: &str) -> Harness {
        let companies: serde_json::Map<String, serde_json::Value> = tenants
            .iter()
            .map(|tenant| {
                (
                    (*tenant).to_owned(),
                    json!({"consumerToken": "consumer", "employeeToken": format!("employee-{tenant}")}),
                )
            })
            .collect();
        let companies =
            CredentialsSecret::from_json(&json!({ "companies": companies }).to_string()).unwrap();
        let auth = AuthConfig::from_json(
            &json!({"tenants": {
                "default": {"header": {"name": HEADER_NAME, "values": [HEADER_VALUE, "hook-token-old"]}},
                "acme": {"hmac": {"secrets": ["acme-hmac-secret"]}}
            }})
            .to_string(),
        )
        .unwrap();
        let tripletex = FakeTripletex::new();
        let ledger = InMemoryResyncLedger::new();
        let keeper = Keeper::new(
            tripletex.clone(),
            ledger.clone(),
            SecretSource::Fixed(Arc::new(companies)),
            SecretSource::Fixed(Arc::new(auth)),
            policy(fields),
        );
        Harness {
            tripletex,
            ledger,
            keeper,
        }
    }

    fn harness() -> Harness {
        harness_with(&["default"], "*")
    }

    fn subscription(event: &str, target_url: &str, status: SubscriptionStatus) -> Subscription {
        Subscription {
            event: Some(event.into()),
            target_url: Some(target_url.into()),
            fields: Some("*".into()),
            status: Some(status),
            auth_header_name: Some(HEADER_NAME.into()),
            ..Subscription::default()
        }
    }

    impl Harness {
        fn re_enabled_requests(&self) -> Vec<domain::resync::ResyncRequest> {
            self.ledger
                .requests()
                .into_iter()
                .filter(|r| r.reason == ResyncReason::ReEnabled)
                .collect()
        }

        fn existing(&self, event: &str, target_url: &str, status: SubscriptionStatus) -> i64 {
            self.tripletex
                .of("default")
                .seed(subscription(event, target_url, status))
        }

        fn stored(&self, id: i64) -> Subscription {
            self.tripletex.of("default").subscription(id).unwrap()
        }

        /// What the keeper sent in its last write to `id`.
        fn last_write(&self, id: i64) -> SubscriptionWrite {
            self.tripletex
                .of("default")
                .writes()
                .into_iter()
                .rev()
                .find_map(|call| match call {
                    TripletexCall::Update(written, write) if written == id => Some(write),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("no write to {id}"))
        }

        /// How many writes (PUTs) went to subscription `id`.
        fn writes_to(&self, id: i64) -> usize {
            self.tripletex
                .of("default")
                .writes()
                .iter()
                .filter(|call| matches!(call, TripletexCall::Update(written, _) if *written == id))
                .count()
        }

        fn count(&self, kind: CallKind) -> usize {
            self.tripletex
                .of("default")
                .calls()
                .iter()
                .filter(|call| call.kind() == kind)
                .count()
        }

        async fn run(&self) -> RunReport {
            self.keeper.handle(KeeperRequest::default()).await.unwrap()
        }
    }

    fn ids(done: &[Done]) -> Vec<i64> {
        done.iter().filter_map(|d| d.subscription_id).collect()
    }

    fn company<'a>(report: &'a RunReport, tenant: &str) -> &'a CompanyReport {
        report
            .companies
            .iter()
            .find(|c| c.tenant == tenant)
            .unwrap()
    }

    use SubscriptionStatus::{Active, Disabled, DisabledTooManyErrors};

    #[tokio::test]
    async fn re_enables_its_own_disabled_subscription_re_sending_the_auth_header_and_asks_for_a_resync()
     {
        let h = harness();
        let id = h.existing("product.create", RECEIVER, DisabledTooManyErrors);

        let report = h.run().await;

        let company = &report.companies[0];
        assert_eq!(ids(&company.re_enabled), [id]);
        assert!(company.failed.is_empty(), "{:?}", company.failed);
        let stored = h.stored(id);
        assert_eq!(stored.status, Some(Active));
        assert_eq!(stored.version, Some(1));
        let write = h.last_write(id);
        assert_eq!(
            write.auth_header_value.as_ref().map(|v| v.expose()),
            Some(HEADER_VALUE),
            "the current value, re-sent"
        );
        assert_eq!(write.version, Some(0), "written at the version read");
        h.ledger.assert_one_re_enable_asked(id, "product");
        assert_eq!(company.created.len(), 1);
        assert_eq!(company.created[0].event, "product.update");
    }

    #[tokio::test]
    async fn never_touches_a_foreign_subscription_whatever_its_status() {
        let h = harness();
        let foreign = h.existing(
            "product.create",
            "https://other-integration.example/hook",
            DisabledTooManyErrors,
        );

        let report = h.run().await;

        let stored = h.stored(foreign);
        assert_eq!(stored.status, Some(DisabledTooManyErrors));
        assert_eq!(stored.version, Some(0));
        assert_eq!(
            h.writes_to(foreign),
            0,
            "no write to another's subscription"
        );
        let company = &report.companies[0];
        let left = company
            .left_alone
            .iter()
            .find(|l| l.subscription_id == Some(foreign))
            .unwrap();
        assert_eq!(serde_json::to_value(left.reason).unwrap(), "foreign");
        assert_eq!(company.created.len(), 2, "ours are created beside it");
        assert!(h.re_enabled_requests().is_empty());
    }

    #[tokio::test]
    async fn leaves_a_subscription_a_person_disabled_and_reports_it() {
        let h = harness();
        let id = h.existing("product.create", RECEIVER, Disabled);

        let report = h.run().await;

        assert_eq!(h.stored(id).status, Some(Disabled));
        assert_eq!(h.stored(id).version, Some(0));
        let company = &report.companies[0];
        let left = &company.left_alone[0];
        assert_eq!(left.subscription_id, Some(id));
        assert_eq!(left.status.as_deref(), Some("DISABLED"));
        assert_eq!(
            serde_json::to_value(left.reason).unwrap(),
            "disabled_by_person"
        );
        assert_eq!(
            company
                .created
                .iter()
                .map(|c| c.event.as_str())
                .collect::<Vec<_>>(),
            ["product.update"],
            "a disabled subscription of ours still covers its event"
        );
    }

    #[tokio::test]
    async fn a_version_conflict_is_re_read_re_planned_and_retried() {
        let h = harness();
        let id = h.existing("product.create", RECEIVER, DisabledTooManyErrors);
        // Someone edits the subscription between the keeper's read and its write.
        h.tripletex.of("default").after_next_list(move |stored| {
            if let Some(subscription) = stored.get_mut(&id) {
                subscription.version = Some(1);
            }
        });

        let report = h.run().await;

        let company = &report.companies[0];
        assert!(company.failed.is_empty(), "{:?}", company.failed);
        assert_eq!(ids(&company.re_enabled), [id]);
        assert_eq!(h.stored(id).status, Some(Active));
        assert_eq!(
            h.stored(id).version,
            Some(2),
            "the edit, then the keeper's write"
        );
        assert_eq!(h.writes_to(id), 2);
        assert_eq!(h.count(CallKind::Get), 1, "re-read once");
        assert_eq!(h.last_write(id).version, Some(1), "the re-read version");
        assert_eq!(h.re_enabled_requests().len(), 1);
    }

    #[tokio::test]
    async fn a_conflict_that_keeps_coming_back_is_a_failed_step_after_bounded_retries() {
        let h = harness();
        let id = h.existing("product.create", RECEIVER, DisabledTooManyErrors);
        h.tripletex
            .of("default")
            .fail_next(CallKind::Update, (0..10).map(|_| conflict()));

        let report = h.run().await;

        let failed = &report.companies[0].failed;
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].subscription_id, Some(id));
        assert_eq!(failed[0].kind, "api_error");
        assert_eq!(
            h.count(CallKind::Get),
            3,
            "re-read on each of the 3 retries"
        );
        assert!(h.re_enabled_requests().is_empty(), "nothing re-enabled");
    }

    #[tokio::test]
    async fn a_re_read_that_returns_another_subscription_is_a_failed_step_not_a_wrong_write() {
        let h = harness();
        let id = h.existing("product.create", RECEIVER, DisabledTooManyErrors);
        let other = h.existing("product.update", RECEIVER, DisabledTooManyErrors);
        let fake = h.tripletex.of("default");
        fake.fail_next(CallKind::Update, [conflict()]);
        fake.answer_next_get(Subscription {
            id: Some(other),
            ..h.stored(other)
        });

        let report = h.run().await;

        let company = &report.companies[0];
        let failed = company
            .failed
            .iter()
            .find(|f| f.subscription_id == Some(id))
            .unwrap();
        assert_eq!(failed.kind, "mismatched_read");
        assert_eq!(
            failed.error,
            format!(
                "re-reading subscription {id} after a version conflict returned subscription {other}"
            )
        );
        assert_eq!(
            h.stored(id).status,
            Some(DisabledTooManyErrors),
            "not written"
        );
        assert_eq!(h.writes_to(id), 1, "only the refused first write");
        assert_eq!(ids(&company.re_enabled), [other], "the other one goes on");
    }

    #[tokio::test]
    async fn one_failing_company_does_not_stop_the_others() {
        let h = harness_with(&["default", "acme", "beta"], "*");
        let id = h.existing("product.create", RECEIVER, DisabledTooManyErrors);
        h.tripletex
            .of("acme")
            .fail_next(CallKind::List, [unauthorized()]);
        h.tripletex.refuse_client("beta");

        let report = h.run().await;

        assert_eq!(report.totals.companies, 3);
        assert_eq!(report.totals.companies_failed, 2);
        let acme = company(&report, "acme").error.as_deref().unwrap();
        assert!(acme.contains("did not accept the credentials"), "{acme}");
        assert!(!acme.contains("employee-acme"), "no token in the report");
        assert!(company(&report, "beta").error.is_some());
        assert_eq!(ids(&company(&report, "default").re_enabled), [id]);
    }

    #[tokio::test]
    async fn a_company_whose_writes_fail_reports_each_failed_step_and_keeps_going() {
        let h = harness();
        let id = h.existing("product.create", RECEIVER, DisabledTooManyErrors);
        let fake = h.tripletex.of("default");
        fake.fail_next(CallKind::Update, [rate_limited()]);
        fake.fail_next(CallKind::Create, [unavailable()]);

        let report = h.run().await;

        let company = &report.companies[0];
        let kinds: Vec<_> = company
            .failed
            .iter()
            .map(|f| (f.action.as_str(), f.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [("re_enable", "rate_limited"), ("create", "unavailable")]
        );
        assert_eq!(report.totals.counts.failed, 2);
        assert_eq!(h.stored(id).status, Some(DisabledTooManyErrors));
    }

    #[tokio::test]
    async fn creates_missing_and_updates_drifted_subscriptions_with_id_and_version_in_fields() {
        let h = harness_with(&["default"], "name,number");
        let drifted = h.existing("product.create", RECEIVER, Active); // fields "*"

        let report = h.run().await;

        let company = &report.companies[0];
        assert_eq!(ids(&company.updated), [drifted]);
        assert_eq!(
            h.stored(drifted).fields.as_deref(),
            Some("id,version,name,number")
        );
        let created = company.created[0].subscription_id.unwrap();
        let stored = h.stored(created);
        assert_eq!(stored.event.as_deref(), Some("product.update"));
        assert_eq!(stored.target_url.as_deref(), Some(RECEIVER));
        assert_eq!(stored.fields.as_deref(), Some("id,version,name,number"));
        assert_eq!(stored.auth_header_name.as_deref(), Some(HEADER_NAME));
        assert_eq!(stored.status, Some(Active));
        let create = h
            .tripletex
            .of("default")
            .writes()
            .into_iter()
            .find_map(|call| match call {
                TripletexCall::Create(write) => Some(write),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            create.auth_header_value.as_ref().map(|v| v.expose()),
            Some(HEADER_VALUE)
        );

        let again = h.run().await;
        let company = &again.companies[0];
        assert!(
            company.created.is_empty() && company.updated.is_empty(),
            "idempotent"
        );
        assert_eq!(company.left_alone.len(), 2);
    }

    #[tokio::test]
    async fn a_dry_run_reports_the_plan_and_writes_nothing() {
        let h = harness();
        let id = h.existing("product.create", RECEIVER, DisabledTooManyErrors);

        let report = h
            .keeper
            .handle(KeeperRequest {
                dry_run: Some(true),
                ..KeeperRequest::default()
            })
            .await
            .unwrap();

        assert!(report.dry_run);
        assert_eq!(ids(&report.companies[0].re_enabled), [id]);
        assert_eq!(report.companies[0].created.len(), 1);
        assert_eq!(h.stored(id).status, Some(DisabledTooManyErrors));
        assert!(h.tripletex.of("default").writes().is_empty());
        assert!(h.ledger.requests().is_empty());
    }

    #[tokio::test]
    async fn each_run_but_a_dry_run_is_kept_as_the_companys_last_run_with_its_counts() {
        let h = harness_with(&["default", "acme"], "*");
        h.existing("product.create", RECEIVER, DisabledTooManyErrors);
        h.tripletex
            .of("acme")
            .fail_next(CallKind::Create, [conflict()]);

        h.run().await;

        let default = h.ledger.last_run("default").unwrap();
        assert_eq!(
            (
                default.counts.seen,
                default.counts.re_enabled,
                default.counts.created,
                default.counts.failed
            ),
            (1, 1, 1, 0)
        );
        assert_eq!(default.error, None);
        let acme = h.ledger.last_run("acme").unwrap();
        assert_eq!(
            (acme.counts.created, acme.counts.failed),
            (1, 1),
            "{acme:?}"
        );
        assert!(
            acme.failures[0]
                .starts_with("product.create create: Tripletex refused the request: HTTP 409"),
            "{acme:?}"
        );

        // A dry run says what the next run would do; the last real run stays.
        h.keeper
            .handle(KeeperRequest {
                dry_run: Some(true),
                ..KeeperRequest::default()
            })
            .await
            .unwrap();
        assert_eq!(h.ledger.last_run("default"), Some(default));
    }

    #[tokio::test]
    async fn a_tenant_subscription_points_at_its_path_and_carries_its_hmac_secret() {
        let h = harness_with(&["acme"], "*");

        let report = h.run().await;

        let created = &report.companies[0].created;
        assert_eq!(created.len(), 2);
        let acme = h.tripletex.of("acme");
        let stored = acme
            .subscription(created[0].subscription_id.unwrap())
            .unwrap();
        assert_eq!(
            stored.target_url.as_deref(),
            Some("https://receiver.example.com/t/acme")
        );
        let Some(TripletexCall::Create(write)) = acme.writes().into_iter().next() else {
            panic!("no create");
        };
        assert_eq!(
            write.hmac_shared_secret.as_ref().map(|s| s.expose()),
            Some("acme-hmac-secret")
        );
    }

    #[tokio::test]
    async fn a_re_enabled_subscription_that_cannot_be_recorded_is_reported_as_failed() {
        let h = harness();
        let id = h.existing("product.create", RECEIVER, DisabledTooManyErrors);
        h.ledger.set_unavailable(true);

        let report = h.run().await;

        let company = &report.companies[0];
        assert_eq!(ids(&company.re_enabled), [id], "re-enabled all the same");
        assert_eq!(
            company.failed.len(),
            2,
            "the re-enabled one and the one created beside it"
        );
        assert!(
            company
                .failed
                .iter()
                .all(|f| f.action == "record_resync" && f.kind == "ledger")
        );
    }

    #[tokio::test]
    async fn a_created_subscription_asks_for_a_backfill_of_its_type() {
        let h = harness();
        let report = h.run().await;
        let created = ids(&report.companies[0].created);
        assert_eq!(created.len(), 2);
        let requests = h.ledger.requests();
        assert_eq!(requests.len(), 2);
        for (request, id) in requests.iter().zip(&created) {
            assert_eq!(request.reason, ResyncReason::Created);
            assert_eq!(request.subscription_id, *id);
            assert_eq!(request.object_type, "product");
            assert_eq!(
                request.window_from,
                jiff::Timestamp::UNIX_EPOCH,
                "every object there is"
            );
        }
    }

    #[tokio::test]
    async fn a_request_for_some_tenants_runs_only_those() {
        let h = harness_with(&["default", "acme"], "*");

        let report = h
            .keeper
            .handle(KeeperRequest {
                tenants: Some(vec!["acme".into()]),
                ..KeeperRequest::default()
            })
            .await
            .unwrap();

        let tenants: Vec<_> = report.companies.iter().map(|c| c.tenant.as_str()).collect();
        assert_eq!(tenants, ["acme"]);
        assert!(h.tripletex.of("default").calls().is_empty(), "not touched");
    }

    #[tokio::test]
    async fn an_unknown_tenant_in_the_request_is_refused() {
        let h = harness();
        for asked in ["nobody", "Not A Tenant"] {
            let error = h
                .keeper
                .handle(KeeperRequest {
                    tenants: Some(vec![asked.into()]),
                    ..KeeperRequest::default()
                })
                .await
                .unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("tenant {asked:?} is not among the configured companies")
            );
        }
        assert!(h.tripletex.of("default").calls().is_empty());
    }

    #[tokio::test]
    async fn the_sample_events_run_the_keeper_for_real_and_as_a_dry_run() {
        let tick: KeeperRequest = serde_json::from_str(include_str!(
            "../../../events/subscription-keeper/scheduler-tick.json"
        ))
        .unwrap();
        let dry_run: KeeperRequest = serde_json::from_str(include_str!(
            "../../../events/subscription-keeper/manual-dry-run.json"
        ))
        .unwrap();
        let h = harness();
        let id = h.existing("product.create", RECEIVER, DisabledTooManyErrors);

        let planned = h.keeper.handle(dry_run).await.unwrap();
        assert!(planned.dry_run);
        assert_eq!(h.stored(id).status, Some(DisabledTooManyErrors));

        let done = h.keeper.handle(tick).await.unwrap();
        assert!(!done.dry_run);
        assert_eq!(ids(&done.companies[0].re_enabled), [id]);
        assert_eq!(h.stored(id).status, Some(Active));
    }

    #[test]
    fn a_request_with_a_mistyped_dry_run_is_refused_not_guessed_at() {
        assert!(serde_json::from_str::<KeeperRequest>(r#"{"dryRun": "yes"}"#).is_err());
    }

    #[tokio::test]
    async fn a_rotation_re_sends_the_current_header_value_to_every_active_subscription_of_ours() {
        let h = harness();
        let active = h.existing("product.create", RECEIVER, Active);
        let foreign = h.existing("product.update", "https://other.example/", Active);
        let request: KeeperRequest = serde_json::from_str(include_str!(
            "../../../events/subscription-keeper/manual-resend-auth.json"
        ))
        .unwrap();

        let report = h.keeper.handle(request).await.unwrap();

        let company = &report.companies[0];
        assert_eq!(ids(&company.updated), [active]);
        assert_eq!(
            h.last_write(active)
                .auth_header_value
                .as_ref()
                .map(|v| v.expose()),
            Some(HEADER_VALUE)
        );
        assert_eq!(h.writes_to(foreign), 0, "never another's");
    }

    #[tokio::test]
    async fn a_company_client_is_asked_for_with_the_current_credentials_on_every_run() {
        let h = harness();
        h.run().await;
        h.run().await;
        let handed_out = h.tripletex.handed_out();
        assert_eq!(handed_out.len(), 2, "the pool decides reuse, per run");
        assert!(
            handed_out
                .iter()
                .all(|(tenant, token)| tenant.as_str() == "default" && token == "employee-default")
        );
    }

    /// Companies added as data: a named accountant credential in the secret, derived webhook
    /// credentials, the companies in the registry.
    fn registry_harness(companies: &[(&str, CompanyState)]) -> Harness {
        let credentials = CredentialsSecret::from_json(
            r#"{"credentials": {"firm": {"consumerToken": "consumer", "employeeToken": "accountant"}}}"#,
        )
        .unwrap();
        let auth = AuthConfig::from_json(
            &json!({"tenants": {}, "derived": {
            "masters": ["a-master-key-of-at-least-32-characters"], "scope": "tripletex-webhooks", "header": HEADER_NAME}})
            .to_string(),
        )
        .unwrap();
        let tripletex = FakeTripletex::new();
        let ledger = InMemoryResyncLedger::new();
        for (tenant, state) in companies {
            let company = domain::registry::RegisteredCompany::added(
                TenantId::parse(tenant).unwrap(),
                tenant.parse().unwrap(),
                "firm",
                jiff::Timestamp::UNIX_EPOCH,
            );
            futures_util::FutureExt::now_or_never(ledger.add(&company))
                .unwrap()
                .unwrap();
            if *state != CompanyState::Onboarding {
                let at = jiff::Timestamp::UNIX_EPOCH;
                let to_active = ledger.change_state(
                    &company.tenant,
                    CompanyState::Onboarding,
                    CompanyState::Active,
                    at,
                );
                futures_util::FutureExt::now_or_never(to_active)
                    .unwrap()
                    .unwrap();
                if *state == CompanyState::Offboarding {
                    let leave = ledger.change_state(
                        &company.tenant,
                        CompanyState::Active,
                        CompanyState::Offboarding,
                        at,
                    );
                    futures_util::FutureExt::now_or_never(leave)
                        .unwrap()
                        .unwrap();
                }
            }
        }
        let keeper = Keeper::new(
            tripletex.clone(),
            ledger.clone(),
            SecretSource::Fixed(Arc::new(credentials)),
            SecretSource::Fixed(Arc::new(auth)),
            policy("*"),
        );
        Harness {
            tripletex,
            ledger,
            keeper,
        }
    }

    async fn state_of(h: &Harness, tenant: &str) -> Option<CompanyState> {
        h.ledger
            .registered_one(&TenantId::parse(tenant).unwrap())
            .await
            .unwrap()
            .map(|c| c.state)
    }

    #[tokio::test]
    async fn a_registered_company_is_kept_with_its_named_credential_and_becomes_active() {
        let h = registry_harness(&[("201", CompanyState::Onboarding)]);

        let report = h.keeper.handle(KeeperRequest::default()).await.unwrap();

        let company = &report.companies[0];
        assert_eq!(company.tenant, "201");
        assert_eq!(company.created.len(), 2, "both events subscribed");
        assert_eq!(company.state, Some(CompanyState::Active));
        assert_eq!(state_of(&h, "201").await, Some(CompanyState::Active));
        let backfills = h.ledger.requests();
        assert_eq!(backfills.len(), 2);
        assert!(backfills.iter().all(|r| r.reason == ResyncReason::Created));
        assert!(
            h.tripletex
                .handed_out()
                .iter()
                .all(|(tenant, token)| tenant.as_str() == "201" && token == "accountant")
        );
    }

    #[tokio::test]
    async fn a_company_whose_subscriptions_failed_stays_onboarding_until_a_run_succeeds() {
        let h = registry_harness(&[("201", CompanyState::Onboarding)]);
        h.tripletex
            .of("201")
            .fail_next(CallKind::List, [unavailable()]);

        let report = h.keeper.handle(KeeperRequest::default()).await.unwrap();
        assert!(report.companies[0].error.is_some());
        assert_eq!(state_of(&h, "201").await, Some(CompanyState::Onboarding));

        h.keeper.handle(KeeperRequest::default()).await.unwrap();
        assert_eq!(state_of(&h, "201").await, Some(CompanyState::Active));
    }

    #[tokio::test]
    async fn a_company_tripletex_refuses_is_removed_with_what_could_not_be_deleted_reported() {
        // Added by mistake (999999), or its access withdrawn (201): Tripletex refuses the key.
        let h = registry_harness(&[
            ("999999", CompanyState::Offboarding),
            ("201", CompanyState::Offboarding),
            ("202", CompanyState::Offboarding),
        ]);
        h.tripletex
            .of("999999")
            .fail_next(CallKind::List, [forbidden()]);
        h.tripletex
            .of("201")
            .fail_next(CallKind::List, [unauthorized()]);
        h.tripletex
            .of("202")
            .fail_next(CallKind::List, [unavailable()]);

        let report = h.keeper.handle(KeeperRequest::default()).await.unwrap();

        let of = |tenant: &str| {
            report
                .companies
                .iter()
                .find(|c| c.tenant == tenant)
                .unwrap()
        };
        for refused in ["999999", "201"] {
            assert!(of(refused).access_refused, "{refused}");
            assert!(of(refused).error.is_some(), "what happened is reported");
            assert_eq!(state_of(&h, refused).await, Some(CompanyState::Removed));
        }
        assert!(!of("202").access_refused);
        assert_eq!(
            state_of(&h, "202").await,
            Some(CompanyState::Offboarding),
            "an outage may pass: the next run deletes its subscriptions"
        );
    }

    #[tokio::test]
    async fn offboarding_deletes_only_our_subscriptions_and_marks_the_company_removed() {
        let h = registry_harness(&[
            ("201", CompanyState::Offboarding),
            ("202", CompanyState::Active),
        ]);
        let target = |tenant: &str| format!("{RECEIVER}t/{tenant}");
        let seed = |tenant: &str, event: &str, target_url: &str, status| {
            h.tripletex
                .of(tenant)
                .seed(subscription(event, target_url, status))
        };
        let waiting = domain::resync::ResyncRequest {
            tenant: TenantId::parse("201").unwrap(),
            subscription_id: 99,
            event: "product.create".into(),
            object_type: "product".into(),
            reason: ResyncReason::Created,
            previous_status: String::new(),
            window_from: jiff::Timestamp::UNIX_EPOCH,
            window_to: jiff::Timestamp::UNIX_EPOCH,
        };
        h.ledger.record(&waiting).await.unwrap();
        let ours = seed("201", "product.create", &target("201"), Active);
        let disabled = seed(
            "201",
            "product.update",
            &target("201"),
            DisabledTooManyErrors,
        );
        let foreign = seed("201", "product.create", "https://other.example/", Active);
        seed("202", "product.create", &target("202"), Active);

        let report = h
            .keeper
            .handle(KeeperRequest {
                tenants: Some(vec!["201".into()]),
                ..KeeperRequest::default()
            })
            .await
            .unwrap();

        let company = &report.companies[0];
        assert_eq!(company.unsubscribed, [ours, disabled]);
        assert!(
            company.created.is_empty(),
            "nothing is kept for a company leaving"
        );
        assert_eq!(company.state, Some(CompanyState::Removed));
        assert_eq!(state_of(&h, "201").await, Some(CompanyState::Removed));
        let requests: Vec<_> = h
            .ledger
            .states()
            .into_iter()
            .map(|(key, state, run)| (key.key, state, run))
            .collect();
        assert_eq!(
            requests,
            [("201#99".to_owned(), "FAILED", Some(OFFBOARDED.to_owned()))],
            "its request is closed"
        );
        let left: Vec<_> = h
            .tripletex
            .of("201")
            .subscriptions()
            .into_iter()
            .filter_map(|s| s.id)
            .collect();
        assert_eq!(left, [foreign], "another's subscription stays");
        assert_eq!(
            h.tripletex.of("202").subscriptions().len(),
            1,
            "another company's subscriptions stay"
        );

        let again = h.keeper.handle(KeeperRequest::default()).await.unwrap();
        assert_eq!(
            again
                .companies
                .iter()
                .map(|c| c.tenant.as_str())
                .collect::<Vec<_>>(),
            ["202"],
            "a removed company is no longer kept"
        );
        let refused = h
            .keeper
            .handle(KeeperRequest {
                tenants: Some(vec!["201".into()]),
                ..KeeperRequest::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "tenant \"201\" is not among the configured companies"
        );
    }

    #[tokio::test]
    async fn companies_not_started_before_the_deadline_are_reported_and_go_first_next_run() {
        let h = registry_harness(&[
            ("201", CompanyState::Active),
            ("202", CompanyState::Active),
            ("203", CompanyState::Active),
        ]);
        let keeper = Keeper {
            pace: Pace {
                company_concurrency: 1,
                deadline_margin: Duration::ZERO,
            },
            ..h.keeper
        };
        let passed = Instant::now();

        let report = keeper
            .handle_until(KeeperRequest::default(), Some(passed))
            .await
            .unwrap();

        assert!(report.companies.is_empty());
        assert_eq!(report.not_reached, ["201", "202", "203"]);
        assert_eq!(report.totals.companies_not_reached, 3);
        assert_eq!(h.ledger.not_reached().await.unwrap(), ["201", "202", "203"]);

        h.ledger.keep_not_reached(&["203".into()]).await.unwrap();
        let next = keeper.handle(KeeperRequest::default()).await.unwrap();
        assert_eq!(
            next.companies
                .iter()
                .map(|c| c.tenant.as_str())
                .collect::<Vec<_>>(),
            ["203", "201", "202"],
            "the one not reached goes first"
        );
        assert!(next.not_reached.is_empty());
        assert!(h.ledger.not_reached().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_rate_limited_credential_leaves_its_companies_for_the_next_run() {
        let h = registry_harness(&[
            ("201", CompanyState::Active),
            ("202", CompanyState::Active),
            ("203", CompanyState::Active),
        ]);
        let keeper = Keeper {
            pace: Pace {
                company_concurrency: 1,
                ..Pace::default()
            },
            ..h.keeper
        };
        h.tripletex
            .of("201")
            .fail_next(CallKind::List, [rate_limited()]);

        let report = keeper.handle(KeeperRequest::default()).await.unwrap();

        assert_eq!(
            report.companies.len(),
            1,
            "the one Tripletex refused is reported"
        );
        assert!(report.companies[0].error.is_some());
        assert_eq!(report.not_reached, ["201", "202", "203"]);
        assert!(
            h.tripletex.of("202").calls().is_empty(),
            "no call on a credential Tripletex limits"
        );
        let next = keeper.handle(KeeperRequest::default()).await.unwrap();
        assert_eq!(next.companies.len(), 3);
        assert!(next.not_reached.is_empty());
    }

    #[tokio::test]
    async fn a_registry_that_cannot_be_read_fails_the_run_rather_than_dropping_companies() {
        let h = registry_harness(&[("201", CompanyState::Active)]);
        h.ledger.set_registry_unavailable(true);
        let error = h.keeper.handle(KeeperRequest::default()).await.unwrap_err();
        assert!(matches!(error, KeeperError::Registry(_)), "{error}");
        assert!(h.tripletex.handed_out().is_empty());
    }
}
