//! A receiver standing in for baton's webhook endpoints, and an independent signature check.
#![allow(dead_code)]

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use sha1::{Digest, Sha1};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---- a receiver standing in for baton ----

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub pairs: Vec<(String, String)>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn event_type(&self) -> &str {
        self.param("EventType").unwrap_or_default()
    }
}

#[derive(Default)]
pub struct Inbox {
    pub received: Mutex<Vec<Received>>,
    /// Statuses to answer next (then 204).
    pub answers: Mutex<VecDeque<u16>>,
    /// How long to wait before answering.
    pub delay: Mutex<Duration>,
}

pub struct Receiver {
    pub inbox: Arc<Inbox>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `{base}/webhooks/taskrouter`.
    pub url: String,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, inbox: web::Data<Inbox>) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let pairs = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    inbox.received.lock().unwrap().push(Received {
        method: req.method().as_str().to_owned(),
        path: req.uri().to_string(),
        headers,
        pairs,
    });
    let delay = *inbox.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let status = inbox.answers.lock().unwrap().pop_front().unwrap_or(204);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .finish()
}

impl Receiver {
    /// Serves on its own thread and actix runtime, like the stand-in.
    pub fn start() -> Receiver {
        let inbox = Arc::new(Inbox::default());
        let data = web::Data::from(inbox.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .default_service(web::to(receive))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(0)
                .bind(("127.0.0.1", 0))
                .expect("bind the receiver");
                let addr = server.addrs()[0];
                let running = server.run();
                tx.send((addr, running.handle())).unwrap();
                let _ = running.await;
            });
        });
        let (addr, handle) = rx.recv().expect("receiver started");
        Receiver {
            inbox,
            base: format!("http://{addr}"),
            url: format!("http://{addr}/webhooks/taskrouter"),
            handle,
        }
    }

    /// A URL on this receiver (`path` starts with `/`).
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn received(&self) -> Vec<Received> {
        self.inbox.received.lock().unwrap().clone()
    }

    pub fn types(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| r.event_type().to_owned())
            .collect()
    }

    pub fn answer(&self, statuses: &[u16]) {
        self.inbox.answers.lock().unwrap().extend(statuses);
    }
}

// ---- an independent signature check ----

/// HMAC-SHA1 written out from RFC 2104 over the `sha1` digest, so the check shares no code
/// with the stand-in's signer.
pub fn hmac_sha1(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let mut inner = Sha1::new();
    inner.update(&ipad);
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha1::new();
    outer.update(&opad);
    outer.update(inner);
    outer.finalize().to_vec()
}

/// What Twilio's docs say the signature is: the URL, then each parameter's name and value with
/// names sorted (case-sensitive), HMAC-SHA1 with the auth token, Base64.
pub fn expected_signature(auth_token: &str, url: &str, pairs: &[(String, String)]) -> String {
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then(a.1.cmp(&b.1)));
    let mut message = url.to_owned();
    for (name, value) in sorted {
        message.push_str(&name);
        message.push_str(&value);
    }
    base64::engine::general_purpose::STANDARD
        .encode(hmac_sha1(auth_token.as_bytes(), message.as_bytes()))
}
