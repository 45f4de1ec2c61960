//! The console's script, style sheet and icon, compiled into the binary.

use crate::edge::error::EdgeError;
use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// `(name, content type, bytes)` of every asset.
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    ),
    ("icon.svg", "image/svg+xml", include_str!("assets/icon.svg")),
];

pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, EdgeError> {
    match ASSETS.iter().find(|(n, _, _)| *n == name.as_str()) {
        Some((_, content_type, body)) => Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, *content_type))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(*body)),
        None => Err(EdgeError::NotFound(format!(
            "no console asset {:?}",
            name.as_str()
        ))),
    }
}
