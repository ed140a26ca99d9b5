//! Each command: find the deployment, read what it asks, and say it as a table or as JSON.

use serde::Serialize;

use crate::args::{
    Cli, Command, CompaniesAction, DlqAction, KeeperAction, MirrorAction, QuarantineAction,
    SyncMode,
};
use aws_adapters::blobs::S3BlobStore;
use domain::claim::claimed_body;
use domain::dedup::ObjectKey;
use domain::ids::TenantId;
use domain::ports::BlobStore;

use crate::aws::{self, AwsError};
use crate::deployment::{Deployment, DeploymentError, samconfig_stack_name};
use crate::render;
use crate::show::Shown;
use crate::status::{Status, needs_a_person};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("could not find the deployment")]
    Deployment(#[from] DeploymentError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("could not write JSON")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Tripletex(#[from] crate::tripletex::TripletexError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    SendRefused(#[from] crate::send::SendRefused),
    #[error("could not reach the receiver")]
    Receiver(#[source] reqwest::Error),
    #[error(transparent)]
    Companies(#[from] crate::companies::CompaniesError),
    #[error(transparent)]
    Mirror(#[from] crate::mirror::MirrorError),
}

/// What a command says, and how it exits: 0 all is well, 1 the answer needs a person (something
/// dead-lettered, quarantined or failed; an object not in the copy). Errors exit 2 (`main`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    pub needs_a_person: bool,
}

fn answer<T: Serialize>(
    cli: &Cli,
    data: &T,
    table: impl FnOnce(&T) -> String,
    needs_a_person: bool,
) -> Result<Answer, CliError> {
    let text = if cli.json {
        format!("{}\n", serde_json::to_string_pretty(data)?)
    } else {
        table(data)
    };
    Ok(Answer {
        text,
        needs_a_person,
    })
}

pub async fn deployment(cli: &Cli) -> Result<(Deployment, aws_config::SdkConfig), CliError> {
    if let Some(path) = &cli.local {
        let deployment = Deployment::from_local_summary(path)?;
        let sdk = aws::sdk_config(deployment.endpoint.as_deref()).await;
        return Ok((deployment, sdk));
    }
    let stack = match &cli.stack {
        Some(stack) => stack.clone(),
        None => samconfig_stack_name(&cli.samconfig)?,
    };
    let sdk = aws::sdk_config(None).await;
    let deployment = aws::stack_outputs(&sdk, &stack).await?;
    Ok((deployment, sdk))
}

/// The deployment's payload bucket, if it has one.
pub fn payloads(sdk: &aws_config::SdkConfig, deployment: &Deployment) -> Option<S3BlobStore> {
    deployment
        .payload_bucket
        .as_ref()
        .map(|bucket| S3BlobStore::new(sdk, bucket))
}

pub async fn run(cli: &Cli) -> Result<Answer, CliError> {
    let (deployment, sdk) = deployment(cli).await?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let payloads = payloads(&sdk, &deployment);
    match &cli.command {
        Command::Status { no_subscriptions } => {
            let mut queues = aws::queues(&sqs, &deployment).await?;
            let ages_unknown = add_oldest_ages(&sdk, &deployment, &mut queues).await;
            let mut companies = aws::companies(&dynamodb, &deployment).await?;
            let mut unseen = None;
            if !no_subscriptions {
                match keeper_dry_run(&sdk, &deployment).await {
                    Ok(report) => add_subscriptions(&mut companies, &report),
                    Err(error) => unseen = Some(error),
                }
            }
            let mut attention = needs_a_person(&queues, &companies);
            if let Some(error) = unseen {
                attention.insert(
                    0,
                    format!(
                        "the keeper could not say what the subscriptions are: {}",
                        domain::error::error_chain(&error)
                    ),
                );
            }
            let status = Status {
                deployment: deployment.name.clone(),
                queues,
                ages_unknown,
                companies,
                attention,
            };
            let needs = !status.attention.is_empty();
            answer(cli, &status, render::status, needs)
        }
        Command::Show {
            company,
            object_type,
            id,
            tripletex,
        } => {
            let key = format!("{company}#{object_type}#{id}");
            let stored =
                aws::stored_object(&dynamodb, &payloads, &deployment.objects_table, &key).await?;
            let now = if *tripletex {
                Some(tripletex_now(&sdk, &deployment, company, object_type, *id, "*").await?)
            } else {
                None
            };
            let shown = Shown {
                key,
                stored,
                in_tripletex: now.clone().flatten(),
                checked_tripletex: now.is_some(),
            };
            let needs = shown.stored.is_none() || (shown.checked_tripletex && !shown.agrees());
            answer(cli, &shown, render::shown, needs)
        }
        Command::Forget {
            company,
            object_type,
            id,
        } => {
            let key = ObjectKey {
                tenant: TenantId::parse(company).map_err(|error| {
                    CliError::Invalid(format!("{company} is not a company's tenant: {error}"))
                })?,
                object_type: object_type.clone(),
                object_id: *id,
            };
            let forgotten =
                crate::forget::forget(&sqs, &dynamodb, &payloads, &deployment, &key).await?;
            answer(cli, &forgotten, crate::forget::render, false)
        }
        Command::Mirror {
            action,
            database_url,
        } => {
            let mirror = crate::mirror::connect(&sdk, &deployment, database_url.as_deref()).await?;
            match action {
                MirrorAction::Rebuild {
                    company,
                    object_type,
                    segments,
                } => {
                    let rebuilt = crate::mirror::rebuild(
                        &dynamodb,
                        &payloads,
                        &mirror,
                        &deployment.objects_table,
                        (company.as_deref(), object_type.as_deref()),
                        *segments,
                    )
                    .await?;
                    answer(cli, &rebuilt, crate::mirror::render_rebuilt, false)
                }
                MirrorAction::Status => {
                    let status =
                        crate::mirror::status(&sdk, &deployment, &dynamodb, &mirror).await?;
                    answer(cli, &status, crate::mirror::render_status, false)
                }
                MirrorAction::Check => {
                    let checked =
                        crate::mirror::check(&dynamodb, &deployment.objects_table, &mirror).await?;
                    let differ = !checked.differences.is_empty();
                    answer(cli, &checked, crate::mirror::render_checked, differ)
                }
            }
        }
        Command::Dlq { action, sync, max } => {
            let (name, url) = if *sync {
                ("sync DLQ", &deployment.sync_dead_letters)
            } else {
                ("webhook DLQ", &deployment.webhook_dead_letters)
            };
            match action {
                None => {
                    let mut messages = aws::list_messages(&sqs, url, *max).await?;
                    aws::resolve_claims(&payloads, &mut messages).await;
                    let needs = !messages.is_empty();
                    answer(cli, &messages, |m| render::messages(name, m), needs)
                }
                Some(DlqAction::Redrive) if *sync => Err(CliError::Invalid(
                    "sync tasks are redriven with SQS's own redrive (StartMessageMoveTask), \
                     which keeps their FIFO group: see README, Alarms"
                        .to_owned(),
                )),
                Some(DlqAction::Redrive) => {
                    let moved = aws::redrive(
                        &sqs,
                        &deployment.webhook_dead_letters,
                        &deployment.webhook_queue,
                    )
                    .await?;
                    answer(
                        cli,
                        &serde_json::json!({"redriven": moved}),
                        |_| format!("{moved} dead letters sent back to the webhook queue\n"),
                        false,
                    )
                }
            }
        }
        Command::Quarantine { action: None, max } => {
            let mut messages = aws::list_messages(&sqs, &deployment.quarantine, *max).await?;
            aws::resolve_claims(&payloads, &mut messages).await;
            let needs = !messages.is_empty();
            answer(cli, &messages, |m| render::messages("quarantine", m), needs)
        }
        Command::Quarantine {
            action: Some(QuarantineAction::Replay { message_id, anyway }),
            ..
        } => {
            let replayed = replay(&sqs, &payloads, &deployment, message_id, *anyway).await?;
            let needs = !replayed.replayed;
            answer(cli, &replayed, render::replayed, needs)
        }
        Command::Keeper {
            action:
                KeeperAction::Run {
                    dry_run,
                    resend_auth,
                    companies,
                },
        } => {
            let mut request = serde_json::json!({"trigger": "manual", "dryRun": dry_run,
                "resendAuth": resend_auth});
            if !companies.is_empty() {
                request["tenants"] = serde_json::json!(companies);
            }
            let report =
                aws::invoke(&sdk, &deployment, &deployment.keeper_function, &request).await?;
            let failed = report["totals"]["companiesFailed"].as_u64().unwrap_or(0)
                + report["totals"]["failed"].as_u64().unwrap_or(0);
            answer(cli, &report, render::keeper_report, failed > 0)
        }
        Command::Send {
            event,
            id,
            company,
            timeout_seconds,
        } => {
            let sent = send(
                &sdk,
                &deployment,
                &sqs,
                &dynamodb,
                Send {
                    event,
                    id: *id,
                    company,
                    timeout: std::time::Duration::from_secs(*timeout_seconds),
                },
            )
            .await?;
            let needs = sent.needs_a_person();
            answer(cli, &sent, render::sent, needs)
        }
        Command::Companies {
            action: CompaniesAction::Discover { credential, using },
        } => {
            let (base_url, credentials) = tripletex_access(&sdk, &deployment).await?;
            let registered = crate::companies::registered(&dynamodb, &deployment).await?;
            let asking = match (credential, using) {
                (Some(credential), _) => crate::tripletex::Asking::Credential(credential),
                (None, Some(using)) => crate::tripletex::Asking::Company(using),
                (None, None) => return Err(CliError::Invalid("name --credential".to_owned())),
            };
            let found =
                crate::tripletex::discover(base_url, &credentials, &registered, asking).await?;
            answer(cli, &found, render::discovered, false)
        }
        Command::Companies {
            action:
                CompaniesAction::Add {
                    company_ids,
                    all_discovered,
                    credential,
                    tenant,
                    no_wait,
                    timeout_seconds,
                },
        } => {
            let (base_url, secret_json) = tripletex_access(&sdk, &deployment).await?;
            let added = crate::companies::add(
                &sdk,
                &deployment,
                &dynamodb,
                crate::companies::TripletexAccess {
                    base_url,
                    secret_json: &secret_json,
                },
                crate::companies::Add {
                    company_ids,
                    all_discovered: *all_discovered,
                    credential,
                    tenant: tenant.as_deref(),
                    wait: !no_wait,
                    timeout: std::time::Duration::from_secs(*timeout_seconds),
                    quiet: cli.json,
                },
            )
            .await?;
            let failed = added.iter().any(|a| a.failed);
            answer(cli, &added, |a| render::added(a), failed)
        }
        Command::Companies {
            action: CompaniesAction::List,
        } => {
            let (_, secret_json) = tripletex_access(&sdk, &deployment).await?;
            let listed = crate::companies::list(&deployment, &dynamodb, &secret_json).await?;
            answer(cli, &listed, |l| render::companies(l), false)
        }
        Command::Companies {
            action: CompaniesAction::Remove { tenant, purge },
        } => {
            let removed =
                crate::companies::remove(&sdk, &deployment, &dynamodb, tenant, *purge, cli.json)
                    .await?;
            let failed = removed.failed;
            answer(cli, &removed, render::removed, failed)
        }
        Command::Resync {
            company,
            types,
            mode,
            no_wait,
            timeout_seconds,
        } => {
            let runs = resync(
                cli,
                &sdk,
                &deployment,
                &dynamodb,
                Resync {
                    company,
                    types,
                    mode: *mode,
                    wait: !no_wait,
                    timeout: std::time::Duration::from_secs(*timeout_seconds),
                },
            )
            .await?;
            let failed = runs.iter().any(|run| run.state == "failed");
            answer(cli, &runs, |r| render::runs(r), failed)
        }
    }
}

/// Where the deployment's Tripletex is, and its credentials secret's text.
async fn tripletex_access<'a>(
    sdk: &aws_config::SdkConfig,
    deployment: &'a Deployment,
) -> Result<(&'a str, String), CliError> {
    use crate::tripletex::TripletexError;
    let secret =
        deployment
            .tripletex_credentials_secret
            .as_deref()
            .ok_or(TripletexError::NotConfigured(
                "Tripletex credentials secret",
            ))?;
    let base_url = deployment
        .tripletex_api_base_url
        .as_deref()
        .ok_or(TripletexError::NotConfigured("Tripletex API base URL"))?;
    let credentials = aws::secret_text(sdk, secret, "the Tripletex credentials secret").await?;
    Ok((base_url, credentials))
}

async fn tripletex_now(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    company: &str,
    object_type: &str,
    id: i64,
    fields: &str,
) -> Result<Option<crate::tripletex::InTripletex>, CliError> {
    let (base_url, credentials) = tripletex_access(sdk, deployment).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let registered = crate::companies::registered(&dynamodb, deployment).await?;
    let companies = crate::tripletex::companies_of(&credentials, &registered)?;
    Ok(
        crate::tripletex::object_now(base_url, &companies, company, object_type, id, fields)
            .await?,
    )
}

/// Each queue's oldest-message age from CloudWatch; why not, when it cannot be known (`status`
/// goes on without it: an operator without `cloudwatch:GetMetricData` still gets the rest).
async fn add_oldest_ages(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    queues: &mut [crate::status::QueueStatus],
) -> Option<String> {
    if deployment.endpoint.is_some() {
        return Some("the local stack keeps no SQS metrics".to_owned());
    }
    let urls: Vec<&str> = queues.iter().map(|q| q.url.as_str()).collect();
    let cloudwatch = aws_sdk_cloudwatch::Client::new(sdk);
    match aws::oldest_message_ages(&cloudwatch, &urls, jiff::Timestamp::now()).await {
        Ok(ages) => {
            for (queue, age) in queues.iter_mut().zip(ages) {
                queue.oldest_message_age_seconds = age;
            }
            None
        }
        Err(error) => Some(domain::error::error_chain(&error)),
    }
}

/// The keeper's view of every company's subscriptions, changing nothing.
async fn keeper_dry_run(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
) -> Result<serde_json::Value, AwsError> {
    let request = serde_json::json!({"trigger": "manual", "dryRun": true});
    aws::invoke(sdk, deployment, &deployment.keeper_function, &request).await
}

fn add_subscriptions(
    companies: &mut Vec<crate::status::CompanyStatus>,
    report: &serde_json::Value,
) {
    for company in report["companies"].as_array().into_iter().flatten() {
        let Some(tenant) = company["tenant"].as_str() else {
            continue;
        };
        let subscriptions = crate::status::subscriptions_of(company);
        match companies.iter_mut().find(|c| c.tenant == tenant) {
            Some(known) => known.subscriptions = Some(subscriptions),
            None => companies.push(crate::status::CompanyStatus {
                tenant: tenant.to_owned(),
                subscriptions: Some(subscriptions),
                types: Vec::new(),
                resync_requests: Vec::new(),
                keeper_last_run: None,
            }),
        }
    }
    companies.sort_by(|a, b| a.tenant.cmp(&b.tenant));
}

struct Resync<'a> {
    company: &'a str,
    types: &'a [String],
    mode: SyncMode,
    wait: bool,
    timeout: std::time::Duration,
}

