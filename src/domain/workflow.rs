//! The TaskRouter workflow routes baton's transfer and park attributes need, which every Flex
//! reference makes admins write by hand (plugin-chat-sms-transfer #22: a filter per queue):
//! a transfer to a worker by known-worker routing (`transferTargetType`/`transferTargetSid`),
//! one filter per queue excluding the workers already in the conversation
//! (`workerSidsInConversation`), and with parks the parked-call route (`workerParked` →
//! `targetWorkerContactUri`) and the resume routes (`originalRouting.*`: the same worker first,
//! then the queue), and the route back of a customer whose transfer failed (the same shape). Each filter is named `baton: …` so a live workflow can be checked and merged.
//! Transfers to a workflow need no filter: baton routes them on the target workflow itself.
//! Pure: render, check and merge JSON values.

use serde_json::{json, Map, Value};

/// What the routes are built from (queues by SID: expressions match `transferTargetSid` and
/// `originalRouting.queueSid`, which baton always writes, so a renamed queue breaks nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOptions {
    /// The queue every worker is in: known-worker targets and the default filter.
    pub everyone_queue: String,
    /// Transfer (and resume) target queues; the everyone queue is always one.
    pub queues: Vec<String>,
    /// Add the parked-call and resume-from-park routes.
    pub park: bool,
    /// Seconds a resumed conversation waits for its own worker before the queue may take it.
    pub timeout: u32,
}

/// Every filter name baton writes starts with this.
pub const PREFIX: &str = "baton: ";

fn filter(name: String, expression: String, targets: Vec<Value>) -> Value {
    json!({"filter_friendly_name": name, "expression": expression, "targets": targets})
}

impl RouteOptions {
    /// The queues in order, the everyone queue first, each once.
    fn all_queues(&self) -> Vec<&str> {
        let mut queues = vec![self.everyone_queue.as_str()];
        for q in &self.queues {
            if !queues.contains(&q.as_str()) {
                queues.push(q);
            }
        }
        queues
    }

    /// baton's filters, in the order they must be evaluated.
    pub fn filters(&self) -> Vec<Value> {
        let everyone = self.everyone_queue.as_str();
        let mut filters = Vec::new();
        if self.park {
            // First: a parked call goes back to the worker who parked it, whatever else its
            // attributes say.
            filters.push(filter(
                format!("{PREFIX}parked call"),
                "workerParked == true".into(),
                vec![json!({"queue": everyone,
                            "expression": "worker.contact_uri == task.targetWorkerContactUri"})],
            ));
        }
        if self.park {
            // A resume copies every attribute, earlier transfer marks too: its own marks
            // (`baton.initiated_by` = `baton:park:…`, replaced by the next transfer) decide.
            for queue in self.all_queues() {
                filters.push(filter(
                    format!("{PREFIX}resume from park in {queue}"),
                    format!(
                        "originalRouting.queueSid == '{queue}' AND baton.initiated_by CONTAINS 'baton:park:'"
                    ),
                    vec![
                        json!({"queue": queue,
                               "known_worker_sid": "task.originalRouting.workerSid",
                               "timeout": self.timeout}),
                        json!({"queue": queue}),
                    ],
                ));
            }
        }
        // A customer routed back after a failed transfer: the original worker first (known-
        // worker routing, so a decline falls through to the queue instead of stranding them).
        // Before the transfer routes: the return copies the original task's transfer marks.
        for queue in self.all_queues() {
            filters.push(filter(
                format!("{PREFIX}route back in {queue}"),
                format!(
                    "originalRouting.queueSid == '{queue}' AND baton.initiated_by == 'baton:return'"
                ),
                vec![
                    json!({"queue": queue,
                           "known_worker_sid": "task.originalRouting.workerSid",
                           "timeout": self.timeout}),
                    json!({"queue": queue}),
                ],
            ));
        }
        filters.push(filter(
            format!("{PREFIX}transfer to worker"),
            "transferTargetType == 'worker'".into(),
            vec![json!({"queue": everyone, "known_worker_sid": "task.transferTargetSid"})],
        ));
        for queue in self.all_queues() {
            filters.push(filter(
                format!("{PREFIX}transfer to queue {queue}"),
                format!("transferTargetType == 'queue' AND transferTargetSid == '{queue}'"),
                vec![json!({"queue": queue,
                            "expression": "worker.sid NOT IN task.workerSidsInConversation"})],
            ));
        }
        filters
    }

    /// The whole workflow configuration: baton's filters and a default filter to everyone.
    pub fn render(&self) -> Value {
        json!({"task_routing": {
            "filters": self.filters(),
            "default_filter": {"queue": self.everyone_queue},
        }})
    }
}

/// How a live workflow holds one of baton's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteState {
    Present,
    Missing,
    /// A filter of that name routes differently.
    Differs,
}

impl RouteState {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteState::Present => "present",
            RouteState::Missing => "missing",
            RouteState::Differs => "differs",
        }
    }
}

