//! What `status` shows, and the rule for when a deployment needs a person (the command's exit
//! status). Plain data: `aws.rs` reads it, `render.rs` prints it.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub deployment: String,
    pub queues: Vec<QueueStatus>,
    pub companies: Vec<CompanyStatus>,
    /// What needs a person, one line each; empty when all is well.
    pub attention: Vec<String>,
}

/// What a queue is for: its depth means something else for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum QueueRole {
    /// Webhooks on their way to the worker: depth is backlog.
    Webhooks,
    /// Sync tasks: depth is a run in progress.
    SyncTasks,
    /// Messages that failed every delivery: each needs a person.
    DeadLetters,
    /// Authenticated bodies that were not envelopes: each needs a person.
    Quarantine,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus {
    pub name: &'static str,
    pub role: QueueRole,
    pub url: String,
    /// Waiting to be received.
    pub visible: u64,
    /// Received and not yet deleted (being worked on, or waiting for their visibility timeout).
    pub in_flight: u64,
}

impl QueueStatus {
    pub fn depth(&self) -> u64 {
        self.visible + self.in_flight
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyStatus {
    pub tenant: String,
    /// The last sync run of each object type, by type.
    pub types: Vec<TypeStatus>,
    /// The keeper's resync requests by state (PENDING, RUNNING, DONE, FAILED).
    pub resync_requests: Vec<(String, u64)>,
}

/// A type's last sync run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeStatus {
    pub object_type: String,
    pub run_id: String,
    pub mode: String,
    pub state: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub listed: u64,
    pub fetched: u64,
    pub tombstoned: u64,
    pub drift_corrected: u64,
    /// Why the type failed in that run.
    pub failure: Option<String>,
}

/// What needs a person: anything dead-lettered or quarantined, and any type whose last sync run
/// failed (its copy is not proven exact).
pub fn needs_a_person(queues: &[QueueStatus], companies: &[CompanyStatus]) -> Vec<String> {
    let mut attention = Vec::new();
    for queue in queues {
        let depth = queue.depth();
        match queue.role {
            QueueRole::DeadLetters if depth > 0 => attention.push(format!(
                "{depth} messages in {}: redrive them once the cause is fixed (`dlq redrive`)",
                queue.name
            )),
            QueueRole::Quarantine if depth > 0 => attention.push(format!(
                "{depth} quarantined bodies: read their reasons (`quarantine`)"
            )),
            _ => {}
        }
    }
    for company in companies {
        for object_type in &company.types {
            if object_type.state == "failed" {
                attention.push(format!(
                    "{} {}: the last sync run ({}) failed: {}",
                    company.tenant,
                    object_type.object_type,
                    object_type.run_id,
                    object_type
                        .failure
                        .as_deref()
                        .unwrap_or("see the run record")
                ));
            }
        }
    }
    attention
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(name: &'static str, role: QueueRole, visible: u64, in_flight: u64) -> QueueStatus {
        QueueStatus {
            name,
            role,
            url: String::new(),
            visible,
            in_flight,
        }
    }

    fn company(state: &str) -> CompanyStatus {
        CompanyStatus {
            tenant: "acme".into(),
            types: vec![TypeStatus {
                object_type: "customer".into(),
                run_id: "r1".into(),
                mode: "reconcile".into(),
                state: state.into(),
                started_at: None,
                finished_at: None,
                listed: 0,
                fetched: 0,
                tombstoned: 0,
                drift_corrected: 0,
                failure: (state == "failed").then(|| "Tripletex answered 401".into()),
            }],
            resync_requests: Vec::new(),
        }
    }

    #[test]
    fn a_backlog_or_a_run_in_progress_needs_nobody_but_dead_letters_quarantine_and_failed_runs_do()
    {
        let busy = [
            queue("webhook queue", QueueRole::Webhooks, 500, 10),
            queue("sync queue", QueueRole::SyncTasks, 1, 1),
            queue("webhook DLQ", QueueRole::DeadLetters, 0, 0),
            queue("quarantine", QueueRole::Quarantine, 0, 0),
        ];
        assert!(needs_a_person(&busy, &[company("running"), company("done")]).is_empty());

        let dead = [queue("webhook DLQ", QueueRole::DeadLetters, 2, 1)];
        assert_eq!(
            needs_a_person(&dead, &[]),
            ["3 messages in webhook DLQ: redrive them once the cause is fixed (`dlq redrive`)"]
        );
        let quarantined = [queue("quarantine", QueueRole::Quarantine, 1, 0)];
        assert_eq!(
            needs_a_person(&quarantined, &[]),
            ["1 quarantined bodies: read their reasons (`quarantine`)"]
        );
        assert_eq!(
            needs_a_person(&[], &[company("failed")]),
            ["acme customer: the last sync run (r1) failed: Tripletex answered 401"]
        );
    }
}
