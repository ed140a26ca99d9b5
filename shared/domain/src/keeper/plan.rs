//! The keeper's pure plan: (every subscription, settings) → one step per subscription and per
//! missing desired event, each with its reason. Only subscriptions whose targetUrl is this
//! deployment's receiver are ever planned to change.

use serde::{Deserialize, Serialize};

use std::collections::BTreeSet;

use super::settings::{Endpoint, KeeperSettings, top_level_fields};
use crate::tripletex::{Subscription, SubscriptionStatus, SubscriptionWrite};

/// What the plan does to one subscription, or for one missing event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// PUT status ACTIVE at the current version, re-sending the auth (and fixing drift, if any).
    ReEnable {
        id: i64,
        version: Option<i32>,
        drift: Vec<Drift>,
    },
    /// PUT the desired fields / auth header at the current version.
    Update {
        id: i64,
        version: Option<i32>,
        drift: Vec<Drift>,
    },
    Create,
    LeaveAlone,
}

impl Action {
    /// Why the sync must fetch what the subscription missed once this action is done: a new
    /// subscription's type is backfilled, a re-enabled one's silent window resynced.
    pub fn resync_reason(&self) -> Option<crate::resync::ResyncReason> {
        match self {
            Self::ReEnable { .. } => Some(crate::resync::ResyncReason::ReEnabled),
            Self::Create => Some(crate::resync::ResyncReason::Created),
            Self::Update { .. } | Self::LeaveAlone => None,
        }
    }
}

/// Why a step is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Another integration's (or a person's) subscription: never changed.
    Foreign,
    /// Ours, active, as desired.
    InPlace,
    /// Ours, active, but for an event no longer desired: left in place.
    NotDesired,
    /// A second subscription of ours for the same event: the first one is kept up.
    DuplicateOfOurs,
    /// Disabled by a person: their choice stands.
    DisabledByPerson,
    DisabledForMisuse,
    DisabledForRateLimit,
    /// A status this version does not know: reported, not touched.
    UnknownStatus,
    /// Ours but Tripletex gave no id, so it cannot be addressed.
    NoId,
    TooManyErrors,
    Drifted,
    /// Ours, active, as desired, but asked to take the current credentials (rotation).
    AuthResent,
    Missing,
}

