//! One SDK configuration per cold start, with timeouts that fit a function answering Tripletex, and
//! nothing read at init that Lambda does not need.
//!
//! - Credentials and region come from the environment Lambda provides (the function role's keys,
//!   `AWS_REGION`); no profile file is read, so no `~/.aws/config` or `credentials` lookup.
//! - The HTTPS client trusts roots compiled into the binary (webpki-root-certs), not the files under
//!   `/etc/ssl/certs`, which the SDK's default client reads one by one: Amazon Trust Services' for
//!   AWS itself, all of Mozilla's for an endpoint of one's own; and those of `SSL_CERT_FILE`, when set.
//!
//! Endpoints come from the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables, so
//! the same code talks to AWS or to a local emulator without a switch.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::timeout::TimeoutConfig;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Connector, HttpClientError};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// How long one attempt of an AWS call may take before it is retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an AWS call may take in all, retries included: short enough for the caller to get a 503
/// (and retry later) well before its own timeout.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(6);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the SDK's configuration could not be made: said at init, which then fails.
#[derive(Debug, thiserror::Error)]
pub enum SdkConfigError {
    #[error("building the HTTPS client: {0}")]
    Https(#[from] HttpClientError),
    #[error(
        "reading the certificates SSL_CERT_FILE names ({path}): {source}; point it at a PEM file, or unset it"
    )]
    CertificateFile {
        path: String,
        source: std::io::Error,
    },
}

pub async fn load_sdk_config() -> Result<SdkConfig, SdkConfigError> {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    // An empty profile held in memory: the loader asks it, and no file is opened.
    let no_profile_files = EnvConfigFiles::builder()
        .with_contents(EnvConfigFileKind::Config, "")
        .build();
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .profile_files(no_profile_files)
        .credentials_provider(EnvironmentVariableCredentialsProvider::new())
        .region(EnvironmentVariableRegionProvider::new())
        .http_client(OneConnector::new(trusted_roots()?)?)
        .timeout_config(timeouts)
        .load()
        .await)
}

/// One HTTPS connector (TLS configuration, trust store, connection pool) for every client of the
/// process, built once at init. The SDK's own client builds one as each client is made and drops it,
/// then builds another at the first request: three builds for a function of two clients, one of them
/// in its first call. Each request's settings are this config's own (the connect timeout above; no
/// read timeout, the attempt timeout bounds a read), so the one connector is built with them.
#[derive(Debug)]
struct OneConnector(SharedHttpConnector);

impl OneConnector {
    fn new(roots: TrustStore) -> Result<Self, HttpClientError> {
        let https = Connector::builder()
            .connector_settings(
                HttpConnectorSettings::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            )
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(TlsContext::builder().with_trust_store(roots).build()?)
            .build();
        Ok(Self(SharedHttpConnector::new(https)))
    }
}

impl HttpClient for OneConnector {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.clone()
    }
}

/// The names of the roots AWS's own endpoints chain to (Amazon Trust Services): Amazon Root CA 1 to 4,
/// and the Starfield root that cross-signs them.
const AMAZON_TRUST_SERVICES: [&[u8]; 2] = [
    b"Amazon Root CA ",
    b"Starfield Services Root Certificate Authority - G2",
];

/// What the SDK's trust store holds. Talking to AWS itself, only Amazon Trust Services' roots: every
/// AWS endpoint chains to them, and five roots cost init far less than Mozilla's 150. With an HTTPS
/// endpoint of one's own (`AWS_ENDPOINT_URL*` = `https://…`: a proxy, an emulator with TLS), all of
/// Mozilla's, unless the endpoint's own authority is given (`SSL_CERT_FILE`, `trusted_roots`); a
/// plain-HTTP one (the local stack's moto) needs none, and gets AWS's five.
fn compiled_in_roots(own_authority: bool) -> TrustStore {
    // vars_os: a variable that is no UTF-8 is passed by, where `vars` would panic.
    let own_https_endpoint = std::env::vars_os().any(|(name, value)| {
        name.to_str()
            .is_some_and(|name| name.starts_with("AWS_ENDPOINT_URL"))
            && value
                .to_str()
                .and_then(|value| value.get(..8))
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    });
    TrustStore::empty().with_pem_certificate(roots_pem(own_https_endpoint && !own_authority))
}

/// The compiled-in roots, and those of the file the standard variable `SSL_CERT_FILE` names, when it
/// is set: a private certificate authority (a TLS proxy, the local stack's TLS front) is trusted the
/// way other TLS clients are told about it. Lambda sets no such variable, so AWS's cold start reads
/// no file.
fn trusted_roots() -> Result<TrustStore, SdkConfigError> {
    roots_and_those_of(std::env::var_os("SSL_CERT_FILE"))
}

fn roots_and_those_of(
    certificate_file: Option<std::ffi::OsString>,
) -> Result<TrustStore, SdkConfigError> {
    let store = compiled_in_roots(certificate_file.is_some());
    match certificate_file {
        None => Ok(store),
        Some(path) => match std::fs::read(&path) {
            Ok(pem) => Ok(store.with_pem_certificate(pem)),
            Err(source) => Err(SdkConfigError::CertificateFile {
                path: path.to_string_lossy().into_owned(),
                source,
            }),
        },
    }
}

