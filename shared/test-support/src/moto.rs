//! moto server, the AWS emulator, on a free loopback port for the tests that need AWS.

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

use crate::{net, paths};

/// A moto server on 127.0.0.1, started once per test process and stopped when the process ends.
pub struct MotoServer {
    endpoint: String,
    iam_file: std::path::PathBuf,
    denials: std::path::PathBuf,
    _watchdog: Mutex<Child>,
}

impl MotoServer {
    /// The process-wide server, started on first use on a free port. Its DynamoDB applies each
    /// request atomically, as real DynamoDB does (`tools/localstack/moto_atomic.py`), so race tests
    /// of conditional writes mean what they say; SQS and the rest stay concurrent.
    ///
    /// # Panics
    /// When moto cannot be started: the test cannot run, and must not pass as if it had.
    pub fn shared() -> &'static MotoServer {
        static SERVER: OnceLock<MotoServer> = OnceLock::new();
        SERVER.get_or_init(|| match Self::start() {
            Ok(server) => server,
            Err(reason) => panic!(
                "cannot start moto server: {reason}. Run scripts/test, which installs it into .venv"
            ),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The local IAM's principals (`local_stack create --iam-file` adds a stack's): until a stack
    /// is made with it, nothing is enforced (`tools/localstack/local_iam.py`).
    pub fn iam_file(&self) -> &std::path::Path {
        &self.iam_file
    }

    /// Every call the local IAM refused, one JSON line each.
    pub fn denials(&self) -> String {
        std::fs::read_to_string(&self.denials).unwrap_or_default()
    }

    /// Drops every resource, for a test that needs a clean account.
    pub fn reset(&self) -> std::io::Result<()> {
        net::request(&self.endpoint, "POST", "/moto-api/reset", None).map(drop)
    }

    fn start() -> Result<Self, String> {
        let python = paths::venv_python();
        if !python.exists() {
            return Err(format!("{} does not exist", python.display()));
        }
        let command = format!(
            "\"{}\" \"{}\"",
            python.display(),
            paths::tool("localstack/moto_atomic.py").display()
        );
        let port = net::free_port().map_err(|e| format!("no free port: {e}"))?;
        let scratch = std::env::temp_dir().join(format!("moto-{}-{port}", std::process::id()));
        let (iam_file, denials) = (
            scratch.with_extension("iam.json"),
            scratch.with_extension("denied.jsonl"),
        );
        // A watchdog shell owns moto and stops it once this test process is gone, however it ends.
        let script = format!(
            "{command} -H 127.0.0.1 -p {port} --iam '{iam}' --iam-denials '{denied}' >/dev/null 2>&1 & moto=$!; \
             while kill -0 {parent} 2>/dev/null && kill -0 $moto 2>/dev/null; do sleep 0.2; done; kill $moto 2>/dev/null; \
             rm -f '{iam}' '{iam}.lock' '{denied}'",
            parent = std::process::id(),
            iam = iam_file.display(),
            denied = denials.display(),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot spawn sh: {e}"))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        net::wait_until_listening(port, Duration::from_secs(60))?;
        Ok(Self {
            endpoint,
            iam_file,
            denials,
            _watchdog: Mutex::new(child),
        })
    }
}

/// SDK configuration for a local endpoint, with throwaway credentials.
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("eu-north-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

/// A new bucket in moto's region; its name.
#[cfg(feature = "s3")]
pub async fn create_bucket(sdk: &SdkConfig, name: &str) -> String {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuNorth1)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|error| panic!("moto did not create bucket {name}: {error:?}"));
    name.to_owned()
}
