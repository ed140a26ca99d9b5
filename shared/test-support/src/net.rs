//! Loopback plumbing for the harnesses: free ports, waiting for a server, one raw HTTP request.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

pub(crate) fn wait_until_listening(port: u16, limit: Duration) -> Result<(), String> {
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

/// One HTTP/1.1 request to a loopback server (`http://127.0.0.1:PORT`): the status line and body.
/// Enough for control APIs; not a client.
pub(crate) fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    json_body: Option<&str>,
) -> std::io::Result<(String, String)> {
    let host = endpoint.trim_start_matches("http://");
    let body = json_body.unwrap_or("");
    let mut stream = TcpStream::connect(host)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status_line = head.lines().next().unwrap_or_default().to_owned();
    if !status_line.starts_with("HTTP/1.") {
        return Err(std::io::Error::other(format!(
            "not an HTTP answer: {status_line}"
        )));
    }
    Ok((status_line, body.to_owned()))
}
