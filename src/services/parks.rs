//! Parks: `POST /api/v1/parks` (messaging), resuming (customer message, ops, TTL), and the
//! voice parks the processor observes. Every Twilio call goes through the outbox, in the same
//! transaction as the park's state change, so a park or resume never half-happens.

use super::transfers::fetch_assigned_task;
use super::{check_idempotency_key, notes, parse_sid, ServiceError};
use crate::domain::park::{self, ParkEnd, ResumeRoute, ResumeState};
use crate::domain::sid::SidKind;
use crate::domain::transfer;
use crate::store::parks::{LockedPark, NewPark, ParkView};
use crate::store::{self, outbox::NewCall, StoreError};
use crate::twilio::TwilioClient;
use serde::Deserialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;

/// The body of `POST /api/v1/parks`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParkRequest {
    /// `WT…`: an assigned Flex Conversations task.
    #[schema(pattern = "^WT[0-9a-fA-F]{32}$")]
    pub task_sid: String,
    /// How long the park may last (default 24 h; none for SMS).
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 604800)]
    pub ttl_seconds: Option<u64>,
    #[serde(default)]
    #[schema(max_length = 4000, pattern = "^[^\\u0000]*$")]
    pub notes: Option<String>,
    /// A repeated key answers the park it made.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\u0000]*$")]
    pub idempotency_key: Option<String>,
    #[serde(default, rename = "Token")]
    pub token: Option<String>,
}

/// A whole number written either way JSON allows (`60` or `60.0`: JSON Schema's `integer`
/// counts both).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("{n} is not a whole number of seconds"))
            }),
    }
}

/// The body of `POST /api/v1/parks/{id}/resume`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    /// `same_worker` (the default) or `queue`.
    #[serde(default)]
    #[schema(value_type = Option<ResumeRoute>)]
    pub route: Option<String>,
    #[serde(default, rename = "Token")]
    pub token: Option<String>,
}

/// The longest TTL a park may ask for (7 days).
const MAX_TTL_SECONDS: u64 = 7 * 24 * 3600;

pub struct ParkService {
    pub pool: PgPool,
    pub client: TwilioClient,
    pub workspace_sid: String,
    /// Where the parked customer's messages are posted: baton's own
    /// `{BATON_PUBLIC_URL}/webhooks/conversations`.
    pub webhooks_url: String,
}

pub struct Parked {
    pub park: ParkView,
    pub created: bool,
}

