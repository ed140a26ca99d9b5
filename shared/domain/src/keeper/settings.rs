//! What one company's subscriptions should look like: the target URL under this deployment's
//! receiver (with the credentials Tripletex must send), the desired events and fields, and the policy.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::auth::TenantAuth;
use crate::ids::{DEFAULT_TENANT, Secret, TenantId};

/// Fields every desired subscription carries: deduplication needs the id and the version.
const REQUIRED_FIELDS: [&str; 2] = ["id", "version"];

/// How far back a resync looks by default: Tripletex retries a delivery for about 30 hours and
/// disables a subscription after about a week of failures, so what was missed can be that old.
pub const DEFAULT_RESYNC_LOOKBACK: Duration = Duration::from_secs(8 * 24 * 3600);

/// The keeper's knobs, the same for every company of a deployment: read once from the function's
/// configuration. A company's `KeeperSettings` are derived from them.
#[derive(Debug, Clone)]
pub struct KeeperPolicy {
    /// This deployment's receiver URL: what makes a subscription ours, and where new ones point.
    pub receiver_url: String,
    /// The desired events, `object.verb`.
    pub events: Vec<String>,
    /// The `fields` filter as configured (`id,version` are added to it).
    pub fields: String,
    pub reenable: ReEnablePolicy,
    pub resync_lookback: Duration,
    /// The default of a run that does not say.
    pub dry_run: bool,
}

/// What one company's subscriptions should look like.
#[derive(Debug, Clone)]
pub struct KeeperSettings {
    /// The URL Tripletex calls, with the tenant path and any credential the receiver wants in it
    /// (Basic `user:pass@`, a query token): a secret.
    pub target_url: Secret,
    /// scheme://host:port/path of `target_url`: what makes a subscription ours.
    pub endpoint: Endpoint,
    pub events: Vec<String>,
    /// The `fields` filter of desired subscriptions, always including `id,version`.
    pub fields: String,
    pub auth_header: Option<(String, Secret)>,
    pub hmac_secret: Option<Secret>,
    pub reenable: ReEnablePolicy,
    pub resync_lookback: Duration,
    /// Re-send the auth (header value, HMAC secret, target URL credentials) to every active
    /// subscription of ours: the step of a rotation, since Tripletex never shows the stored values.
    pub resend_auth: bool,
}

/// Which system-disabled statuses besides `DISABLED_TOO_MANY_ERRORS` the keeper lifts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReEnablePolicy {
    pub misuse: bool,
    pub rate_limit_exceeded: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("the receiver URL is not an absolute URL")]
    InvalidReceiverUrl(#[source] url::ParseError),
    #[error("the receiver URL must be http(s) with a host")]
    UnsupportedReceiverUrl,
    #[error(
        "the receiver URL must be https (Tripletex calls only https targets); http is for loopback hosts in local runs"
    )]
    InsecureReceiverUrl,
    #[error("no desired events are configured")]
    NoEvents,
    #[error("tenant {0} has no receiver auth configured: Tripletex could not authenticate")]
    NoAuth(String),
}

/// The receiver URL as Tripletex can use it: absolute, with a host, and https unless the host is a
/// loopback address (local runs against the simulator).
pub fn check_receiver_url(receiver_url: &str) -> Result<url::Url, SettingsError> {
    let url = url::Url::parse(receiver_url).map_err(SettingsError::InvalidReceiverUrl)?;
    let loopback = crate::net::is_loopback(&url).ok_or(SettingsError::UnsupportedReceiverUrl)?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(SettingsError::InsecureReceiverUrl),
        _ => Err(SettingsError::UnsupportedReceiverUrl),
    }
}

impl KeeperSettings {
    /// The settings for a tenant: its target URL under the receiver, and the credentials its
    /// receiver config accepts (the first value of each method is the one given to Tripletex).
    pub fn for_tenant(
        policy: &KeeperPolicy,
        tenant: &TenantId,
        auth: Option<&TenantAuth>,
        resend_auth: bool,
    ) -> Result<Self, SettingsError> {
        if policy.events.is_empty() {
            return Err(SettingsError::NoEvents);
        }
        let auth = auth.ok_or_else(|| SettingsError::NoAuth(tenant.to_string()))?;
        let mut url = check_receiver_url(&policy.receiver_url)?;
        if tenant.as_str() != DEFAULT_TENANT {
            let path = format!("{}/t/{}", url.path().trim_end_matches('/'), tenant);
            url.set_path(&path);
        }
        let endpoint = Endpoint::of(&url);
        if let Some(credential) = auth.basic.as_ref().and_then(|b| b.credentials.first()) {
            // Both setters fail only for URLs without a host, ruled out above.
            let _ = url.set_username(&credential.username);
            let _ = url.set_password(Some(credential.password.expose()));
        }
        if let Some(query) = &auth.query
            && let Some(value) = query.values.first()
        {
            url.query_pairs_mut()
                .append_pair(&query.parameter, value.expose());
        }
        let auth_header = auth.header.as_ref().and_then(|header| {
            header
                .values
                .first()
                .map(|value| (header.name.clone(), value.clone()))
        });
        let hmac_secret = auth.hmac.as_ref().and_then(|h| h.secrets.first().cloned());
        if auth_header.is_none()
            && hmac_secret.is_none()
            && auth.basic.is_none()
            && auth.query.is_none()
        {
            return Err(SettingsError::NoAuth(tenant.to_string()));
        }
        Ok(Self {
            target_url: Secret::new(String::from(url)),
            endpoint,
            events: policy.events.clone(),
            fields: desired_fields(&policy.fields),
            auth_header,
            hmac_secret,
            reenable: policy.reenable,
            resync_lookback: policy.resync_lookback,
            resend_auth,
        })
    }
}

