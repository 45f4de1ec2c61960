//! The console's HTML: the sign-in form, sign-in and sign-out, and the shell every page shares.
//! Pages hold no data in their HTML: the script fetches it from `/api/v1`. Every page carries a
//! strict Content-Security-Policy (no inline script) and is never cached.

use super::session::{Session, Who, COOKIE};
use crate::edge::api::{api, console_session, ApiState};
use crate::edge::error::EdgeError;
use crate::edge::AppState;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `GET /`: the console.
pub async fn root() -> HttpResponse {
    see_other("/console")
}

/// Any console page: the shell, or the sign-in form when there is no valid session.
pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    let next = req
        .uri()
        .path_and_query()
        .map_or("/console", |p| p.as_str());
    match console_session(&req, api) {
        Ok(Some(session)) => Ok(html(StatusCode::OK, &shell(api, &session))),
        Ok(None) => Ok(see_other(&format!(
            "/console/sign-in?next={}",
            encode(next)
        ))),
        Err(_) => Ok(see_other(&format!(
            "/console/sign-in?expired=1&next={}",
            encode(next)
        ))),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
    expired: Option<String>,
}

/// `GET /console/sign-in`.
pub async fn sign_in_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<SignInQuery>,
) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    let next = safe_next(query.next.as_deref());
    if let Ok(Some(_)) = console_session(&req, api) {
        return Ok(see_other(next));
    }
    let notice = query
        .expired
        .is_some()
        .then_some("Your session has ended. Sign in again.");
    Ok(html(StatusCode::OK, &sign_in_page(next, notice, None)))
}

#[derive(Debug, serde::Deserialize)]
pub struct SignInForm {
    token: String,
    next: Option<String>,
}

/// `POST /console/sign-in`: the ops token or a Flex user's token; a session cookie on success.
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    let next = safe_next(form.next.as_deref());
    if cross_site(&req) {
        return Err(EdgeError::Forbidden(
            "sign in from the console's own page".into(),
        ));
    }
    let token = form.token.trim();
    let who = if token.is_empty() {
        Err(EdgeError::Unauthorized("enter a token".into()))
    } else {
        api.who_is(token).await
    };
    match who {
        Ok((who, token_expires)) => {
            let now = chrono::Utc::now();
            let ttl = token_expires
                .map(|at| (at - now).to_std().unwrap_or_default())
                .map_or(api.session_ttl, |left| left.min(api.session_ttl));
            let session = api.sessions.start(who, now.timestamp(), ttl);
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, next))
                .insert_header((header::SET_COOKIE, set_cookie(&state, &session, api, ttl)))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish())
        }
        Err(EdgeError::Upstream(message)) => Ok(html(
            StatusCode::BAD_GATEWAY,
            &sign_in_page(next, None, Some(&message)),
        )),
        Err(_) => Ok(html(
            StatusCode::UNAUTHORIZED,
            &sign_in_page(
                next,
                None,
                Some("That token was not accepted: use the ops token or a Flex user's token."),
            ),
        )),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct SignOutForm {
    csrf: String,
}

/// `POST /console/sign-out`: ends the session (the cookie is cleared).
pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignOutForm>,
) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    if let Some(cookie) = crate::edge::api::cookie(&req, COOKIE) {
        if let Ok(session) = api.sessions.open(cookie, chrono::Utc::now().timestamp()) {
            if !api.sessions.csrf_matches(&session, &form.csrf) {
                return Err(EdgeError::Forbidden(
                    "sign out from the console's own page".into(),
                ));
            }
        }
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/sign-in"))
        .insert_header((
            header::SET_COOKIE,
            format!(
                "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
                secure(&state)
            ),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// A form posted from another site (browsers say so in `Sec-Fetch-Site` / `Origin`).
fn cross_site(req: &HttpRequest) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("Sec-Fetch-Site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (header("Origin"), header("Host")) {
        (Some(origin), Some(host)) => {
            origin != "null"
                && origin
                    .split_once("://")
                    .map_or(true, |(_, authority)| authority != host)
        }
        (Some(origin), None) => origin == "null",
        _ => false,
    }
}

fn set_cookie(
    state: &AppState,
    session: &Session,
    api: &ApiState,
    ttl: std::time::Duration,
) -> String {
    format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        api.sessions.seal(session),
        ttl.as_secs(),
        secure(state)
    )
}

fn secure(state: &AppState) -> &'static str {
    if state.public_base.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

/// Where to go after signing in: a console page, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with("/console")
                && !next.starts_with("/console/sign-")
                && !next.contains("//")
                && !next.contains('\\') =>
        {
            next
        }
        _ => "/console",
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn html(status: StatusCode, body: &str) -> HttpResponse {
    secured(HttpResponseBuilder::new(status))
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(body.to_owned())
}

/// The headers every console page carries.
fn secured(mut builder: HttpResponseBuilder) -> HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    builder
}

fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · baton</title>\n\
         <link rel=\"icon\" href=\"/console/assets/icon.svg\" type=\"image/svg+xml\">\n\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\">\n",
        escape(title)
    )
}

fn sign_in_page(next: &str, notice: Option<&str>, error: Option<&str>) -> String {
    let mut out = head("Sign in");
    out.push_str("</head>\n<body class=\"sign-in\">\n<main>\n<h1>baton console</h1>\n");
    if let Some(notice) = notice {
        out.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>\n",
            escape(notice)
        ));
    }
    if let Some(error) = error {
        out.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>\n",
            escape(error)
        ));
    }
    out.push_str(&format!(
        "<form method=\"post\" action=\"/console/sign-in\">\n\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\n\
         <label for=\"token\">Ops token or Flex token</label>\n\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\n\
         <button type=\"submit\">Sign in</button>\n</form>\n\
         <p class=\"hint\">The ops token is <code>BATON_OPS_TOKEN</code>. Transfer history is for \
         Flex admins and supervisors; the outbox for the ops token only.</p>\n\
         </main>\n</body>\n</html>\n",
        escape(next)
    ));
    out
}

fn shell(api: &ApiState, session: &Session) -> String {
    let mut out = head("Console");
    let ops = matches!(session.who, Who::Ops);
    out.push_str(&format!(
        "<meta name=\"csrf-token\" content=\"{csrf}\">\n\
         <script type=\"module\" src=\"/console/assets/console.js\"></script>\n</head>\n\
         <body data-ops=\"{ops}\">\n\
         <a class=\"skip\" href=\"#main\">Skip to content</a>\n\
         <header class=\"top\">\n\
         <a class=\"brand\" href=\"/console\">baton</a>\n\
         <nav aria-label=\"Pages\"><ul>\n\
         <li><a href=\"/console\" data-nav=\"overview\">Overview</a></li>\n\
         <li><a href=\"/console/transfers\" data-nav=\"transfers\">Transfers</a></li>\n\
         <li><a href=\"/console/parks\" data-nav=\"parks\">Parks</a></li>\n\
         <li><a href=\"/console/outbox\" data-nav=\"outbox\">Outbox</a></li>\n\
         </ul></nav>\n\
         <form class=\"search\" role=\"search\" id=\"search\">\n\
         <label for=\"search-sid\" class=\"visually-hidden\">Search by SID or outbox id</label>\n\
         <input id=\"search-sid\" name=\"q\" placeholder=\"WT…, WR…, WK…, WQ…, CH…, KD…, UO… or call id\" autocomplete=\"off\" spellcheck=\"false\">\n\
         <button type=\"submit\">Go</button>\n</form>\n\
         <span class=\"who\" title=\"Signed in as\">{who}</span>\n\
         <form method=\"post\" action=\"/console/sign-out\" class=\"sign-out\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <button type=\"submit\">Sign out</button>\n</form>\n\
         </header>\n\
         <main id=\"main\" tabindex=\"-1\"><p class=\"loading\">Loading…</p></main>\n\
         <footer><span id=\"zone\"></span></footer>\n\
         <noscript><p class=\"error\">The console needs JavaScript; the same data is at <a href=\"/api/v1/openapi.json\">/api/v1</a>.</p></noscript>\n\
         </body>\n</html>\n",
        csrf = escape(&api.sessions.csrf_token(session)),
        who = escape(session.who.label()),
    ));
    out
}

/// Text for HTML text and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_console() {
        assert_eq!(safe_next(Some("/console/tasks/WT1")), "/console/tasks/WT1");
        assert_eq!(safe_next(Some("https://evil.example/")), "/console");
        assert_eq!(safe_next(Some("//evil.example/console")), "/console");
        assert_eq!(safe_next(Some("/console//evil")), "/console");
        assert_eq!(safe_next(Some("/console/sign-in")), "/console");
        assert_eq!(safe_next(None), "/console");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
