//! `quarantine replay`: whether a quarantined message can be applied now, read as the worker reads
//! a record, and the message the webhook queue gets for it.

use crate::context::{Answer, CliError, Context};
use crate::ops;
use crate::render;
use clap::Subcommand;
use domain::claim::claimed_body;
use domain::ports::BlobStore;

use std::collections::BTreeMap;

use domain::message::attribute;
use domain::record::{RecordError, change_from_message};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct QuarantineArgs {
    #[command(subcommand)]
    action: Option<QuarantineAction>,
    /// At most this many messages.
    #[arg(long, default_value_t = 50)]
    max: usize,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineAction {
    /// Sends one quarantined message to the webhook queue once it can be applied (after a fix): it
    /// is read as the worker reads a record first, and left in the quarantine with the reason if it
    /// still cannot be.
    Replay {
        /// The message's id, as `quarantine` lists it.
        message_id: String,
        /// Send it even though this command's reading refuses it (the deployed worker may be newer);
        /// a worker that cannot apply it quarantines it again.
        #[arg(long)]
        anyway: bool,
    },
}

pub async fn run(ctx: &Context, args: &QuarantineArgs) -> Result<Answer, CliError> {
    let payloads = ctx.payloads();
    match &args.action {
        None => {
            let mut messages =
                ops::queues::list_messages(ctx.sqs(), &ctx.deployment.quarantine, args.max).await?;
            ops::queues::resolve_claims(&payloads, &mut messages).await;
            let needs = !messages.is_empty();
            ctx.answer(&messages, |m| render::messages("quarantine", m), needs)
        }
        Some(QuarantineAction::Replay { message_id, anyway }) => {
            let replayed = replay(ctx, &payloads, message_id, *anyway).await?;
            let needs = !replayed.replayed;
            ctx.answer(&replayed, render, needs)
        }
    }
}

/// A quarantined message as the webhook queue will carry it: its reason gone, and the names the
/// receiver sets on a valid envelope (event, object id, subscription) read from the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayable {
    pub tenant: String,
    pub event: String,
    pub object_id: i64,
    #[serde(skip)]
    pub attributes: BTreeMap<String, String>,
}

pub fn replayable(
    body: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<Replayable, RecordError> {
    let change = change_from_message(
        Some(body),
        |name| attributes.get(name).map(String::as_str),
        jiff::Timestamp::now(),
    )?;
    let mut queued = attributes.clone();
    queued.remove(attribute::QUARANTINE_REASON);
    queued.insert(attribute::EVENT.to_owned(), change.event.clone());
    queued.insert(
        attribute::OBJECT_ID.to_owned(),
        change.key.object_id.to_string(),
    );
    if let Some(subscription) = change.subscription_id {
        queued.insert(
            attribute::SUBSCRIPTION_ID.to_owned(),
            subscription.to_string(),
        );
    }
    Ok(Replayable {
        tenant: change.key.tenant.to_string(),
        event: change.event,
        object_id: change.key.object_id,
        attributes: queued,
    })
}

/// What `quarantine replay` did with one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    pub message_id: String,
    /// Sent to the webhook queue (and gone from the quarantine).
    pub replayed: bool,
    /// Why the worker's reading of a record refuses it; none when it can be applied now.
    pub refused_because: Option<String>,
    pub tenant: Option<String>,
    pub event: Option<String>,
    pub object_id: Option<i64>,
}

async fn replay(
    ctx: &Context,
    payloads: &impl BlobStore,
    message_id: &str,
    anyway: bool,
) -> Result<Replayed, CliError> {
    let (sqs, deployment) = (&ctx.sqs(), &ctx.deployment);
    let from = &deployment.quarantine;
    let Some(taken) = ops::queues::take_message(sqs, from, message_id).await? else {
        return Err(CliError::NotInQuarantine(message_id.to_owned()));
    };
    let mut replayed = Replayed {
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
        Ok(body) => replayable(body, &taken.attributes).map_err(|e| e.to_string()),
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
                ops::queues::release(sqs, from, &taken.receipt_handle).await?;
                return Ok(replayed);
            }
            let mut attributes = taken.attributes.clone();
            attributes.remove(domain::message::attribute::QUARANTINE_REASON);
            attributes
        }
    };
    ops::queues::move_message(sqs, from, &taken, &deployment.webhook_queue, &attributes).await?;
    replayed.replayed = true;
    Ok(replayed)
}

pub fn render(replayed: &Replayed) -> String {
    let what = match (&replayed.tenant, &replayed.event, replayed.object_id) {
        (Some(tenant), Some(event), Some(id)) => format!("{tenant} {event} {id}"),
        (Some(tenant), _, _) => format!("{tenant}'s message"),
        _ => "the message".to_owned(),
    };
    match (replayed.replayed, &replayed.refused_because) {
        (true, None) => format!(
            "{}: {what} is back on the webhook queue; the worker applies it (its dedup makes a \
replay safe)\n",
            replayed.message_id
        ),
        (true, Some(reason)) => format!(
            "{}: sent to the webhook queue anyway, though this command reads it as: {reason}; a \
worker that cannot apply it quarantines it again\n",
            replayed.message_id
        ),
        (false, reason) => format!(
            "{}: stays in the quarantine: {}; replay it once the worker can apply it (or with \
--anyway, if the deployed worker is newer than this command)\n",
            replayed.message_id,
            reason.as_deref().unwrap_or("not replayed")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_envelope_goes_back_without_its_reason_and_with_the_names_of_its_body() {
        let quarantined = attributes(&[
            ("tenant", "acme"),
            ("receivedAt", "2026-12-01T10:00:00Z"),
            ("idempotencyKey", "k-1"),
            (
                "quarantineReason",
                "invalid event name: \"Customer.Update\"",
            ),
        ]);
        let body =
            r#"{"subscriptionId":9,"event":"customer.update","id":7,"value":{"id":7,"version":2}}"#;
        let replay = replayable(body, &quarantined).unwrap();
        assert_eq!(
            (
                replay.tenant.as_str(),
                replay.event.as_str(),
                replay.object_id
            ),
            ("acme", "customer.update", 7)
        );
        assert_eq!(
            replay.attributes,
            attributes(&[
                ("tenant", "acme"),
                ("receivedAt", "2026-12-01T10:00:00Z"),
                ("idempotencyKey", "k-1"),
                ("event", "customer.update"),
                ("objectId", "7"),
                ("subscriptionId", "9"),
            ])
        );
    }

    #[test]
    fn what_the_worker_would_quarantine_again_is_refused_with_its_reason() {
        let tenant = attributes(&[("tenant", "acme")]);
        let refused = |body: &str, attributes: &BTreeMap<String, String>| {
            replayable(body, attributes).unwrap_err().to_string()
        };
        assert_eq!(
            refused(r#"{"event":"customer.update","id":"seven"}"#, &tenant),
            "id must be a positive integer"
        );
        assert_eq!(
            refused(r#"{"event":"customer.update","id":7}"#, &BTreeMap::new()),
            "message has no tenant attribute"
        );
        let encoded = attributes(&[("tenant", "acme"), ("bodyEncoding", "base64")]);
        assert_eq!(
            refused("AAEC", &encoded),
            "message body is base64 (not a JSON envelope)"
        );
    }
}
