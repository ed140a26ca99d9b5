//! One SDK configuration per cold start, with timeouts that fit a function answering Tripletex, and
//! nothing read at init that Lambda does not need.
//!
//! - Credentials and region come from the environment Lambda provides (the function role's keys,
//!   `AWS_REGION`); no profile file is read, so no `~/.aws/config` or `credentials` lookup.
//! - The HTTPS client trusts roots compiled into the binary (webpki-root-certs), not the files under
//!   `/etc/ssl/certs`, which the SDK's default client reads one by one: Amazon Trust Services' for
//!   AWS itself, all of Mozilla's for an endpoint of one's own.
//!
//! Endpoints come from the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables, so
//! the same code talks to AWS or to a local emulator without a switch.

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
use aws_smithy_http_client::{Builder, HttpClientError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// How long one attempt of an AWS call may take before it is retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an AWS call may take in all, retries included: short enough for the caller to get a 503
/// (and retry later) well before its own timeout.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(6);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn load_sdk_config() -> Result<SdkConfig, HttpClientError> {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    // An empty profile held in memory: the loader asks it, and no file is opened.
    let no_profile_files = EnvConfigFiles::builder()
        .with_contents(EnvConfigFileKind::Config, "")
        .build();
    let https = Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(compiled_in_roots())
                .build()?,
        )
        .build_https();
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .profile_files(no_profile_files)
        .credentials_provider(EnvironmentVariableCredentialsProvider::new())
        .region(EnvironmentVariableRegionProvider::new())
        .http_client(https)
        .timeout_config(timeouts)
        .load()
        .await)
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
/// Mozilla's; a plain-HTTP one (the local stack's moto) needs none, and gets AWS's five.
fn compiled_in_roots() -> TrustStore {
    // vars_os: a variable that is no UTF-8 is passed by, where `vars` would panic.
    let own_https_endpoint = std::env::vars_os().any(|(name, value)| {
        name.to_str()
            .is_some_and(|name| name.starts_with("AWS_ENDPOINT_URL"))
            && value
                .to_str()
                .and_then(|value| value.get(..8))
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    });
    TrustStore::empty().with_pem_certificate(roots_pem(own_https_endpoint))
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
            .with_trust_store(compiled_in_roots())
            .build()
            .unwrap();
    }
}
