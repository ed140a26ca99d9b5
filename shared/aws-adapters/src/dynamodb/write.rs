//! The worker's writes: one conditional `UpdateItem` per change, and what a refusal means.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use jiff::Timestamp;
use tracing::instrument;

use domain::claim;
use domain::dedup::{ObjectChange, ObjectKey, Outcome, Payload, Write, decide_change};
use domain::ports::{ObjectStore, StoreError};

use super::codec::stored_state;
use super::{DynamoObjectStore, item, refused_by_condition, type_key};

impl ObjectStore for DynamoObjectStore {
    #[instrument(skip_all, fields(key = %change.key, event = %change.event, version = change.write.version()))]
    async fn apply(&self, change: &ObjectChange) -> Result<Outcome, StoreError> {
        let keep = self.tombstones.keeps_last_value(&change.key.object_type);
        let expression = conditional_write(change, keep, Timestamp::now());
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key(item::KEY, AttributeValue::S(change.key.to_string()))
            .update_expression(expression.update)
            .condition_expression(expression.condition)
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            // A replacement says whether it replaced a copy or stored a missing object.
            .set_return_values(
                matches!(change.write, Write::Replace { .. })
                    .then_some(aws_sdk_dynamodb::types::ReturnValue::UpdatedOld),
            )
            .send()
            .await;
        match result {
            Ok(output)
                if matches!(change.write, Write::Replace { .. })
                    && output
                        .attributes
                        .as_ref()
                        .is_some_and(|old| !old.is_empty()) =>
            {
                Ok(Outcome::Replaced)
            }
            // An accepted write carries a probe's key itself (`conditional_write`).
            Ok(_) => Ok(Outcome::Accepted),
            Err(error) => {
                let outcome = refused_or_failed(error, change)?;
                if let Some(probe) = &change.probe {
                    self.mark_probe(&change.key, probe).await?;
                }
                Ok(outcome)
            }
        }
    }
}

