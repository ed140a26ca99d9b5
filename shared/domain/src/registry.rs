//! The company registry: which Tripletex companies a deployment looks after, kept as data (one item
//! per company) instead of as entries in a secret, and the life of each: `onboarding` (added; the
//! keeper has not yet put its subscriptions in place) → `active` → `offboarding` (being removed: its
//! webhooks are refused, its syncs stop, the keeper deletes our subscriptions in it) → `removed`.
//! A removed company may be added again.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::TenantId;
use crate::tripletex::{Companies, TripletexCredentials};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompanyState {
    Onboarding,
    Active,
    Offboarding,
    Removed,
}

impl CompanyState {
    pub const ALL: [Self; 4] = [
        Self::Onboarding,
        Self::Active,
        Self::Offboarding,
        Self::Removed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Onboarding => "onboarding",
            Self::Active => "active",
            Self::Offboarding => "offboarding",
            Self::Removed => "removed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// The keeper keeps its subscriptions and the sync keeps its copy.
    pub fn is_looked_after(self) -> bool {
        matches!(self, Self::Onboarding | Self::Active)
    }

    /// Its webhooks are answered with a refusal and never queued.
    pub fn refuses_webhooks(self) -> bool {
        matches!(self, Self::Offboarding | Self::Removed)
    }
}

/// What happens to a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// An operator adds it (`companies add`).
    Add,
    /// The keeper put its subscriptions in place (and asked the sync for its backfill).
    Subscribed,
    /// An operator removes it (`companies remove`).
    Remove,
    /// The keeper deleted our subscriptions in it.
    Unsubscribed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a company that is {} cannot be {}", from.map_or("not registered", CompanyState::as_str), change_text(*change))]
pub struct RefusedChange {
    pub from: Option<CompanyState>,
    pub change: Change,
}

fn change_text(change: Change) -> &'static str {
    match change {
        Change::Add => "added",
        Change::Subscribed => "marked subscribed",
        Change::Remove => "removed",
        Change::Unsubscribed => "marked unsubscribed",
    }
}

/// The one rule of a company's life. `Subscribed` again on an active company and `Remove` again on
/// one being removed change nothing, so that a repeated keeper run or command is harmless.
pub fn next_state(
    from: Option<CompanyState>,
    change: Change,
) -> Result<CompanyState, RefusedChange> {
    use CompanyState::*;
    let next = match (from, change) {
        (None | Some(Removed), Change::Add) => Onboarding,
        (Some(Onboarding | Active), Change::Subscribed) => Active,
        (Some(Onboarding | Active | Offboarding), Change::Remove) => Offboarding,
        (Some(Offboarding), Change::Unsubscribed) => Removed,
        _ => return Err(RefusedChange { from, change }),
    };
    Ok(next)
}

/// One company of the registry. Its tokens are never here: `credential` names an entry of the
/// credentials secret, and `company_id` is the Basic user that acts for the company with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredCompany {
    pub tenant: TenantId,
    pub company_id: i64,
    pub credential: String,
    pub state: CompanyState,
    pub added_at: Timestamp,
    pub changed_at: Timestamp,
    /// When the keeper first had its subscriptions in place (onboarding's first step done).
    pub subscribed_at: Option<Timestamp>,
    pub name: Option<String>,
}

impl RegisteredCompany {
    /// A company as `companies add` registers it: onboarding, nothing done yet.
    pub fn added(tenant: TenantId, company_id: i64, credential: &str, at: Timestamp) -> Self {
        Self {
            tenant,
            company_id,
            credential: credential.to_owned(),
            state: CompanyState::Onboarding,
            added_at: at,
            changed_at: at,
            subscribed_at: None,
            name: None,
        }
    }
}

/// How long the worker trusts what it read of the registry. `companies remove --purge` waits this
/// long (and a batch's time) after a company is marked offboarding before it erases the copy, so
/// that nothing of the company is written after the purge.
pub const WORKER_REGISTRY_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The tenant a company gets when none is given: its company id, which is unique in Tripletex and
/// a valid tenant id.
pub fn tenant_for(company_id: i64) -> Option<TenantId> {
    if company_id <= 0 {
        return None;
    }
    TenantId::parse(&company_id.to_string()).ok()
}

/// The companies a deployment looks after, from the credentials secret and the registry together.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Onboarding and active companies, and the secret's own companies: the keeper keeps them and
    /// the sync syncs them.
    pub looked_after: Companies,
    /// Offboarding companies: the keeper deletes our subscriptions in them, nothing else touches them.
    pub leaving: Companies,
    /// Registered companies whose credential the secret does not hold, as `tenant: reason`.
    pub problems: Vec<String>,
}

