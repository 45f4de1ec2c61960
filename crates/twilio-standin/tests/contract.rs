//! The stand-in against Twilio's own OpenAPI specs (twilio/twilio-oai, in `shared/twilio-oai`).
//!
//! 1. Statically, from the stand-in's route table: every (method, path) it serves exists in the
//!    spec with the same operationId; every parameter it reads is a parameter of that operation
//!    with the same constraints (type, enum values, SID pattern, bounds, required); every header
//!    it reads is a header parameter; every field it returns is a property of the response schema.
//! 2. Dynamically: every route is called once against a running stand-in and the top-level fields
//!    actually returned (and each list item's, and `meta`'s) must be properties of the spec's
//!    response schema. The set of routes called must equal the route table.
//!
//! The specs are read from `$TWILIO_OAI_DIR`, or `<workspace>/../shared/twilio-oai` (CI has them
//! beside the repository). If they are missing, these tests fail.

mod common;

use common::Client;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use twilio_standin::{
    routes, Api, Body, ParamKind, ReservationStatus, RouteSpec, SeedConversation,
    SeedConversationParticipant, SeedInteraction, SeedInteractionParticipant, SeedTask, SeedWorker,
    StandIn, StandInConfig, TaskStatus, META_FIELDS,
};

fn spec_dir() -> PathBuf {
    match std::env::var_os("TWILIO_OAI_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/twilio-oai"),
    }
}

struct Specs(HashMap<Api, Value>);

impl Specs {
    fn load() -> Specs {
        let dir = spec_dir();
        let mut specs = HashMap::new();
        for api in [Api::TaskRouter, Api::Conversations, Api::Flex] {
            let file = api.spec_file().expect("spec file");
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "Twilio OpenAPI spec {} not readable ({e}). The contract test needs \
                     twilio/twilio-oai's spec/json files: set TWILIO_OAI_DIR, or put them in \
                     <workspace>/../shared/twilio-oai as CI does.",
                    path.display()
                )
            });
            let spec: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            specs.insert(api, spec);
        }
        Specs(specs)
    }

    fn spec(&self, api: Api) -> &Value {
        &self.0[&api]
    }

    fn operation(&self, route: &RouteSpec) -> &Value {
        let op = &self.spec(route.api)["paths"][route.path][route.method.to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{} {} is not in {:?}'s spec",
            route.method,
            route.path,
            route.api.spec_file()
        );
        op
    }

    /// Follows `$ref`s within the route's spec.
    fn resolve<'a>(&'a self, api: Api, schema: &'a Value) -> &'a Value {
        let mut current = schema;
        while let Some(reference) = current.get("$ref").and_then(Value::as_str) {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("external $ref {reference}"));
            current = self
                .spec(api)
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"));
        }
        current
    }

    /// The response schema's properties for the route's success status: for a list, the
    /// (list properties, item properties, meta properties).
    fn response(
        &self,
        route: &RouteSpec,
    ) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
        let op = self.operation(route);
        let response = &op["responses"][route.status.to_string()];
        assert!(
            response.is_object(),
            "{}: the spec has no {} response",
            route.operation_id,
            route.status
        );
        let schema = &response["content"]["application/json"]["schema"];
        if route.fields.is_empty() {
            assert!(
                schema.is_null(),
                "{}: the spec's response has a body",
                route.operation_id
            );
            return Default::default();
        }
        let schema = self.resolve(route.api, schema);
        let props = |s: &Value| -> BTreeSet<String> {
            s["properties"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        match route.list_key {
            None => (props(schema), BTreeSet::new(), BTreeSet::new()),
            Some(key) => {
                let items = self.resolve(route.api, &schema["properties"][key]["items"]);
                let meta = self.resolve(route.api, &schema["properties"]["meta"]);
                (props(schema), props(items), props(meta))
            }
        }
    }
}

fn sid_pattern(prefix: &str) -> String {
    format!("^{prefix}[0-9a-fA-F]{{32}}$")
}

