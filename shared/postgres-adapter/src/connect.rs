//! Where the mirror's database is, read from its secret, and a connection to it.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use tokio_postgres::Client;
use tokio_postgres::config::SslMode;
use tracing::warn;

/// The database, as its secret says: a URL (`postgres://user:password@host:5432/db`), as JSON
/// `{"url": ...}`, or the JSON RDS keeps in a managed secret (`host`, `port`, `username`, `password`,
/// `dbname`); either JSON may add `caPem`, certificates to trust besides Mozilla's roots (RDS's own CA
/// bundle).
#[derive(Clone)]
pub struct DatabaseSettings {
    config: tokio_postgres::Config,
    ca_pem: Option<String>,
}

impl std::fmt::Debug for DatabaseSettings {
    // The config holds the password: only where it goes is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("hosts", &self.config.get_hosts())
            .field("ports", &self.config.get_ports())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "the database secret is neither a postgres:// URL nor the JSON of one (url, or RDS's host/port/username/password/dbname)"
    )]
    Unreadable,
    #[error("the database URL is not valid")]
    InvalidUrl(#[source] tokio_postgres::Error),
    #[error(
        "sslmode=disable is accepted only for a loopback host; {0} would be reached in plaintext"
    )]
    PlaintextToRemote(String),
    #[error("caPem holds no certificate")]
    InvalidCa,
    #[error("could not connect to the database")]
    Connect(#[source] tokio_postgres::Error),
}

impl ConnectError {
    /// The server refused the credentials (a rotated password, or a revoked user): the secret may
    /// hold newer ones.
    pub fn is_authentication(&self) -> bool {
        matches!(self, Self::Connect(error) if error.code().is_some_and(|code| {
            *code == tokio_postgres::error::SqlState::INVALID_PASSWORD
                || *code == tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        }))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretJson {
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    username: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    ca_pem: Option<String>,
}

impl DatabaseSettings {
    pub fn parse_secret(text: &str) -> Result<Self, ConnectError> {
        let text = text.trim();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Self::from_url(text, None);
        }
        let json: SecretJson = serde_json::from_str(text).map_err(|_| ConnectError::Unreadable)?;
        if let Some(url) = &json.url {
            return Self::from_url(url, json.ca_pem);
        }
        let (Some(host), Some(username)) = (&json.host, &json.username) else {
            return Err(ConnectError::Unreadable);
        };
        let mut config = tokio_postgres::Config::new();
        config
            .host(host)
            .port(json.port.unwrap_or(5432))
            .user(username)
            .dbname(json.dbname.as_deref().unwrap_or("postgres"))
            .ssl_mode(SslMode::Require);
        if let Some(password) = &json.password {
            config.password(password);
        }
        Self::checked(config, json.ca_pem)
    }

    fn from_url(url: &str, ca_pem: Option<String>) -> Result<Self, ConnectError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(ConnectError::InvalidUrl)?;
        // TLS unless the URL says otherwise: `prefer` (tokio-postgres's default) would fall back
        // to plaintext silently.
        if config.get_ssl_mode() != SslMode::Disable {
            config.ssl_mode(SslMode::Require);
        }
        Self::checked(config, ca_pem)
    }

    fn checked(
        config: tokio_postgres::Config,
        ca_pem: Option<String>,
    ) -> Result<Self, ConnectError> {
        if config.get_ssl_mode() == SslMode::Disable {
            for host in config.get_hosts() {
                if !is_loopback(host) {
                    return Err(ConnectError::PlaintextToRemote(format!("{host:?}")));
                }
            }
        }
        Ok(Self { config, ca_pem })
    }

    /// Connects; the connection's task runs on the current runtime until the client is dropped.
    pub async fn connect(&self) -> Result<Client, ConnectError> {
        let (client, driver) = if self.config.get_ssl_mode() == SslMode::Disable {
            let (client, connection) = self
                .config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(ConnectError::Connect)?;
            (client, tokio::spawn(connection))
        } else {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(self.tls()?);
            let (client, connection) = self
                .config
                .connect(tls)
                .await
                .map_err(ConnectError::Connect)?;
            (client, tokio::spawn(connection))
        };
        tokio::spawn(async move {
            if let Ok(Err(error)) = driver.await {
                warn!(error = %error, "the database connection ended");
            }
        });
        Ok(client)
    }

    /// rustls with Mozilla's roots, and the secret's own CA if it names one: the server's
    /// certificate and host name are verified.
    fn tls(&self) -> Result<rustls::ClientConfig, ConnectError> {
        let mut roots = RootCertStore::empty();
        let (_, _) = roots.add_parsable_certificates(
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|cert| CertificateDer::from(cert.as_ref())),
        );
        if let Some(pem) = &self.ca_pem {
            let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
                .filter_map(Result::ok)
                .collect();
            if certs.is_empty() {
                return Err(ConnectError::InvalidCa);
            }
            roots.add_parsable_certificates(certs);
        }
        Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|_| ConnectError::InvalidCa)?
        .with_root_certificates(roots)
        .with_no_client_auth())
    }
}

fn is_loopback(host: &tokio_postgres::config::Host) -> bool {
    match host {
        tokio_postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        // A Unix socket never leaves the machine.
        tokio_postgres::config::Host::Unix(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_required_unless_the_url_disables_it_for_a_loopback_host() {
        let remote =
            DatabaseSettings::parse_secret("postgres://u:p@db.example.invalid/app").unwrap();
        assert_eq!(remote.config.get_ssl_mode(), SslMode::Require);
        assert!(matches!(
            DatabaseSettings::parse_secret("postgres://u:p@db.example.invalid/app?sslmode=disable"),
            Err(ConnectError::PlaintextToRemote(_))
        ));
        let local = DatabaseSettings::parse_secret(
            "postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable",
        )
        .unwrap();
        assert_eq!(local.config.get_ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn reads_an_rds_managed_secret_and_never_shows_the_password() {
        let settings = DatabaseSettings::parse_secret(
            r#"{"engine":"postgres","host":"db.example.invalid","port":5432,"username":"mirror","password":"s3cr3t-value","dbname":"tripletex"}"#,
        )
        .unwrap();
        assert_eq!(settings.config.get_dbname(), Some("tripletex"));
        assert_eq!(settings.config.get_ssl_mode(), SslMode::Require);
        assert!(!format!("{settings:?}").contains("s3cr3t-value"));
        assert!(matches!(
            DatabaseSettings::parse_secret("{}"),
            Err(ConnectError::Unreadable)
        ));
        assert!(matches!(
            DatabaseSettings::parse_secret(r#"{"url":"postgres://h/d","caPem":"not a cert"}"#)
                .unwrap()
                .tls(),
            Err(ConnectError::InvalidCa)
        ));
    }
}
