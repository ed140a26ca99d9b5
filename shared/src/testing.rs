//! Fakes of the ports and a moto server for integration tests (feature `testing`).

use std::collections::{HashMap, VecDeque};
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;

use crate::dedup::{ObjectChange, Outcome, StoredState, Write, apply, decide};
use crate::message::QueueMessage;
use crate::ports::{MessageQueue, ObjectStore, QueueError, StoreError};

/// A queue that keeps what it is sent, or fails every send when told to.
#[derive(Debug, Default)]
pub struct RecordingQueue {
    sent: Mutex<Vec<QueueMessage>>,
    failing: AtomicBool,
}

impl RecordingQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// A queue whose every send fails as an outage would.
    pub fn unavailable() -> Self {
        let queue = Self::default();
        queue.set_unavailable(true);
        queue
    }

    pub fn set_unavailable(&self, unavailable: bool) {
        self.failing.store(unavailable, Ordering::SeqCst);
    }

    pub fn sent(&self) -> Vec<QueueMessage> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl MessageQueue for RecordingQueue {
    async fn send(&self, message: &QueueMessage) -> Result<String, QueueError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable {
                source: Box::new(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "queue down",
                )),
            });
        }
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        sent.push(message.clone());
        Ok(format!("recorded-{}", sent.len()))
    }
}

/// A moto server on 127.0.0.1, started once per test process and stopped when the process ends.
pub struct MotoServer {
    endpoint: String,
    _watchdog: Mutex<Child>,
}

impl MotoServer {
    /// The process-wide server, started on first use on a free port.
    ///
    /// # Panics
    /// When moto cannot be started: the test cannot run, and must not pass as if it had.
    pub fn shared() -> &'static MotoServer {
        static SERVER: OnceLock<MotoServer> = OnceLock::new();
        SERVER.get_or_init(|| Self::start_or_panic(Mode::Threaded))
    }

    /// A process-wide server that handles one request at a time, so that each conditional write is
    /// atomic as it is in DynamoDB (moto's threaded server lets two writes to one item interleave).
    /// For race tests; not for SQS long polling.
    pub fn serialized() -> &'static MotoServer {
        static SERVER: OnceLock<MotoServer> = OnceLock::new();
        SERVER.get_or_init(|| Self::start_or_panic(Mode::Serialized))
    }

    fn start_or_panic(mode: Mode) -> MotoServer {
        match Self::start(mode) {
            Ok(server) => server,
            Err(reason) => panic!(
                "cannot start moto server: {reason}. Run scripts/test, which installs it into .venv"
            ),
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Drops every resource, for a test that needs a clean account.
    pub fn reset(&self) -> std::io::Result<()> {
        http_post(&self.endpoint, "/moto-api/reset")
    }

    fn start(mode: Mode) -> Result<Self, String> {
        let moto = moto_binary();
        if !moto.exists() {
            return Err(format!("{} does not exist", moto.display()));
        }
        // The serialized server is moto's own app under a single-threaded server, from the same venv.
        let command = match mode {
            Mode::Threaded => format!("\"{}\"", moto.display()),
            Mode::Serialized => format!(
                "\"{}\" \"{}\"",
                moto.with_file_name("python3").display(),
                workspace_root().join("tools/moto_serialized.py").display()
            ),
        };
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        // A watchdog shell owns moto and stops it once this test process is gone, however it ends.
        let script = format!(
            "{command} -H 127.0.0.1 -p {port} >/dev/null 2>&1 & moto=$!; \
             while kill -0 {parent} 2>/dev/null && kill -0 $moto 2>/dev/null; do sleep 0.2; done; kill $moto 2>/dev/null",
            parent = std::process::id()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot spawn sh: {e}"))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_until_listening(port, Duration::from_secs(60))?;
        Ok(Self {
            endpoint,
            _watchdog: Mutex::new(child),
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Threaded,
    Serialized,
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

fn moto_binary() -> PathBuf {
    match std::env::var_os("MOTO_SERVER") {
        Some(path) => PathBuf::from(path),
        None => workspace_root().join(".venv/bin/moto_server"),
    }
}

/// The workspace root, from this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    shared.parent().map(PathBuf::from).unwrap_or(shared)
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn wait_until_listening(port: u16, limit: Duration) -> Result<(), String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let started = Instant::now();
    while started.elapsed() < limit {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("nothing listened on port {port} after {limit:?}"))
}

fn http_post(endpoint: &str, path: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let host = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host)?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "unexpected answer: {}",
            response.lines().next().unwrap_or("")
        )))
    }
}

/// An object store in memory that follows the same rule as DynamoDB's condition expression, with
/// failures that can be injected per object.
#[derive(Debug, Default)]
pub struct InMemoryObjectStore {
    items: Mutex<HashMap<String, StoredItem>>,
    failures: Mutex<HashMap<String, VecDeque<StoreFailure>>>,
}

