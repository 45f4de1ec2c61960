//! Transfer history as typed values: the filters of `GET /api/v1/transfers` and
//! `baton history transfers`, the grouping of the stats, and the opaque page cursor. Query
//! parameters and command-line flags are parsed into these once; `store::history` turns them
//! into SQL.

use super::sid::{Sid, SidKind};
use super::transfer::TargetType;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};

/// Hops per page when no limit is given.
pub const DEFAULT_LIMIT: i64 = 50;
/// The stats window when no `since` is given: this long before `until`.
pub const DEFAULT_STATS_WINDOW: TimeDelta = TimeDelta::days(30);

/// A point in time as people write it: RFC 3339 (seconds optional, UTC when no zone is given), a
/// date (midnight UTC), or a duration before `now` (`6h`, `2d`).
pub fn parse_time(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    let invalid = || {
        format!(
            "{raw:?} is not a time such as 2026-11-01T00:00Z, a date such as 2026-11-01, or a duration ago such as 6h"
        )
    };
    if raw.is_empty() {
        return Err(invalid());
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|at| at.and_utc())
            .ok_or_else(invalid);
    }
    if raw.as_bytes().first().is_some_and(u8::is_ascii_digit) && raw.contains('-') {
        // 2026-11-01T00:00Z, 2026-11-01T00:00+01:00, 2026-11-01T00:00 (UTC), space for T.
        let normalized = raw.replacen(' ', "T", 1);
        let (local, zone) = match normalized.strip_suffix(['Z', 'z']) {
            Some(local) => (local.to_owned(), "+00:00".to_owned()),
            None => match normalized.rfind(['+', '-']).filter(|&i| i > 10) {
                Some(i) => (normalized[..i].to_owned(), normalized[i..].to_owned()),
                None => (normalized.clone(), "+00:00".to_owned()),
            },
        };
        for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(at) = NaiveDateTime::parse_from_str(&local, format) {
                return DateTime::parse_from_rfc3339(&format!(
                    "{}{zone}",
                    at.format("%Y-%m-%dT%H:%M:%S%.f")
                ))
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| invalid());
            }
        }
        return Err(invalid());
    }
    let ago = humantime::parse_duration(raw).map_err(|_| invalid())?;
    TimeDelta::from_std(ago)
        .ok()
        .and_then(|ago| now.checked_sub_signed(ago))
        .ok_or_else(invalid)
}

/// A query parameter (and the `baton history` flag that carries the same value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    Since,
    Until,
    WorkerSid,
    QueueSid,
    TargetType,
    Outcome,
    ConversationSid,
    Limit,
    Cursor,
    GroupBy,
}

impl Param {
    /// The filters both the list and the stats take.
    pub const FILTERS: [Param; 7] = [
        Param::Since,
        Param::Until,
        Param::WorkerSid,
        Param::QueueSid,
        Param::TargetType,
        Param::Outcome,
        Param::ConversationSid,
    ];

    /// Its name in the API's query string.
    pub fn name(self) -> &'static str {
        match self {
            Param::Since => "since",
            Param::Until => "until",
            Param::WorkerSid => "worker_sid",
            Param::QueueSid => "queue_sid",
            Param::TargetType => "target_type",
            Param::Outcome => "outcome",
            Param::ConversationSid => "conversation_sid",
            Param::Limit => "limit",
            Param::Cursor => "cursor",
            Param::GroupBy => "group_by",
        }
    }

    pub fn from_name(name: &str) -> Option<Param> {
        [Param::Limit, Param::Cursor, Param::GroupBy]
            .into_iter()
            .chain(Param::FILTERS)
            .find(|p| p.name() == name)
    }
}

/// A parameter whose value is not acceptable; `reason` completes a sentence starting with the
/// parameter's name (`limit must be …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {reason}", param.name())]
pub struct ParamError {
    pub param: Param,
    pub reason: String,
}

impl ParamError {
    fn new(param: Param, reason: impl Into<String>) -> ParamError {
        ParamError {
            param,
            reason: reason.into(),
        }
    }

    /// The same error naming the parameter as `name` (a command-line flag).
    pub fn named(&self, name: &str) -> String {
        format!("{name} {}", self.reason)
    }
}