/// How often a followed run's record is read.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the run, then reads its record until it is no longer running, with a line of progress
/// per type (on a terminal; none under --json or in a pipe).
async fn resync(
    cli: &Cli,
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    dynamodb: &aws_sdk_dynamodb::Client,
    request: Resync<'_>,
) -> Result<Vec<aws::RunProgress>, CliError> {
    let mut start =
        serde_json::json!({"mode": request.mode.as_str(), "companies": [request.company]});
    if !request.types.is_empty() {
        start["types"] = serde_json::json!(request.types);
    }
    let answer = aws::invoke(sdk, deployment, &deployment.sync_function, &start).await?;
    let started: Vec<(String, String)> = answer["runs"]
        .as_array()
        .map(|runs| {
            runs.iter()
                .filter_map(|run| {
                    Some((
                        run["tenant"].as_str()?.to_owned(),
                        run["runId"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    if started.is_empty() {
        return Err(CliError::Invalid(format!(
            "the sync started no run: {answer}"
        )));
    }
    let progress = indicatif::MultiProgress::new();
    if cli.json {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = indicatif::ProgressStyle::with_template("{spinner} {prefix:<24} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    let mut bars: std::collections::BTreeMap<String, indicatif::ProgressBar> = Default::default();
    let deadline = std::time::Instant::now() + request.timeout;
    let mut finished = Vec::new();
    for (tenant, run_id) in started {
        loop {
            let run = aws::run_progress(dynamodb, deployment, &tenant, &run_id).await?;
            let Some(run) = run else {
                return Err(CliError::Invalid(format!("run {run_id} has no record")));
            };
            for t in &run.types {
                let bar = bars
                    .entry(format!("{tenant}/{}", t.object_type))
                    .or_insert_with(|| {
                        let bar = progress.add(indicatif::ProgressBar::new_spinner());
                        bar.set_style(style.clone());
                        bar.set_prefix(format!("{tenant} {}", t.object_type));
                        bar
                    });
                bar.set_message(format!(
                    "listed {}, fetched {}, tombstoned {}",
                    t.listed, t.fetched, t.tombstoned
                ));
                bar.tick();
            }
            if !request.wait || run.state != "running" || std::time::Instant::now() > deadline {
                finished.push(run);
                break;
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    }
    for bar in bars.values() {
        bar.finish();
    }
    Ok(finished)
}

/// How often `send` reads the stored copy while it waits for the worker.
const SEND_POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

struct Send<'a> {
    event: &'a str,
    id: i64,
    company: &'a str,
    timeout: std::time::Duration,
}

/// Posts the company's webhook for the object as Tripletex has it now, then reads the copy until
/// the worker has stored it (or the time is up).
async fn send(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    sqs: &aws_sdk_sqs::Client,
    dynamodb: &aws_sdk_dynamodb::Client,
    request: Send<'_>,
) -> Result<crate::send::Sent, CliError> {
    let Send {
        event,
        id,
        company,
        timeout,
    } = request;
    use crate::send::{Expected, Progress, Sent, delivery, envelope, progress};
    use domain::auth::AuthConfig;
    use domain::keeper::{DEFAULT_RESYNC_LOOKBACK, KeeperPolicy, KeeperSettings};

    let event = domain::envelope::EventName::parse(event)
        .map_err(|error| CliError::Invalid(error.to_string()))?;
    let tenant = domain::ids::TenantId::parse(company)
        .map_err(|error| CliError::Invalid(error.to_string()))?;
    let (Some(receiver_url), Some(auth_secret)) = (
        deployment.receiver_url.as_deref(),
        deployment.receiver_auth_secret.as_deref(),
    ) else {
        return Err(CliError::Invalid(
            "the deployment names no receiver URL or receiver auth secret".to_owned(),
        ));
    };
    let auth_json = aws::secret_text(sdk, auth_secret, "the receiver auth secret").await?;
    let auth = AuthConfig::from_json(&auth_json).map_err(|error| {
        CliError::Invalid(format!("the receiver auth secret is not valid: {error}"))
    })?;
    let policy = KeeperPolicy {
        receiver_url: receiver_url.to_owned(),
        events: vec![event.as_str().to_owned()],
        fields: deployment
            .object_fields
            .clone()
            .unwrap_or_else(|| "*".into()),
        reenable: Default::default(),
        resync_lookback: DEFAULT_RESYNC_LOOKBACK,
        dry_run: false,
    };
    // The company's settings as the keeper gives them to Tripletex: the same URL and credentials.
    let settings =
        KeeperSettings::for_tenant(&policy, &tenant, auth.tenant(&tenant).as_deref(), false)
            .map_err(|error| CliError::Invalid(error.to_string()))?;
    let now = tripletex_now(
        sdk,
        deployment,
        company,
        event.object(),
        id,
        &settings.fields,
    )
    .await?;
    let key = format!("{company}#{}#{id}", event.object());
    let payloads = payloads(sdk, deployment);
    let before = aws::stored_object(dynamodb, &payloads, &deployment.objects_table, &key).await?;
    let body = envelope(&event, id, now.as_ref(), before.as_ref())?;
    let expected = Expected::of(now.as_ref());

    let started = std::time::Instant::now();
    // The prefix makes it a probe: the worker records the key on the item whatever it writes.
    let idempotency_key = format!(
        "{}{}-{}",
        domain::dedup::SEND_PROBE_PREFIX,
        jiff::Timestamp::now().as_nanosecond(),
        std::process::id()
    );
    let delivery = delivery(&settings, body, &idempotency_key);
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(CliError::Receiver)?;
    let mut post = client.post(delivery.url.expose()).body(delivery.body);
    for (name, value) in &delivery.headers {
        post = post.header(name.as_str(), value.expose());
    }
    // The error would name the URL, which can carry credentials: say only that it failed.
    let response = post
        .send()
        .await
        .map_err(|error| CliError::Receiver(error.without_url()))?;
    let receiver_status = response.status().as_u16();
    let answer_text = response.text().await.unwrap_or_default();
    let receiver_answer =
        serde_json::from_str(&answer_text).unwrap_or(serde_json::Value::String(answer_text));

    let mut stored = before.clone();
    let mut state = Progress::Waiting;
    if receiver_status == 200 {
        let deadline = started + timeout;
        while state == Progress::Waiting && std::time::Instant::now() < deadline {
            tokio::time::sleep(SEND_POLL_EVERY).await;
            stored =
                aws::stored_object(dynamodb, &payloads, &deployment.objects_table, &key).await?;
            state = progress(expected, &idempotency_key, before.as_ref(), stored.as_ref());
        }
    }
    let webhook_queue_depth = if receiver_status == 200 && state == Progress::Waiting {
        let queue = aws::queue_status(
            sqs,
            "webhook queue",
            crate::status::QueueRole::Webhooks,
            &deployment.webhook_queue,
        )
        .await?;
        Some(queue.depth())
    } else {
        None
    };
    Ok(Sent {
        webhook_queue_depth,
        key,
        event: event.as_str().to_owned(),
        version: now.as_ref().and_then(|now| now.version),
        receiver_status,
        receiver_answer,
        progress: state,
        waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        stored,
    })
}

async fn replay(
    sqs: &aws_sdk_sqs::Client,
    payloads: &impl BlobStore,
    deployment: &Deployment,
    message_id: &str,
    anyway: bool,
) -> Result<crate::replay::Replayed, CliError> {
    let from = &deployment.quarantine;
    let Some(taken) = aws::take_message(sqs, from, message_id).await? else {
        return Err(CliError::Invalid(format!(
            "no message {message_id} in the quarantine (`quarantine` lists them)"
        )));
    };
    let mut replayed = crate::replay::Replayed {
        message_id: message_id.to_owned(),
        replayed: false,
        refused_because: None,
        tenant: taken.attributes.get("tenant").cloned(),
        event: None,
        object_id: None,
    };
    // A claim-checked body is read as the worker will read it; the message moves as it is.
    let body = claimed_body(payloads, &taken.body, |name| {
        taken.attributes.get(name).map(String::as_str)
    })
    .await;
    let readable = match &body {
        Ok(body) => crate::replay::replayable(body, &taken.attributes).map_err(|e| e.to_string()),
        Err(error) => Err(domain::error::error_chain(error)),
    };
    let attributes = match readable {
        Ok(replayable) => {
            replayed.tenant = Some(replayable.tenant);
            replayed.event = Some(replayable.event);
            replayed.object_id = Some(replayable.object_id);
            replayable.attributes
        }
        Err(reason) => {
            replayed.refused_because = Some(reason);
            if !anyway {
                aws::release(sqs, from, &taken.receipt_handle).await?;
                return Ok(replayed);
            }
            let mut attributes = taken.attributes.clone();
            attributes.remove(domain::message::attribute::QUARANTINE_REASON);
            attributes
        }
    };
    aws::move_message(sqs, from, &taken, &deployment.webhook_queue, &attributes).await?;
    replayed.replayed = true;
    Ok(replayed)
}
