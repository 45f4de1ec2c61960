//! TaskRouter's Events list, `GET /v1/Workspaces/{WS}/Events`: the requests for a window and
//! the pages it answers (`events`, and `meta.next_page_url` for the next one). Twilio keeps 30
//! days of events; the list is newest first and `PageToken` is a cursor.

use crate::domain::outbound::{Product, TwilioRequest};
use crate::domain::paths;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// Twilio's largest page.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The path of a workspace's Events list.
pub fn events_path(workspace_sid: &str) -> String {
    paths::events(workspace_sid)
}

/// Twilio's date-time format for `StartDate`/`EndDate`: whole seconds, UTC.
pub fn format_date(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The first page of the events from `since` to `until` (both inclusive, whole seconds: the
/// window is widened to the second, never narrowed).
pub fn first_page(
    workspace_sid: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    page_size: u32,
) -> TwilioRequest {
    let since = DateTime::<Utc>::from_timestamp(since.timestamp(), 0).unwrap_or(since);
    let until_secs = until.timestamp() + i64::from(until.timestamp_subsec_nanos() > 0);
    let until = DateTime::<Utc>::from_timestamp(until_secs, 0).unwrap_or(until);
    let mut request = TwilioRequest::get(Product::TaskRouter, events_path(workspace_sid));
    request.form = vec![
        ("StartDate".into(), format_date(since)),
        ("EndDate".into(), format_date(until)),
        (
            "PageSize".into(),
            page_size.clamp(1, MAX_PAGE_SIZE).to_string(),
        ),
    ];
    request
}

/// A later page: `next` is the path and query taken from `meta.next_page_url`.
pub fn next_page(next: &str) -> TwilioRequest {
    TwilioRequest::get(Product::TaskRouter, next)
}

/// One page of the Events list.
#[derive(Debug, Clone, PartialEq)]
pub struct EventsPage {
    /// The event resources, as Twilio sent them (parsed one by one later, so one odd item
    /// does not lose the page).
    pub events: Vec<Value>,
    /// Path and query of the next page (from `meta.next_page_url`); `None` on the last page.
    pub next: Option<String>,
}

/// Why a page could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageError {
    #[error("the Events page is not JSON: {0}")]
    NotJson(String),
    #[error("the Events page has no `events` array")]
    NoEvents,
    #[error("meta.next_page_url {0:?} is not a page of this workspace's Events list")]
    ForeignNextPage(String),
}

/// Reads an Events page. The next page's URL is followed only on this workspace's Events path
/// (its host is replaced by the client's base, which may be overridden).
pub fn parse_page(body: &str, workspace_sid: &str) -> Result<EventsPage, PageError> {
    let value: Value = serde_json::from_str(body).map_err(|e| PageError::NotJson(e.to_string()))?;
    let events = match value.get("events") {
        Some(Value::Array(items)) => items.clone(),
        _ => return Err(PageError::NoEvents),
    };
    let next = match value
        .get("meta")
        .and_then(|m| m.get("next_page_url"))
        .and_then(Value::as_str)
        .map(str::trim)
    {
        None | Some("") => None,
        Some(raw) => Some(relative_next(raw, workspace_sid)?),
    };
    Ok(EventsPage { events, next })
}

/// `https://taskrouter.twilio.com/v1/Workspaces/WS…/Events?…&PageToken=…` → `/v1/…?…`.
fn relative_next(raw: &str, workspace_sid: &str) -> Result<String, PageError> {
    let foreign = || PageError::ForeignNextPage(raw.chars().take(300).collect());
    let (path, query) = if raw.starts_with('/') {
        let parsed = url::Url::parse("http://relative.invalid")
            .and_then(|base| base.join(raw))
            .map_err(|_| foreign())?;
        (parsed.path().to_owned(), parsed.query().map(str::to_owned))
    } else {
        let parsed = url::Url::parse(raw).map_err(|_| foreign())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(foreign());
        }
        (parsed.path().to_owned(), parsed.query().map(str::to_owned))
    };
    if path != events_path(workspace_sid) {
        return Err(foreign());
    }
    Ok(match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WS: &str = "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn the_first_page_asks_for_the_window_in_whole_seconds() {
        let since = DateTime::parse_from_rfc3339("2026-11-01T00:00:00.250Z")
            .unwrap()
            .to_utc();
        let until = DateTime::parse_from_rfc3339("2026-11-02T10:20:30.001Z")
            .unwrap()
            .to_utc();
        let request = first_page(WS, since, until, 5000);
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, format!("/v1/Workspaces/{WS}/Events"));
        assert_eq!(
            request.form,
            vec![
                ("StartDate".to_owned(), "2026-11-01T00:00:00Z".to_owned()),
                ("EndDate".to_owned(), "2026-11-02T10:20:31Z".to_owned()),
                ("PageSize".to_owned(), "1000".to_owned()),
            ]
        );
    }

    #[test]
    fn pages_give_their_events_and_the_next_page_relative_to_the_base() {
        let body = serde_json::json!({
            "events": [{"sid": "EV1"}, 7],
            "meta": {
                "next_page_url": format!("https://taskrouter.twilio.com/v1/Workspaces/{WS}/Events?StartDate=2026-11-01T00%3A00%3A00Z&PageSize=2&Page=1&PageToken=PT1_2"),
                "page": 0, "page_size": 2, "key": "events"
            }
        });
        let page = parse_page(&body.to_string(), WS).unwrap();
        assert_eq!(page.events.len(), 2);
        assert_eq!(
            page.next.as_deref(),
            Some(
                format!("/v1/Workspaces/{WS}/Events?StartDate=2026-11-01T00%3A00%3A00Z&PageSize=2&Page=1&PageToken=PT1_2")
                    .as_str()
            )
        );
        let last = serde_json::json!({"events": [], "meta": {"next_page_url": null}});
        assert_eq!(
            parse_page(&last.to_string(), WS).unwrap(),
            EventsPage {
                events: vec![],
                next: None
            }
        );
    }

    #[test]
    fn odd_pages_are_errors() {
        assert!(matches!(
            parse_page("<html>", WS),
            Err(PageError::NotJson(_))
        ));
        assert_eq!(parse_page("{}", WS), Err(PageError::NoEvents));
        let elsewhere = serde_json::json!({"events": [], "meta": {
            "next_page_url": "https://evil.example/v1/Workspaces/WSbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/Events?PageToken=x"}});
        assert!(matches!(
            parse_page(&elsewhere.to_string(), WS),
            Err(PageError::ForeignNextPage(_))
        ));
        let relative = serde_json::json!({"events": [], "meta": {
            "next_page_url": format!("/v1/Workspaces/{WS}/Events?PageToken=x")}});
        assert_eq!(
            parse_page(&relative.to_string(), WS)
                .unwrap()
                .next
                .as_deref(),
            Some(format!("/v1/Workspaces/{WS}/Events?PageToken=x").as_str())
        );
    }
}
