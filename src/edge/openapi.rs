//! The OpenAPI 3 document of every route, generated from the handlers' `#[utoipa::path]`
//! annotations and served at `GET /api/v1/openapi.json`. It is unauthenticated: it describes
//! the API and holds no data. A route in [`super::routes`] that is not listed here (or the
//! other way round) fails the drift test below.

use super::error::{EdgeError, ErrorBody, ErrorObject};
use super::{api, health, history, lookup, outbox, overview, webhooks};
use actix_web::HttpResponse;
use std::collections::BTreeSet;
use std::sync::OnceLock;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::PathItem;
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "baton",
        description = "Durable transfer chains, parks and orphan cleanup for Twilio Flex. Every \
            error is JSON `{\"error\": {\"code\", \"message\"}}`; any route may also answer \
            `503` with `Retry-After: 5` when the database is down — `store_unavailable` when \
            nothing could be stored, `store_read_unavailable` when it could not be read — and \
            the `/api/v1` routes `422 not_configured` when baton has no Twilio credentials."
    ),
    paths(
        webhooks::taskrouter,
        webhooks::conversations,
        webhooks::event_streams,
        api::task_chain,
        api::get_conversation,
        api::create_park,
        api::list_parks,
        api::get_park,
        api::resume_park,
        api::create_transfer,
        api::get_transfer,
        history::list_transfers,
        history::transfer_stats,
        overview::overview,
        lookup::find_sid,
        outbox::list_calls,
        outbox::get_call,
        outbox::retry_call,
        document,
        health::healthz,
        health::readyz,
        health::metrics,
    ),
    components(schemas(ErrorBody, ErrorObject)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "webhooks", description = "Signed Twilio callbacks, stored before they are answered"),
        (name = "history", description = "Chains and conversations (ops token, or a Flex admin/supervisor)"),
        (name = "transfers", description = "Transfers (ops token or a Flex token)"),
        (name = "parks", description = "Parks (ops token or a Flex token)"),
        (name = "outbox", description = "Outbound Twilio calls (ops token only)"),
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// The ways a caller proves who it is.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "ops_token",
            bearer("`Authorization: Bearer $BATON_OPS_TOKEN`"),
        );
        components.add_security_scheme(
            "flex_token",
            bearer("`Authorization: Bearer` with a Flex user's token, validated with Twilio (cached 60 s); also accepted as `Token` in a JSON body"),
        );
        components.add_security_scheme(
            "flex_token_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Flex-Token",
                "A Flex user's token",
            ))),
        );
        components.add_security_scheme(
            "console_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::console::session::COOKIE,
                "The ops console's signed session (`POST /console/sign-in`); an action \
                 (anything but GET) must also send the session's `X-CSRF-Token`",
            ))),
        );
        // Every API operation that takes a token also takes the console's session.
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if let Some(security) = operation.security.as_mut().filter(|s| !s.is_empty()) {
                    security.push(SecurityRequirement::new(
                        "console_session",
                        Vec::<String>::new(),
                    ));
                }
            }
        }
        components.add_security_scheme(
            "twilio_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Twilio-Signature",
                "Twilio's HMAC-SHA1 request signature with the account's auth token",
            ))),
        );
    }
}

/// Every operation of `doc`: (method in upper case, path).
pub fn operations(doc: &utoipa::openapi::OpenApi) -> BTreeSet<(String, String)> {
    doc.paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            methods(item)
                .into_iter()
                .map(move |method| (method.to_owned(), path.clone()))
        })
        .collect()
}

fn methods(item: &PathItem) -> Vec<&'static str> {
    [
        ("GET", &item.get),
        ("PUT", &item.put),
        ("POST", &item.post),
        ("DELETE", &item.delete),
        ("OPTIONS", &item.options),
        ("HEAD", &item.head),
        ("PATCH", &item.patch),
        ("TRACE", &item.trace),
    ]
    .into_iter()
    .filter(|(_, operation)| operation.is_some())
    .map(|(method, _)| method)
    .collect()
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3 document (unauthenticated)",
        content_type = "application/json", body = Object)))]
pub async fn document() -> Result<HttpResponse, EdgeError> {
    static DOCUMENT: OnceLock<Option<String>> = OnceLock::new();
    let json = DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().ok());
    match json {
        Some(json) => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(json.clone())),
        None => Err(EdgeError::Internal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::{routes, RouteList};

    /// What the route table registers and the document does not describe, and the reverse.
    fn drift(table: &RouteList, doc: &utoipa::openapi::OpenApi) -> Vec<String> {
        let registered: BTreeSet<(String, String)> = table
            .0
            .iter()
            .map(|(method, path)| (method.as_str().to_owned(), (*path).to_owned()))
            .collect();
        let documented = operations(doc);
        let mut drift: Vec<String> = registered
            .difference(&documented)
            .map(|(m, p)| format!("{m} {p} is routed but not documented"))
            .collect();
        drift.extend(
            documented
                .difference(&registered)
                .map(|(m, p)| format!("{m} {p} is documented but not routed")),
        );
        drift
    }

    fn table() -> RouteList {
        let mut table = RouteList::default();
        routes(&mut table);
        table
    }

    #[test]
    fn the_document_describes_exactly_the_routed_routes() {
        let table = table();
        let unique: BTreeSet<_> = table.0.iter().map(|(m, p)| (m.as_str(), *p)).collect();
        assert_eq!(unique.len(), table.0.len(), "a route is in the table twice");
        assert_eq!(drift(&table, &ApiDoc::openapi()), Vec::<String>::new());
    }

    #[test]
    fn drift_is_found_in_either_direction() {
        let mut table = table();
        table
            .0
            .push((actix_web::http::Method::GET, "/api/v1/undocumented"));
        let removed = table.0.remove(0);
        assert_eq!(
            drift(&table, &ApiDoc::openapi()),
            [
                "GET /api/v1/undocumented is routed but not documented".to_owned(),
                format!("{} {} is documented but not routed", removed.0, removed.1),
            ]
        );
    }

    #[test]
    fn every_operation_says_what_it_answers_and_errors_are_the_json_error_body() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("document");
        let error_ref = "#/components/schemas/ErrorBody";
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let responses = operation["responses"].as_object().expect("responses");
                assert!(!responses.is_empty(), "{method} {path}");
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &response["content"]["application/json"]["schema"]["$ref"];
                        // /readyz answers 503 with its own status body, not an error.
                        if path != "/readyz" {
                            assert_eq!(schema, error_ref, "{method} {path} {status}");
                        }
                    }
                }
                if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
                    assert!(
                        operation["security"]
                            .as_array()
                            .is_some_and(|s| !s.is_empty()),
                        "{method} {path} names no security scheme"
                    );
                    assert!(responses.contains_key("401"), "{method} {path}");
                }
            }
        }
        let schemes = doc["components"]["securitySchemes"]
            .as_object()
            .expect("schemes");
        assert_eq!(schemes["ops_token"]["scheme"], "bearer");
        assert_eq!(schemes["twilio_signature"]["name"], "X-Twilio-Signature");
    }
}