impl ParkService {
    pub async fn park(&self, body: ParkRequest, initiator: &str) -> Result<Parked, ServiceError> {
        let task_sid = parse_sid(&body.task_sid, "task_sid", &[SidKind::Task])?;
        if body
            .ttl_seconds
            .is_some_and(|t| t == 0 || t > MAX_TTL_SECONDS)
        {
            return Err(ServiceError::Invalid(format!(
                "ttl_seconds must be between 1 and {MAX_TTL_SECONDS}"
            )));
        }
        let notes = notes(body.notes)?;
        let park_id = format!("PA{}", uuid::Uuid::new_v4().simple());
        let idempotency_key = body
            .idempotency_key
            .clone()
            .unwrap_or_else(|| park_id.clone());
        check_idempotency_key(&idempotency_key)?;
        if let Some(existing) =
            store::parks::by_idempotency_key(&self.pool, &idempotency_key).await?
        {
            return Ok(Parked {
                park: existing,
                created: false,
            });
        }
        let task = fetch_assigned_task(&self.client, &self.workspace_sid, &task_sid).await?;
        let attributes: Value = task["attributes"]
            .as_str()
            .and_then(|a| serde_json::from_str(a).ok())
            .unwrap_or(Value::Null);
        let keys = transfer::conversation_keys(&attributes);
        let (Some(conversation_sid), Some(interaction_sid), Some(channel_sid)) = (
            keys.conversation_sid,
            keys.interaction_sid,
            keys.interaction_channel_sid,
        ) else {
            return Err(ServiceError::Invalid(format!(
                "task {task_sid} is not a Flex Conversations task (no conversationSid, \
                 flexInteractionSid, flexInteractionChannelSid); voice parks are observed from \
                 the task's attributes"
            )));
        };
        if let Some(existing) = store::parks::parked_in(&self.pool, &conversation_sid).await? {
            return Err(ServiceError::Conflict {
                code: "already_parked",
                message: format!(
                    "conversation {conversation_sid} is already parked ({})",
                    existing.park_id
                ),
                detail: serde_json::to_value(existing).ok(),
            });
        }
        let channel_type = crate::domain::orphan::ConversationRef::from_attributes(&attributes)
            .and_then(|c| c.channel_type);
        let ttl = body
            .ttl_seconds
            .map(Duration::from_secs)
            .or_else(|| park::default_messaging_ttl(channel_type.as_deref()));
        let worker_sid = store::facts::latest_accepting_worker(&self.pool, &task_sid).await?;
        let chain_id = match store::chains::chain_id_of(&self.pool, &task_sid).await? {
            Some(id) => id,
            None => keys
                .insights_conversation_id
                .unwrap_or_else(|| task_sid.to_string()),
        };
        let state = ResumeState {
            interaction_sid,
            channel_sid,
            conversation_sid: conversation_sid.clone(),
            workflow_sid: task["workflow_sid"].as_str().map(str::to_owned),
            task_queue_sid: task["task_queue_sid"].as_str().map(str::to_owned),
            task_queue_name: task["task_queue_friendly_name"].as_str().map(str::to_owned),
            task_channel: task["task_channel_unique_name"].as_str().map(str::to_owned),
            worker_sid: worker_sid.clone(),
            chain_id,
            attributes,
        };
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let inserted = store::parks::insert_messaging(
            &mut tx,
            &NewPark {
                park_id: &park_id,
                task_sid: &task_sid,
                worker_sid: worker_sid.as_deref(),
                channel_type: channel_type.as_deref(),
                notes: notes.as_deref(),
                ttl_seconds: ttl.map(|t| t.as_secs() as i64),
                resume_state: &state,
                idempotency_key: &idempotency_key,
            },
        )
        .await?;
        if !inserted {
            drop(tx);
            return store::parks::by_idempotency_key(&self.pool, &idempotency_key)
                .await?
                .map(|park| Parked {
                    park,
                    created: false,
                })
                .ok_or_else(|| ServiceError::Invalid("idempotency key conflict".into()));
        }
        // Webhook first in the outbox; the agent leaves in the same commit.
        for call in [
            park::park_webhook(&park_id, &conversation_sid, &self.webhooks_url),
            park::agent_leaves(&park_id, &state, &task_sid, &self.workspace_sid),
        ] {
            store::outbox::enqueue(&mut tx, &NewCall::planned(call, None)).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(%park_id, %task_sid, conversation_sid = %conversation_sid, initiator, "conversation parked");
        metrics::counter!("baton_parks_total", "kind" => "messaging").increment(1);
        let park = store::parks::get(&self.pool, &park_id)
            .await?
            .ok_or_else(|| ServiceError::Invalid("park vanished".into()))?;
        Ok(Parked {
            park,
            created: true,
        })
    }

    /// Ops resume a park.
    pub async fn resume(
        &self,
        park_id: &str,
        route: Option<&str>,
    ) -> Result<ParkView, ServiceError> {
        let route = match route.map(str::trim) {
            None | Some("") => ResumeRoute::SameWorker,
            Some(r) => r.parse::<ResumeRoute>().map_err(ServiceError::Invalid)?,
        };
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let Some(locked) = store::parks::lock_parked(&mut tx, park_id).await? else {
            drop(tx);
            return match store::parks::get(&self.pool, park_id).await? {
                Some(park) => Err(ServiceError::Conflict {
                    code: "not_parked",
                    message: format!("park {park_id} is {}", park.state),
                    detail: serde_json::to_value(park).ok(),
                }),
                None => Err(ServiceError::NotFound(format!("no park {park_id}"))),
            };
        };
        end_park(&mut tx, &locked, ParkEnd::Ops, route, &self.workspace_sid).await?;
        tx.commit().await.map_err(StoreError::from)?;
        store::parks::get(&self.pool, park_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no park {park_id}")))
    }
}

/// Ends a locked park: its state, and the calls that carry it out (a messaging park's resume
/// invite and webhook removal; a voice park's un-park when its TTL ran out). Returns whether
/// calls were enqueued.
pub async fn end_park(
    conn: &mut PgConnection,
    park: &LockedPark,
    end: ParkEnd,
    route: ResumeRoute,
    workspace_sid: &str,
) -> Result<bool, StoreError> {
    let route = end.route(route);
    let resumes = end.resumes();
    store::parks::finish(conn, &park.park_id, end, resumes.then_some(route)).await?;
    let held = (chrono::Utc::now() - park.parked_at)
        .to_std()
        .unwrap_or_default();
    let kind = match (park.kind.as_str(), park.resume_state()) {
        ("messaging", Some(mut state)) => {
            // The chain as baton knows it now: a park asked before baton had processed the
            // parked task's events kept the task's own SID as chain id.
            if let Some(chain_id) = store::chains::chain_id_of(&mut *conn, &park.task_sid).await? {
                state.chain_id = chain_id;
            }
            Some(park::Parked::Messaging(Box::new(state)))
        }
        ("voice", _) => Some(park::Parked::Voice),
        _ => None,
    };
    let calls = kind.map_or_else(Vec::new, |kind| {
        park::end_calls(
            &park.park_id,
            &park.task_sid,
            &kind,
            end,
            route,
            held,
            workspace_sid,
        )
    });
    let any = !calls.is_empty();
    for call in calls {
        store::outbox::enqueue(conn, &NewCall::planned(call, None)).await?;
    }
    tracing::info!(park_id = %park.park_id, task_sid = %park.task_sid, end = end.as_str(), route = route.as_str(), held_s = held.as_secs(), "park ended");
    metrics::counter!("baton_park_ends_total", "end" => end.as_str()).increment(1);
    Ok(any)
}

/// Ends every park whose TTL ran out. Returns how many.
pub async fn expire_due(pool: &PgPool, workspace_sid: &str) -> Result<usize, StoreError> {
    let mut tx = pool.begin().await?;
    let due = store::parks::lock_expired(&mut tx, 100).await?;
    for park in &due {
        end_park(
            &mut tx,
            park,
            ParkEnd::Ttl,
            ResumeRoute::Queue,
            workspace_sid,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(due.len())
}