/// The registry over the secret: a registered company is looked after while onboarding or active,
/// with the named credential acting for its company id; a tenant the registry has as offboarding or
/// removed is dropped even if the secret still lists it (a company added the old way can be removed
/// the new way).
pub fn directory(
    secret_companies: &Companies,
    credentials: &BTreeMap<String, TripletexCredentials>,
    registered: &[RegisteredCompany],
) -> Directory {
    let mut directory = Directory {
        looked_after: secret_companies.clone(),
        ..Directory::default()
    };
    for company in registered {
        directory.looked_after.0.remove(&company.tenant);
        if company.state == CompanyState::Removed {
            continue;
        }
        let Some(named) = credentials.get(&company.credential) else {
            directory.problems.push(format!(
                "{}: credential {:?} is not in the credentials secret",
                company.tenant, company.credential
            ));
            continue;
        };
        let acting = TripletexCredentials {
            company_id: Some(company.company_id),
            ..named.clone()
        };
        let into = if company.state.is_looked_after() {
            &mut directory.looked_after
        } else {
            &mut directory.leaving
        };
        into.0.insert(company.tenant.clone(), acting);
    }
    directory
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Secret;
    use CompanyState::*;

    #[test]
    fn a_company_lives_from_onboarding_to_removed_and_may_come_back() {
        let mut state = next_state(None, Change::Add).unwrap();
        assert_eq!(state, Onboarding);
        for (change, expected) in [
            (Change::Subscribed, Active),
            (Change::Subscribed, Active),
            (Change::Remove, Offboarding),
            (Change::Remove, Offboarding),
            (Change::Unsubscribed, Removed),
            (Change::Add, Onboarding),
            (Change::Remove, Offboarding),
        ] {
            state = next_state(Some(state), change).unwrap();
            assert_eq!(state, expected, "{change:?}");
        }
    }

    #[test]
    fn changes_out_of_order_are_refused_with_a_reason() {
        for (from, change) in [
            (Some(Onboarding), Change::Add),
            (Some(Active), Change::Add),
            (Some(Offboarding), Change::Add),
            (Some(Offboarding), Change::Subscribed),
            (Some(Removed), Change::Subscribed),
            (Some(Removed), Change::Remove),
            (None, Change::Remove),
            (Some(Active), Change::Unsubscribed),
            (None, Change::Subscribed),
        ] {
            assert!(next_state(from, change).is_err(), "{from:?} {change:?}");
        }
        assert_eq!(
            next_state(Some(Active), Change::Add)
                .unwrap_err()
                .to_string(),
            "a company that is active cannot be added"
        );
        assert_eq!(
            next_state(None, Change::Remove).unwrap_err().to_string(),
            "a company that is not registered cannot be removed"
        );
    }

    #[test]
    fn states_read_back_and_say_what_they_allow() {
        for state in CompanyState::ALL {
            assert_eq!(CompanyState::parse(state.as_str()), Some(state));
            assert_ne!(state.is_looked_after(), state.refuses_webhooks());
        }
        assert_eq!(CompanyState::parse("ACTIVE"), None);
    }

    #[test]
    fn a_company_id_is_its_own_tenant() {
        assert_eq!(tenant_for(201).unwrap().as_str(), "201");
        assert_eq!(tenant_for(0), None);
        assert_eq!(tenant_for(-4), None);
    }

    fn registered(
        tenant: &str,
        company_id: i64,
        credential: &str,
        state: CompanyState,
    ) -> RegisteredCompany {
        RegisteredCompany {
            state,
            ..RegisteredCompany::added(
                TenantId::parse(tenant).unwrap(),
                company_id,
                credential,
                Timestamp::UNIX_EPOCH,
            )
        }
    }

    #[test]
    fn the_registry_adds_to_the_secret_and_removes_from_it() {
        let secret = Companies::from_json(
            r#"{"companies": {
                "own": {"consumerToken": "c", "employeeToken": "e"},
                "old": {"consumerToken": "c", "employeeToken": "e", "companyId": 9}}}"#,
        )
        .unwrap();
        let credentials = BTreeMap::from([(
            "firm".to_owned(),
            TripletexCredentials {
                consumer_token: Secret::new("c"),
                employee_token: Secret::new("accountant"),
                company_id: None,
            },
        )]);
        let directory = directory(
            &secret,
            &credentials,
            &[
                registered("201", 201, "firm", Onboarding),
                registered("202", 202, "firm", Active),
                registered("203", 203, "firm", Offboarding),
                registered("204", 204, "firm", Removed),
                registered("old", 9, "firm", Removed),
                registered("205", 205, "nosuch", Active),
            ],
        );
        let tenants = |companies: &Companies| {
            companies
                .0
                .keys()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(tenants(&directory.looked_after), ["201", "202", "own"]);
        assert_eq!(tenants(&directory.leaving), ["203"]);
        let acting = &directory.looked_after.0[&TenantId::parse("202").unwrap()];
        assert_eq!(
            (acting.employee_token.expose(), acting.basic_user().as_str()),
            ("accountant", "202")
        );
        assert_eq!(
            directory.problems,
            ["205: credential \"nosuch\" is not in the credentials secret"]
        );
    }
}