/// A target URL without its credentials: scheme, host, port and path (no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(String);

impl Endpoint {
    fn of(url: &url::Url) -> Self {
        Self(format!(
            "{}://{}:{}{}",
            url.scheme(),
            url.host_str().unwrap_or_default().to_ascii_lowercase(),
            url.port_or_known_default().unwrap_or_default(),
            url.path().trim_end_matches('/')
        ))
    }

    pub fn parse(text: &str) -> Option<Self> {
        url::Url::parse(text).ok().map(|url| Self::of(&url))
    }
}

/// `fields` with `id,version` in front unless they are already there (or `*` covers them).
pub fn desired_fields(configured: &str) -> String {
    let names = top_level_fields(configured);
    if names.contains("*") {
        return configured.trim().to_owned();
    }
    let mut fields: Vec<&str> = REQUIRED_FIELDS
        .into_iter()
        .filter(|required| !names.contains(*required))
        .collect();
    let rest = configured.trim();
    if !rest.is_empty() {
        fields.push(rest);
    }
    fields.join(",")
}

/// The top-level names of a fields filter: `id,version,customer(id,name)` → {id, version, customer(id,name)}.
pub(super) fn top_level_fields(fields: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut depth = 0_usize;
    let mut current = String::new();
    for c in fields.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                names.insert(std::mem::take(&mut current).trim().to_owned());
                continue;
            }
            c if c.is_whitespace() => continue,
            _ => {}
        }
        current.push(c);
    }
    names.insert(current.trim().to_owned());
    names.remove("");
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receiver_url_must_be_https_unless_it_is_a_loopback_host() {
        assert!(check_receiver_url("https://abc.lambda-url.eu-north-1.on.aws/").is_ok());
        for local in [
            "http://127.0.0.1:9000/lambda-url/webhook-receiver",
            "http://localhost:9000/",
            "http://[::1]:9000/",
        ] {
            assert!(check_receiver_url(local).is_ok(), "{local}");
        }
        for insecure in [
            "http://abc.lambda-url.eu-north-1.on.aws/",
            "http://10.0.0.5/",
        ] {
            assert!(
                matches!(
                    check_receiver_url(insecure),
                    Err(SettingsError::InsecureReceiverUrl)
                ),
                "{insecure}"
            );
        }
        assert!(matches!(
            check_receiver_url("ftp://example.com/"),
            Err(SettingsError::UnsupportedReceiverUrl)
        ));
        assert!(matches!(
            check_receiver_url("not a url"),
            Err(SettingsError::InvalidReceiverUrl(_))
        ));
    }

    #[test]
    fn a_company_without_an_entry_subscribes_with_its_derived_credentials() {
        let auth = crate::auth::AuthConfig::from_json(
            r#"{"tenants": {}, "derived": {"masters": ["0123456789abcdef0123456789abcdef"], "scope": "tripletex-webhooks",
                "header": "X-Tripletex-Webhook-Token", "hmac": true}}"#,
        )
        .unwrap();
        let policy = KeeperPolicy {
            receiver_url: "https://abc.lambda-url.eu-north-1.on.aws/".into(),
            events: vec!["customer.update".into()],
            fields: "*".into(),
            reenable: ReEnablePolicy::default(),
            resync_lookback: Duration::from_secs(3600),
            dry_run: false,
        };
        let acme = TenantId::parse("acme").unwrap();
        let settings =
            KeeperSettings::for_tenant(&policy, &acme, auth.tenant(&acme).as_deref(), false)
                .unwrap();
        let (name, value) = settings.auth_header.unwrap();
        assert_eq!(name, "X-Tripletex-Webhook-Token");
        assert_eq!(
            value.expose(),
            "869e06963f59a2f2e008c8930eafb34d587fede46cdac2a53ba1b228619a13db"
        );
        assert_eq!(
            settings.hmac_secret.unwrap().expose(),
            "9f57c6ca0abe4ff1c144a9172c0498761e875a638fbbfb4644be538f7337008d"
        );
        assert!(settings.target_url.expose().ends_with("/t/acme"));
    }
}
