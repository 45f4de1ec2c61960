//! A small HTTP/1.1 keep-alive client for the load tools: one request in flight per connection,
//! each request written with one syscall, the answer's head parsed by `httparse`. The load tools
//! share two cores with baton and Postgres, and reqwest (a pool, a connection task and channels
//! per request) cost about 85 µs of CPU per callback here, a fifth of a callback's whole budget.
//! Plain `http://` only: the load tools send to loopback.

use anyhow::{bail, Context};
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

/// Why a request got no answer (the load tools count them by kind; the error itself is not
/// kept).
#[derive(Debug)]
pub enum Failure {
    Timeout,
    /// No connection, or it failed before a whole answer (refused, reset, unreadable answer).
    Connection,
}

/// One keep-alive connection to one server, reconnected when the server closes it.
pub struct Connection {
    addr: SocketAddr,
    host: String,
    stream: Option<TcpStream>,
    head: Vec<u8>,
    read: Vec<u8>,
}

/// A server address: `http://host:port`, resolved once.
fn resolve(base: &Url) -> anyhow::Result<(SocketAddr, String)> {
    if base.scheme() != "http" {
        bail!("{base} is not an http:// URL (the load tools send plain HTTP to loopback)");
    }
    let host = base.host_str().context("the URL has no host")?;
    let port = base.port_or_known_default().unwrap_or(80);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .with_context(|| format!("{host}:{port} does not resolve"))?
        .next()
        .with_context(|| format!("{host}:{port} has no address"))?;
    Ok((addr, format!("{host}:{port}")))
}

impl Connection {
    pub fn new(base: &Url) -> anyhow::Result<Connection> {
        let (addr, host) = resolve(base)?;
        Ok(Connection {
            addr,
            host,
            stream: None,
            head: Vec::with_capacity(512),
            read: Vec::with_capacity(4096),
        })
    }

    /// POSTs `body` to `path` with `headers` (name, value) and returns the answer's status;
    /// the answer's body is read and dropped.
    pub async fn post(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<u16, Failure> {
        match tokio::time::timeout(timeout, self.exchange(path, headers, body)).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(_)) => {
                self.stream = None;
                Err(Failure::Connection)
            }
            Err(_) => {
                self.stream = None;
                Err(Failure::Timeout)
            }
        }
    }

    async fn exchange(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<u16> {
        use std::io::Write;
        self.head.clear();
        write!(
            self.head,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        )?;
        for (name, value) in headers {
            write!(self.head, "{name}: {value}\r\n")?;
        }
        self.head.extend_from_slice(b"\r\n");
        self.head.extend_from_slice(body);
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(self.addr).await?;
                stream.set_nodelay(true)?;
                self.stream.insert(stream)
            }
        };
        stream.write_all(&self.head).await?;
        self.read.clear();
        loop {
            if let Some((status, total, close)) = answer_length(&self.read)? {
                while self.read.len() < total {
                    read_more(stream, &mut self.read).await?;
                }
                if self.read.len() > total {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "bytes after the answer to a request sent alone",
                    ));
                }
                if close {
                    self.stream = None;
                }
                return Ok(status);
            }
            read_more(stream, &mut self.read).await?;
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.reserve(4096);
    if stream.read_buf(buf).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection before answering",
        ));
    }
    Ok(())
}

/// Once the answer's head is complete: its status, the answer's whole length (head and
/// `Content-Length` body) and whether the server closes the connection after it.
fn answer_length(buf: &[u8]) -> io::Result<Option<(u16, usize, bool)>> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut answer = httparse::Response::new(&mut headers);
    let head = match answer.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(format!("unreadable answer: {e}"))),
    };
    let status = answer.code.unwrap_or(0);
    let mut length = 0usize;
    let mut close = answer.version == Some(0);
    for header in answer.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| invalid("a Content-Length that is not a number".to_owned()))?;
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(invalid(
                "a chunked answer (not expected from baton)".to_owned(),
            ));
        } else if header.name.eq_ignore_ascii_case("connection") {
            close = header.value.eq_ignore_ascii_case(b"close");
        }
    }
    Ok(Some((status, head + length, close)))
}

/// Idle connections to several servers, for callers that share connections between tasks.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Vec<(String, Connection)>>,
}