fn roots_pem(all_of_mozilla: bool) -> String {
    // memmem, not a byte-by-byte window compare: the scan of Mozilla's 150 roots for these names was
    // 45 % of the worker's instructions at init (callgrind).
    let amazon_names = AMAZON_TRUST_SERVICES.map(memchr::memmem::Finder::new);
    let is_amazon_trust_services = |certificate: &[u8]| {
        amazon_names
            .iter()
            .any(|name| name.find(certificate).is_some())
    };
    let mut pem = String::new();
    for certificate in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        if !all_of_mozilla && !is_amazon_trust_services(certificate.as_ref()) {
            continue;
        }
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = BASE64.encode(certificate.as_ref());
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(pem: &str) -> Vec<Vec<u8>> {
        pem.split("-----BEGIN CERTIFICATE-----\n")
            .skip(1)
            .map(|block| {
                let body = block.split("-----END CERTIFICATE-----").next().unwrap();
                BASE64.decode(body.replace('\n', "")).unwrap()
            })
            .collect()
    }

    #[test]
    fn for_aws_itself_the_store_holds_amazon_trust_services_five_roots() {
        let roots = decoded(&roots_pem(false));
        assert_eq!(
            roots.len(),
            5,
            "Amazon Root CA 1 to 4 and Starfield Services G2"
        );
        // The rule written out the slow way: every root whose bytes hold one of the names.
        let by_window_compare: Vec<Vec<u8>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|root| root.as_ref())
            .filter(|root| {
                AMAZON_TRUST_SERVICES
                    .iter()
                    .any(|name| root.windows(name.len()).any(|window| window == *name))
            })
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(roots, by_window_compare);
    }

    #[tokio::test]
    async fn a_connection_never_accepted_fails_at_the_connect_timeout() {
        // A listener whose accept queue is full: the kernel drops the next SYN, so a connect hangs.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let listener = socket.listen(0).unwrap();
        let address = listener.local_addr().unwrap();
        let _fills_the_queue = std::net::TcpStream::connect(address).unwrap();
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version_latest()
            .http_client(OneConnector::new(compiled_in_roots(false)).unwrap())
            .endpoint_url(format!("http://{address}"))
            .region(aws_config::Region::new("eu-north-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::for_tests())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            // Off, so that only the connect timeout can end the call (or the guard below).
            .stalled_stream_protection(
                aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled(),
            )
            .build();
        // A guard, not a timing: without a connect timeout the call would hang for good.
        let call = aws_sdk_dynamodb::Client::from_conf(config)
            .list_tables()
            .send();
        let error = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("no connect timeout: the call hung")
            .unwrap_err();
        let timed_out = match &error {
            aws_sdk_dynamodb::error::SdkError::DispatchFailure(failure) => failure.is_timeout(),
            _ => false,
        };
        assert!(timed_out, "{error:?}");
    }

    #[test]
    fn a_certificate_file_that_cannot_be_read_stops_init_naming_it() {
        let missing = std::env::temp_dir().join("no-such-ca-bundle.pem");
        let error = roots_and_those_of(Some(missing.clone().into_os_string())).unwrap_err();
        let said = error.to_string();
        assert!(said.contains(&missing.display().to_string()), "{said}");
        assert!(said.contains("SSL_CERT_FILE"), "{said}");
    }

    #[test]
    fn the_certificates_of_the_file_join_the_compiled_in_roots() {
        let file = std::env::temp_dir().join(format!("ca-{}.pem", std::process::id()));
        // One of Mozilla's roots, as a private authority's would be written.
        let one_root = roots_pem(true)
            .split_inclusive("-----END CERTIFICATE-----\n")
            .last()
            .unwrap()
            .to_owned();
        std::fs::write(&file, &one_root).unwrap();
        let store = roots_and_those_of(Some(file.clone().into_os_string())).unwrap();
        std::fs::remove_file(&file).unwrap();
        TlsContext::builder()
            .with_trust_store(store)
            .build()
            .unwrap();
    }

    #[test]
    fn the_pem_holds_every_compiled_in_root_as_it_is() {
        let pem = roots_pem(true);
        let decoded = decoded(&pem);
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS;
        assert!(roots.len() > 100, "Mozilla's store");
        assert_eq!(decoded.len(), roots.len());
        for (read, root) in decoded.iter().zip(roots) {
            assert_eq!(read.as_slice(), root.as_ref());
        }
        TlsContext::builder()
            .with_trust_store(compiled_in_roots(false))
            .build()
            .unwrap();
    }
}

/// An AWS call's failure in plain words: what the service said (its error's code and message), or
/// that it could not be reached, never the SDK's wording ("service error", "unhandled error") nor a
/// Debug rendering. The code and message are the cause; the SDK's own error, whose chain says the
/// same less plainly, is not kept beside them.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AwsFailure(pub String);

impl AwsFailure {
    pub fn of<E, R>(error: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata,
    {
        Self(words(error))
    }
}

/// What an SDK error means, in words.
pub fn words<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> String {
    match error {
        SdkError::DispatchFailure(failure) if failure.is_io() => {
            "the service could not be reached (the connection was refused or had no route)"
                .to_owned()
        }
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            "the service could not be reached in time".to_owned()
        }
        SdkError::DispatchFailure(_) => "the request could not be sent".to_owned(),
        SdkError::TimeoutError(_) => "the service did not answer in time".to_owned(),
        SdkError::ResponseError(_) => {
            "the service's answer could not be read (is the endpoint the AWS service it should be?)"
                .to_owned()
        }
        SdkError::ConstructionFailure(_) => "the request could not be made".to_owned(),
        _ => match (error.code(), error.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            (None, Some(message)) => message.to_owned(),
            (None, None) => "the service refused it without saying why".to_owned(),
        },
    }
}
