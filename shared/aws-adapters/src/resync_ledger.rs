//! `ResyncLedger` on DynamoDB: one item per created or re-enabled subscription and time, which the
//! object sync reads (`PendingResyncs`): `PENDING` until a run takes it (`RUNNING`, with the run's
//! id), then `DONE` or `FAILED` as that run ended.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use tracing::instrument;

use domain::ids::TenantId;
use domain::keeper::{LastRun, RunCounts};
use domain::ports::{LedgerError, PendingResyncs, ResyncLedger};
use domain::resync::state::{PENDING, RUNNING};
use domain::resync::{PendingResync, ResyncKey, ResyncReason, ResyncRequest};
use domain::sync::{RunState, TakenResync};

/// Attribute names of a resync item. `pk` = `tenant#subscriptionId`, `requestedAt` sorts a
/// subscription's requests in time.
pub mod item {
    pub const KEY: &str = "pk";
    pub const REQUESTED_AT: &str = "requestedAt";
    pub const TENANT: &str = "tenant";
    pub const SUBSCRIPTION_ID: &str = "subscriptionId";
    pub const EVENT: &str = "event";
    pub const OBJECT_TYPE: &str = "objectType";
    pub const PREVIOUS_STATUS: &str = "previousStatus";
    pub const WINDOW_FROM: &str = "windowFrom";
    pub const WINDOW_TO: &str = "windowTo";
    /// `created` or `re_enabled`; absent on requests from before creates were recorded.
    pub const REASON: &str = "reason";
    /// `PENDING` until a sync run takes it, then `RUNNING`, `DONE` or `FAILED`.
    pub const STATE: &str = "state";
    pub const RUN_ID: &str = "runId";
    /// When a run took the request.
    pub const CLAIMED_AT: &str = "claimedAt";
    pub const SETTLED_AT: &str = "settledAt";
}

#[derive(Debug, Clone)]
pub struct DynamoResyncLedger {
    client: Client,
    table_name: String,
}

impl DynamoResyncLedger {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn table_name(&self) -> &str {
        &self.table_name
    }
}

impl ResyncLedger for DynamoResyncLedger {
    #[instrument(skip_all, fields(tenant = %request.tenant, subscription_id = request.subscription_id))]
    async fn record(&self, request: &ResyncRequest) -> Result<(), LedgerError> {
        let s = |text: String| AttributeValue::S(text);
        self.client
            .put_item()
            .table_name(&self.table_name)
            .item(
                item::KEY,
                s(format!("{}#{}", request.tenant, request.subscription_id)),
            )
            .item(item::REQUESTED_AT, s(request.window_to.to_string()))
            .item(item::TENANT, s(request.tenant.to_string()))
            .item(
                item::SUBSCRIPTION_ID,
                AttributeValue::N(request.subscription_id.to_string()),
            )
            .item(item::EVENT, s(request.event.clone()))
            .item(item::OBJECT_TYPE, s(request.object_type.clone()))
            .item(item::PREVIOUS_STATUS, s(request.previous_status.clone()))
            .item(item::WINDOW_FROM, s(request.window_from.to_string()))
            .item(item::WINDOW_TO, s(request.window_to.to_string()))
            .item(item::REASON, s(request.reason.as_str().to_owned()))
            .item(item::STATE, s(PENDING.to_owned()))
            .send()
            .await
            .map_err(|source| LedgerError {
                source: Box::new(source),
            })?;
        Ok(())
    }

