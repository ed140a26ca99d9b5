//! Turns a batch of the objects table's stream into one transaction of the mirror, and reports the
//! record to retry from.

use aws_adapters::telemetry::emit_metrics;
use domain::claim::mirrored_row;
use domain::dedup::ObjectKey;
use domain::error::error_chain;
use domain::mirror::MirrorRow;
use domain::ports::{BlobStore, Mirror};
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::image::{StreamChange, read_record};

const FUNCTION_NAME: &str = "postgres-mirror";

pub struct MirrorHandler<M, B> {
    mirror: M,
    payloads: B,
}

/// A record that stops the batch: the ones before it are applied, it and the rest come back.
struct Stop {
    at: usize,
    reason: String,
    /// It may pass (the bucket or the database unreachable) rather than never (an unreadable image).
    transient: bool,
}

impl<M: Mirror, B: BlobStore> MirrorHandler<M, B> {
    pub fn new(mirror: M, payloads: B) -> Self {
        Self { mirror, payloads }
    }

    /// The stream's partial batch response: `batchItemFailures` names the first record not
    /// applied (Lambda retries from it, bisecting on repeated failure, and after its retries sends
    /// it to the mapping's on-failure destination).
    pub async fn handle(&self, event: Value) -> Value {
        let records = event
            .get("Records")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut images = Vec::with_capacity(records.len());
        let mut removed = Vec::new();
        let mut stop = None;
        for (at, record) in records.iter().enumerate() {
            match self.read(record).await {
                Ok(Change::Image(row)) => images.push(*row),
                Ok(Change::Removed(key)) => removed.push(key),
                Err((reason, transient)) => {
                    stop = Some(Stop {
                        at,
                        reason,
                        transient,
                    });
                    break;
                }
            }
        }
        let applied = match self.mirror.apply(&images, &removed).await {
            Ok(changed) => changed,
            Err(failure) => {
                stop = Some(Stop {
                    at: 0,
                    reason: error_chain(&failure),
                    transient: true,
                });
                0
            }
        };
        let failed = stop.as_ref().map_or(0, |stop| records.len() - stop.at);
        info!(records = records.len(), applied, failed, "batch mirrored");
        emit_metrics(
            FUNCTION_NAME,
            &[
                ("MirrorRecords", records.len() as u64),
                ("MirrorRowsChanged", applied),
                ("MirrorFailed", failed as u64),
            ],
        );
        let Some(stop) = stop else {
            return json!({"batchItemFailures": []});
        };
        let sequence = records[stop.at]
            .pointer("/dynamodb/SequenceNumber")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if stop.transient {
            warn!(
                sequence,
                reason = stop.reason,
                "the batch will be retried from this record"
            );
        } else {
            error!(
                sequence,
                reason = stop.reason,
                "a record the mirror cannot read: retried, then sent to the on-failure destination"
            );
        }
        json!({"batchItemFailures": [{"itemIdentifier": sequence}]})
    }

    /// One record as a change, its values read from the payload bucket; why not, and whether that may pass.
    async fn read(&self, record: &Value) -> Result<Change, (String, bool)> {
        match read_record(record).map_err(|e| (e.to_string(), false))? {
            StreamChange::Removed(key) => Ok(Change::Removed(key)),
            StreamChange::Image(item) => mirrored_row(&self.payloads, &item)
                .await
                .map(|row| Change::Image(Box::new(row)))
                .map_err(|e| (error_chain(&e), e.is_transient())),
        }
    }
}

enum Change {
    Image(Box<MirrorRow>),
    Removed(ObjectKey),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

    use test_support::{InMemoryBlobs, InMemoryMirror};

    use super::*;