/// A difference between one of our subscriptions and the desired one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "field")]
pub enum Drift {
    Fields {
        current: String,
        desired: String,
    },
    AuthHeaderName {
        current: Option<String>,
        desired: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub subscription_id: Option<i64>,
    pub event: String,
    pub status: Option<SubscriptionStatus>,
    pub action: Action,
    pub reason: Reason,
}

pub fn is_ours(subscription: &Subscription, settings: &KeeperSettings) -> bool {
    subscription
        .target_url
        .as_deref()
        .and_then(Endpoint::parse)
        .is_some_and(|endpoint| endpoint == settings.endpoint)
}

/// The plan: one step for each subscription, and a `Create` for each desired event no subscription
/// of ours covers, in the order of the configured events.
pub fn plan(subscriptions: &[Subscription], settings: &KeeperSettings) -> Vec<Step> {
    let mut steps = Vec::with_capacity(subscriptions.len() + settings.events.len());
    let mut covered = BTreeSet::new();
    // Ours first, healthiest first, so that of two for one event the one kept up is the better.
    let mut ordered: Vec<&Subscription> = subscriptions.iter().collect();
    ordered.sort_by_key(|s| (!is_ours(s, settings), status_rank(s.status.as_ref()), s.id));
    for subscription in ordered {
        let ours = is_ours(subscription, settings);
        let event = subscription.event.clone().unwrap_or_default();
        let duplicate = ours && !covered.insert(event.clone());
        steps.push(plan_subscription(subscription, settings, ours, duplicate));
    }
    for event in &settings.events {
        if !covered.contains(event) {
            steps.push(Step {
                subscription_id: None,
                event: event.clone(),
                status: None,
                action: Action::Create,
                reason: Reason::Missing,
            });
        }
    }
    steps
}

fn status_rank(status: Option<&SubscriptionStatus>) -> u8 {
    match status {
        Some(SubscriptionStatus::Active) => 0,
        Some(SubscriptionStatus::DisabledTooManyErrors) => 1,
        Some(
            SubscriptionStatus::DisabledRateLimitExceeded | SubscriptionStatus::DisabledMisuse,
        ) => 2,
        Some(SubscriptionStatus::Disabled) => 3,
        Some(SubscriptionStatus::Unknown) | None => 4,
    }
}

/// The step for one subscription. `duplicate`: another of ours already covers its event.
pub fn plan_subscription(
    subscription: &Subscription,
    settings: &KeeperSettings,
    ours: bool,
    duplicate: bool,
) -> Step {
    let event = subscription.event.clone().unwrap_or_default();
    let leave = |reason| Step {
        subscription_id: subscription.id,
        event: event.clone(),
        status: subscription.status.clone(),
        action: Action::LeaveAlone,
        reason,
    };
    if !ours {
        return leave(Reason::Foreign);
    }
    let Some(id) = subscription.id else {
        return leave(Reason::NoId);
    };
    if duplicate {
        return leave(Reason::DuplicateOfOurs);
    }
    let desired = settings.events.contains(&event);
    let drift = if desired {
        drift(subscription, settings)
    } else {
        Vec::new()
    };
    let version = subscription.version;
    let re_enable = |reason| Step {
        subscription_id: Some(id),
        event: event.clone(),
        status: subscription.status.clone(),
        action: Action::ReEnable {
            id,
            version,
            drift: drift.clone(),
        },
        reason,
    };
    match subscription.status {
        Some(SubscriptionStatus::DisabledTooManyErrors) => re_enable(Reason::TooManyErrors),
        Some(SubscriptionStatus::DisabledMisuse) if settings.reenable.misuse => {
            re_enable(Reason::DisabledForMisuse)
        }
        Some(SubscriptionStatus::DisabledMisuse) => leave(Reason::DisabledForMisuse),
        Some(SubscriptionStatus::DisabledRateLimitExceeded)
            if settings.reenable.rate_limit_exceeded =>
        {
            re_enable(Reason::DisabledForRateLimit)
        }
        Some(SubscriptionStatus::DisabledRateLimitExceeded) => leave(Reason::DisabledForRateLimit),
        Some(SubscriptionStatus::Disabled) => leave(Reason::DisabledByPerson),
        Some(SubscriptionStatus::Unknown) | None => leave(Reason::UnknownStatus),
        Some(SubscriptionStatus::Active) if !desired => leave(Reason::NotDesired),
        Some(SubscriptionStatus::Active) if drift.is_empty() && !settings.resend_auth => {
            leave(Reason::InPlace)
        }
        Some(SubscriptionStatus::Active) => Step {
            subscription_id: Some(id),
            event: event.clone(),
            status: subscription.status.clone(),
            reason: if drift.is_empty() {
                Reason::AuthResent
            } else {
                Reason::Drifted
            },
            action: Action::Update { id, version, drift },
        },
    }
}

fn drift(subscription: &Subscription, settings: &KeeperSettings) -> Vec<Drift> {
    let mut drift = Vec::new();
    let current_fields = subscription.fields.clone().unwrap_or_default();
    if top_level_fields(&current_fields) != top_level_fields(&settings.fields) {
        drift.push(Drift::Fields {
            current: current_fields,
            desired: settings.fields.clone(),
        });
    }
    if let Some((desired, _)) = &settings.auth_header {
        let current = subscription.auth_header_name.clone();
        if !current
            .as_deref()
            .is_some_and(|name| name.eq_ignore_ascii_case(desired))
        {
            drift.push(Drift::AuthHeaderName {
                current,
                desired: desired.clone(),
            });
        }
    }
    drift
}

/// The body of a create, update or re-enable: every desired value, secrets included, since
/// Tripletex never shows whether the stored write-only ones are still right.
pub fn subscription_write(step: &Step, settings: &KeeperSettings) -> SubscriptionWrite {
    let (id, version, status) = match &step.action {
        Action::ReEnable { id, version, .. } => {
            (Some(*id), *version, Some(SubscriptionStatus::Active))
        }
        Action::Update { id, version, .. } => (Some(*id), *version, None),
        Action::Create | Action::LeaveAlone => (None, None, None),
    };
    SubscriptionWrite {
        id,
        version,
        event: Some(step.event.clone()),
        target_url: Some(settings.target_url.clone()),
        fields: Some(settings.fields.clone()),
        status,
        auth_header_name: settings.auth_header.as_ref().map(|(name, _)| name.clone()),
        auth_header_value: settings
            .auth_header
            .as_ref()
            .map(|(_, value)| value.clone()),
        hmac_shared_secret: settings.hmac_secret.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthConfig;
    use crate::ids::{Secret, TenantId};
    use crate::keeper::settings::{
        DEFAULT_RESYNC_LOOKBACK, KeeperPolicy, ReEnablePolicy, SettingsError, desired_fields,
    };

    const RECEIVER: &str = "https://abc.lambda-url.eu-north-1.on.aws/";

    fn policy(receiver_url: &str, events: &[&str], fields: &str) -> KeeperPolicy {
        KeeperPolicy {
            receiver_url: receiver_url.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            fields: fields.into(),
            reenable: ReEnablePolicy::default(),
            resync_lookback: DEFAULT_RESYNC_LOOKBACK,
            dry_run: false,
        }
    }

    fn settings() -> KeeperSettings {
        let auth = AuthConfig::from_json(
            r#"{"tenants": {"default": {"header": {"name": "X-Hook-Token", "values": ["current-value", "old-value"]}}}}"#,
        )
        .unwrap();
        let tenant = TenantId::default_tenant();
        KeeperSettings::for_tenant(
            &policy(RECEIVER, &["product.create", "product.update"], "*"),
            &tenant,
            auth.tenant(&tenant).as_deref(),
            false,
        )
        .unwrap()
    }

    fn ours(id: i64, event: &str, status: SubscriptionStatus) -> Subscription {
        Subscription {
            id: Some(id),
            version: Some(3),
            event: Some(event.into()),
            target_url: Some(RECEIVER.into()),
            fields: Some("*".into()),
            status: Some(status),
            auth_header_name: Some("X-Hook-Token".into()),
        }
    }

    fn foreign(id: i64, event: &str, status: SubscriptionStatus) -> Subscription {
        Subscription {
            target_url: Some("https://other-integration.example/hooks".into()),
            ..ours(id, event, status)
        }
    }

    fn step_for(steps: &[Step], id: i64) -> &Step {
        steps
            .iter()
            .find(|s| s.subscription_id == Some(id))
            .unwrap()
    }

    const ALL_STATUSES: [SubscriptionStatus; 6] = [
        SubscriptionStatus::Active,
        SubscriptionStatus::Disabled,
        SubscriptionStatus::DisabledTooManyErrors,
        SubscriptionStatus::DisabledRateLimitExceeded,
        SubscriptionStatus::DisabledMisuse,
        SubscriptionStatus::Unknown,
    ];

    #[test]
    fn every_status_of_ours_and_of_a_foreign_subscription_desired_or_not() {
        use Reason::*;
        use SubscriptionStatus as S;
        // (status, desired?) -> (our action kind, our reason); foreign is always left alone.
        let expected = |status: &S, desired: bool| match (status, desired) {
            (S::Active, true) => ("leave", InPlace),
            (S::Active, false) => ("leave", NotDesired),
            (S::Disabled, _) => ("leave", DisabledByPerson),
            (S::DisabledTooManyErrors, _) => ("re_enable", TooManyErrors),
            (S::DisabledRateLimitExceeded, _) => ("leave", DisabledForRateLimit),
            (S::DisabledMisuse, _) => ("leave", DisabledForMisuse),
            (S::Unknown, _) => ("leave", UnknownStatus),
        };
        for status in ALL_STATUSES {
            for desired in [true, false] {
                let event = if desired {
                    "product.create"
                } else {
                    "customer.create"
                };
                let steps = plan(
                    &[
                        ours(1, event, status.clone()),
                        foreign(2, event, status.clone()),
                    ],
                    &settings(),
                );
                let mine = step_for(&steps, 1);
                let (kind, reason) = expected(&status, desired);
                assert_eq!(
                    action_kind(&mine.action),
                    kind,
                    "{status:?} desired={desired}"
                );
                assert_eq!(mine.reason, reason, "{status:?} desired={desired}");
                let theirs = step_for(&steps, 2);
                assert_eq!(theirs.action, Action::LeaveAlone, "foreign {status:?}");
                assert_eq!(theirs.reason, Foreign);
            }
        }
    }

    fn action_kind(action: &Action) -> &'static str {
        match action {
            Action::ReEnable { .. } => "re_enable",
            Action::Update { .. } => "update",
            Action::Create => "create",
            Action::LeaveAlone => "leave",
        }
    }

    #[test]
    fn misuse_and_rate_limit_disables_are_lifted_only_when_configured() {
        let mut settings = settings();
        settings.reenable = ReEnablePolicy {
            misuse: true,
            rate_limit_exceeded: true,
        };
        let steps = plan(
            &[
                ours(1, "product.create", SubscriptionStatus::DisabledMisuse),
                ours(
                    2,
                    "product.update",
                    SubscriptionStatus::DisabledRateLimitExceeded,
                ),
            ],
            &settings,
        );
        assert_eq!(step_for(&steps, 1).reason, Reason::DisabledForMisuse);
        assert!(matches!(
            step_for(&steps, 1).action,
            Action::ReEnable {
                id: 1,
                version: Some(3),
                ..
            }
        ));
        assert!(matches!(
            step_for(&steps, 2).action,
            Action::ReEnable { id: 2, .. }
        ));
    }

    #[test]
    fn a_desired_event_with_no_subscription_of_ours_is_created_even_beside_a_foreign_one() {
        let steps = plan(
            &[
                ours(1, "product.create", SubscriptionStatus::Active),
                foreign(2, "product.update", SubscriptionStatus::Active),
            ],
            &settings(),
        );
        let creates: Vec<_> = steps
            .iter()
            .filter(|s| s.action == Action::Create)
            .map(|s| s.event.as_str())
            .collect();
        assert_eq!(creates, ["product.update"]);
    }

    #[test]
    fn a_disabled_subscription_of_ours_still_covers_its_event() {
        let steps = plan(
            &[
                ours(1, "product.create", SubscriptionStatus::Disabled),
                ours(
                    2,
                    "product.update",
                    SubscriptionStatus::DisabledTooManyErrors,
                ),
            ],
            &settings(),
        );
        assert!(
            steps.iter().all(|s| s.action != Action::Create),
            "{steps:?}"
        );
    }

    #[test]
    fn ownership_ignores_credentials_query_case_and_trailing_slash_but_not_the_path() {
        let settings = settings();
        let with = |url: &str| Subscription {
            target_url: Some(url.into()),
            ..ours(1, "product.create", SubscriptionStatus::Active)
        };
        assert!(is_ours(
            &with("https://u:p@ABC.lambda-url.eu-north-1.on.aws?token=x"),
            &settings
        ));
        assert!(is_ours(
            &with("https://abc.lambda-url.eu-north-1.on.aws:443/"),
            &settings
        ));
        assert!(!is_ours(
            &with("https://abc.lambda-url.eu-north-1.on.aws/t/acme"),
            &settings
        ));
        assert!(!is_ours(
            &with("http://abc.lambda-url.eu-north-1.on.aws/"),
            &settings
        ));
        assert!(!is_ours(&with("not a url"), &settings));
        assert!(!is_ours(&Subscription::default(), &settings));
    }

    #[test]
    fn drift_in_fields_or_auth_header_name_is_updated_but_field_order_and_header_case_are_not_drift()
     {
        let mut drifted_fields = ours(1, "product.create", SubscriptionStatus::Active);
        drifted_fields.fields = Some("id,name".into());
        let mut drifted_header = ours(2, "product.update", SubscriptionStatus::Active);
        drifted_header.auth_header_name = None;
        let steps = plan(&[drifted_fields, drifted_header], &settings());
        assert_eq!(
            step_for(&steps, 1).action,
            Action::Update {
                id: 1,
                version: Some(3),
                drift: vec![Drift::Fields {
                    current: "id,name".into(),
                    desired: "*".into()
                }]
            }
        );
        assert!(
            matches!(&step_for(&steps, 2).action, Action::Update { drift, .. }
            if drift == &[Drift::AuthHeaderName { current: None, desired: "X-Hook-Token".into() }])
        );

        let mut settings = settings();
        settings.fields = desired_fields("name,number");
        let mut same = ours(3, "product.create", SubscriptionStatus::Active);
        same.fields = Some("number, version,id,name".into());
        same.auth_header_name = Some("x-hook-token".into());
        assert_eq!(plan(&[same], &settings)[0].reason, Reason::InPlace);
    }

    #[test]
    fn asked_to_resend_auth_every_active_desired_subscription_of_ours_is_updated_and_nothing_else()
    {
        let mut settings = settings();
        settings.resend_auth = true;
        let steps = plan(
            &[
                ours(1, "product.create", SubscriptionStatus::Active),
                ours(2, "customer.create", SubscriptionStatus::Active),
                ours(3, "product.update", SubscriptionStatus::Disabled),
                foreign(4, "product.create", SubscriptionStatus::Active),
            ],
            &settings,
        );
        assert_eq!(step_for(&steps, 1).reason, Reason::AuthResent);
        assert!(
            matches!(&step_for(&steps, 1).action, Action::Update { id: 1, drift, .. } if drift.is_empty())
        );
        assert_eq!(step_for(&steps, 2).reason, Reason::NotDesired);
        assert_eq!(step_for(&steps, 3).reason, Reason::DisabledByPerson);
        assert_eq!(step_for(&steps, 4).reason, Reason::Foreign);
    }

    #[test]
    fn a_re_enable_also_fixes_drift() {
        let mut disabled = ours(
            1,
            "product.create",
            SubscriptionStatus::DisabledTooManyErrors,
        );
        disabled.fields = Some("id".into());
        let steps = plan(&[disabled], &settings());
        assert!(matches!(&steps[0].action, Action::ReEnable { drift, .. } if drift.len() == 1));
    }

    #[test]
    fn of_two_subscriptions_of_ours_for_one_event_the_healthier_is_kept_up() {
        let steps = plan(
            &[
                ours(
                    1,
                    "product.create",
                    SubscriptionStatus::DisabledTooManyErrors,
                ),
                ours(2, "product.create", SubscriptionStatus::Active),
            ],
            &settings(),
        );
        assert_eq!(step_for(&steps, 2).reason, Reason::InPlace);
        assert_eq!(step_for(&steps, 1).reason, Reason::DuplicateOfOurs);
        assert_eq!(step_for(&steps, 1).action, Action::LeaveAlone);
    }

    #[test]
    fn a_subscription_of_ours_without_an_id_is_reported_not_touched() {
        let mut nameless = ours(
            1,
            "product.create",
            SubscriptionStatus::DisabledTooManyErrors,
        );
        nameless.id = None;
        let steps = plan(&[nameless], &settings());
        assert_eq!(steps[0].reason, Reason::NoId);
        assert_eq!(steps[0].action, Action::LeaveAlone);
    }

    #[test]
    fn desired_fields_always_carry_id_and_version() {
        assert_eq!(desired_fields(""), "id,version");
        assert_eq!(desired_fields("name"), "id,version,name");
        assert_eq!(desired_fields("version,name"), "id,version,name");
        assert_eq!(desired_fields("*"), "*");
        assert_eq!(desired_fields("*,changes"), "*,changes");
        assert_eq!(
            desired_fields("customer(id,version),name"),
            "id,version,customer(id,version),name",
            "nested id/version do not count"
        );
    }

    #[test]
    fn the_write_re_sends_every_desired_value_and_sets_active_only_on_re_enable() {
        let settings = settings();
        let steps = plan(
            &[ours(
                7,
                "product.create",
                SubscriptionStatus::DisabledTooManyErrors,
            )],
            &settings,
        );
        let json = serde_json::to_value(subscription_write(&steps[0], &settings)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": 7, "version": 3, "event": "product.create",
                "targetUrl": RECEIVER, "fields": "*", "status": "ACTIVE",
                "authHeaderName": "X-Hook-Token", "authHeaderValue": "current-value"})
        );
        let create = &plan(&[], &settings)[0];
        let json = serde_json::to_value(subscription_write(create, &settings)).unwrap();
        assert!(
            json.get("id").is_none()
                && json.get("version").is_none()
                && json.get("status").is_none()
        );
    }

    #[test]
    fn a_tenant_target_carries_its_path_and_its_basic_and_query_credentials() {
        let auth = AuthConfig::from_json(
            r#"{"tenants": {"acme": {
                "basic": {"credentials": [{"username": "tripletex", "password": "pw-1"}]},
                "query": {"parameter": "token", "values": ["q-1", "q-0"]},
                "hmac": {"secrets": ["0123456789abcdef"]}}}}"#,
        )
        .unwrap();
        let tenant = TenantId::parse("acme").unwrap();
        let settings = KeeperSettings::for_tenant(
            &policy(
                "https://abc.lambda-url.eu-north-1.on.aws",
                &["order.create"],
                "",
            ),
            &tenant,
            auth.tenant(&tenant).as_deref(),
            false,
        )
        .unwrap();
        assert_eq!(
            settings.target_url.expose(),
            "https://tripletex:pw-1@abc.lambda-url.eu-north-1.on.aws/t/acme?token=q-1"
        );
        assert_eq!(
            settings.hmac_secret.as_ref().map(Secret::expose),
            Some("0123456789abcdef")
        );
        assert!(settings.auth_header.is_none());
        assert_eq!(settings.fields, "id,version");
        let other = TenantId::parse("other").unwrap();
        assert!(matches!(
            KeeperSettings::for_tenant(
                &policy(RECEIVER, &["order.create"], ""),
                &other,
                auth.tenant(&other).as_deref(),
                false,
            ),
            Err(SettingsError::NoAuth(_))
        ));
    }
}
