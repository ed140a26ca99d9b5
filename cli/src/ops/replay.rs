//! Replays of the change bus's archive to its consumers (EventBridge's StartReplay). A replay cannot
//! filter by content, only by rule: one narrowed to a company or a type goes to temporary copies of
//! the bus's rules whose patterns also ask for that company or type and for a replayed event.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::{ReplayDestination, ReplayState, Target};
use serde_json::{Map, Value, json};

use super::{AwsError, sdk_call};

/// The prefix of the temporary rules of a narrowed replay: its own, and deleted when it ends.
pub const TEMPORARY_RULE_PREFIX: &str = "tw-replay-";

/// Which changes a replay sends again, besides its window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Narrowing {
    pub tenant: Option<String>,
    pub object_type: Option<String>,
}

impl Narrowing {
    pub fn is_whole(&self) -> bool {
        self.tenant.is_none() && self.object_type.is_none()
    }

    /// The key pattern of the changes wanted: an item's `pk` is `tenant#type#id`, in every stream
    /// record (an insert's, a modification's and a removal's alike).
    fn key_pattern(&self) -> Value {
        match (&self.tenant, &self.object_type) {
            (Some(tenant), Some(object_type)) => {
                json!([{"prefix": format!("{tenant}#{object_type}#")}])
            }
            (Some(tenant), None) => json!([{"prefix": format!("{tenant}#")}]),
            (None, Some(object_type)) => json!([{"wildcard": format!("*#{object_type}#*")}]),
            (None, None) => json!([{"exists": true}]),
        }
    }
}

/// A consumer's rule pattern narrowed for a replay: what it matched, of the company or type asked
/// for, and only replayed events (never a live one that arrives while the replay runs).
pub fn narrowed(pattern: Option<&str>, narrowing: &Narrowing) -> Result<String, serde_json::Error> {
    let mut pattern: Map<String, Value> = match pattern {
        Some(text) => serde_json::from_str(text)?,
        None => Map::new(),
    };
    pattern.insert("replay-name".to_owned(), json!([{"exists": true}]));
    set_at(
        &mut pattern,
        &["detail", "dynamodb", "Keys", "pk", "S"],
        narrowing.key_pattern(),
    );
    serde_json::to_string(&pattern)
}

