//! A minimal Twilio REST client for the tests: Basic auth, form bodies with repeated keys.
#![allow(dead_code)]

pub mod callbacks;
pub mod receiver;

use reqwest::header::HeaderMap;
use serde_json::Value;
use twilio_standin::{StandIn, StandInConfig};

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub user: String,
    pub password: String,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Twilio's error code, if this is an error body.
    pub fn code(&self) -> Option<u64> {
        self.json.get("code").and_then(Value::as_u64)
    }

    pub fn str(&self, key: &str) -> &str {
        self.json
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

pub async fn start() -> StandIn {
    StandIn::start(StandInConfig::default()).await
}

impl Client {
    pub fn new(standin: &StandIn) -> Client {
        Client {
            // No connection reuse: a dropped connection (fault) affects only its own request.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
            base: standin.base_url(),
            user: standin.account_sid().to_owned(),
            password: standin.auth_token().to_owned(),
        }
    }

    pub fn ws(&self, standin: &StandIn) -> String {
        format!("/v1/Workspaces/{}", standin.workspace_sid())
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Result<Resp> {
        let mut request = self
            .http
            .request(method, self.url(path))
            .basic_auth(&self.user, Some(&self.password));
        if !form.is_empty() {
            request = request.form(form);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Resp {
            status,
            headers,
            json,
        })
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(reqwest::Method::GET, path, &[], &[])
            .await
            .expect("GET")
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        self.send(reqwest::Method::POST, path, form, &[])
            .await
            .expect("POST")
    }

    pub async fn post_with(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Resp {
        self.send(reqwest::Method::POST, path, form, headers)
            .await
            .expect("POST")
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(reqwest::Method::DELETE, path, &[], &[])
            .await
            .expect("DELETE")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        let response = self
            .http
            .post(self.url(path))
            .basic_auth(&self.user, Some(&self.password))
            .json(body)
            .send()
            .await
            .expect("POST json");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let json = response.json().await.unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            json,
        }
    }
}

/// Asserts the exact Twilio error body.
pub fn assert_error(resp: &Resp, status: u16, code: u64) {
    assert_eq!(resp.status, status, "status of {resp:?}");
    let body = resp.json.as_object().expect("error body is an object");
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message", "more_info", "status"], "{resp:?}");
    assert_eq!(body["code"], code, "{resp:?}");
    assert_eq!(body["status"], status, "{resp:?}");
    assert_eq!(
        body["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}"),
        "{resp:?}"
    );
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// The Events list from index `from` on, without what depends on the clock (dates, ages,
/// timestamps): two stand-ins with the same seed that made the same changes have equal lists.
pub fn timeless_events(standin: &StandIn, from: usize) -> Vec<Value> {
    const CLOCK: &[&str] = &[
        "event_date",
        "event_date_ms",
        "timestamp",
        "timestamp_ms",
        "task_age",
        "task_date_created",
        "task_queue_entered_date",
        "worker_time_in_previous_activity",
        "worker_time_in_previous_activity_ms",
    ];
    standin
        .events()
        .into_iter()
        .skip(from)
        .map(|mut event| {
            if let Some(object) = event.as_object_mut() {
                object.retain(|k, _| !CLOCK.contains(&k.as_str()));
                if let Some(Value::Object(data)) = object.get_mut("event_data") {
                    data.retain(|k, _| !CLOCK.contains(&k.as_str()));
                }
            }
            event
        })
        .collect()
}

/// The `event_type` of each event from index `from` on.
pub fn event_types(standin: &StandIn, from: usize) -> Vec<String> {
    standin
        .events()
        .iter()
        .skip(from)
        .map(|e| e["event_type"].as_str().unwrap_or_default().to_owned())
        .collect()
}
