//! The ops console, served under `/console`: sign-in, sign-out, and one HTML shell per page
//! whose script reads and acts only through the documented `/api/v1` routes (with the session
//! cookie and its CSRF token). Its assets are compiled into the binary: nothing is fetched from
//! elsewhere, so it works offline behind a firewall.

pub mod assets;
pub mod pages;
pub mod session;

use actix_web::web;

/// Registers the console's routes (HTML, not part of the API document).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(pages::root))
        .route("/console/sign-in", web::get().to(pages::sign_in_form))
        .route("/console/sign-in", web::post().to(pages::sign_in))
        .route("/console/sign-out", web::post().to(pages::sign_out))
        .route("/console/assets/{name}", web::get().to(assets::asset))
        .route("/console", web::get().to(pages::page))
        .route("/console/transfers", web::get().to(pages::page))
        .route("/console/tasks/{sid}", web::get().to(pages::page))
        .route("/console/conversations/{sid}", web::get().to(pages::page))
        .route("/console/parks", web::get().to(pages::page))
        .route("/console/outbox", web::get().to(pages::page))
        .route("/console/outbox/{id}", web::get().to(pages::page));
}