/// A hop's outcome as a filter: one of [`super::chain::HopOutcome`], or none yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeFilter {
    Completed,
    Failed,
    Canceled,
    Returned,
    /// No outcome yet.
    InFlight,
}

impl OutcomeFilter {
    /// The stored outcome (`None` for in flight).
    pub fn stored(self) -> Option<&'static str> {
        match self {
            OutcomeFilter::Completed => Some("completed"),
            OutcomeFilter::Failed => Some("failed"),
            OutcomeFilter::Canceled => Some("canceled"),
            OutcomeFilter::Returned => Some("returned"),
            OutcomeFilter::InFlight => None,
        }
    }

    fn parse(raw: &str) -> Option<OutcomeFilter> {
        match raw {
            "completed" => Some(OutcomeFilter::Completed),
            "failed" => Some(OutcomeFilter::Failed),
            "canceled" => Some(OutcomeFilter::Canceled),
            "returned" => Some(OutcomeFilter::Returned),
            "in_flight" => Some(OutcomeFilter::InFlight),
            _ => None,
        }
    }
}

/// Which hops: every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferFilter {
    /// Initiated at or after.
    pub since: Option<DateTime<Utc>>,
    /// Initiated before.
    pub until: Option<DateTime<Utc>>,
    /// The worker on either side: who transferred, or who the hop went to.
    pub worker_sid: Option<Sid>,
    /// The queue on either side: the one the customer came from, or the one the hop went to.
    pub queue_sid: Option<Sid>,
    pub target_type: Option<TargetType>,
    pub outcome: Option<OutcomeFilter>,
    /// Hops of the chains whose tasks belong to this conversation.
    pub conversation_sid: Option<Sid>,
}

fn sid(param: Param, raw: &str, kind: SidKind) -> Result<Sid, ParamError> {
    Sid::parse_kind(raw.trim(), kind).map_err(|e| ParamError::new(param, format!("{raw:?} {e}")))
}

impl TransferFilter {
    /// Sets the filter `param` from its raw value (`now` anchors relative times such as `2d`).
    /// Parameters that are not filters are refused.
    pub fn set(&mut self, param: Param, raw: &str, now: DateTime<Utc>) -> Result<(), ParamError> {
        match param {
            Param::Since => {
                self.since = Some(parse_time(raw, now).map_err(|r| ParamError::new(param, r))?)
            }
            Param::Until => {
                self.until = Some(parse_time(raw, now).map_err(|r| ParamError::new(param, r))?)
            }
            Param::WorkerSid => self.worker_sid = Some(sid(param, raw, SidKind::Worker)?),
            Param::QueueSid => self.queue_sid = Some(sid(param, raw, SidKind::TaskQueue)?),
            Param::ConversationSid => {
                self.conversation_sid = Some(sid(param, raw, SidKind::Conversation)?)
            }
            Param::TargetType => {
                self.target_type = Some(match raw {
                    "worker" => TargetType::Worker,
                    "queue" => TargetType::Queue,
                    "workflow" => TargetType::Workflow,
                    _ => {
                        return Err(ParamError::new(
                            param,
                            format!("{raw:?} must be worker, queue or workflow"),
                        ))
                    }
                })
            }
            Param::Outcome => {
                self.outcome = Some(OutcomeFilter::parse(raw).ok_or_else(|| {
                    ParamError::new(
                        param,
                        format!(
                            "{raw:?} must be completed, failed, canceled, returned or in_flight"
                        ),
                    )
                })?)
            }
            Param::Limit | Param::Cursor | Param::GroupBy => {
                return Err(ParamError::new(param, "is not a filter"))
            }
        }
        Ok(())
    }

    /// Checks what depends on more than one parameter.
    pub fn check(&self) -> Result<(), ParamError> {
        match (self.since, self.until) {
            (Some(since), Some(until)) if since >= until => {
                Err(ParamError::new(Param::Since, "must be before until"))
            }
            _ => Ok(()),
        }
    }
}

