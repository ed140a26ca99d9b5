//! A real PostgreSQL (Debian's package) on a free loopback port for the tests that need one, started
//! once per test process by `tools/postgres/serve.sh` and stopped (its data removed) when the process
//! ends, however it ends.

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::{net, paths};

pub struct PostgresServer {
    port: u16,
    _server: Mutex<Child>,
}

impl PostgresServer {
    /// The process-wide server.
    ///
    /// # Panics
    /// When it cannot be started: the test cannot run, and must not pass as if it had.
    pub fn shared() -> &'static PostgresServer {
        static SERVER: OnceLock<PostgresServer> = OnceLock::new();
        SERVER.get_or_init(|| match Self::start() {
            Ok(server) => server,
            Err(reason) => panic!(
                "cannot start PostgreSQL: {reason}. Run scripts/test, which installs it (apt-get)"
            ),
        })
    }

    fn start() -> Result<Self, String> {
        let port = net::free_port().map_err(|e| format!("no free port: {e}"))?;
        let dir = std::env::temp_dir().join(format!("tripletex-pg-{}-{port}", std::process::id()));
        let server = Command::new(paths::workspace_root().join("tools/postgres/serve.sh"))
            .arg(&dir)
            .arg(port.to_string())
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run tools/postgres/serve.sh: {e}"))?;
        net::wait_until_listening(port, Duration::from_secs(60))?;
        Ok(Self {
            port,
            _server: Mutex::new(server),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new, empty database of the server, and its URL (plaintext: the server is on loopback).
    pub fn fresh_database(&self, name: &str) -> String {
        let status = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-q",
            ])
            .args(["-c", &format!("CREATE DATABASE \"{name}\"")])
            .stdout(Stdio::null())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "could not create database {name}"
        );
        format!(
            "postgres://postgres@127.0.0.1:{}/{name}?sslmode=disable",
            self.port
        )
    }
}
