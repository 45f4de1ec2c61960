//! Twilio's list paging: `PageSize`, `Page`, `PageToken` and the `meta` object.

use crate::ctx::Ctx;
use crate::error::ApiError;
use serde_json::{json, Map, Value};

/// Twilio's default page size.
pub(crate) const DEFAULT_PAGE_SIZE: i64 = 50;

/// The page a list request asks for.
#[derive(Debug, Clone)]
pub(crate) struct PageRequest {
    pub size: usize,
    pub page: i64,
    pub token: Option<String>,
}

pub(crate) fn page_request(ctx: &Ctx<'_>) -> Result<PageRequest, ApiError> {
    let size = ctx.params.int("PageSize")?.unwrap_or(DEFAULT_PAGE_SIZE);
    let page = ctx.params.int("Page")?.unwrap_or(0);
    let token = ctx.params.str("PageToken")?.map(str::to_owned);
    Ok(PageRequest {
        size: usize::try_from(size).unwrap_or(1).max(1),
        page,
        token,
    })
}

/// The filters of this list request (declared non-paging parameters that were sent), to repeat
/// in paging links.
fn filters(ctx: &Ctx<'_>) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs = Vec::new();
    for spec in ctx.route.params {
        if matches!(spec.name, "PageSize" | "Page" | "PageToken") {
            continue;
        }
        for value in ctx.params.list(spec.name)? {
            pairs.push((spec.name.to_owned(), value));
        }
    }
    Ok(pairs)
}

fn link(
    ctx: &Ctx<'_>,
    filters: &[(String, String)],
    size: usize,
    page: i64,
    token: Option<&str>,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in filters {
        query.append_pair(k, v);
    }
    query.append_pair("PageSize", &size.to_string());
    query.append_pair("Page", &page.to_string());
    if let Some(token) = token {
        query.append_pair("PageToken", token);
    }
    format!("{}{}?{}", ctx.base, ctx.path, query.finish())
}

/// `{<key>: items, "meta": {...}}` for a page.
pub(crate) fn list_body(
    ctx: &Ctx<'_>,
    key: &str,
    items: Vec<Value>,
    request: &PageRequest,
    next_token: Option<String>,
    previous_token: Option<String>,
) -> Result<Value, ApiError> {
    let filters = filters(ctx)?;
    let page = request.page;
    let meta = json!({
        "page": page,
        "page_size": request.size,
        "first_page_url": link(ctx, &filters, request.size, 0, None),
        "previous_page_url": previous_token
            .as_deref()
            .map(|t| link(ctx, &filters, request.size, page.saturating_sub(1).max(0), Some(t))),
        "next_page_url": next_token
            .as_deref()
            .map(|t| link(ctx, &filters, request.size, page.saturating_add(1), Some(t))),
        "key": key,
        "url": link(ctx, &filters, request.size, page, request.token.as_deref()),
    });
    let mut body = Map::new();
    body.insert(key.to_owned(), Value::Array(items));
    body.insert("meta".to_owned(), meta);
    Ok(Value::Object(body))
}

/// Offset paging over a complete, ordered list: `PageToken` is `PT<offset>`; without a token,
/// the offset is `Page × PageSize`.
pub(crate) fn offset_page(ctx: &Ctx<'_>, key: &str, all: Vec<Value>) -> Result<Value, ApiError> {
    let request = page_request(ctx)?;
    let offset = match request.token.as_deref() {
        Some(token) => token
            .strip_prefix("PT")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::invalid(format!("Invalid PageToken '{token}'")))?,
        None => usize::try_from(request.page)
            .unwrap_or(0)
            .saturating_mul(request.size),
    };
    let total = all.len();
    let items: Vec<Value> = all.into_iter().skip(offset).take(request.size).collect();
    let end = offset.saturating_add(items.len());
    let next = (end < total).then(|| format!("PT{end}"));
    let previous = (offset > 0).then(|| format!("PT{}", offset.saturating_sub(request.size)));
    list_body(ctx, key, items, &request, next, previous)
}
