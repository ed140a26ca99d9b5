//! Turns a batch of the objects table's stream into one transaction of the mirror, and reports the
//! record to retry from.

use aws_adapters::telemetry::emit_metrics;
use domain::dedup::ObjectKey;
use domain::error::error_chain;
use domain::mirror::MirrorRow;
use domain::ports::{BlobStore, Mirror};
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::image::{PendingRow, StreamChange, read_record};

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
            StreamChange::Image(pending) => self
                .resolved(*pending)
                .await
                .map(|row| Change::Image(Box::new(row))),
        }
    }

    async fn resolved(&self, pending: PendingRow) -> Result<MirrorRow, (String, bool)> {
        let PendingRow {
            mut row,
            value_claim,
            last_value_claim,
        } = pending;
        if let Some(key) = value_claim {
            row.value = self.claimed(&key).await?;
        }
        if let Some(key) = last_value_claim {
            row.last_value = self.claimed(&key).await?;
        }
        Ok(row)
    }

    /// A value kept in the payload bucket. One that is gone was forgotten after this image was
    /// written: the mirror keeps nothing of it either.
    async fn claimed(&self, key: &str) -> Result<Option<String>, (String, bool)> {
        let bytes = self
            .payloads
            .get(key)
            .await
            .map_err(|e| (error_chain(&e), e.is_transient()))?;
        bytes
            .map(|bytes| {
                String::from_utf8(bytes).map_err(|_| (format!("{key} is not UTF-8"), false))
            })
            .transpose()
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

    #[tokio::test]
    async fn a_batch_lands_with_its_claimed_value_and_a_replay_changes_nothing() {
        let (handler, mirror, blobs) = handler();
        let voucher = r#"{"id":40000001,"version":0,"postings":[]}"#;
        blobs
            .put("values/default/voucher/40000001/sample", voucher.as_bytes())
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
