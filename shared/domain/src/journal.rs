//! The receipt journal: one small JSON line per request the receiver answered, per record the worker
//! settled and per object the sync queued, so that an operator can answer "what did Tripletex send
//! us for company 301's customer 7 between 10:00 and 10:05, and what became of each call?"
//! (`tripletex-webhooks log`). The lines carry ids, names and outcomes, never a credential or a
//! value. One request id runs through them: the receiver's request id rides on the queued message
//! (`message::attribute::REQUEST_ID`), the worker journals it and keeps it on the item
//! (`item::LAST_REQUEST`), and so it reaches the stream, the change events and the mirror's history.
//! What the sync queues carries `sync:<run>` instead ([`sync_request`]).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::dedup::{Outcome, Source, Write};

/// The field that marks a log line as the journal's, and says which hop wrote it.
pub const MARK: &str = "journal";

/// Idempotency keys and reasons are cut to this many characters: a line stays small whatever a
/// caller sends.
const LONGEST_TEXT: usize = 120;

/// The request id of what a sync run queues.
pub fn sync_request(run_id: &str) -> String {
    format!("{SYNC_PREFIX}{run_id}")
}

const SYNC_PREFIX: &str = "sync:";

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "journal", rename_all = "camelCase")]
pub enum Entry {
    Received(Received),
    Settled(Settled),
    Queued(Queued),
}

/// What the receiver answered to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    pub at: Timestamp,
    pub request: String,
    /// Only once the caller proved who it is: an unauthenticated caller's claims are not journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub bytes: u64,
    pub status: u16,
    pub outcome: Receipt,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Tripletex's `Idempotency-Key` when it sent one: the same on each of its retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Where a refused request came from (the caller's address as the front door saw it): who is
    /// knocking with a wrong credential. Not kept for a request the receiver took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The receiver's answer, by class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Receipt {
    Queued,
    Quarantined,
    Unauthorized,
    /// The company is removed or being removed (410).
    Gone,
    TooLarge,
    MethodNotAllowed,
    /// The queue could not take it: Tripletex is asked to retry (503).
    QueueDown,
}

/// What the worker did with one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settled {
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The queue's message id, for a record without a request id (what it is known by then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    pub outcome: Settlement,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What became of a record at the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    /// Stored: the copy now holds this version (or this tombstone).
    Accepted,
    /// Stored without a version (Tripletex sent none): its content differed.
    Unversioned,
    /// Tripletex's answer replaced a copy it contradicted.
    Replaced,
    Duplicate,
    /// A duplicate that came the other way (a webhook of what the sync stored, or the reverse).
    Corroborated,
    Stale,
    AfterDelete,
    Forgotten,
    Quarantined,
    /// Its company is removed: dropped, never written.
    Dropped,
    /// Not settled yet: the queue delivers it again.
    Failed,
}

impl Settlement {
    /// The store's outcome of a write, as the journal names it.
    pub fn of(outcome: Outcome, write: &Write) -> Self {
        match (outcome, write) {
            (Outcome::Accepted, Write::Unversioned { .. }) => Self::Unversioned,
            (Outcome::Accepted, _) => Self::Accepted,
            (Outcome::Replaced, _) => Self::Replaced,
            (Outcome::Duplicate, _) => Self::Duplicate,
            (Outcome::Corroborated, _) => Self::Corroborated,
            (Outcome::Stale, _) => Self::Stale,
            (Outcome::AfterDelete, _) => Self::AfterDelete,
            (Outcome::Forgotten, _) => Self::Forgotten,
        }
    }

    /// Whether the record reached the copy (a version, a tombstone or a replacement).
    pub fn stored(self) -> bool {
        matches!(self, Self::Accepted | Self::Unversioned | Self::Replaced)
    }
}

/// One object a sync run queued through the worker's dedup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Queued {
    pub at: Timestamp,
    pub run: String,
    pub tenant: String,
    #[serde(rename = "type")]
    pub object_type: String,
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    pub outcome: Fetched,
    /// Counted as drift: a change no webhook had brought when the run compared.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drift: bool,
}

/// What the sync queued for an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fetched {
    /// Fetched from Tripletex, as an upsert.
    Fetched,
    /// Fetched to replace a copy Tripletex contradicts.
    Replacing,
    /// Tripletex confirmed it gone: a tombstone.
    Tombstoned,
}

/// Now, to the millisecond: a line's time needs no more.
pub fn now() -> Timestamp {
    let now = Timestamp::now();
    now.round(jiff::Unit::Millisecond).unwrap_or(now)
}

