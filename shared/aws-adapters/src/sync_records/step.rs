//! A step counted once: an update conditional on the number of steps counted so far.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::codec::*;
use super::keys::*;
use super::{DynamoSyncRecords, failed};
use domain::ids::TenantId;
use domain::ports::StoreError;
use domain::sync::{RunState, StepRecorded, StepReport};

impl DynamoSyncRecords {
    pub(super) async fn count_step(
        &self,
        tenant: &TenantId,
        run_id: &str,
        step: u32,
        report: &StepReport,
    ) -> Result<StepRecorded, StoreError> {
        let update = self
            .update_of(run_key(tenant), run_id.to_owned())
            .condition_expression("#steps = :step")
            .expression_attribute_names("#steps", item::STEPS)
            .expression_attribute_values(":step", n(step))
            .expression_attribute_values(":next", n(step + 1))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let update = with_report(update, report);
        let recorded = match update.send().await {
            Ok(output) => {
                let failed_types = output
                    .attributes
                    .as_ref()
                    .map_or(0, |item| number(item, item::FAILED_TYPES));
                let state = if report.finished {
                    self.finish(tenant, run_id, failed_types).await?
                } else {
                    RunState::Running
                };
                StepRecorded::Applied { state }
            }
            Err(error) => {
                let refused_by = match error.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(refusal)) => {
                        Some(refusal.item().cloned())
                    }
                    _ => None,
                };
                match refused_by {
                    None => return Err(failed(error)),
                    Some(Some(item)) if number(&item, item::STEPS) == u64::from(step) + 1 => {
                        let state = if report.finished {
                            self.finish(tenant, run_id, number(&item, item::FAILED_TYPES))
                                .await?
                        } else {
                            RunState::Running
                        };
                        StepRecorded::AlreadyApplied { state }
                    }
                    Some(_) => StepRecorded::Stale,
                }
            }
        };
        Ok(recorded)
    }
}

/// The step's counts added to the run's, its failure and its unstorable objects appended, and its
/// number moved on.
fn with_report(
    mut update: UpdateItemFluentBuilder,
    report: &StepReport,
) -> UpdateItemFluentBuilder {
    let mut adds = Vec::new();
    for (index, (name, value)) in report.counts.named().into_iter().enumerate() {
        if value == 0 {
            continue;
        }
        update = update
            .expression_attribute_names(
                format!("#c{index}"),
                count_attribute(&report.object_type, name),
            )
            .expression_attribute_values(format!(":c{index}"), n(value));
        adds.push(format!("#c{index} :c{index}"));
    }
    let mut sets = vec!["#steps = :next".to_owned()];
    if let Some(failure) = &report.failure {
        update = update
            .expression_attribute_names("#failures", item::FAILURES)
            .expression_attribute_names("#failedTypes", item::FAILED_TYPES)
            .expression_attribute_values(
                ":failure",
                AttributeValue::L(vec![s(format!("{}: {failure}", report.object_type))]),
            )
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":one", n(1));
        sets.push("#failures = list_append(if_not_exists(#failures, :none), :failure)".to_owned());
        adds.push("#failedTypes :one".to_owned());
    }
    if !report.unstorable.is_empty() {
        update = update
            .expression_attribute_names("#unstorable", item::UNSTORABLE)
            .expression_attribute_values(
                ":unstorable",
                AttributeValue::L(
                    report
                        .unstorable
                        .iter()
                        .map(|reason| s(format!("{}: {reason}", report.object_type)))
                        .collect(),
                ),
            )
            .expression_attribute_values(":nothing", AttributeValue::L(Vec::new()));
        sets.push(
            "#unstorable = list_append(if_not_exists(#unstorable, :nothing), :unstorable)"
                .to_owned(),
        );
    }
    let mut expression = format!("SET {}", sets.join(", "));
    if !adds.is_empty() {
        expression.push_str(&format!(" ADD {}", adds.join(", ")));
    }
    update.update_expression(expression)
}