/// Sets `value` at `path` in the pattern, making (or replacing) the objects on the way.
fn set_at(map: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((name, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        map.insert((*name).to_owned(), value);
        return;
    }
    let slot = map
        .entry((*name).to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    if let Value::Object(inner) = slot {
        set_at(inner, rest, value);
    }
}

/// A consumer's rule on the bus, as a narrowed replay copies it.
#[derive(Debug, Clone)]
pub struct ConsumerRule {
    pub name: String,
    pub pattern: Option<String>,
    pub targets: Vec<Target>,
}

/// The bus's rules that consumers made: not the ones EventBridge manages (the archive's own).
pub async fn consumer_rules(events: &Client, bus: &str) -> Result<Vec<ConsumerRule>, AwsError> {
    let listed = events
        .list_rules()
        .event_bus_name(bus)
        .send()
        .await
        .map_err(sdk_call(format!("listing the rules of {bus}")))?;
    let mut rules = Vec::new();
    for rule in listed.rules.unwrap_or_default() {
        let name = rule.name.unwrap_or_default();
        if rule.managed_by.is_some() || name.starts_with(TEMPORARY_RULE_PREFIX) {
            continue;
        }
        let targets = rule_targets(events, bus, &name).await?;
        rules.push(ConsumerRule {
            name,
            pattern: rule.event_pattern,
            targets,
        });
    }
    Ok(rules)
}

async fn rule_targets(events: &Client, bus: &str, rule: &str) -> Result<Vec<Target>, AwsError> {
    Ok(events
        .list_targets_by_rule()
        .event_bus_name(bus)
        .rule(rule)
        .send()
        .await
        .map_err(sdk_call(format!("listing the targets of rule {rule}")))?
        .targets
        .unwrap_or_default())
}

/// Makes the narrowed copies of the consumers' rules; their ARNs.
pub async fn put_narrowed_rules(
    events: &Client,
    bus: &str,
    replay: &str,
    rules: &[ConsumerRule],
    narrowing: &Narrowing,
) -> Result<Vec<String>, AwsError> {
    let mut arns = Vec::new();
    for (at, rule) in rules.iter().enumerate() {
        let name = temporary_rule(replay, at);
        let pattern = narrowed(rule.pattern.as_deref(), narrowing).map_err(super::call(
            format!("reading the pattern of rule {}", rule.name),
        ))?;
        let made = events
            .put_rule()
            .event_bus_name(bus)
            .name(&name)
            .description(format!("{} narrowed for replay {replay}", rule.name))
            .event_pattern(pattern)
            .send()
            .await
            .map_err(sdk_call(format!("making rule {name}")))?;
        events
            .put_targets()
            .event_bus_name(bus)
            .rule(&name)
            .set_targets(Some(rule.targets.clone()))
            .send()
            .await
            .map_err(sdk_call(format!(
                "giving rule {name} the targets of {}",
                rule.name
            )))?;
        arns.extend(made.rule_arn);
    }
    Ok(arns)
}

fn temporary_rule(replay: &str, at: usize) -> String {
    format!(
        "{TEMPORARY_RULE_PREFIX}{}-{at}",
        replay.trim_start_matches(TEMPORARY_RULE_PREFIX)
    )
}

/// Deletes a narrowed replay's rules (their targets first, as EventBridge asks).
pub async fn delete_narrowed_rules(
    events: &Client,
    bus: &str,
    replay: &str,
    count: usize,
) -> Result<(), AwsError> {
    for at in 0..count {
        let name = temporary_rule(replay, at);
        let ids: Vec<String> = rule_targets(events, bus, &name)
            .await?
            .into_iter()
            .map(|target| target.id)
            .collect();
        if !ids.is_empty() {
            events
                .remove_targets()
                .event_bus_name(bus)
                .rule(&name)
                .set_ids(Some(ids))
                .send()
                .await
                .map_err(sdk_call(format!("removing the targets of rule {name}")))?;
        }
        events
            .delete_rule()
            .event_bus_name(bus)
            .name(&name)
            .send()
            .await
            .map_err(sdk_call(format!("deleting rule {name}")))?;
    }
    Ok(())
}

/// Starts a replay of the archive's events between two times to the bus (to these rules only,
/// when given).
pub async fn start(
    events: &Client,
    name: &str,
    archive: &str,
    bus: &str,
    window: (jiff::Timestamp, jiff::Timestamp),
    only_rules: Option<Vec<String>>,
) -> Result<(), AwsError> {
    let time = |at: jiff::Timestamp| {
        aws_sdk_eventbridge::primitives::DateTime::from_millis(at.as_millisecond())
    };
    let destination = ReplayDestination::builder()
        .arn(bus)
        .set_filter_arns(only_rules)
        .build()
        .map_err(super::call("describing the replay's destination"))?;
    events
        .start_replay()
        .replay_name(name)
        .event_source_arn(archive)
        .event_start_time(time(window.0))
        .event_end_time(time(window.1))
        .destination(destination)
        .send()
        .await
        .map_err(sdk_call(format!("starting replay {name}")))?;
    Ok(())
}

/// Where a replay stands: its state, its reason when it failed, and the time of the last event
/// it sent.
pub async fn state(
    events: &Client,
    name: &str,
) -> Result<(ReplayState, Option<String>, Option<jiff::Timestamp>), AwsError> {
    let replay = events
        .describe_replay()
        .replay_name(name)
        .send()
        .await
        .map_err(sdk_call(format!("reading replay {name}")))?;
    let last = replay
        .event_last_replayed_time
        .and_then(|at| jiff::Timestamp::from_millisecond(at.to_millis().ok()?).ok());
    Ok((
        replay.state.unwrap_or(ReplayState::Starting),
        replay.state_reason,
        last,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_narrowed_pattern_keeps_what_the_rule_matched_and_asks_for_the_company_and_a_replay() {
        let narrowing = Narrowing {
            tenant: Some("301".into()),
            object_type: Some("customer".into()),
        };
        let rule =
            r#"{"source":["tripletex.webhooks"],"detail":{"eventName":["INSERT","MODIFY"]}}"#;
        let pattern: Value =
            serde_json::from_str(&narrowed(Some(rule), &narrowing).unwrap()).unwrap();
        assert_eq!(
            pattern,
            json!({
                "source": ["tripletex.webhooks"],
                "replay-name": [{"exists": true}],
                "detail": {
                    "eventName": ["INSERT", "MODIFY"],
                    "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "301#customer#"}]}}}
                }
            })
        );
        let by_type = Narrowing {
            tenant: None,
            object_type: Some("invoice".into()),
        };
        let pattern: Value = serde_json::from_str(&narrowed(None, &by_type).unwrap()).unwrap();
        assert_eq!(
            pattern["detail"]["dynamodb"]["Keys"]["pk"]["S"],
            json!([{"wildcard": "*#invoice#*"}])
        );
        assert!(narrowed(Some("not json"), &by_type).is_err());
    }
}