    #[instrument(skip_all, fields(tenant = %run.tenant))]
    async fn record_run(&self, run: &LastRun) -> Result<(), LedgerError> {
        let s = |text: String| AttributeValue::S(text);
        let n = |count: usize| AttributeValue::N(count.to_string());
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .item(item::KEY, s(last_run_key(&run.tenant)))
            .item(item::REQUESTED_AT, s(LAST_RUN_SORT_KEY.to_owned()))
            .item(item::TENANT, s(run.tenant.clone()))
            .item(last_run::FINISHED_AT, s(run.finished_at.to_string()))
            .item(last_run::SEEN, n(run.counts.seen))
            .item(last_run::RE_ENABLED, n(run.counts.re_enabled))
            .item(last_run::CREATED, n(run.counts.created))
            .item(last_run::UPDATED, n(run.counts.updated))
            .item(last_run::LEFT_ALONE, n(run.counts.left_alone))
            .item(last_run::FAILED, n(run.counts.failed));
        if !run.failures.is_empty() {
            put = put.item(
                last_run::FAILURES,
                AttributeValue::L(run.failures.iter().cloned().map(s).collect()),
            );
        }
        if let Some(error) = &run.error {
            put = put.item(last_run::ERROR, s(error.clone()));
        }
        put.send().await.map_err(ledger_error)?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn not_reached(&self) -> Result<Vec<String>, LedgerError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key(item::KEY, AttributeValue::S(NOT_REACHED_KEY.to_owned()))
            .key(
                item::REQUESTED_AT,
                AttributeValue::S(LAST_RUN_SORT_KEY.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await
            .map_err(ledger_error)?;
        Ok(output
            .item
            .as_ref()
            .and_then(|found| found.get(NOT_REACHED_TENANTS))
            .and_then(|tenants| tenants.as_l().ok())
            .map(|tenants| {
                tenants
                    .iter()
                    .filter_map(|t| t.as_s().ok().cloned())
                    .collect()
            })
            .unwrap_or_default())
    }

    #[instrument(skip_all, fields(tenants = tenants.len()))]
    async fn keep_not_reached(&self, tenants: &[String]) -> Result<(), LedgerError> {
        self.client
            .put_item()
            .table_name(&self.table_name)
            .item(item::KEY, AttributeValue::S(NOT_REACHED_KEY.to_owned()))
            .item(
                item::REQUESTED_AT,
                AttributeValue::S(LAST_RUN_SORT_KEY.to_owned()),
            )
            .item(
                NOT_REACHED_TENANTS,
                AttributeValue::L(tenants.iter().cloned().map(AttributeValue::S).collect()),
            )
            .send()
            .await
            .map_err(ledger_error)?;
        Ok(())
    }
}

/// The keeper's list of companies its last run did not reach (one item, sort key `last`).
pub const NOT_REACHED_KEY: &str = "keeper-not-reached";
const NOT_REACHED_TENANTS: &str = "tenants";

/// The item of a company's last keeper run: `keeper-run#<tenant>` with the fixed sort key `last`.
/// It has no `state`, so the sync's scans for requests pass it by.
pub fn last_run_key(tenant: &str) -> String {
    format!("{LAST_RUN_PREFIX}{tenant}")
}

pub const LAST_RUN_PREFIX: &str = "keeper-run#";
pub const LAST_RUN_SORT_KEY: &str = "last";

/// Attribute names of a last-run item besides the key and `tenant`.
pub mod last_run {
    pub const FINISHED_AT: &str = "finishedAt";
    pub const SEEN: &str = "seen";
    pub const RE_ENABLED: &str = "reEnabled";
    pub const CREATED: &str = "created";
    pub const UPDATED: &str = "updated";
    pub const LEFT_ALONE: &str = "leftAlone";
    pub const FAILED: &str = "failed";
    pub const FAILURES: &str = "failures";
    pub const ERROR: &str = "error";
}

/// A company's last keeper run read back as `record_run` writes it; none for the table's other
/// items.
pub fn read_last_run(item: &HashMap<String, AttributeValue>) -> Option<LastRun> {
    if !text(item, item::KEY)?.starts_with(LAST_RUN_PREFIX) {
        return None;
    }
    let count = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Some(LastRun {
        tenant: text(item, item::TENANT)?,
        finished_at: text(item, last_run::FINISHED_AT)?.parse().ok()?,
        counts: RunCounts {
            seen: count(last_run::SEEN),
            re_enabled: count(last_run::RE_ENABLED),
            created: count(last_run::CREATED),
            updated: count(last_run::UPDATED),
            left_alone: count(last_run::LEFT_ALONE),
            failed: count(last_run::FAILED),
        },
        failures: item
            .get(last_run::FAILURES)
            .and_then(|v| v.as_l().ok())
            .map(|list| list.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        error: text(item, last_run::ERROR),
    })
}

/// A resync request's company and state (`PENDING`, `RUNNING`, `DONE`, `FAILED`); none for the
/// table's other items (a last run has no state).
pub fn read_request_state(item: &HashMap<String, AttributeValue>) -> Option<(String, String)> {
    Some((text(item, item::TENANT)?, text(item, item::STATE)?))
}

fn ledger_error<E, R>(error: aws_sdk_dynamodb::error::SdkError<E, R>) -> LedgerError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    LedgerError {
        source: Box::new(crate::sdk::AwsFailure::of(&error)),
    }
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// A stored request as the sync reads it; none if the item is not one the keeper wrote.
fn pending_resync(item: &HashMap<String, AttributeValue>) -> Option<PendingResync> {
    let key = text(item, item::KEY)?;
    let requested_at = text(item, item::REQUESTED_AT)?;
    let time = |name| text(item, name).and_then(|t| t.parse::<Timestamp>().ok());
    Some(PendingResync {
        request: ResyncRequest {
            tenant: TenantId::parse(&text(item, item::TENANT)?).ok()?,
            subscription_id: item.get(item::SUBSCRIPTION_ID)?.as_n().ok()?.parse().ok()?,
            event: text(item, item::EVENT)?,
            object_type: text(item, item::OBJECT_TYPE)?,
            reason: ResyncReason::parse(text(item, item::REASON).as_deref()),
            previous_status: text(item, item::PREVIOUS_STATUS).unwrap_or_default(),
            window_from: time(item::WINDOW_FROM)?,
            window_to: time(item::WINDOW_TO)?,
        },
        key: ResyncKey { key, requested_at },
    })
}

impl DynamoResyncLedger {
    /// Deletes a company's backfill and resync requests, in whatever state (its registry entry
    /// and the keeper's last run are kept); the number deleted.
    pub async fn purge_requests(&self, tenant: &TenantId) -> Result<u64, LedgerError> {
        crate::dynamodb::delete_scanned(
            &self.client,
            &self.table_name,
            [item::KEY, item::REQUESTED_AT],
            "#tenant = :tenant AND begins_with(#pk, :requests)",
            HashMap::from([
                ("#tenant".to_owned(), item::TENANT.to_owned()),
                ("#pk".to_owned(), item::KEY.to_owned()),
            ]),
            HashMap::from([
                (":tenant".to_owned(), AttributeValue::S(tenant.to_string())),
                (
                    ":requests".to_owned(),
                    AttributeValue::S(format!("{tenant}#")),
                ),
            ]),
        )
        .await
        .map_err(|source| LedgerError {
            source: Box::new(source),
        })
    }

    /// Every request in one state (a scan: the table holds one item per create and re-enable).
    async fn in_state(
        &self,
        wanted: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, LedgerError> {
        self.client
            .scan()
            .table_name(&self.table_name)
            .filter_expression("#state = :wanted")
            .expression_attribute_names("#state", item::STATE)
            .expression_attribute_values(":wanted", AttributeValue::S(wanted.to_owned()))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(ledger_error)
    }

    /// An update of one request, by its key.
    fn update(
        &self,
        key: &ResyncKey,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table_name)
            .key(item::KEY, AttributeValue::S(key.key.clone()))
            .key(
                item::REQUESTED_AT,
                AttributeValue::S(key.requested_at.clone()),
            )
    }
}

impl PendingResyncs for DynamoResyncLedger {
    #[instrument(skip_all)]
    async fn pending(&self) -> Result<Vec<PendingResync>, LedgerError> {
        let mut found: Vec<PendingResync> = self
            .in_state(PENDING)
            .await?
            .iter()
            .filter_map(pending_resync)
            .collect();
        found.sort_by(|a, b| a.key.requested_at.cmp(&b.key.requested_at));
        Ok(found)
    }

    #[instrument(skip_all)]
    async fn taken(&self) -> Result<Vec<TakenResync>, LedgerError> {
        Ok(self
            .in_state(RUNNING)
            .await?
            .iter()
            .filter_map(|item| {
                let pending = pending_resync(item)?;
                Some(TakenResync {
                    run_id: text(item, item::RUN_ID)?,
                    claimed_at: text(item, item::CLAIMED_AT).and_then(|t| t.parse().ok()),
                    tenant: pending.request.tenant,
                    key: pending.key,
                })
            })
            .collect())
    }

    #[instrument(skip_all, fields(key = %key.key, run_id))]
    async fn claim(&self, key: &ResyncKey, run_id: &str) -> Result<bool, LedgerError> {
        let result = self
            .update(key)
            .update_expression("SET #state = :running, #runId = :run, #claimedAt = :now")
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", item::STATE)
            .expression_attribute_names("#runId", item::RUN_ID)
            .expression_attribute_names("#claimedAt", item::CLAIMED_AT)
            .expression_attribute_values(":now", AttributeValue::S(Timestamp::now().to_string()))
            .expression_attribute_values(":running", AttributeValue::S(RUNNING.to_owned()))
            .expression_attribute_values(":pending", AttributeValue::S(PENDING.to_owned()))
            .expression_attribute_values(":run", AttributeValue::S(run_id.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if refused_by_condition(&error) => Ok(false),
            Err(error) => Err(ledger_error(error)),
        }
    }

    #[instrument(skip_all, fields(key = %key.key, run_id))]
    async fn release(&self, key: &ResyncKey, run_id: &str) -> Result<(), LedgerError> {
        let result = self
            .update(key)
            .update_expression("SET #state = :pending REMOVE #runId, #claimedAt")
            .condition_expression("#runId = :run")
            .expression_attribute_names("#state", item::STATE)
            .expression_attribute_names("#runId", item::RUN_ID)
            .expression_attribute_names("#claimedAt", item::CLAIMED_AT)
            .expression_attribute_values(":pending", AttributeValue::S(PENDING.to_owned()))
            .expression_attribute_values(":run", AttributeValue::S(run_id.to_owned()))
            .send()
            .await;
        not_ours_is_done(result)
    }

    #[instrument(skip_all, fields(key = %key.key, run_id, state = run_state.as_str()))]
    async fn settle(
        &self,
        key: &ResyncKey,
        run_id: &str,
        run_state: RunState,
    ) -> Result<(), LedgerError> {
        let settled = run_state.request_state();
        let result = self
            .update(key)
            .update_expression("SET #state = :state, #settledAt = :now")
            .condition_expression("#runId = :run")
            .expression_attribute_names("#state", item::STATE)
            .expression_attribute_names("#settledAt", item::SETTLED_AT)
            .expression_attribute_names("#runId", item::RUN_ID)
            .expression_attribute_values(":state", AttributeValue::S(settled.to_owned()))
            .expression_attribute_values(":now", AttributeValue::S(Timestamp::now().to_string()))
            .expression_attribute_values(":run", AttributeValue::S(run_id.to_owned()))
            .send()
            .await;
        not_ours_is_done(result)
    }
}

/// A conditional update of a request refused because another run holds it now: that run answers
/// it, and there is nothing left to do here.
fn not_ours_is_done<T>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<UpdateItemError>>,
) -> Result<(), LedgerError> {
    match result {
        Ok(_) => Ok(()),
        Err(error) if refused_by_condition(&error) => Ok(()),
        Err(error) => Err(ledger_error(error)),
    }
}

/// The update's condition did not hold: an answer about the item, not a failure.
fn refused_by_condition(error: &aws_sdk_dynamodb::error::SdkError<UpdateItemError>) -> bool {
    matches!(
        error.as_service_error(),
        Some(UpdateItemError::ConditionalCheckFailedException(_))
    )
}