/// Checks one declared parameter kind against the spec's schema for it.
fn check_kind(specs: &Specs, route: &RouteSpec, name: &str, kind: ParamKind, schema: &Value) {
    let schema = specs.resolve(route.api, schema);
    let what = format!("{} parameter {name}", route.operation_id);
    let ty = schema["type"].as_str();
    let string_like = |s: &Value| {
        matches!(s["type"].as_str(), None | Some("string"))
            && s.get("enum").is_none()
            && s.get("pattern").is_none()
    };
    match kind {
        ParamKind::Str | ParamKind::Json | ParamKind::JsonObject => {
            assert!(
                string_like(schema),
                "{what}: the spec constrains it more: {schema}"
            );
            assert_ne!(
                schema["format"], "date-time",
                "{what}: the spec says date-time"
            );
        }
        ParamKind::Int { min, max } => {
            assert_eq!(ty, Some("integer"), "{what}: {schema}");
            if let Some(spec_min) = schema["minimum"].as_i64() {
                assert_eq!(min, spec_min, "{what}: minimum");
            }
            if let Some(spec_max) = schema["maximum"].as_i64() {
                assert_eq!(max, spec_max, "{what}: maximum");
            }
        }
        ParamKind::Bool => assert_eq!(ty, Some("boolean"), "{what}: {schema}"),
        ParamKind::DateTime => {
            assert_eq!(ty, Some("string"), "{what}: {schema}");
            assert_eq!(schema["format"], "date-time", "{what}: {schema}");
        }
        ParamKind::Enum(values) | ParamKind::EnumIgnoreCase(values) => {
            let spec_values: BTreeSet<&str> = schema["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{what}: the spec has no enum: {schema}"))
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let ours: BTreeSet<&str> = values.iter().copied().collect();
            assert_eq!(ours, spec_values, "{what}: enum values");
        }
        ParamKind::Sid(prefix) => {
            assert_eq!(
                schema["pattern"],
                sid_pattern(prefix),
                "{what}: SID pattern"
            );
        }
        ParamKind::Array => assert_eq!(ty, Some("array"), "{what}: {schema}"),
    }
}

