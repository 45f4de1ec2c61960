//! The OpenAPI 3 document of every route, generated from the handlers' `#[utoipa::path]`
//! annotations and served at `GET /api/v1/openapi.json`. It is unauthenticated: it describes
//! the API and holds no data. A route in [`super::routes`] that is not listed here (or the
//! other way round) fails the drift test below.

use super::error::{EdgeError, ErrorBody, ErrorObject};
use super::{api, health, history, lookup, outbox, overview, webhooks};
use actix_web::HttpResponse;
use std::collections::BTreeSet;
use std::sync::OnceLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, PathItem, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "baton",
        description = "Durable transfer chains, parks and orphan cleanup for Twilio Flex. Every \
            error is JSON `{\"error\": {\"code\", \"message\"}}`; any route may also answer \
            `503` with `Retry-After: 5` when the database is down — `store_unavailable` when \
            nothing could be stored, `store_read_unavailable` when it could not be read — and \
            the `/api/v1` routes `422 not_configured` when baton has no Twilio credentials. A \
            path asked with a method it does not answer is `405 method_not_allowed` with an \
            `Allow` header naming the methods it answers; an unknown path is `404 not_found`."
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
    modifiers(&SecuritySchemes, &CommonAnswers, &LinkTargets),
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

/// The operations whose request body may be left out (an empty body has a meaning of its own).
const OPTIONAL_BODIES: [&str; 1] = ["resume_park"];

/// The answers that follow from what an operation is rather than from its handler, added
/// wherever they are not described already: the `/api/v1` routes' `422 not_configured` and
/// `503`, and the body limits of every operation that reads a body.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let api = path.starts_with("/api/v1/") && path != "/api/v1/openapi.json";
            for operation in operations_mut(item) {
                let mut answers: Vec<(&str, &str)> = Vec::new();
                if api {
                    answers.push(("422", "`not_configured`: baton has no Twilio credentials"));
                    answers.push((
                        "503",
                        "`store_unavailable` (nothing stored) or `store_read_unavailable`: the \
                         database is down; `Retry-After: 5`",
                    ));
                }
                if let Some(body) = operation.request_body.as_mut() {
                    if operation
                        .operation_id
                        .as_deref()
                        .is_some_and(|id| OPTIONAL_BODIES.contains(&id))
                    {
                        body.required = Some(utoipa::openapi::Required::False);
                    }
                    answers.extend([
                        (
                            "408",
                            "`request_timeout`: the body did not arrive within \
                             `BATON_BODY_TIMEOUT`",
                        ),
                        ("413", "`payload_too_large`: over `BATON_MAX_BODY_BYTES`"),
                        ("415", "`unsupported_media_type`"),
                    ]);
                }
                for (status, description) in answers {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_answer(description));
                }
            }
        }
    }
}

/// utoipa 5 writes a link's target as `operation_id`; OpenAPI (and every tool reading links)
/// spells it `operationId`. Moved there, where it is read.
struct LinkTargets;

impl Modify for LinkTargets {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                for response in operation.responses.responses.values_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    for link in response.links.values_mut() {
                        let RefOr::T(link) = link else { continue };
                        if link.operation_id.is_empty() {
                            continue;
                        }
                        let target = std::mem::take(&mut link.operation_id);
                        link.extensions
                            .get_or_insert_with(Default::default)
                            .insert("operationId".to_owned(), target.into());
                    }
                }
            }
        }
    }
}

/// An error answer: `description`, with the JSON error body.
fn error_answer(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build(),
    )
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
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
    fn creations_link_to_what_they_created_and_bodies_state_their_limits() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("document");
        let paths = &doc["paths"];
        for (path, status, link, target, parameter, expression) in [
            (
                "/api/v1/parks",
                "201",
                "GetPark",
                "get_park",
                "park_id",
                "$response.body#/park/park_id",
            ),
            (
                "/api/v1/parks",
                "200",
                "ResumePark",
                "resume_park",
                "park_id",
                "$response.body#/park/park_id",
            ),
            (
                "/api/v1/transfers",
                "202",
                "GetTransfer",
                "get_transfer",
                "transfer_id",
                "$response.body#/transfer/transfer_id",
            ),
        ] {
            let link = &paths[path]["post"]["responses"][status]["links"][link];
            assert_eq!(link["operationId"], target, "{path} {status}");
            assert!(link.get("operation_id").is_none());
            assert_eq!(link["parameters"][parameter], expression);
            let target_operations: Vec<&serde_json::Value> = paths
                .as_object()
                .expect("paths")
                .values()
                .flat_map(|item| item.as_object().expect("item").values())
                .filter(|operation| operation["operationId"] == target)
                .collect();
            assert_eq!(target_operations.len(), 1, "{target}");
        }
        for (path, item) in paths.as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let responses = &operation["responses"];
                if let Some(body) = operation.get("requestBody") {
                    for status in ["408", "413", "415"] {
                        assert!(responses.get(status).is_some(), "{method} {path} {status}");
                    }
                    let optional = path == "/api/v1/parks/{park_id}/resume";
                    assert_eq!(body["required"], !optional, "{method} {path}");
                }
                if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
                    for status in ["422", "503"] {
                        assert!(responses.get(status).is_some(), "{method} {path} {status}");
                    }
                }
            }
        }
        for request in ["TransferRequest", "ParkRequest", "ResumeRequest"] {
            assert_eq!(
                doc["components"]["schemas"][request]["additionalProperties"], false,
                "{request}"
            );
        }
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