/// Hops per page ([`super::paging::parse_page_size`]).
pub fn parse_limit(raw: &str) -> Result<i64, ParamError> {
    super::paging::parse_page_size(raw).map_err(|reason| ParamError::new(Param::Limit, reason))
}

/// Where a page ends: the last hop it holds, in the list's order (initiated, chain, seq — all
/// descending). The next page starts strictly after it, so hops added meanwhile (newer, so
/// before it) neither shift nor repeat what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at_ms: i64,
    pub chain_id: String,
    pub seq: i32,
}

impl Cursor {
    /// Opaque to clients: URL-safe base64 of `v1:{at_ms}:{seq}:{chain_id}`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("v1:{}:{}:{}", self.at_ms, self.seq, self.chain_id))
    }

    pub fn decode(raw: &str) -> Result<Cursor, ParamError> {
        let invalid = || ParamError::new(Param::Cursor, "is not a cursor this API returned");
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.splitn(4, ':');
        let (Some("v1"), Some(at_ms), Some(seq), Some(chain_id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        match (at_ms.parse(), seq.parse()) {
            (Ok(at_ms), Ok(seq)) if !chain_id.is_empty() => Ok(Cursor {
                at_ms,
                chain_id: chain_id.to_owned(),
                seq,
            }),
            _ => Err(invalid()),
        }
    }
}

/// What the stats are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The queue the hop went to.
    Queue,
    /// The worker the hop went to (who took the customer).
    Worker,
    TargetType,
    /// The queue the customer came from.
    FromQueue,
    /// The worker who transferred.
    FromWorker,
}

impl GroupBy {
    pub const ALL: [GroupBy; 5] = [
        GroupBy::Queue,
        GroupBy::Worker,
        GroupBy::TargetType,
        GroupBy::FromQueue,
        GroupBy::FromWorker,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Queue => "queue",
            GroupBy::Worker => "worker",
            GroupBy::TargetType => "target_type",
            GroupBy::FromQueue => "from_queue",
            GroupBy::FromWorker => "from_worker",
        }
    }

    pub fn parse(raw: &str) -> Result<GroupBy, ParamError> {
        GroupBy::ALL
            .into_iter()
            .find(|g| g.name() == raw)
            .ok_or_else(|| {
                ParamError::new(
                    Param::GroupBy,
                    format!(
                        "{raw:?} must be queue, worker, target_type, from_queue or from_worker"
                    ),
                )
            })
    }
}

/// A page of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferQuery {
    pub filter: TransferFilter,
    pub cursor: Option<Cursor>,
    pub limit: i64,
}

/// The stats: over `since..until` (both always set, see [`StatsQuery::new`]), grouped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    pub filter: TransferFilter,
    pub group_by: GroupBy,
}

impl StatsQuery {
    /// Fills in the window: `until` defaults to `now`, `since` to [`DEFAULT_STATS_WINDOW`]
    /// before `until`.
    pub fn new(mut filter: TransferFilter, group_by: GroupBy, now: DateTime<Utc>) -> StatsQuery {
        let until = *filter.until.get_or_insert(now);
        filter.since.get_or_insert(until - DEFAULT_STATS_WINDOW);
        StatsQuery { filter, group_by }
    }
}

