//! The control surface of a stand-in running as a process (`twilio-standin --control-listen`),
//! for load runs: what a test does through [`StandIn`]'s methods, over plain HTTP on a port of
//! its own, so Twilio's routes stay exactly Twilio's. No auth: bind it to loopback only.
//!
//! | route | what |
//! |---|---|
//! | `POST /setup` `{"workers": n}` | seeds `n` available workers (`agent-0`…); answers them with the built-in workflow and queue |
//! | `POST /conversations` `[{…}]` | seeds Flex Conversations: each a conversation (the customer's SMS participant), an interaction channel, and its tasks (below); answers the SIDs the stand-in chose |
//! | `GET /requests?after=ID&limit=N` | the request log after `ID`, oldest first, up to the first request still being answered; long form values are elided |
//! | `GET /channels/{UO}` | an interaction channel with its participants and invites |
//!
//! A conversation to seed: `{"conversation_sid": "CH…", "customer": "+1…", "proxy": "+1…",
//! "channel_type": "sms", "tasks": [{"sid": "WT…", "status": "assigned", "worker_sid": "WK…",
//! "task_channel": "chat", "attributes": {…}, "agent": true}]}`. Each task's attributes get
//! `conversationSid`, `flexInteractionSid` and `flexInteractionChannelSid`; a task with `agent`
//! gets an agent participant on the channel (its `routing_properties.task_sid`).

use crate::{
    SeedConversation, SeedConversationParticipant, SeedInteraction, SeedInteractionParticipant,
    SeedTask, SeedWorker, StandIn, TaskStatus,
};
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Form values longer than this are replaced by their length in `GET /requests`.
const LONG_VALUE: usize = 256;
/// Most requests one `GET /requests` answers.
const MAX_PAGE: usize = 10_000;

#[derive(Debug, Deserialize)]
struct Setup {
    #[serde(default)]
    workers: usize,
}

#[derive(Debug, Deserialize)]
struct ConversationSeed {
    conversation_sid: String,
    customer: String,
    proxy: String,
    #[serde(default = "default_channel_type")]
    channel_type: String,
    #[serde(default)]
    tasks: Vec<TaskSeed>,
}

fn default_channel_type() -> String {
    "sms".into()
}

#[derive(Debug, Deserialize)]
struct TaskSeed {
    sid: String,
    status: TaskStatus,
    worker_sid: Option<String>,
    task_channel: Option<String>,
    #[serde(default)]
    attributes: Value,
    #[serde(default)]
    agent: bool,
}

#[derive(Debug, Serialize)]
struct SeededConversation {
    conversation_sid: String,
    interaction_sid: String,
    channel_sid: String,
    /// Task SID → the agent's interaction participant (`UT…`).
    participants: BTreeMap<String, String>,
    /// Task SID → its reservation (`WR…`), for tasks seeded with a worker.
    reservations: BTreeMap<String, String>,
}

/// A logged request as `GET /requests` answers it.
#[derive(Debug, Serialize)]
struct LoggedView {
    id: u64,
    method: String,
    path: String,
    operation: Option<String>,
    status: Option<u16>,
    processed_status: Option<u16>,
    error_code: Option<u32>,
    form: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

fn invalid(message: String) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": message }))
}

fn is_sid(value: &str, prefix: &str) -> bool {
    crate::route_spec::is_sid(value, prefix)
}

async fn setup(standin: web::Data<StandIn>, body: web::Json<Setup>) -> HttpResponse {
    if body.workers > 10_000 {
        return invalid("at most 10000 workers".into());
    }
    let workers: Vec<Value> = (0..body.workers)
        .map(|i| {
            let name = format!("agent-{i}");
            let sid = standin.seed_worker(
                SeedWorker::new(&name).attributes(json!({"contact_uri": format!("client:{name}")})),
            );
            json!({"sid": sid, "friendly_name": name})
        })
        .collect();
    let queue = standin.default_task_queue_sid();
    HttpResponse::Ok().json(json!({
        "workers": workers,
        "workflow_sid": standin.default_workflow_sid(),
        "task_queue_sid": queue,
        "task_queue_name": "Everyone",
        "workspace_sid": standin.workspace_sid(),
    }))
}

fn check(standin: &StandIn, seed: &ConversationSeed) -> Result<(), String> {
    if !is_sid(&seed.conversation_sid, "CH") {
        return Err(format!("{} is not a CH SID", seed.conversation_sid));
    }
    if standin.conversation(&seed.conversation_sid).is_some() {
        return Err(format!("{} exists already", seed.conversation_sid));
    }
    for task in &seed.tasks {
        if !is_sid(&task.sid, "WT") || standin.task(&task.sid).is_some() {
            return Err(format!("{} is not a new WT SID", task.sid));
        }
        if !matches!(task.attributes, Value::Null | Value::Object(_)) {
            return Err(format!("attributes of {} are not an object", task.sid));
        }
        if let Some(worker) = &task.worker_sid {
            if standin.worker(worker).is_none() {
                return Err(format!("worker {worker} does not exist"));
            }
        }
        if let Some(channel) = &task.task_channel {
            if !["default", "voice", "chat", "sms", "email", "video"].contains(&channel.as_str()) {
                return Err(format!("task channel {channel} does not exist"));
            }
        }
    }
    Ok(())
}