fn filters_of(configuration: &Value) -> &[Value] {
    configuration["task_routing"]["filters"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

fn name_of(filter: &Value) -> Option<&str> {
    filter.get("filter_friendly_name").and_then(Value::as_str)
}

/// Each of baton's routes, by name, and whether the live configuration has it.
pub fn check(configuration: &Value, options: &RouteOptions) -> Vec<(String, RouteState)> {
    let live = filters_of(configuration);
    options
        .filters()
        .into_iter()
        .map(|wanted| {
            let name = name_of(&wanted).unwrap_or_default().to_owned();
            let state = match live.iter().find(|f| name_of(f) == Some(name.as_str())) {
                None => RouteState::Missing,
                Some(found) if *found == wanted => RouteState::Present,
                Some(_) => RouteState::Differs,
            };
            (name, state)
        })
        .collect()
}

/// An expression that matches every task: filters after it are never reached.
fn catches_all(filter: &Value) -> bool {
    let expression: String = filter
        .get("expression")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    matches!(expression.as_str(), "1==1" | "true" | "")
}

/// The live configuration with baton's routes in: a differing one replaced where it is, the
/// missing ones inserted in baton's order before the first catch-all filter (or at the end),
/// the default filter kept (set to the everyone queue if there is none). Everything else kept.
pub fn merge(configuration: &Value, options: &RouteOptions) -> Value {
    let wanted = options.filters();
    let mut filters: Vec<Value> = filters_of(configuration).to_vec();
    for f in filters.iter_mut() {
        if let Some(replacement) = wanted.iter().find(|w| name_of(w) == name_of(f)) {
            *f = replacement.clone();
        }
    }
    let missing: Vec<Value> = wanted
        .iter()
        .filter(|w| !filters.iter().any(|f| name_of(f) == name_of(w)))
        .cloned()
        .collect();
    let at = filters
        .iter()
        .position(catches_all)
        .unwrap_or(filters.len());
    filters.splice(at..at, missing);
    let mut merged = match configuration {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let mut routing = match merged.get("task_routing") {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    routing.insert("filters".into(), Value::Array(filters));
    routing
        .entry("default_filter")
        .or_insert_with(|| json!({"queue": options.everyone_queue}));
    merged.insert("task_routing".into(), Value::Object(routing));
    Value::Object(merged)
}

/// A line diff (`-` removed, `+` added, two spaces kept) of two texts, by longest common
/// subsequence; only changed lines and three lines of context around them are shown.
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.push(('-', a[i]));
            i += 1;
        } else {
            lines.push(('+', b[j]));
            j += 1;
        }
    }
    let near_change = |k: usize| {
        let from = k.saturating_sub(3);
        let to = (k + 3).min(lines.len() - 1);
        lines[from..=to].iter().any(|(mark, _)| *mark != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (mark, line)) in lines.iter().enumerate() {
        if near_change(k) {
            if skipped {
                out += "@@\n";
                skipped = false;
            }
            out += &format!("{mark} {line}\n");
        } else {
            skipped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERYONE: &str = "WQ00000000000000000000000000000001";
    const SALES: &str = "WQ00000000000000000000000000000002";

    fn options(park: bool) -> RouteOptions {
        RouteOptions {
            everyone_queue: EVERYONE.into(),
            queues: vec![SALES.into(), EVERYONE.into()],
            park,
            timeout: 120,
        }
    }

    #[test]
    fn routes_are_named_ordered_and_cover_every_queue_once() {
        let names: Vec<String> = options(true)
            .filters()
            .iter()
            .map(|f| name_of(f).unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "baton: parked call".to_owned(),
                format!("baton: resume from park in {EVERYONE}"),
                format!("baton: resume from park in {SALES}"),
                format!("baton: route back in {EVERYONE}"),
                format!("baton: route back in {SALES}"),
                "baton: transfer to worker".into(),
                format!("baton: transfer to queue {EVERYONE}"),
                format!("baton: transfer to queue {SALES}"),
            ]
        );
        assert_eq!(options(false).filters().len(), 5);
    }

    #[test]
    fn check_and_merge_add_what_is_missing_before_a_catch_all() {
        let mut live = json!({"task_routing": {"filters": [
            {"filter_friendly_name": "Mine", "expression": "a == 1", "targets": [{"queue": SALES}]},
            {"filter_friendly_name": "baton: transfer to worker", "expression": "1==2", "targets": []},
            {"filter_friendly_name": "All", "expression": "1 == 1", "targets": [{"queue": EVERYONE}]}
        ]}});
        let states: Vec<RouteState> = check(&live, &options(false))
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        assert_eq!(
            states,
            [
                RouteState::Missing,
                RouteState::Missing,
                RouteState::Differs,
                RouteState::Missing,
                RouteState::Missing
            ]
        );
        live = merge(&live, &options(false));
        let names: Vec<&str> = filters_of(&live).iter().filter_map(name_of).collect();
        assert_eq!(
            names,
            [
                "Mine",
                "baton: transfer to worker",
                &format!("baton: route back in {EVERYONE}"),
                &format!("baton: route back in {SALES}"),
                &format!("baton: transfer to queue {EVERYONE}"),
                &format!("baton: transfer to queue {SALES}"),
                "All"
            ]
        );
        assert_eq!(
            live["task_routing"]["default_filter"],
            json!({"queue": EVERYONE})
        );
        assert!(check(&live, &options(false))
            .iter()
            .all(|(_, s)| *s == RouteState::Present));
    }

    #[test]
    fn the_diff_shows_changed_lines_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
        let new = "a\nb\nc\nd\ne\nX\nf\ng\nh\ni\n";
        assert_eq!(
            line_diff(old, new),
            "@@\n  c\n  d\n  e\n+ X\n  f\n  g\n  h\n"
        );
        assert_eq!(line_diff("x\n", "y\n"), "- x\n+ y\n");
    }
}
