//! The ops console, served under `/console`: sign-in, sign-out, and one HTML shell per page
//! whose script reads and acts only through the documented `/api/v1` routes (with the session
//! cookie and its CSRF token). Its assets are compiled into the binary: nothing is fetched from
//! elsewhere, so it works offline behind a firewall.

pub mod assets;
pub mod pages;
pub mod session;

use super::Routes;
use actix_web::http::Method;

/// The console's routes: HTML, not part of the API document (a wrong method still gets `405`
/// with `Allow`, as the API's routes do).
pub fn routes<R: Routes>(r: &mut R) {
    r.add(Method::GET, "/", pages::root)
        .add(Method::GET, "/console/sign-in", pages::sign_in_form)
        .add(Method::POST, "/console/sign-in", pages::sign_in)
        .add(Method::POST, "/console/sign-out", pages::sign_out)
        .add(Method::GET, "/console/assets/{name}", assets::asset)
        .add(Method::GET, "/console", pages::page)
        .add(Method::GET, "/console/transfers", pages::page)
        .add(Method::GET, "/console/tasks/{sid}", pages::page)
        .add(Method::GET, "/console/conversations/{sid}", pages::page)
        .add(Method::GET, "/console/parks", pages::page)
        .add(Method::GET, "/console/outbox", pages::page)
        .add(Method::GET, "/console/outbox/{id}", pages::page);
}
