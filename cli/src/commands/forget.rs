//! `forget COMPANY TYPE ID`: one object's value erased on request (a GDPR erasure) from the table,
//! the payload bucket, the quarantine and the webhook dead-letter queue, and kept erased: the item
//! stays as a marker at the version it had, and `dedup::decide` stores the object again only at a
//! newer version (a change Tripletex made after the request).

use crate::context::{Answer, CliError, Context, object_key};

use aws_adapters::dynamodb::{DynamoObjectStore, Erased};
use domain::claim::{messages_prefix, values_prefix};
use domain::dedup::ObjectKey;
use domain::ports::BlobStore;
use serde::Serialize;

use crate::deployment::Deployment;
use crate::ops::{self, AwsError};

#[derive(Debug, clap::Args)]
pub struct ForgetArgs {
    /// The company (tenant), e.g. default.
    company: String,
    /// The object type, as in the event name (customer, contact, employee, ...).
    object_type: String,
    id: i64,
}

pub async fn run(ctx: &Context, args: &ForgetArgs) -> Result<Answer, CliError> {
    let key = object_key(ctx, &args.company, &args.object_type, args.id).await?;
    let forgotten = forget(
        ctx.sqs(),
        ctx.dynamodb(),
        &ctx.payloads(),
        &ctx.deployment,
        &key,
    )
    .await?;
    ctx.answer(&forgotten, render, false)
}

/// What `forget` erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Forgotten {
    pub key: String,
    /// The copy held the object (now a marker).
    pub in_copy: bool,
    /// The version it was forgotten at: a record of this version or older is refused.
    pub version: Option<i64>,
    pub deleted: bool,
    pub value_erased: bool,
    pub last_value_erased: bool,
    /// It had been forgotten before.
    pub forgotten_before: bool,
    /// Its values kept in the payload bucket (over an item's limit), every version of them, and
    /// the claim-checked bodies of the messages naming it (a message still queued then goes to
    /// the quarantine with its body gone).
    pub payload_objects_deleted: usize,
    pub quarantined_deleted: usize,
    pub dead_letters_deleted: usize,
}

pub async fn forget(
    sqs: &aws_sdk_sqs::Client,
    dynamodb: &aws_sdk_dynamodb::Client,
    payloads: &impl BlobStore,
    deployment: &Deployment,
    key: &ObjectKey,
) -> Result<Forgotten, AwsError> {
    let store = DynamoObjectStore::new(dynamodb.clone(), &deployment.objects_table);
    let erased = store
        .forget(key, jiff::Timestamp::now())
        .await
        .map_err(|source| AwsError::Call {
            what: format!("erasing {key} from the table"),
            source: Box::new(source),
        })?;
    let mut payload_objects_deleted = 0;
    for prefix in [values_prefix(key), messages_prefix(key)] {
        payload_objects_deleted +=
            payloads
                .delete_under(&prefix)
                .await
                .map_err(|source| AwsError::Call {
                    what: format!("deleting {prefix} from the payload bucket"),
                    source: Box::new(source),
                })?;
    }
    let quarantined_deleted =
        ops::queues::delete_messages_naming(sqs, payloads, &deployment.quarantine, key).await?;
    let dead_letters_deleted =
        ops::queues::delete_messages_naming(sqs, payloads, &deployment.webhook_dead_letters, key)
            .await?;
    let Erased {
        version,
        deleted,
        value,
        last_value,
        again,
    } = erased.clone().unwrap_or(Erased {
        version: None,
        deleted: false,
        value: None,
        last_value: None,
        again: false,
    });
    Ok(Forgotten {
        key: key.to_string(),
        in_copy: erased.is_some(),
        version,
        deleted,
        value_erased: value.is_some(),
        last_value_erased: last_value.is_some(),
        forgotten_before: again,
        payload_objects_deleted,
        quarantined_deleted,
        dead_letters_deleted,
    })
}

pub fn render(forgotten: &Forgotten) -> String {
    let mut out = String::new();
    if !forgotten.in_copy {
        out.push_str(&format!(
            "{}: not in the copy; nothing on the table to erase, and no marker kept\n",
            forgotten.key
        ));
    } else {
        let version = forgotten
            .version
            .map_or_else(|| "no version".to_owned(), |v| format!("version {v}"));
        let erased = |done: bool, what: &str| {
            if done {
                format!("{what} erased")
            } else {
                format!("no {what}")
            }
        };
        out.push_str(&format!(
            "forgot {} at {version}{}: {}, {}{}\n",
            forgotten.key,
            if forgotten.deleted { " (deleted)" } else { "" },
            erased(forgotten.value_erased, "value"),
            erased(forgotten.last_value_erased, "last value"),
            if forgotten.forgotten_before {
                " (it had been forgotten before)"
            } else {
                ""
            },
        ));
        out.push_str(&match forgotten.version {
            Some(v) if !forgotten.deleted => format!(
                "a webhook or reconciliation of version {v} or older is refused; a newer version is stored again\n"
            ),
            None if !forgotten.deleted => {
                "forgotten without a version: no later upsert is stored again\n".to_owned()
            }
            _ => "a tombstone stays a tombstone\n".to_owned(),
        });
    }
    out.push_str(&format!(
        "deleted: {} value objects from the payload bucket, {} quarantined messages, {} dead letters\n",
        forgotten.payload_objects_deleted,
        forgotten.quarantined_deleted,
        forgotten.dead_letters_deleted
    ));
    out.push_str(
        "not erased: copies already delivered to the table's stream consumers (see the book: Operating it, Forgetting an object)\n",
    );
    out
}