#[test]
fn every_route_parameter_and_field_is_in_the_spec() {
    let specs = Specs::load();
    let mut seen = BTreeSet::new();
    for route in routes() {
        assert!(
            seen.insert((route.method, route.path)),
            "duplicate route {} {}",
            route.method,
            route.path
        );
        if route.api == Api::Iam {
            // iam.twilio.com token validation is not in twilio-oai; it is checked by the
            // dynamic test and tests/flex.rs against twilio-flex-token-validator's contract.
            assert_eq!(route.operation_id, "ValidateFlexToken");
            continue;
        }
        let op = specs.operation(route);
        assert_eq!(
            op["operationId"], route.operation_id,
            "{} {}",
            route.method, route.path
        );
        let parameters: Vec<&Value> = op["parameters"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let param = |place: &str, name: &str| {
            parameters
                .iter()
                .find(|p| {
                    p["in"] == place
                        && p["name"]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .copied()
        };

        // Path parameters and their SID patterns.
        let template: BTreeSet<&str> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let spec_path: BTreeSet<&str> = parameters
            .iter()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(
            template, spec_path,
            "{}: path parameters",
            route.operation_id
        );
        for name in &template {
            let Some(spec_param) = param("path", name) else {
                continue;
            };
            let pattern = specs.resolve(route.api, &spec_param["schema"])["pattern"].as_str();
            let ours = route.path_sids.iter().find(|(n, _)| n == name);
            match (pattern, ours) {
                (Some(pattern), Some((_, prefix))) => {
                    assert_eq!(
                        pattern,
                        sid_pattern(prefix),
                        "{}: {name}",
                        route.operation_id
                    )
                }
                (None, None) => {}
                (pattern, ours) => panic!(
                    "{}: path {name}: spec pattern {pattern:?}, stand-in {ours:?}",
                    route.operation_id
                ),
            }
        }

        // Request parameters.
        match route.body {
            Body::Form => {
                let schema = specs.resolve(
                    route.api,
                    &op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"],
                );
                let properties = schema["properties"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{}: no form schema", route.operation_id));
                let required: BTreeSet<&str> = schema["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for p in route.params {
                    let prop = properties.get(p.name).unwrap_or_else(|| {
                        panic!(
                            "{}: form parameter {} is not in the spec",
                            route.operation_id, p.name
                        )
                    });
                    check_kind(&specs, route, p.name, p.kind, prop);
                    assert_eq!(
                        p.required,
                        required.contains(p.name),
                        "{}: {} required",
                        route.operation_id,
                        p.name
                    );
                }
                for name in &required {
                    assert!(
                        route.param(name).is_some(),
                        "{}: the spec requires {name}; the stand-in must check it",
                        route.operation_id
                    );
                }
            }
            Body::None => {
                for p in route.params {
                    let spec_param = param("query", p.name).unwrap_or_else(|| {
                        panic!(
                            "{}: query parameter {} is not in the spec",
                            route.operation_id, p.name
                        )
                    });
                    check_kind(&specs, route, p.name, p.kind, &spec_param["schema"]);
                    assert_eq!(p.required, spec_param["required"] == true);
                }
                assert!(op.get("requestBody").is_none() || route.params.is_empty());
            }
            Body::Json => panic!("{}: JSON body routes are IAM only", route.operation_id),
        }
        for header in route.headers {
            assert!(
                param("header", header).is_some(),
                "{}: header {header} is not in the spec",
                route.operation_id
            );
        }

        // Response fields.
        let (top, items, meta) = specs.response(route);
        let check_subset = |what: &str, ours: &[&str], spec: &BTreeSet<String>| {
            let missing: Vec<&&str> = ours.iter().filter(|f| !spec.contains(**f)).collect();
            assert!(
                missing.is_empty(),
                "{} {what}: fields not in the spec's response schema: {missing:?}",
                route.operation_id
            );
        };
        match route.list_key {
            None => check_subset("response", route.fields, &top),
            Some(key) => {
                check_subset("list", &[key, "meta"], &top);
                check_subset("list item", route.fields, &items);
                check_subset("meta", META_FIELDS, &meta);
            }
        }
    }
}

/// Calls every route once and checks the fields actually returned.
#[tokio::test]
async fn every_route_answers_with_spec_fields() {
    let specs = Specs::load();
    let twilio = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&twilio);
    let ws = client.ws(&twilio);

    let worker = twilio.seed_worker(SeedWorker::new("alice"));
    let assigned = twilio.seed_task(SeedTask::new().status(TaskStatus::Assigned).worker(&worker));
    let r1 = twilio.task(&assigned).unwrap().reservations[0].clone();
    let reserved = twilio.seed_task(SeedTask::new());
    let r2 = twilio.seed_reservation(&reserved, &worker, ReservationStatus::Pending);
    let doomed = twilio.seed_task(SeedTask::new());
    let event = twilio.push_event(
        json!({"event_type": "task.created", "resource_sid": assigned,
        "resource_type": "task", "event_data": {"task_sid": assigned}}),
    );
    let ch = twilio.seed_conversation(
        SeedConversation::new()
            .participant(SeedConversationParticipant::sms(
                "+15550001111",
                "+15550002222",
            ))
            .participant(SeedConversationParticipant::identity("alice")),
    );
    let members: Vec<String> = twilio
        .conversation(&ch)
        .unwrap()
        .participants
        .iter()
        .map(|p| p.sid.clone())
        .collect();
    let seeded = twilio.seed_interaction(
        SeedInteraction::new()
            .conversation(&ch)
            .participant(SeedInteractionParticipant::customer())
            .participant(
                SeedInteractionParticipant::agent(&assigned)
                    .worker(&worker)
                    .reservation(&r1)
                    .conversation_participant(&members[1]),
            ),
    );
    let (kd, uo) = (&seeded.interaction_sid, &seeded.channel_sid);
    twilio.seed_flex_token("jwe", "alice", Some(&worker), &["agent"]);
    let available = twilio.activity_sid("Available").unwrap();
    let offline = twilio.activity_sid("Offline").unwrap();

    let mut covered: BTreeSet<(String, String)> = BTreeSet::new();
    let by_op: HashMap<&str, &RouteSpec> = routes().iter().map(|r| (r.operation_id, r)).collect();

    macro_rules! probe {
        ($op:literal, $method:ident, $path:expr $(, $form:expr)*) => {{
            let route = by_op[$op];
            let form: &[(&str, &str)] = &[$($form),*];
            let resp = client
                .send(reqwest::Method::$method, &$path, form, &[])
                .await
                .expect($op);
            assert_eq!(resp.status, route.status, "{}: {resp:?}", $op);
            check_body(&specs, route, &resp.json);
            covered.insert((route.method.to_owned(), route.path.to_owned()));
            resp
        }};
    }

    let workspace = probe!("FetchWorkspace", GET, ws.clone());
    assert_eq!(workspace.str("timeout_activity_name"), "Offline");
    probe!("ListActivity", GET, format!("{ws}/Activities"));
    probe!("FetchActivity", GET, format!("{ws}/Activities/{available}"));
    probe!("FetchWorker", GET, format!("{ws}/Workers/{worker}"));
    probe!(
        "UpdateWorker",
        POST,
        format!("{ws}/Workers/{worker}"),
        ("ActivitySid", offline.as_str())
    );
    probe!(
        "FetchTaskQueue",
        GET,
        format!("{ws}/TaskQueues/{}", twilio.default_task_queue_sid())
    );
    probe!(
        "FetchWorkflow",
        GET,
        format!("{ws}/Workflows/{}", twilio.default_workflow_sid())
    );
    probe!(
        "UpdateWorkflow",
        POST,
        format!("{ws}/Workflows/{}", twilio.default_workflow_sid()),
        ("FriendlyName", "Default Fifo Workflow"),
        ("TaskReservationTimeout", "120")
    );
    probe!(
        "CreateTask",
        POST,
        format!("{ws}/Tasks"),
        ("Attributes", "{}")
    );
    probe!("FetchTask", GET, format!("{ws}/Tasks/{assigned}"));
    probe!(
        "UpdateTask",
        POST,
        format!("{ws}/Tasks/{assigned}"),
        ("Attributes", r#"{"a":1}"#)
    );
    probe!(
        "ListTaskReservation",
        GET,
        format!("{ws}/Tasks/{assigned}/Reservations")
    );
    probe!(
        "FetchTaskReservation",
        GET,
        format!("{ws}/Tasks/{assigned}/Reservations/{r1}")
    );
    probe!(
        "UpdateTaskReservation",
        POST,
        format!("{ws}/Tasks/{reserved}/Reservations/{r2}"),
        ("ReservationStatus", "accepted")
    );
    probe!(
        "FetchWorkerReservation",
        GET,
        format!("{ws}/Workers/{worker}/Reservations/{r1}")
    );
    probe!(
        "UpdateWorkerReservation",
        POST,
        format!("{ws}/Workers/{worker}/Reservations/{r2}"),
        ("ReservationStatus", "wrapping")
    );
    let tasks = probe!(
        "ListTask",
        GET,
        format!("{ws}/Tasks?AssignmentStatus=pending,reserved&PageSize=2")
    );
    assert_eq!(tasks.json["tasks"][0]["sid"], doomed.as_str());
    probe!("DeleteTask", DELETE, format!("{ws}/Tasks/{doomed}"));
    let events = probe!("ListEvent", GET, format!("{ws}/Events"));
    assert_eq!(events.json["events"][0]["sid"], event.as_str());
    probe!("FetchEvent", GET, format!("{ws}/Events/{event}"));

    probe!("FetchConversation", GET, format!("/v1/Conversations/{ch}"));
    probe!(
        "UpdateConversation",
        POST,
        format!("/v1/Conversations/{ch}"),
        ("Attributes", "{}")
    );
    probe!(
        "ListConversationParticipant",
        GET,
        format!("/v1/Conversations/{ch}/Participants")
    );
    probe!(
        "FetchConversationParticipant",
        GET,
        format!("/v1/Conversations/{ch}/Participants/{}", members[0])
    );
    let hook = probe!(
        "CreateConversationScopedWebhook",
        POST,
        format!("/v1/Conversations/{ch}/Webhooks"),
        ("Target", "webhook"),
        ("Configuration.Url", "https://example.com/hook"),
        ("Configuration.Filters", "onMessageAdded")
    );
    let wh = hook.str("sid").to_owned();
    probe!(
        "ListConversationScopedWebhook",
        GET,
        format!("/v1/Conversations/{ch}/Webhooks")
    );
    probe!(
        "FetchConversationScopedWebhook",
        GET,
        format!("/v1/Conversations/{ch}/Webhooks/{wh}")
    );
    probe!(
        "DeleteConversationScopedWebhook",
        DELETE,
        format!("/v1/Conversations/{ch}/Webhooks/{wh}")
    );
    let doomed_ch = twilio.seed_conversation(SeedConversation::new());
    probe!(
        "DeleteConversation",
        DELETE,
        format!("/v1/Conversations/{doomed_ch}")
    );
    probe!(
        "DeleteConversationParticipant",
        DELETE,
        format!("/v1/Conversations/{ch}/Participants/{}", members[0])
    );

    let channel = format!("/v1/Interactions/{kd}/Channels/{uo}");
    let routing = json!({"properties": {"workspace_sid": twilio.workspace_sid(),
        "workflow_sid": twilio.default_workflow_sid(), "task_channel_unique_name": "chat",
        "attributes": {"from": "contract"}}})
    .to_string();
    probe!("FetchInteraction", GET, format!("/v1/Interactions/{kd}"));
    probe!(
        "ListInteractionChannel",
        GET,
        format!("/v1/Interactions/{kd}/Channels")
    );
    probe!("FetchInteractionChannel", GET, channel);
    probe!(
        "CreateInteractionChannelInvite",
        POST,
        format!("{channel}/Invites"),
        ("Routing", routing.as_str())
    );
    probe!(
        "ListInteractionChannelInvite",
        GET,
        format!("{channel}/Invites")
    );
    probe!(
        "ListInteractionChannelParticipant",
        GET,
        format!("{channel}/Participants")
    );
    probe!(
        "UpdateInteractionChannelParticipant",
        POST,
        format!("{channel}/Participants/{}", seeded.participant_sids[1]),
        ("Status", "closed")
    );
    probe!(
        "UpdateInteractionChannel",
        POST,
        channel,
        ("Status", "closed")
    );

    let route = by_op["ValidateFlexToken"];
    let resp = client
        .post_json(
            &format!("/v1/Accounts/{}/Tokens/validate", twilio.account_sid()),
            &json!({"token": "jwe"}),
        )
        .await;
    assert_eq!(resp.status, route.status);
    assert_eq!(resp.json["valid"], true);
    covered.insert((route.method.to_owned(), route.path.to_owned()));

    let all: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    let missed: Vec<_> = all.difference(&covered).collect();
    assert!(
        missed.is_empty(),
        "routes this test does not call: {missed:?}"
    );
    // No request failed inside the stand-in (a field or parameter it does not declare).
    assert!(twilio.requests().iter().all(|r| r.status != Some(500)));
}

fn check_body(specs: &Specs, route: &RouteSpec, body: &Value) {
    if route.fields.is_empty() {
        assert!(body.is_null(), "{}: expected no body", route.operation_id);
        return;
    }
    let keys = |v: &Value| -> BTreeSet<String> {
        v.as_object()
            .unwrap_or_else(|| panic!("{}: not an object: {v}", route.operation_id))
            .keys()
            .cloned()
            .collect()
    };
    let outside = |what: &str, got: BTreeSet<String>, spec: &BTreeSet<String>| {
        let extra: Vec<_> = got.difference(spec).collect();
        assert!(
            extra.is_empty(),
            "{} {what}: returned fields not in the spec: {extra:?}",
            route.operation_id
        );
    };
    if route.api == Api::Iam {
        let got = keys(body);
        let ours: BTreeSet<String> = route.fields.iter().map(|f| f.to_string()).collect();
        assert_eq!(got, ours);
        return;
    }
    let (top, items, meta) = specs.response(route);
    outside("response", keys(body), &top);
    if let Some(key) = route.list_key {
        outside("meta", keys(&body["meta"]), &meta);
        let list = body[key].as_array().expect("list");
        assert!(
            !list.is_empty(),
            "{}: probe returned an empty list",
            route.operation_id
        );
        for item in list {
            outside("item", keys(item), &items);
        }
    }
}
