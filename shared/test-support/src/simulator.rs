//! The Tripletex simulator on a free loopback port, for the tests of what only the wire shows.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{net, paths};

/// The Tripletex simulator (tools/simulator/tripletex_simulator.py) on a free loopback port, for as long as
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
        let port = net::free_port().map_err(|e| format!("no free port: {e}"))?;
        let child = Command::new(paths::venv_python())
            .current_dir(paths::workspace_root())
            .args(["-m", "tools.simulator.tripletex_simulator"])
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
        net::wait_until_listening(port, Duration::from_secs(30))?;
        Ok(Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
        })
    }

    /// The API base, as `TRIPLETEX_API_BASE_URL` takes it.
    pub fn api_base_url(&self) -> String {
        format!("{}/v2", self.base)
    }

    /// Tells the simulator of a company and the tokens that open a session for it.
    pub fn add_company(
        &self,
        company_id: i64,
        consumer_token: &str,
        employee_token: &str,
    ) -> std::io::Result<()> {
        self.control(
            "POST",
            "/_sim/companies",
            &serde_json::json!({"companyId": company_id, "consumerToken": consumer_token,
                                "employeeToken": employee_token}),
        )
        .map(drop)
    }

    /// Calls the simulator's control API (`/_sim/...`) and returns its JSON answer, if any.
    pub fn control(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> std::io::Result<serde_json::Value> {
        let payload = body.to_string();
        let (head, body) = net::request(&self.base, method, path, Some(&payload))?;
        if !head.starts_with("HTTP/1.1 2") {
            return Err(std::io::Error::other(format!("{method} {path}: {head}")));
        }
        if body.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&body).map_err(std::io::Error::other)
    }
}

impl Drop for TripletexSimulator {
    fn drop(&mut self) {
        // Best effort: the watchdog stops it anyway when the test process ends.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