/// What the fake keeps of an object: the rule's state plus the stored payload and change.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub state: StoredState,
    pub value: Option<String>,
    pub last_change: ObjectChange,
}

/// A failure the fake reports instead of writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    Throttled,
    Unavailable,
    Rejected,
}

impl InMemoryObjectStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next writes to `key` fail as listed, in order; later writes succeed again.
    pub fn fail_next(&self, key: &str, failures: impl IntoIterator<Item = StoreFailure>) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.to_owned())
            .or_default()
            .extend(failures);
    }

    pub fn get(&self, key: &str) -> Option<StoredItem> {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ObjectStore for InMemoryObjectStore {
    async fn apply(&self, change: &ObjectChange) -> Result<Outcome, StoreError> {
        let key = change.key.to_string();
        let failure = self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&key)
            .and_then(VecDeque::pop_front);
        if let Some(failure) = failure {
            let source: crate::ports::BoxError =
                Box::new(std::io::Error::other(format!("injected {failure:?}")));
            return Err(match failure {
                StoreFailure::Throttled => StoreError::Throttled { source },
                StoreFailure::Unavailable => StoreError::Unavailable { source },
                StoreFailure::Rejected => StoreError::Rejected { source },
            });
        }
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        let stored = items.get(&key);
        let outcome = decide(stored.map(|item| &item.state), &change.write);
        if outcome == Outcome::Accepted {
            let state = apply(stored.map(|item| &item.state), &change.write);
            let value = match &change.write {
                Write::Versioned { payload, .. } | Write::Unversioned { payload } => {
                    Some(payload.json().to_owned())
                }
                Write::Delete => None,
            };
            items.insert(
                key,
                StoredItem {
                    state,
                    value,
                    last_change: change.clone(),
                },
            );
        }
        Ok(outcome)
    }
}

/// A resync ledger that keeps what it is given, or fails every record when told to.
#[derive(Debug, Default)]
pub struct InMemoryResyncLedger {
    requests: Mutex<Vec<crate::keeper::ResyncRequest>>,
    failing: AtomicBool,
}

impl InMemoryResyncLedger {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_unavailable(&self, unavailable: bool) {
        self.failing.store(unavailable, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<crate::keeper::ResyncRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl crate::ports::ResyncLedger for InMemoryResyncLedger {
    async fn record(
        &self,
        request: &crate::keeper::ResyncRequest,
    ) -> Result<(), crate::ports::LedgerError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(crate::ports::LedgerError {
                source: Box::new(std::io::Error::other("ledger down")),
            });
        }
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.clone());
        Ok(())
    }
}

/// The Tripletex simulator (tools/tripletex_simulator.py) on a free loopback port, for as long as
/// this value lives (and never longer than the test process).
pub struct TripletexSimulator {
    base: String,
    child: Child,
}

impl TripletexSimulator {
    /// # Panics
    /// When the simulator cannot be started: the test cannot run, and must not pass as if it had.
    pub fn start() -> Self {
        match Self::try_start() {
            Ok(simulator) => simulator,
            Err(reason) => panic!("cannot start the Tripletex simulator: {reason}"),
        }
    }

    fn try_start() -> Result<Self, String> {
        let python = moto_binary().with_file_name("python3");
        let script = workspace_root().join("tools/tripletex_simulator.py");
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let child = Command::new(python)
            .arg(script)
            .args(["--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot spawn the simulator: {e}"))?;
        // Drop stops it; should the test process be killed instead, this watchdog does.
        let watchdog = format!(
            "while kill -0 {parent} 2>/dev/null && kill -0 {sim} 2>/dev/null; do sleep 0.5; done; kill {sim} 2>/dev/null",
            parent = std::process::id(),
            sim = child.id()
        );
        Command::new("sh")
            .arg("-c")
            .arg(watchdog)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot spawn sh: {e}"))?;
        wait_until_listening(port, Duration::from_secs(30))?;
        Ok(Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
        })
    }

    /// The API base, as `TRIPLETEX_API_BASE_URL` takes it.
    pub fn api_base_url(&self) -> String {
        format!("{}/v2", self.base)
    }

    /// Calls the simulator's control API (`/_sim/...`) and returns its JSON answer, if any.
    pub fn control(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> std::io::Result<serde_json::Value> {
        use std::io::Write as _;
        let host = self.base.trim_start_matches("http://");
        let payload = body.to_string();
        let mut stream = TcpStream::connect(host)?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
            payload.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        if !head.starts_with("HTTP/1.1 2") {
            return Err(std::io::Error::other(format!("{method} {path}: {head}")));
        }
        if body.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(body).map_err(std::io::Error::other)
    }
}

impl Drop for TripletexSimulator {
    fn drop(&mut self) {
        // Best effort: the watchdog stops it anyway when the test process ends.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