fn seed_one(standin: &StandIn, seed: ConversationSeed) -> SeededConversation {
    let ch = standin.seed_conversation(SeedConversation {
        sid: Some(seed.conversation_sid),
        ..SeedConversation::new().participant(SeedConversationParticipant::sms(
            &seed.customer,
            &seed.proxy,
        ))
    });
    let mut interaction = SeedInteraction::new()
        .channel_type(&seed.channel_type)
        .conversation(&ch)
        .participant(SeedInteractionParticipant::customer());
    let agents: Vec<&TaskSeed> = seed.tasks.iter().filter(|t| t.agent).collect();
    for task in &agents {
        let mut agent = SeedInteractionParticipant::agent(&task.sid);
        if let Some(worker) = &task.worker_sid {
            agent = agent.worker(worker);
        }
        interaction = interaction.participant(agent);
    }
    let seeded = standin.seed_interaction(interaction);
    // Participant 0 is the customer; the agents follow in order.
    let participants = agents
        .iter()
        .zip(seeded.participant_sids.iter().skip(1))
        .map(|(t, ut)| (t.sid.clone(), ut.clone()))
        .collect();
    let mut reservations = BTreeMap::new();
    for task in seed.tasks {
        let mut attributes = match task.attributes {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        attributes.insert("conversationSid".into(), json!(ch));
        attributes.insert("flexInteractionSid".into(), json!(seeded.interaction_sid));
        attributes.insert(
            "flexInteractionChannelSid".into(),
            json!(seeded.channel_sid),
        );
        let mut seed_task = SeedTask::new()
            .sid(&task.sid)
            .status(task.status)
            .attributes(Value::Object(attributes))
            .channel(task.task_channel.unwrap_or_else(|| "chat".into()));
        if let Some(worker) = &task.worker_sid {
            seed_task = seed_task.worker(worker);
        }
        let sid = standin.seed_task(seed_task);
        if let Some(wr) = standin
            .task(&sid)
            .and_then(|t| t.reservations.first().cloned())
        {
            reservations.insert(sid, wr);
        }
    }
    SeededConversation {
        conversation_sid: ch,
        interaction_sid: seeded.interaction_sid,
        channel_sid: seeded.channel_sid,
        participants,
        reservations,
    }
}

async fn conversations(
    standin: web::Data<StandIn>,
    body: web::Json<Vec<ConversationSeed>>,
) -> HttpResponse {
    let seeds = body.into_inner();
    for seed in &seeds {
        if let Err(problem) = check(&standin, seed) {
            return invalid(problem);
        }
    }
    let seeded: Vec<SeededConversation> =
        seeds.into_iter().map(|s| seed_one(&standin, s)).collect();
    HttpResponse::Ok().json(seeded)
}

fn elide(value: &str) -> String {
    if value.len() > LONG_VALUE {
        format!("({} bytes)", value.len())
    } else {
        value.to_owned()
    }
}

async fn requests(standin: web::Data<StandIn>, page: web::Query<Page>) -> HttpResponse {
    let limit = page.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let views: Vec<LoggedView> = standin
        .requests_after(page.after, limit)
        .into_iter()
        // A request still being answered ends the page: its status is not known yet.
        .take_while(|r| r.status.is_some() || r.fault.is_some())
        .map(|r| LoggedView {
            id: r.id,
            method: r.method,
            path: r.path,
            operation: r.operation,
            status: r.status,
            processed_status: r.processed_status,
            error_code: r.error_code,
            form: r.form.iter().map(|(k, v)| (k.clone(), elide(v))).collect(),
        })
        .collect();
    HttpResponse::Ok().json(json!({ "requests": views }))
}

async fn channel(standin: web::Data<StandIn>, path: web::Path<String>) -> HttpResponse {
    match standin.channel(&path.into_inner()) {
        Some(channel) => HttpResponse::Ok().json(channel),
        None => HttpResponse::NotFound().json(json!({"error": "no such channel"})),
    }
}

/// Serves the control routes for `standin` on `addr` (its own thread and actix runtime).
/// Returns the bound address and the handle that stops it.
pub fn serve(
    standin: Arc<StandIn>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<(SocketAddr, ServerHandle)>>();
    let data = web::Data::from(standin);
    std::thread::Builder::new()
        .name("twilio-standin-control".into())
        .spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .app_data(web::JsonConfig::default().limit(64 * 1024 * 1024))
                        .route("/setup", web::post().to(setup))
                        .route("/conversations", web::post().to(conversations))
                        .route("/requests", web::get().to(requests))
                        .route("/channels/{sid}", web::get().to(channel))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(0)
                .bind(addr);
                let server = match server {
                    Ok(server) => server,
                    Err(error) => {
                        let _ = tx.send(Err(error));
                        return;
                    }
                };
                let bound = server.addrs().first().copied();
                let running = server.run();
                match bound {
                    Some(bound) => {
                        let _ = tx.send(Ok((bound, running.handle())));
                    }
                    None => {
                        let _ = tx.send(Err(std::io::Error::other("no address bound")));
                        return;
                    }
                }
                let _ = running.await;
            });
        })?;
    rx.recv()
        .map_err(|_| std::io::Error::other("the control server thread ended early"))?
}