/// A text a caller sent, cut to a journal line's measure.
pub fn bounded(text: &str) -> String {
    text.chars().take(LONGEST_TEXT).collect()
}

impl Entry {
    pub fn at(&self) -> Timestamp {
        match self {
            Self::Received(received) => received.at,
            Self::Settled(settled) => settled.at,
            Self::Queued(queued) => queued.at,
        }
    }

    /// The request the line belongs to: the receiver's request id, the sync's run, or for a
    /// record that carried neither, its queue message.
    pub fn request(&self) -> String {
        match self {
            Self::Received(received) => received.request.clone(),
            Self::Settled(settled) => settled.request.clone().unwrap_or_else(|| {
                format!("message:{}", settled.message.as_deref().unwrap_or("-"))
            }),
            Self::Queued(queued) => sync_request(&queued.run),
        }
    }

    /// The trail the line belongs to: its request, and for what a sync run queued, the object too
    /// (a run queues thousands: each object's fetch and settlement is a trail of its own).
    fn trail(&self) -> String {
        let request = self.request();
        match (
            request.starts_with(SYNC_PREFIX),
            self.tenant(),
            self.object_type(),
            self.id(),
        ) {
            (true, Some(tenant), Some(object_type), Some(id)) => {
                format!("{request}/{tenant}#{object_type}#{id}")
            }
            _ => request,
        }
    }

    fn tenant(&self) -> Option<&str> {
        match self {
            Self::Received(received) => received.tenant.as_deref(),
            Self::Settled(settled) => settled.tenant.as_deref(),
            Self::Queued(queued) => Some(&queued.tenant),
        }
    }

    fn object_type(&self) -> Option<&str> {
        match self {
            Self::Received(received) => received.event.as_deref().map(event_object),
            Self::Settled(settled) => settled.object_type.as_deref(),
            Self::Queued(queued) => Some(&queued.object_type),
        }
    }

    fn id(&self) -> Option<i64> {
        match self {
            Self::Received(received) => received.id,
            Self::Settled(settled) => settled.id,
            Self::Queued(queued) => Some(queued.id),
        }
    }

    fn event(&self) -> Option<&str> {
        match self {
            Self::Received(received) => received.event.as_deref(),
            Self::Settled(settled) => settled.event.as_deref(),
            Self::Queued(_) => None,
        }
    }

    /// The outcome's name, as `--outcome` takes it.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Received(received) => received.outcome.name(),
            Self::Settled(settled) => settled.outcome.name(),
            Self::Queued(queued) => queued.outcome.name(),
        }
    }
}

fn event_object(event: &str) -> &str {
    event.split_once('.').map_or(event, |(object, _)| object)
}

macro_rules! names {
    ($kind:ty: $($variant:ident => $name:literal),+ $(,)?) => {
        impl $kind {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),+
                }
            }
        }
    };
}

names!(Receipt: Queued => "queued", Quarantined => "quarantined", Unauthorized => "unauthorized",
    Gone => "gone", TooLarge => "too_large", MethodNotAllowed => "method_not_allowed",
    QueueDown => "queue_down");
names!(Settlement: Accepted => "accepted", Unversioned => "unversioned", Replaced => "replaced",
    Duplicate => "duplicate", Corroborated => "corroborated", Stale => "stale",
    AfterDelete => "after_delete", Forgotten => "forgotten", Quarantined => "quarantined",
    Dropped => "dropped", Failed => "failed");
names!(Fetched: Fetched => "fetched", Replacing => "replacing", Tombstoned => "tombstoned");

