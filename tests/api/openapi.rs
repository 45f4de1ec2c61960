//! The OpenAPI document against a running baton: served as generated, and every documented
//! operation routes (its answer is not the default service's 404 or 405) while every other
//! method on a documented path answers 405 with `Allow` naming exactly the documented methods —
//! a route registered but not documented fails here or in the route-table drift test
//! (`edge::openapi::tests`).

use crate::helpers::*;
use baton::edge::openapi::{operations, ApiDoc};
use serde_json::Value;
use std::collections::BTreeSet;
use utoipa::OpenApi;

/// The default service's message (`EdgeError::NotFound`); a handler's own 404 says what is
/// missing instead.
const UNROUTED: &str = "no route for this method and path";

/// A concrete path for a documented one: each `{parameter}` becomes `1`.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// How the default service answered a request, if it did.
#[derive(Debug, PartialEq, Eq)]
enum Fallback {
    /// A handler answered.
    Routed(u16),
    /// `404`: no route for the path.
    Unrouted,
    /// `405` with these `Allow` methods and the JSON error body.
    NotAllowed(BTreeSet<String>),
}

async fn fallback(app: &TestApp, method: &str, path: &str) -> Fallback {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let response = app
        .client
        .request(method.clone(), format!("{}{path}", app.address))
        .send()
        .await
        .expect("baton reachable");
    let status = response.status().as_u16();
    let allow = response
        .headers()
        .get("allow")
        .map(|v| v.to_str().expect("Allow is text").to_owned());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match status {
        404 if body["error"]["message"] == UNROUTED => Fallback::Unrouted,
        405 => {
            assert_eq!(
                body["error"]["code"], "method_not_allowed",
                "{method} {path}"
            );
            let allow = allow.unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"));
            Fallback::NotAllowed(allow.split(", ").map(str::to_owned).collect())
        }
        _ => Fallback::Routed(status),
    }
}

#[tokio::test]
async fn the_served_document_is_the_generated_one_and_describes_what_routes() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.address))
        .send()
        .await
        .expect("baton reachable");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served: Value = response.json().await.expect("JSON");
    assert_eq!(served, serde_json::to_value(ApiDoc::openapi()).unwrap());
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));

    // The probe can tell: an unknown path is the default 404.
    assert_eq!(
        fallback(&app, "GET", "/api/v1/nothing-here").await,
        Fallback::Unrouted
    );

    let documented = operations(&ApiDoc::openapi());
    let paths: BTreeSet<&String> = documented.iter().map(|(_, path)| path).collect();
    assert!(documented.len() >= 18, "{documented:?}");
    for path in paths {
        let mut methods: BTreeSet<String> = documented
            .iter()
            .filter(|(_, p)| p == path)
            .map(|(m, _)| m.clone())
            .collect();
        // A resource that answers GET answers HEAD (HTTP), documented or not.
        if methods.contains("GET") {
            methods.insert("HEAD".into());
        }
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "TRACE", "OPTIONS"] {
            let answer = fallback(&app, method, &concrete(path)).await;
            if methods.contains(method) {
                assert!(
                    matches!(answer, Fallback::Routed(_)),
                    "{method} {path} is documented but answers {answer:?}"
                );
            } else {
                assert_eq!(
                    answer,
                    Fallback::NotAllowed(methods.clone()),
                    "{method} {path} is not documented"
                );
            }
        }
    }
}

/// A routed path asked with another method: `405`, `Allow` naming what it answers, the JSON
/// error body; an unknown path stays `404`.
#[tokio::test]
async fn a_method_a_path_does_not_answer_is_405_with_allow() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        ("TRACE", "/healthz", "GET, HEAD"),
        ("DELETE", "/api/v1/parks", "GET, HEAD, POST"),
        ("PUT", "/api/v1/parks/PA0123/resume", "POST"),
        ("POST", "/api/v1/openapi.json", "GET, HEAD"),
        ("GET", "/webhooks/taskrouter", "POST"),
        ("DELETE", "/console", "GET, HEAD"),
        ("PUT", "/console/sign-in", "GET, HEAD, POST"),
    ] {
        let response = app
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{path}", app.address),
            )
            .send()
            .await
            .expect("baton reachable");
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        assert!(response.headers()["content-type"]
            .to_str()
            .expect("text")
            .starts_with("application/json"));
        let body: Value = response.json().await.expect("JSON error body");
        assert_eq!(body["error"]["code"], "method_not_allowed");
        assert_eq!(
            body["error"]["message"],
            format!("{method} is not allowed here; this path answers {allow}")
        );
    }
    // HEAD is GET without the body.
    let head = app
        .client
        .head(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("baton reachable");
    assert_eq!(head.status(), 200);
    assert!(head.bytes().await.expect("body").is_empty());
    let response = app
        .client
        .delete(format!("{}/api/v1/nothing-here", app.address))
        .send()
        .await
        .expect("baton reachable");
    assert_eq!(response.status(), 404);
    assert!(response.headers().get("allow").is_none());
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "not_found");
}

/// `docs/api.md`'s routes table and the OpenAPI document list the same operations: every
/// documented operation has its row, and every `/api` or `/webhooks` row is documented.
#[test]
fn the_api_reference_lists_exactly_the_documented_operations() {
    // `{transfer_id}` and `{id}` are the same segment to a reader.
    let shape = |path: &str| -> String {
        path.split('?')
            .next()
            .unwrap_or(path)
            .split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    };
    let documented: BTreeSet<(String, String)> = operations(&ApiDoc::openapi())
        .into_iter()
        .map(|(method, path)| (method, shape(&path)))
        .collect();
    let reference = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md"))
        .expect("docs/api.md");
    let rows: BTreeSet<(String, String)> = reference
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let method = cells.get(1)?.trim_matches('`');
            let path = cells.get(2)?.trim_matches('`');
            (["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) && path.starts_with('/'))
                .then(|| (method.to_owned(), shape(path)))
        })
        .collect();
    let missing: Vec<_> = documented.difference(&rows).collect();
    assert!(missing.is_empty(), "not in docs/api.md: {missing:?}");
    let undocumented: Vec<_> = rows
        .difference(&documented)
        .filter(|(_, path)| path.starts_with("/api/") || path.starts_with("/webhooks/"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "in docs/api.md but not in the OpenAPI document: {undocumented:?}"
    );
}