impl Pool {
    /// POSTs to `base` + `path` on an idle connection to `base` (or a new one).
    pub async fn post(
        &self,
        base: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<u16, Failure> {
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.iter()
                .rposition(|(b, _)| b == base)
                .map(|at| idle.swap_remove(at).1)
        };
        let is_reused = reused.is_some();
        let mut connection = match reused {
            Some(c) => c,
            None => Url::parse(base)
                .ok()
                .and_then(|url| Connection::new(&url).ok())
                .ok_or(Failure::Connection)?,
        };
        let mut outcome = connection.post(path, headers, body, timeout).await;
        // An idle connection the server has closed (its keep-alive timeout) fails at once:
        // once more on a new one (the connection reconnects by itself).
        if is_reused && matches!(outcome, Err(Failure::Connection)) {
            outcome = connection.post(path, headers, body, timeout).await;
        }
        if outcome.is_ok() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.push((base.to_owned(), connection));
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_complete_only_with_its_whole_body() {
        let answer =
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}";
        let head = answer.len() - 2;
        assert_eq!(answer_length(&answer[..10]).unwrap(), None);
        assert_eq!(
            answer_length(&answer[..head]).unwrap(),
            Some((200, answer.len(), false))
        );
        let no_body = b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
        assert_eq!(
            answer_length(no_body).unwrap(),
            Some((204, no_body.len(), true))
        );
        assert!(answer_length(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(answer_length(b"garbage\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn a_pooled_connection_the_server_dropped_is_replaced_without_an_error() {
        use tokio::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Each connection gets one answer, then the server drops it without saying so (as a
        // keep-alive timeout does).
        let server = tokio::spawn(async move {
            let mut bodies = Vec::new();
            for code in ["200", "204"] {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap();
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                bodies.push(request.rsplit("\r\n").next().unwrap_or("").to_owned());
                let reply = format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\n\r\n");
                socket.write_all(reply.as_bytes()).await.unwrap();
            }
            bodies
        });
        let pool = Pool::default();
        let base = format!("http://{addr}");
        let second = Duration::from_secs(5);
        let first = pool.post(&base, "/a", &[], b"one", second).await.unwrap();
        // Let the server's drop reach this side.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let again = pool.post(&base, "/a", &[], b"two", second).await.unwrap();
        assert_eq!((first, again), (200, 204));
        assert_eq!(server.await.unwrap(), ["one", "two"]);
    }

    #[tokio::test]
    async fn a_connection_is_kept_alive_and_reopened_after_close() {
        use tokio::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The server: two requests on the first connection (the second answered with close),
        // then one on a second connection.
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for answers in [&["200", "503 close"][..], &["204"][..]] {
                let (mut socket, _) = listener.accept().await.unwrap();
                for answer in answers {
                    let mut buf = vec![0u8; 4096];
                    let n = socket.read(&mut buf).await.unwrap();
                    seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                    let (code, close) = answer.split_once(' ').unwrap_or((answer, ""));
                    let connection = if close.is_empty() {
                        ""
                    } else {
                        "connection: close\r\n"
                    };
                    let reply =
                        format!("HTTP/1.1 {code} X\r\n{connection}content-length: 2\r\n\r\nok");
                    socket.write_all(reply.as_bytes()).await.unwrap();
                }
            }
            seen
        });
        let url = Url::parse(&format!("http://{addr}")).unwrap();
        let mut connection = Connection::new(&url).unwrap();
        let second = Duration::from_secs(5);
        let headers = [("X-Twilio-Signature", "abc=")];
        let mut statuses = Vec::new();
        for body in ["a=1", "b=2", "c=3"] {
            let status = connection.post("/webhooks/taskrouter", &headers, body.as_bytes(), second);
            statuses.push(status.await.unwrap());
        }
        assert_eq!(statuses, [200, 503, 204]);
        let seen = server.await.unwrap();
        assert_eq!(
            seen[0],
            format!(
                "POST /webhooks/taskrouter HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 3\r\n\
                 X-Twilio-Signature: abc=\r\n\r\na=1"
            )
        );
        assert!(seen[2].ends_with("\r\n\r\nc=3"));
    }
}