    fn event(name: &str) -> Value {
        let path = format!(
            "{}/../../events/postgres-mirror/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    type Handler = MirrorHandler<InMemoryMirror, InMemoryBlobs>;

    fn handler() -> (Handler, InMemoryMirror, InMemoryBlobs) {
        let (mirror, blobs) = (InMemoryMirror::new(), InMemoryBlobs::new());
        (
            MirrorHandler::new(mirror.clone(), blobs.clone()),
            mirror,
            blobs,
        )
    }

    /// A stream image (DynamoDB's JSON) as the SDK item a scan of the table returns.
    fn sdk_item(
        image: &Value,
    ) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
        use aws_sdk_dynamodb::types::AttributeValue;
        fn attribute(typed: &Value) -> AttributeValue {
            let (kind, value) = typed.as_object().unwrap().iter().next().unwrap();
            match kind.as_str() {
                "S" => AttributeValue::S(value.as_str().unwrap().to_owned()),
                "N" => AttributeValue::N(value.as_str().unwrap().to_owned()),
                "BOOL" => AttributeValue::Bool(value.as_bool().unwrap()),
                "NULL" => AttributeValue::Null(true),
                "M" => AttributeValue::M(
                    value
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(name, typed)| (name.clone(), attribute(typed)))
                        .collect(),
                ),
                other => panic!("a type the objects table never writes: {other}"),
            }
        }
        image
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, typed)| (name.clone(), attribute(typed)))
            .collect()
    }

    #[tokio::test]
    async fn the_stream_and_a_rebuild_end_an_odd_item_in_the_same_row_or_the_same_refusal() {
        let value = r#"{"id":7,"version":3,"postings":[]}"#;
        let digest = domain::dedup::sha256_hex(value.as_bytes());
        let claim = |key: &str| {
            json!({"M": {"claimCheck": {"S": key}, "bytes": {"N": value.len().to_string()},
                "sha256": {"S": digest}}})
        };
        let item = |version: Value, value: Value| {
            json!({"pk": {"S": "acme#voucher#7"}, "tenant": {"S": "acme"},
                "objectType": {"S": "voucher"}, "objectId": {"N": "7"}, "version": version,
                "deleted": {"BOOL": false}, "value": value, "source": {"S": "webhook"},
                "updatedAt": {"S": "2026-12-06T10:00:00Z"}})
        };
        let (whole, altered, not_text) = ("values/whole", "values/altered", "values/not-text");
        let cases = [
            ("a good item", item(json!({"N": "3"}), claim(whole)), true),
            (
                "a fractional version",
                item(json!({"N": "3.5"}), claim(whole)),
                false,
            ),
            (
                "a version of text",
                item(json!({"S": "3"}), claim(whole)),
                false,
            ),
            (
                "a value altered in the bucket",
                item(json!({"N": "3"}), claim(altered)),
                false,
            ),
            (
                "a value that is not UTF-8",
                item(json!({"N": "3"}), claim(not_text)),
                false,
            ),
            (
                "a claim without its digest",
                item(
                    json!({"N": "3"}),
                    json!({"M": {"claimCheck": {"S": whole}, "bytes": {"N": "1"}}}),
                ),
                false,
            ),
        ];
        for (case, image, mirrored) in cases {
            let (handler, mirror, blobs) = handler();
            blobs.put(whole, value.as_bytes()).await.unwrap();
            blobs
                .put(altered, br#"{"id":7,"version":3,"postings":["forged"]}"#)
                .await
                .unwrap();
            blobs.put(not_text, &[0xff, 0xfe]).await.unwrap();
            let record = json!({"Records": [{"eventName": "MODIFY",
                "dynamodb": {"SequenceNumber": "1", "NewImage": image}}]});
            let answer = handler.handle(record).await;
            let by_stream = mirror.rows().pop();
            let by_rebuild = aws_adapters::dynamodb::mirror_row(&blobs, &sdk_item(&image)).await;
            assert_eq!(
                by_stream.is_some(),
                mirrored,
                "{case}: the stream, {answer}"
            );
            match (by_stream, by_rebuild) {
                (Some(streamed), Ok(rebuilt)) => {
                    assert_eq!(streamed, rebuilt, "{case}");
                    assert_eq!(rebuilt.value.as_deref(), Some(value), "{case}");
                }
                (None, Err(refused)) => {
                    assert!(!refused.is_transient(), "{case}: {refused}");
                    assert_eq!(
                        answer,
                        json!({"batchItemFailures": [{"itemIdentifier": "1"}]}),
                        "{case}"
                    );
                }
                (streamed, rebuilt) => {
                    panic!("{case}: the stream wrote {streamed:?}, the rebuild {rebuilt:?}")
                }
            }
        }
    }

    #[tokio::test]
    async fn a_batch_lands_with_its_claimed_value_and_a_replay_changes_nothing() {
        let (handler, mirror, blobs) = handler();
        let voucher = r#"{"id":40000001,"version":0,"postings":[]}"#;
        blobs
            .put("values/default/voucher/40000001/7609dbda6cfe69a2bb43aab2837c9ed6b0679323dfded1333ac02489404411c5", voucher.as_bytes())
            .await
            .unwrap();
        let answer = handler.handle(event("dynamodb-stream-batch")).await;
        assert_eq!(answer, json!({"batchItemFailures": []}));
        let rows = mirror.rows();
        assert_eq!(
            rows.len(),
            2,
            "the customer at its newest version and the voucher"
        );
        let customer = rows.iter().find(|r| r.object_type == "customer").unwrap();
        assert_eq!(customer.version, Some(2));
        assert!(
            customer
                .value
                .as_deref()
                .unwrap()
                .contains("Nordmann Holding AS")
        );
        let voucher_row = rows.iter().find(|r| r.object_type == "voucher").unwrap();
        assert_eq!(
            voucher_row.value.as_deref(),
            Some(voucher),
            "read whole from the bucket"
        );
        let again = handler.handle(event("dynamodb-stream-batch")).await;
        assert_eq!(again, json!({"batchItemFailures": []}));
        assert_eq!(mirror.rows(), rows);
    }

    #[tokio::test]
    async fn an_unreadable_record_stops_the_batch_there_and_a_database_outage_retries_all_of_it() {
        let (handler, mirror, _) = handler();
        let answer = handler.handle(event("dynamodb-stream-unreadable")).await;
        assert_eq!(
            answer,
            json!({"batchItemFailures": [{"itemIdentifier": "200000000000000000002"}]})
        );
        assert_eq!(
            mirror.rows().len(),
            1,
            "the record before it is applied, none after it"
        );

        mirror.set_unavailable(true);
        let answer = handler.handle(event("dynamodb-stream-batch")).await;
        assert_eq!(
            answer,
            json!({"batchItemFailures": [{"itemIdentifier": "100000000000000000001"}]})
        );
    }

    #[tokio::test]
    async fn a_bucket_that_cannot_be_read_retries_from_that_record() {
        let (handler, mirror, blobs) = handler();
        blobs.set_unavailable(true);
        let answer = handler.handle(event("dynamodb-stream-batch")).await;
        assert_eq!(
            answer,
            json!({"batchItemFailures": [{"itemIdentifier": "100000000000000000003"}]})
        );
        assert_eq!(mirror.rows().len(), 1, "the customer before it");
    }
}