/// Every outcome name a line can carry, at every hop, for `--outcome` and its error.
pub fn outcome_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Receipt::ALL
        .iter()
        .map(|o| o.name())
        .chain(Settlement::ALL.iter().map(|o| o.name()))
        .chain(Fetched::ALL.iter().map(|o| o.name()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// What `log` asks of the journal: every field given must match; the window is half-open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub tenant: Option<String>,
    pub object_type: Option<String>,
    pub id: Option<i64>,
    pub event: Option<String>,
    pub outcome: Option<String>,
    pub request: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl Filter {
    fn in_window(&self, at: Timestamp) -> bool {
        self.from.is_none_or(|from| at >= from) && self.to.is_none_or(|to| at < to)
    }

    /// Whether a trail answers the question: the object filters and the outcome hold for one of its
    /// lines, and one of its lines falls in the window (a request received at 09:59 and stored at
    /// 10:00 belongs to a window from 10:00).
    pub fn matches(&self, trail: &Trail) -> bool {
        let any = |holds: &dyn Fn(&Entry) -> bool| trail.entries.iter().any(holds);
        self.request.as_ref().is_none_or(|r| *r == trail.request)
            && any(&|e| self.in_window(e.at()))
            && self
                .tenant
                .as_ref()
                .is_none_or(|t| any(&|e| e.tenant() == Some(t)))
            && self
                .object_type
                .as_ref()
                .is_none_or(|t| any(&|e| e.object_type() == Some(t)))
            && self.id.is_none_or(|id| any(&|e| e.id() == Some(id)))
            && self
                .event
                .as_ref()
                .is_none_or(|ev| any(&|e| e.event() == Some(ev)))
            && self
                .outcome
                .as_ref()
                .is_none_or(|o| any(&|e| e.outcome() == o))
    }
}

/// Every line of one request, in time order: at most one answer of the receiver, then what the
/// worker did with it (more than once when a delivery failed and came again), or the objects a
/// sync run queued.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trail {
    /// The request id (a sync run's for what it queued).
    pub request: String,
    pub entries: Vec<Entry>,
}

impl Trail {
    pub fn received(&self) -> Option<&Received> {
        self.entries.iter().find_map(|entry| match entry {
            Entry::Received(received) => Some(received),
            _ => None,
        })
    }

    /// The worker's last word on the request.
    pub fn settled(&self) -> Option<&Settled> {
        self.entries.iter().rev().find_map(|entry| match entry {
            Entry::Settled(settled) => Some(settled),
            _ => None,
        })
    }

    pub fn started(&self) -> Option<Timestamp> {
        self.entries.first().map(Entry::at)
    }

    /// What a sync run queued for the object, when the trail is one.
    pub fn queued(&self) -> Option<&Queued> {
        self.entries.iter().find_map(|entry| match entry {
            Entry::Queued(queued) => Some(queued),
            _ => None,
        })
    }

    /// The company, from whichever line names it.
    pub fn tenant(&self) -> Option<&str> {
        self.entries.iter().find_map(Entry::tenant)
    }

    /// The object's type and id, from whichever lines name them.
    pub fn object(&self) -> (Option<&str>, Option<i64>) {
        (
            self.entries.iter().find_map(Entry::object_type),
            self.entries.iter().find_map(Entry::id),
        )
    }

    pub fn event(&self) -> Option<&str> {
        self.entries.iter().find_map(Entry::event)
    }

    /// Whether a person should look: a caller refused as unauthorized (a wrong credential at
    /// Tripletex, or someone else knocking), a webhook quarantined at either hop, the queue down,
    /// or a record whose last delivery failed.
    pub fn needs_a_person(&self) -> bool {
        let refused = self.received().is_some_and(|received| {
            matches!(
                received.outcome,
                Receipt::Unauthorized | Receipt::Quarantined | Receipt::QueueDown
            )
        });
        let unsettled = self.settled().is_some_and(|settled| {
            matches!(
                settled.outcome,
                Settlement::Quarantined | Settlement::Failed
            )
        });
        refused || unsettled
    }
}

/// The lines grouped by request (and by object within a sync run), each trail in time order, the
/// trails by their first line.
pub fn trails(entries: impl IntoIterator<Item = Entry>) -> Vec<Trail> {
    let mut by_trail: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for entry in entries {
        by_trail.entry(entry.trail()).or_default().push(entry);
    }
    let mut trails: Vec<Trail> = by_trail
        .into_values()
        .filter_map(|mut entries| {
            // A receipt first whatever the clocks say: the worker cannot settle before it.
            entries.sort_by_key(|entry| (!matches!(entry, Entry::Received(_)), entry.at()));
            let request = entries.first()?.request();
            Some(Trail { request, entries })
        })
        .collect();
    trails.sort_by(|a, b| (a.started(), &a.request).cmp(&(b.started(), &b.request)));
    trails
}

/// The trails of these lines that answer the question.
pub fn select(filter: &Filter, entries: impl IntoIterator<Item = Entry>) -> Vec<Trail> {
    trails(entries)
        .into_iter()
        .filter(|trail| filter.matches(trail))
        .collect()
}

/// A journal line read back from a log line; none for the log's other lines.
pub fn read_line(line: &str) -> Option<Entry> {
    let line = line.trim();
    if !line.starts_with('{') || !line.contains(r#""journal":"#) {
        return None;
    }
    serde_json::from_str(line).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_765_000_000 + second).unwrap()
    }

    fn received(request: &str, second: i64, outcome: Receipt) -> Entry {
        Entry::Received(Received {
            at: at(second),
            request: request.into(),
            tenant: Some("301".into()),
            event: Some("customer.update".into()),
            id: Some(7),
            bytes: 120,
            status: 200,
            outcome,
            reason: None,
            idempotency_key: Some("a3f1c2d4-5e6f-4a1b-8c9d-0e1f2a3b4c5d".into()),
            source: None,
        })
    }

    fn settled(request: &str, second: i64, outcome: Settlement) -> Entry {
        Entry::Settled(Settled {
            at: at(second),
            request: Some(request.into()),
            message: None,
            tenant: Some("301".into()),
            object_type: Some("customer".into()),
            id: Some(7),
            event: Some("customer.update".into()),
            version: Some(4),
            source: Some(Source::Webhook),
            outcome,
            reason: None,
        })
    }

    #[test]
    fn a_line_is_small_and_reads_back_as_written() {
        for entry in [
            received("9f0c7d2e-1b3a-4c5d-8e9f-0a1b2c3d4e5f", 0, Receipt::Queued),
            settled(
                "9f0c7d2e-1b3a-4c5d-8e9f-0a1b2c3d4e5f",
                1,
                Settlement::Accepted,
            ),
        ] {
            let line = serde_json::to_string(&entry).unwrap();
            assert!(line.len() < 360, "{} bytes: {line}", line.len());
            assert_eq!(read_line(&line), Some(entry));
        }
        assert_eq!(
            read_line(r#"{"level":"INFO","fields":{"message":"batch done"}}"#),
            None
        );
        assert_eq!(read_line("not json"), None);
    }

    #[test]
    fn a_request_is_one_trail_from_its_receipt_to_its_last_delivery() {
        let trails = trails([
            settled("r1", 3, Settlement::Accepted),
            settled("r1", 2, Settlement::Failed),
            received("r2", 5, Receipt::Unauthorized),
            received("r1", 1, Receipt::Queued),
        ]);
        assert_eq!(trails.len(), 2);
        assert_eq!(trails[0].request, "r1");
        assert_eq!(trails[0].received().unwrap().outcome, Receipt::Queued);
        assert_eq!(trails[0].settled().unwrap().outcome, Settlement::Accepted);
        assert!(!trails[0].needs_a_person(), "the retry stored it");
        assert!(trails[1].needs_a_person(), "a 401");
    }

    #[test]
    fn the_filter_holds_each_field_and_the_window_to_some_line_of_the_trail() {
        let trail = &trails([
            received("r1", 59, Receipt::Queued),
            settled("r1", 61, Settlement::Stale),
        ])[0];
        let window = Filter {
            from: Some(at(60)),
            to: Some(at(120)),
            ..Filter::default()
        };
        assert!(window.matches(trail), "stored within the window");
        let before = Filter {
            to: Some(at(59)),
            ..Filter::default()
        };
        assert!(!before.matches(trail));
        for (filter, holds) in [
            (
                Filter {
                    tenant: Some("301".into()),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    tenant: Some("302".into()),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    object_type: Some("customer".into()),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    id: Some(8),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    event: Some("customer.update".into()),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    outcome: Some("stale".into()),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    outcome: Some("accepted".into()),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    request: Some("r2".into()),
                    ..Filter::default()
                },
                false,
            ),
        ] {
            assert_eq!(filter.matches(trail), holds, "{filter:?}");
        }
    }

    #[test]
    fn a_record_without_a_request_is_known_by_its_message_and_a_sync_by_its_run() {
        let mut record = settled("r1", 0, Settlement::Duplicate);
        if let Entry::Settled(settled) = &mut record {
            settled.request = None;
            settled.message = Some("m-r1-0".into());
        }
        assert_eq!(record.request(), "message:m-r1-0");
        let queued = Entry::Queued(Queued {
            at: at(0),
            run: "20261206T1000Z-nightly".into(),
            tenant: "301".into(),
            object_type: "customer".into(),
            id: 7,
            version: Some(5),
            outcome: Fetched::Fetched,
            drift: true,
        });
        assert_eq!(queued.request(), "sync:20261206T1000Z-nightly");
        let mut other = queued.clone();
        if let Entry::Queued(q) = &mut other {
            q.id = 8;
        }
        let trails = trails([queued, other]);
        assert_eq!(trails.len(), 2, "one trail per object a run queued");
        assert!(
            trails
                .iter()
                .all(|t| t.request == "sync:20261206T1000Z-nightly")
        );
    }

    #[test]
    fn every_outcome_has_one_name_that_reads_back() {
        let names = outcome_names();
        assert!(names.contains(&"queued") && names.contains(&"after_delete"));
        for outcome in Settlement::ALL {
            let json = serde_json::to_string(outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.name()));
        }
        for outcome in Receipt::ALL {
            let json = serde_json::to_string(outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.name()));
        }
    }
}
