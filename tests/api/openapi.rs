//! The OpenAPI document against a running baton: served as generated, and every documented
//! operation routes (its answer is not the default service's 404) while every other method on
//! a documented path does not — a route registered but not documented fails here or in the
//! route-table drift test (`edge::openapi::tests`).

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

async fn unrouted(app: &TestApp, method: &str, path: &str) -> (bool, u16) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let response = app
        .client
        .request(method, format!("{}{path}", app.address))
        .send()
        .await
        .expect("baton reachable");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status == 404 && body["error"]["message"] == UNROUTED,
        status,
    )
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
        unrouted(&app, "GET", "/api/v1/nothing-here").await,
        (true, 404)
    );

    let documented = operations(&ApiDoc::openapi());
    let paths: BTreeSet<&String> = documented.iter().map(|(_, path)| path).collect();
    assert!(documented.len() >= 18, "{documented:?}");
    for path in paths {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let (unrouted, status) = unrouted(&app, method, &concrete(path)).await;
            if documented.contains(&(method.to_owned(), path.clone())) {
                assert!(
                    !unrouted,
                    "{method} {path} is documented but answers the default 404"
                );
            } else {
                assert!(
                    unrouted,
                    "{method} {path} answers {status} but is not documented"
                );
            }
        }
    }
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