impl DynamoObjectStore {
    /// Records a `send` probe's key on an item whose write was refused: the second write only a
    /// test delivery the copy already held costs. An absent item (none can be) is left absent.
    async fn mark_probe(&self, key: &ObjectKey, probe: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key(item::KEY, AttributeValue::S(key.to_string()))
            .update_expression("SET #probe = :probe")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#probe", item::LAST_PROBE)
            .expression_attribute_names("#pk", item::KEY)
            .expression_attribute_values(":probe", AttributeValue::S(probe.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if refused_by_condition(&error) => Ok(()),
            Err(error) => Err(write_failed(error)),
        }
    }
}

/// The parts of one conditional `UpdateItem`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionalWrite {
    pub update: String,
    pub condition: String,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

/// The write for a change, with the condition that states `dedup::decide` for its kind:
/// - versioned v: no item, or not deleted and (no version or version < v);
/// - unversioned: no item, or not deleted and a different payload hash;
/// - delete: no item, or not deleted; with `keep_last_value`, the value it held moves to
///   `lastValue` in the same write (NULL when there was none).
pub fn conditional_write(
    change: &ObjectChange,
    keep_last_value: bool,
    now: Timestamp,
) -> ConditionalWrite {
    let mut write = ExpressionBuilder::default();
    let mut set = vec![
        write.assign(
            item::TENANT,
            AttributeValue::S(change.key.tenant.to_string()),
        ),
        write.assign(
            item::OBJECT_TYPE,
            AttributeValue::S(change.key.object_type.clone()),
        ),
        write.assign(
            item::OBJECT_ID,
            AttributeValue::N(change.key.object_id.to_string()),
        ),
        write.assign(
            item::TYPE_KEY,
            AttributeValue::S(type_key(&change.key.tenant, &change.key.object_type)),
        ),
        write.assign(item::LAST_EVENT, AttributeValue::S(change.event.clone())),
        write.assign(
            item::RECEIVED_AT,
            AttributeValue::S(change.received_at.to_string()),
        ),
        write.assign(item::UPDATED_AT, AttributeValue::S(now.to_string())),
        write.assign(
            item::SOURCE,
            AttributeValue::S(change.source.as_str().to_owned()),
        ),
    ];
    if let Some(probe) = &change.probe {
        set.push(write.assign(item::LAST_PROBE, AttributeValue::S(probe.clone())));
    }
    let mut remove = Vec::new();
    match &change.request {
        Some(request) => {
            set.push(write.assign(item::LAST_REQUEST, AttributeValue::S(request.clone())))
        }
        None => remove.push(write.name(item::LAST_REQUEST)),
    }
    match change.subscription_id {
        Some(id) => {
            set.push(write.assign(item::SUBSCRIPTION_ID, AttributeValue::N(id.to_string())))
        }
        None => remove.push(write.name(item::SUBSCRIPTION_ID)),
    }
    let key = write.name(item::KEY);
    let deleted = write.name(item::DELETED);
    let not_deleted = write.value("false", AttributeValue::Bool(false));
    let condition = match &change.write {
        Write::Replace {
            version,
            payload,
            seen,
        } => {
            let (version_name, _) = set_live_value(
                &mut write,
                &mut set,
                &mut remove,
                [&deleted, &not_deleted],
                *version,
                payload,
            );
            set.push(write.assign(item::REPLACED_AT, AttributeValue::S(now.to_string())));
            remove.push(write.name(item::LAST_VALUE));
            let forgotten = write.name(item::FORGOTTEN_AT);
            let seen_deleted = write.value("seenDeleted", AttributeValue::Bool(seen.deleted));
            let seen_version = match seen.version {
                Some(held) => format!(
                    "{version_name} = {}",
                    write.value("seenVersion", AttributeValue::N(held.to_string()))
                ),
                None => format!("attribute_not_exists({version_name})"),
            };
            format!(
                "attribute_not_exists({key}) OR ({deleted} = {seen_deleted} AND \
                 attribute_not_exists({forgotten}) AND {seen_version})"
            )
        }
        Write::Versioned { version, payload } => {
            let (version_name, version_value) = set_live_value(
                &mut write,
                &mut set,
                &mut remove,
                [&deleted, &not_deleted],
                *version,
                payload,
            );
            let forgotten = write.name(item::FORGOTTEN_AT);
            remove.push(forgotten.clone());
            format!(
                "attribute_not_exists({key}) OR ({deleted} = {not_deleted} AND \
                 ((attribute_not_exists({version_name}) AND attribute_not_exists({forgotten})) \
                 OR {version_name} < {version_value}))"
            )
        }
        Write::Unversioned { payload } => {
            set.push(format!("{deleted} = {not_deleted}"));
            set.push(write.assign(item::VERSION_UNKNOWN, AttributeValue::Bool(true)));
            set.push(write.assign(item::VALUE, value_attribute(payload)));
            let hash_name = write.name(item::PAYLOAD_HASH);
            let hash_value = write.value(
                item::PAYLOAD_HASH,
                AttributeValue::S(payload.hash().to_owned()),
            );
            set.push(format!("{hash_name} = {hash_value}"));
            remove.push(write.name(item::DELETED_AT));
            let forgotten = write.name(item::FORGOTTEN_AT);
            format!(
                "attribute_not_exists({key}) OR ({deleted} = {not_deleted} AND \
                 attribute_not_exists({forgotten}) AND {hash_name} <> {hash_value})"
            )
        }
        Write::Delete => {
            let is_deleted = write.value("true", AttributeValue::Bool(true));
            set.push(format!("{deleted} = {is_deleted}"));
            set.push(write.assign(item::DELETED_AT, AttributeValue::S(now.to_string())));
            if keep_last_value {
                let last_value = write.name(item::LAST_VALUE);
                let value = write.name(item::VALUE);
                let nothing = write.value("nothing", AttributeValue::Null(true));
                set.push(format!("{last_value} = if_not_exists({value}, {nothing})"));
            }
            remove.push(write.name(item::VALUE));
            remove.push(write.name(item::PAYLOAD_HASH));
            remove.push(write.name(item::VERSION_UNKNOWN));
            format!("attribute_not_exists({key}) OR {deleted} = {not_deleted}")
        }
    };
    let mut update = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        update.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    ConditionalWrite {
        update,
        condition,
        names: write.names,
        values: write.values,
    }
}

/// What every write of a versioned value sets (the version, live, the value and its hash) and
/// removes (the unknown-version mark, `deletedAt`); the version's name and value placeholders.
fn set_live_value(
    write: &mut ExpressionBuilder,
    set: &mut Vec<String>,
    remove: &mut Vec<String>,
    [deleted, not_deleted]: [&str; 2],
    version: i64,
    payload: &domain::dedup::Payload,
) -> (String, String) {
    let version_name = write.name(item::VERSION);
    let version_value = write.value(item::VERSION, AttributeValue::N(version.to_string()));
    set.push(format!("{version_name} = {version_value}"));
    set.push(format!("{deleted} = {not_deleted}"));
    set.push(write.assign(item::VALUE, value_attribute(payload)));
    set.push(write.assign(
        item::PAYLOAD_HASH,
        AttributeValue::S(payload.hash().to_owned()),
    ));
    remove.push(write.name(item::VERSION_UNKNOWN));
    remove.push(write.name(item::DELETED_AT));
    (version_name, version_value)
}

/// Placeholders for names and values, so no attribute name can clash with a reserved word.
#[derive(Default)]
struct ExpressionBuilder {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl ExpressionBuilder {
    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#{attribute}");
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    fn value(&mut self, label: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{label}");
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn assign(&mut self, attribute: &str, value: AttributeValue) -> String {
        let name = self.name(attribute);
        let value = self.value(attribute, value);
        format!("{name} = {value}")
    }
}

/// How an item holds its value: the JSON text, or (over `claim::ITEM_VALUE_LIMIT`) a map naming
/// the payload bucket's object that holds it, with its size and digest.
pub fn value_attribute(payload: &Payload) -> AttributeValue {
    match payload.claim() {
        None => AttributeValue::S(payload.json().to_owned()),
        Some(key) => AttributeValue::M(HashMap::from([
            (
                claim::CLAIM_KEY.to_owned(),
                AttributeValue::S(key.to_owned()),
            ),
            (
                claim::CLAIM_BYTES.to_owned(),
                AttributeValue::N(payload.json().len().to_string()),
            ),
            (
                claim::CLAIM_SHA256.to_owned(),
                AttributeValue::S(payload.hash().to_owned()),
            ),
        ])),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("DynamoDB refused the write, but the item it returned would have accepted it")]
struct UnexplainedRefusal;

fn refused_or_failed(
    error: SdkError<UpdateItemError>,
    change: &ObjectChange,
) -> Result<Outcome, StoreError> {
    if let Some(UpdateItemError::ConditionalCheckFailedException(refusal)) =
        error.as_service_error()
    {
        let stored = refusal
            .item()
            .map(stored_state)
            .transpose()
            .map_err(|source| StoreError::Rejected {
                source: Box::new(source),
            })?;
        return match decide_change(stored.as_ref(), change) {
            // Cannot happen while the condition states the rule; retried rather than dropped.
            Outcome::Accepted | Outcome::Replaced => Err(StoreError::Unavailable {
                source: Box::new(UnexplainedRefusal),
            }),
            outcome => Ok(outcome),
        };
    }
    Err(write_failed(error))
}

/// A write that failed for another reason than its condition.
pub(super) fn write_failed(error: SdkError<UpdateItemError>) -> StoreError {
    let Some(service_error) = error.as_service_error() else {
        // Timeouts, connection and dispatch failures.
        return StoreError::Unavailable {
            source: Box::new(crate::sdk::AwsFailure::of(&error)),
        };
    };
    match service_error {
        UpdateItemError::ProvisionedThroughputExceededException(_)
        | UpdateItemError::RequestLimitExceeded(_) => StoreError::Throttled {
            source: Box::new(crate::sdk::AwsFailure::of(&error)),
        },
        _ if service_error.meta().code() == Some("ThrottlingException") => StoreError::Throttled {
            source: Box::new(crate::sdk::AwsFailure::of(&error)),
        },
        _ if service_error.meta().code() == Some("ValidationException") => StoreError::Rejected {
            source: Box::new(crate::sdk::AwsFailure::of(&error)),
        },
        _ => StoreError::Unavailable {
            source: Box::new(crate::sdk::AwsFailure::of(&error)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::dedup::{Source, StoredState};
    use domain::ids::TenantId;
    use std::collections::HashMap;

    fn change(write: Write, subscription_id: Option<i64>) -> ObjectChange {
        ObjectChange {
            key: ObjectKey {
                tenant: TenantId::default_tenant(),
                object_type: "product".into(),
                object_id: 7,
            },
            write,
            event: "product.update".into(),
            subscription_id,
            received_at: Timestamp::UNIX_EPOCH,
            source: Source::Webhook,
            probe: None,
            request: None,
        }
    }

    /// DynamoDB refuses a request that defines a placeholder no expression uses.
    fn assert_every_placeholder_is_used(write: &ConditionalWrite) {
        let text = format!("{} {}", write.update, write.condition);
        for placeholder in write.names.keys().chain(write.values.keys()) {
            let used = text.match_indices(placeholder.as_str()).any(|(at, _)| {
                !text[at + placeholder.len()..].starts_with(|c: char| c.is_alphanumeric())
            });
            assert!(used, "{placeholder} unused in {text}");
        }
    }

    #[test]
    fn versioned_write_is_conditional_on_an_older_live_version() {
        let write = conditional_write(
            &change(
                Write::Versioned {
                    version: 4,
                    payload: Payload::from_json("{}"),
                },
                Some(3),
            ),
            false,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(
            write.condition,
            "attribute_not_exists(#pk) OR (#deleted = :false AND ((attribute_not_exists(#version) \
             AND attribute_not_exists(#forgottenAt)) OR #version < :version))"
        );
        assert_eq!(write.values[":version"], AttributeValue::N("4".into()));
        assert!(write.update.contains("#value = :value"));
        assert!(
            write
                .update
                .ends_with("REMOVE #lastRequestId, #versionUnknown, #deletedAt, #forgottenAt"),
            "a versioned value is at its version, and live; no request id is left of another: {}",
            write.update
        );
        assert_every_placeholder_is_used(&write);
    }

    #[test]
    fn delete_writes_a_tombstone_unless_one_is_there() {
        let write = conditional_write(&change(Write::Delete, None), false, Timestamp::UNIX_EPOCH);
        assert_eq!(
            write.condition,
            "attribute_not_exists(#pk) OR #deleted = :false"
        );
        assert!(write.update.contains("#deleted = :true"));
        assert!(
            write
                .update
                .contains("REMOVE #lastRequestId, #subscriptionId, #value, #payloadHash"),
            "{}",
            write.update
        );
        assert!(!write.update.contains("#lastValue"));
        assert_every_placeholder_is_used(&write);
        let from_a_request = ObjectChange {
            request: Some("req-9".into()),
            ..change(Write::Delete, None)
        };
        let write = conditional_write(&from_a_request, false, Timestamp::UNIX_EPOCH);
        assert!(
            write.update.contains("#lastRequestId = :lastRequestId"),
            "{}",
            write.update
        );
        assert_eq!(
            write.values[":lastRequestId"],
            AttributeValue::S("req-9".into())
        );
        let kept = conditional_write(&change(Write::Delete, None), true, Timestamp::UNIX_EPOCH);
        assert!(
            kept.update
                .contains("#lastValue = if_not_exists(#value, :nothing)"),
            "{}",
            kept.update
        );
        assert_eq!(kept.condition, write.condition, "the same rule decides");
        assert_every_placeholder_is_used(&kept);
    }

    #[test]
    fn unversioned_write_is_conditional_on_different_content() {
        let payload = Payload::from_json(r#"{"id":7}"#);
        let write = conditional_write(
            &change(
                Write::Unversioned {
                    payload: payload.clone(),
                },
                Some(1),
            ),
            false,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(
            write.condition,
            "attribute_not_exists(#pk) OR (#deleted = :false AND attribute_not_exists(#forgottenAt) \
             AND #payloadHash <> :payloadHash)"
        );
        assert_eq!(
            write.values[":payloadHash"],
            AttributeValue::S(payload.hash().to_owned())
        );
        assert!(
            !write
                .update
                .split([' ', ','])
                .any(|token| token == "#version"),
            "an unversioned write keeps the stored version"
        );
        assert!(
            write.update.contains("#versionUnknown = :versionUnknown"),
            "and marks it a floor: {}",
            write.update
        );
        assert_every_placeholder_is_used(&write);
    }

    #[test]
    fn reads_the_rule_state_of_a_stored_item() {
        let item = HashMap::from([
            (item::VERSION.to_owned(), AttributeValue::N("12".into())),
            (item::DELETED.to_owned(), AttributeValue::Bool(true)),
            (item::SOURCE.to_owned(), AttributeValue::S("resync".into())),
        ]);
        assert_eq!(
            stored_state(&item).unwrap(),
            StoredState {
                version: Some(12),
                version_unknown: false,
                deleted: true,
                payload_hash: None,
                forgotten: false,
                source: Some(domain::dedup::Source::Resync),
            }
        );
    }

    // ---- how a refused or failed write is read (the SDK's answers mocked) --------------------

    mod refusals {
        use super::*;
        use aws_sdk_dynamodb::Client;
        use aws_sdk_dynamodb::config::retry::RetryConfig;
        use aws_sdk_dynamodb::error::ErrorMetadata;
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        use aws_sdk_dynamodb::types::error::{
            ConditionalCheckFailedException, ProvisionedThroughputExceededException,
        };
        use aws_smithy_mocks::{RuleMode, mock, mock_client};

        /// The store with one answer to its `UpdateItem`, and no retries in the way.
        fn store_answering(
            error: impl Fn() -> UpdateItemError + Send + Sync + 'static,
        ) -> DynamoObjectStore {
            let rule = mock!(Client::update_item).then_error(error);
            let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule], |config| {
                config.retry_config(RetryConfig::disabled())
            });
            DynamoObjectStore::new(client, "objects")
        }

        fn versioned(version: i64) -> ObjectChange {
            change(
                Write::Versioned {
                    version,
                    payload: Payload::from_json("{}"),
                },
                Some(1),
            )
        }

        fn refused_with_stored_version(version: i64) -> UpdateItemError {
            UpdateItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .item(item::VERSION, AttributeValue::N(version.to_string()))
                    .item(item::DELETED, AttributeValue::Bool(false))
                    .build(),
            )
        }

        fn generic(code: &'static str) -> UpdateItemError {
            UpdateItemError::generic(ErrorMetadata::builder().code(code).build())
        }

        #[tokio::test]
        async fn a_refusal_is_read_from_the_item_it_returned_as_the_rule_s_outcome() {
            let store = store_answering(|| refused_with_stored_version(5));
            assert_eq!(store.apply(&versioned(3)).await.unwrap(), Outcome::Stale);
            let store = store_answering(|| refused_with_stored_version(5));
            assert_eq!(
                store.apply(&versioned(5)).await.unwrap(),
                Outcome::Duplicate
            );
        }

        #[tokio::test]
        async fn a_refusal_the_returned_item_does_not_explain_is_retried_not_dropped() {
            let store = store_answering(|| refused_with_stored_version(1));
            let error = store.apply(&versioned(3)).await.unwrap_err();
            assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
            assert!(error.is_transient());
        }

        #[tokio::test]
        async fn throttling_of_either_kind_is_throttled() {
            let store = store_answering(|| {
                UpdateItemError::ProvisionedThroughputExceededException(
                    ProvisionedThroughputExceededException::builder().build(),
                )
            });
            let error = store.apply(&versioned(1)).await.unwrap_err();
            assert!(matches!(error, StoreError::Throttled { .. }), "{error:?}");
            let store = store_answering(|| generic("ThrottlingException"));
            let error = store.apply(&versioned(1)).await.unwrap_err();
            assert!(matches!(error, StoreError::Throttled { .. }), "{error:?}");
        }

        #[tokio::test]
        async fn an_item_dynamodb_will_never_take_is_rejected_and_anything_else_is_unavailable() {
            let store = store_answering(|| generic("ValidationException"));
            let error = store.apply(&versioned(1)).await.unwrap_err();
            assert!(matches!(error, StoreError::Rejected { .. }), "{error:?}");
            assert!(!error.is_transient(), "quarantined, not retried");
            let store = store_answering(|| generic("InternalServerError"));
            let error = store.apply(&versioned(1)).await.unwrap_err();
            assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
        }

        #[tokio::test]
        async fn a_failure_is_said_in_the_service_s_words_never_the_sdk_s() {
            let store = store_answering(|| {
                UpdateItemError::generic(
                    ErrorMetadata::builder()
                        .code("AccessDeniedException")
                        .message("not authorized to perform: dynamodb:UpdateItem")
                        .build(),
                )
            });
            let error = store.apply(&versioned(1)).await.unwrap_err();
            let said = domain::error::error_chain(&error);
            assert!(
                said.ends_with(
                    "AccessDeniedException: not authorized to perform: dynamodb:UpdateItem"
                ),
                "{said}"
            );
            for sdk_wording in ["service error", "unhandled error", "Error {"] {
                assert!(!said.contains(sdk_wording), "{said}");
            }
        }
    }
}
