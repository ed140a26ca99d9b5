//! What `show` says of one object: the stored copy and, when asked, what Tripletex has, and the
//! rule for whether they agree.

use crate::context::{Answer, CliError, Context, object_key, tripletex_now};
use crate::ops;
use crate::render::stored;

use serde::Serialize;

use crate::ops::tables::StoredObject;
use crate::tripletex::InTripletex;

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The company (tenant), e.g. default.
    company: String,
    /// The object type, as in the event name (customer, product, closeGroup, ...).
    object_type: String,
    id: i64,
    /// Also the version Tripletex has now, side by side (one call to Tripletex).
    #[arg(long)]
    tripletex: bool,
}

pub async fn run(ctx: &Context, args: &ShowArgs) -> Result<Answer, CliError> {
    let key = object_key(ctx, &args.company, &args.object_type, args.id).await?;
    let stored = ops::tables::stored_object(
        ctx.dynamodb(),
        &ctx.payloads(),
        &ctx.deployment.objects_table,
        &key.to_string(),
    )
    .await?;
    let now = if args.tripletex {
        Some(tripletex_now(ctx, &args.company, &args.object_type, args.id, "*").await?)
    } else {
        None
    };
    let shown = Shown {
        key: key.to_string(),
        stored,
        in_tripletex: now.clone().flatten(),
        checked_tripletex: now.is_some(),
    };
    let needs = shown.stored.is_none() || (shown.checked_tripletex && !shown.agrees());
    ctx.answer(&shown, render, needs)
}

/// One object: the stored copy and, when asked, what Tripletex has.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shown {
    pub key: String,
    pub stored: Option<StoredObject>,
    pub in_tripletex: Option<InTripletex>,
    pub checked_tripletex: bool,
}

impl Shown {
    /// The copy holds what Tripletex has: the same version, or a tombstone of what it no longer has.
    pub fn agrees(&self) -> bool {
        match (&self.stored, &self.in_tripletex) {
            (Some(stored), Some(now)) => !stored.deleted && stored.version == now.version,
            (Some(stored), None) => stored.deleted,
            (None, now) => now.is_none(),
        }
    }
}

/// The stored copy, and beside it what Tripletex has when it was asked.
pub fn render(shown: &Shown) -> String {
    let Some(object) = &shown.stored else {
        let mut out = format!("{}: not in the copy\n", shown.key);
        if shown.checked_tripletex {
            out.push_str(&match &shown.in_tripletex {
                Some(now) => format!(
                    "Tripletex has it at version {}: the next reconciliation fetches it\n",
                    now.version
                        .map_or_else(|| "-".to_owned(), |v| v.to_string())
                ),
                None => "Tripletex has no such object either\n".to_owned(),
            });
        }
        return out;
    };
    let mut out = stored(object);
    if shown.checked_tripletex {
        let now = match &shown.in_tripletex {
            Some(now) => format!(
                "Tripletex has version {}",
                now.version
                    .map_or_else(|| "-".to_owned(), |v| v.to_string())
            ),
            None => "Tripletex has no such object (404)".to_owned(),
        };
        let verdict = if shown.agrees() {
            "the copy agrees"
        } else {
            "the copy differs: the next reconciliation corrects it"
        };
        out.push_str(&format!("{now}: {verdict}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(version: i64, deleted: bool) -> StoredObject {
        StoredObject::at("acme#customer#1", version, deleted)
    }

    fn now(version: i64) -> InTripletex {
        InTripletex {
            version: Some(version),
            value: serde_json::Value::Null,
        }
    }

    #[test]
    fn the_copy_agrees_with_the_same_version_or_a_tombstone_of_what_tripletex_no_longer_has() {
        let shown = |stored, in_tripletex| Shown {
            key: "acme#customer#1".into(),
            stored,
            in_tripletex,
            checked_tripletex: true,
        };
        assert!(shown(Some(stored(3, false)), Some(now(3))).agrees());
        assert!(
            !shown(Some(stored(2, false)), Some(now(3))).agrees(),
            "behind"
        );
        assert!(
            !shown(Some(stored(3, true)), Some(now(3))).agrees(),
            "a tombstone of a live object"
        );
        assert!(
            shown(Some(stored(3, true)), None).agrees(),
            "deleted in both"
        );
        assert!(
            !shown(Some(stored(3, false)), None).agrees(),
            "Tripletex deleted it"
        );
        assert!(!shown(None, Some(now(1))).agrees(), "never came");
        assert!(shown(None, None).agrees());
    }
}