/// Why a query string is refused; the message names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("unknown query parameter {name:?}; this route takes {allowed}")]
    Unknown { name: String, allowed: String },
    #[error("{} is given more than once", .0.name())]
    Repeated(Param),
    #[error("{} is required: {}", .0.name(), .1)]
    Missing(Param, &'static str),
    #[error(transparent)]
    Value(#[from] ParamError),
}

/// Query parameters as `(name, value)` pairs: unknown and repeated names are refused.
fn params<'a>(
    pairs: &'a [(String, String)],
    allowed: &[Param],
) -> Result<Vec<(Param, &'a str)>, QueryError> {
    let mut seen = Vec::new();
    for (name, value) in pairs {
        let param = Param::from_name(name)
            .filter(|p| allowed.contains(p))
            .ok_or_else(|| QueryError::Unknown {
                name: name.clone(),
                allowed: allowed
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        if seen.iter().any(|(p, _)| *p == param) {
            return Err(QueryError::Repeated(param));
        }
        seen.push((param, value.as_str()));
    }
    Ok(seen)
}

impl TransferQuery {
    /// `GET /api/v1/transfers`' query parameters.
    pub fn from_pairs(pairs: &[(String, String)], now: DateTime<Utc>) -> Result<Self, QueryError> {
        let mut allowed = Param::FILTERS.to_vec();
        allowed.extend([Param::Limit, Param::Cursor]);
        let mut query = TransferQuery {
            filter: TransferFilter::default(),
            cursor: None,
            limit: DEFAULT_LIMIT,
        };
        for (param, value) in params(pairs, &allowed)? {
            match param {
                Param::Limit => query.limit = parse_limit(value)?,
                Param::Cursor => query.cursor = Some(Cursor::decode(value)?),
                _ => query.filter.set(param, value, now)?,
            }
        }
        query.filter.check()?;
        Ok(query)
    }
}

impl StatsQuery {
    /// `GET /api/v1/stats/transfers`' query parameters (`group_by` is required).
    pub fn from_pairs(pairs: &[(String, String)], now: DateTime<Utc>) -> Result<Self, QueryError> {
        let mut allowed = Param::FILTERS.to_vec();
        allowed.push(Param::GroupBy);
        let mut filter = TransferFilter::default();
        let mut group_by = None;
        for (param, value) in params(pairs, &allowed)? {
            match param {
                Param::GroupBy => group_by = Some(GroupBy::parse(value)?),
                _ => filter.set(param, value, now)?,
            }
        }
        let group_by = group_by.ok_or(QueryError::Missing(
            Param::GroupBy,
            "queue, worker, target_type, from_queue or from_worker",
        ))?;
        let query = StatsQuery::new(filter, group_by, now);
        query.filter.check()?;
        Ok(query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const NOW: &str = "2026-12-01T12:00:00Z";
    const WQ: &str = "WQ00000000000000000000000000000001";

    #[test]
    fn times_parse_from_iso_dates_and_durations_ago() {
        let now = at(NOW);
        assert_eq!(
            parse_time("2026-11-01T00:00Z", now),
            Ok(at("2026-11-01T00:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-11-01T01:00+01:00", now),
            Ok(at("2026-11-01T00:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-11-01", now),
            Ok(at("2026-11-01T00:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-11-01 08:15", now),
            Ok(at("2026-11-01T08:15:00Z"))
        );
        assert_eq!(parse_time("2d", now), Ok(at("2026-11-29T12:00:00Z")));
        assert!(parse_time("yesterday", now).is_err());
    }

    #[test]
    fn the_list_takes_every_filter_a_limit_and_a_cursor() {
        let cursor = Cursor {
            at_ms: 1_700_000_000_123,
            chain_id: "WT00000000000000000000000000000009".into(),
            seq: 3,
        };
        let q = TransferQuery::from_pairs(
            &pairs(&[
                ("since", "2026-11-01"),
                ("until", "1h"),
                ("worker_sid", "WK00000000000000000000000000000001"),
                ("queue_sid", WQ),
                ("target_type", "queue"),
                ("outcome", "in_flight"),
                ("conversation_sid", "CH00000000000000000000000000000001"),
                ("limit", "500"),
                ("cursor", &cursor.encode()),
            ]),
            at(NOW),
        )
        .unwrap();
        assert_eq!(q.limit, 500);
        assert_eq!(q.cursor, Some(cursor));
        assert_eq!(q.filter.since, Some(at("2026-11-01T00:00:00Z")));
        assert_eq!(q.filter.until, Some(at("2026-12-01T11:00:00Z")));
        assert_eq!(q.filter.queue_sid.as_ref().map(Sid::as_str), Some(WQ));
        assert_eq!(q.filter.target_type, Some(TargetType::Queue));
        assert_eq!(q.filter.outcome, Some(OutcomeFilter::InFlight));
        let q = TransferQuery::from_pairs(&[], at(NOW)).unwrap();
        assert_eq!(
            (q.limit, q.cursor, q.filter),
            (DEFAULT_LIMIT, None, TransferFilter::default())
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let err = |p: &[(&str, &str)]| {
            TransferQuery::from_pairs(&pairs(p), at(NOW))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&[("limit", "0")]),
            "limit \"0\" must be a whole number from 1 to 500"
        );
        assert_eq!(
            err(&[("limit", "501")]),
            "limit \"501\" must be a whole number from 1 to 500"
        );
        assert_eq!(
            err(&[("limit", "ten")]),
            "limit \"ten\" must be a whole number from 1 to 500"
        );
        assert_eq!(
            err(&[("queue_sid", "WK00000000000000000000000000000001")]),
            "queue_sid \"WK00000000000000000000000000000001\" must start with WQ (a task queue SID)"
        );
        assert_eq!(
            err(&[("worker_sid", "bob")]),
            "worker_sid \"bob\" must be two letters followed by 32 hex digits"
        );
        assert_eq!(
            err(&[("since", "last week")]),
            "since \"last week\" is not a time such as 2026-11-01T00:00Z, a date such as 2026-11-01, or a duration ago such as 6h"
        );
        assert_eq!(
            err(&[("since", "1d"), ("until", "2d")]),
            "since must be before until"
        );
        assert_eq!(
            err(&[("cursor", "abc")]),
            "cursor is not a cursor this API returned"
        );
        assert_eq!(
            err(&[("target_type", "team")]),
            "target_type \"team\" must be worker, queue or workflow"
        );
        assert_eq!(
            err(&[("outcome", "lost")]),
            "outcome \"lost\" must be completed, failed, canceled, returned or in_flight"
        );
        assert_eq!(
            err(&[("queue", WQ)]),
            "unknown query parameter \"queue\"; this route takes since, until, worker_sid, queue_sid, target_type, outcome, conversation_sid, limit, cursor"
        );
        assert_eq!(
            err(&[("group_by", "queue")]).split(';').next(),
            Some("unknown query parameter \"group_by\"")
        );
        assert_eq!(
            err(&[("limit", "5"), ("limit", "6")]),
            "limit is given more than once"
        );
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = Cursor {
            at_ms: 0,
            chain_id: "chain:with:colons".into(),
            seq: 12,
        };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        for bad in [
            "",
            "djE6eDox",
            "!!!",
            &URL_SAFE_NO_PAD.encode("v2:1:2:x"),
            &URL_SAFE_NO_PAD.encode("v1:1:2:"),
        ] {
            assert_eq!(
                Cursor::decode(bad).map_err(|e| e.param),
                Err(Param::Cursor),
                "{bad}"
            );
        }
    }

    #[test]
    fn stats_need_a_grouping_and_default_to_the_last_30_days() {
        let q = StatsQuery::from_pairs(&pairs(&[("group_by", "worker")]), at(NOW)).unwrap();
        assert_eq!(q.group_by, GroupBy::Worker);
        assert_eq!(q.filter.until, Some(at(NOW)));
        assert_eq!(q.filter.since, Some(at("2026-11-01T12:00:00Z")));
        let q = StatsQuery::from_pairs(
            &pairs(&[("group_by", "queue"), ("until", "2026-11-10")]),
            at(NOW),
        )
        .unwrap();
        assert_eq!(q.filter.since, Some(at("2026-10-11T00:00:00Z")));
        assert_eq!(
            StatsQuery::from_pairs(&[], at(NOW))
                .unwrap_err()
                .to_string(),
            "group_by is required: queue, worker, target_type, from_queue or from_worker"
        );
        assert_eq!(
            StatsQuery::from_pairs(&pairs(&[("group_by", "team")]), at(NOW))
                .unwrap_err()
                .to_string(),
            "group_by \"team\" must be queue, worker, target_type, from_queue or from_worker"
        );
        assert!(
            StatsQuery::from_pairs(&pairs(&[("group_by", "queue"), ("limit", "5")]), at(NOW))
                .unwrap_err()
                .to_string()
                .starts_with("unknown query parameter \"limit\"")
        );
        assert_eq!(
            StatsQuery::from_pairs(
                &pairs(&[("group_by", "queue"), ("since", "2026-12-02")]),
                at(NOW)
            )
            .unwrap_err()
            .to_string(),
            "since must be before until"
        );
    }
}
