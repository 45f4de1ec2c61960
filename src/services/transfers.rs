//! `POST /api/v1/transfers`: what the transfer plugins' serverless functions did, done so it
//! cannot half-happen. The request is checked against Twilio (the task is live, the target
//! exists), then the transfer row and its outbound call are committed together; the dispatcher
//! sends the call, and the chain machinery finishes the transferring side when the new task
//! appears (`BATON_COMPLETE_ON`).

use super::{check_idempotency_key, notes, parse_sid, ServiceError};
use crate::domain::outbound::{create_invite, OperationKind, Procedure, Product, TwilioRequest};
use crate::domain::paths;
use crate::domain::sid::SidKind;
use crate::domain::transfer::{Mode, TargetType};
use crate::store::transfers::TransferView;
use crate::store::{self, StoreError};
use crate::twilio::TwilioClient;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgPool;

/// The body of `POST /api/v1/transfers`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// `WT…`: the assigned task to transfer.
    #[schema(pattern = "^WT[0-9a-fA-F]{32}$")]
    pub task_sid: String,
    /// `WK…` (a worker), `WQ…` (a queue) or `WW…` (a workflow).
    #[schema(pattern = "^(WK|WQ|WW)[0-9a-fA-F]{32}$")]
    pub target_sid: String,
    /// `cold` (the default) or `warm`.
    #[serde(default)]
    #[schema(value_type = Option<Mode>)]
    pub mode: Option<String>,
    #[serde(default)]
    #[schema(max_length = 4000, pattern = "^[^\\u0000]*$")]
    pub notes: Option<String>,
    /// A repeated key answers the transfer it made.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\u0000]*$")]
    pub idempotency_key: Option<String>,
    /// The Flex token, for plugins that send it in the body like the serverless functions did.
    #[serde(default, rename = "Token")]
    pub token: Option<String>,
}

/// What `POST /api/v1/transfers` needs besides the request.
pub struct TransferService {
    pub pool: PgPool,
    pub client: TwilioClient,
    pub workspace_sid: String,
    /// Routes transfers to workers and queues (see `BATON_TRANSFER_WORKFLOW_SID`).
    pub transfer_workflow_sid: Option<String>,
}

/// Who asked (the ops token, or a Flex user).
#[derive(Debug, Clone)]
pub struct Initiator {
    pub label: String,
    pub worker_sid: Option<String>,
}

pub struct Requested {
    pub transfer: TransferView,
    /// False when the answer is an earlier transfer with the same idempotency key.
    pub created: bool,
}

impl TransferService {
    pub async fn request(
        &self,
        body: TransferRequest,
        initiator: &Initiator,
    ) -> Result<Requested, ServiceError> {
        let task_sid = parse_sid(&body.task_sid, "task_sid", &[SidKind::Task])?;
        let target = parse_sid(
            &body.target_sid,
            "target_sid",
            &[SidKind::Worker, SidKind::TaskQueue, SidKind::Workflow],
        )?;
        let target_type = TargetType::from_sid(&target)
            .ok_or_else(|| ServiceError::Invalid("target_sid has no target type".into()))?;
        let mode = match body.mode.as_deref().map(str::trim) {
            None | Some("") | Some("cold") => Mode::Cold,
            Some("warm") => Mode::Warm,
            Some(other) => {
                return Err(ServiceError::Invalid(format!(
                    "mode {other:?} must be \"cold\" or \"warm\""
                )))
            }
        };
        let notes = notes(body.notes)?;
        if let Some(key) = &body.idempotency_key {
            check_idempotency_key(key)?;
            if let Some(existing) = self.by_idempotency_key(key).await? {
                return Ok(Requested {
                    transfer: existing,
                    created: false,
                });
            }
        }
        if let Some(existing) = self.in_flight(&task_sid).await? {
            return Err(ServiceError::InFlight {
                task_sid: task_sid.to_string(),
                transfer_id: existing.transfer_id.clone(),
                existing: Box::new(existing),
            });
        }

        // Check against Twilio: the task is live, the target exists.
        let ws = &self.workspace_sid;
        let task = fetch_assigned_task(&self.client, ws, &task_sid).await?;
        let target_path = match target_type {
            TargetType::Worker => paths::worker(ws, &target),
            TargetType::Queue => paths::task_queue(ws, &target),
            TargetType::Workflow => paths::workflow(ws, &target),
        };
        let found = self
            .client
            .read(&TwilioRequest::get(Product::TaskRouter, target_path))
            .await?;
        if found.status == 404 {
            let what = match target_type {
                TargetType::Worker => "worker",
                TargetType::Queue => "task queue",
                TargetType::Workflow => "workflow",
            };
            return Err(ServiceError::Invalid(format!(
                "target_sid {target}: no such {what} in the workspace"
            )));
        }
        if !(200..300).contains(&found.status) {
            return Err(ServiceError::Twilio(format!(
                "fetching the target answered HTTP {}",
                found.status
            )));
        }
        let target_name = serde_json::from_str::<Value>(&found.body)
            .ok()
            .and_then(|v| v["friendly_name"].as_str().map(str::to_owned));

        let workflow_sid = match target_type {
            TargetType::Workflow => Some(target.to_string()),
            _ => self.transfer_workflow_sid.clone(),
        };
        let attributes: Value = task["attributes"]
            .as_str()
            .and_then(|raw| serde_json::from_str(raw).ok())
            .unwrap_or_else(|| json!({}));
        let transfer_id = format!("TR{}", uuid::Uuid::new_v4().simple());
        let chain_id = store::chains::chain_id_of(&self.pool, &task_sid)
            .await?
            .or_else(|| {
                attributes["conversations"]["conversation_id"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| task_sid.to_string());
        let worker_sid = initiator.worker_sid.clone();
        let new_attributes = transfer_attributes(
            &attributes,
            &TransferMarksOut {
                transfer_id: &transfer_id,
                previous_task_sid: &task_sid,
                target_sid: &target,
                target_type,
                target_name: target_name.as_deref(),
                mode,
                notes: notes.as_deref(),
                initiated_by: &initiator.label,
                transferring_worker: worker_sid.as_deref(),
                chain_id: &chain_id,
            },
        );
        let interaction = match (
            attributes["flexInteractionSid"].as_str(),
            attributes["flexInteractionChannelSid"].as_str(),
        ) {
            (Some(kd), Some(uo)) => Some((kd.to_owned(), uo.to_owned())),
            _ => None,
        };
        let channel = task["task_channel_unique_name"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let (method, kind, request, lookup) = match &interaction {
            Some((kd, uo)) => {
                let mut properties = json!({
                    "workspace_sid": ws,
                    "task_channel_unique_name": channel,
                    "attributes": new_attributes,
                });
                // Interactions needs a workflow; without a transfer workflow the task's own
                // routes it, aimed by queue_sid / worker_sid (known-agent routing).
                let own_workflow = task["workflow_sid"].as_str().map(str::to_owned);
                match (&workflow_sid, own_workflow) {
                    (Some(workflow), _) => properties["workflow_sid"] = json!(workflow),
                    (None, Some(workflow)) => {
                        properties["workflow_sid"] = json!(workflow);
                        match target_type {
                            TargetType::Queue => properties["queue_sid"] = json!(target),
                            _ => {
                                properties["worker_sid"] = json!(target);
                                if let Some(queue) = task["task_queue_sid"].as_str() {
                                    properties["queue_sid"] = json!(queue);
                                }
                            }
                        }
                    }
                    (None, None) => {
                        return Err(ServiceError::NotConfigured(
                            "the task has no workflow; set BATON_TRANSFER_WORKFLOW_SID".into(),
                        ))
                    }
                }
                let (request, lookup) = create_invite(kd, uo, properties);
                ("invite", OperationKind::CreateInvite, request, Some(lookup))
            }
            None => {
                let Some(workflow) = &workflow_sid else {
                    return Err(ServiceError::NotConfigured(
                        "transfers of legacy tasks to a worker or queue need BATON_TRANSFER_WORKFLOW_SID".into(),
                    ));
                };
                let mut form = vec![
                    ("WorkflowSid".to_owned(), workflow.clone()),
                    ("TaskChannel".to_owned(), channel),
                    ("Attributes".to_owned(), new_attributes.to_string()),
                ];
                if let Some(priority) = task["priority"].as_i64() {
                    form.push(("Priority".into(), priority.to_string()));
                }
                (
                    "task",
                    OperationKind::CreateTask,
                    TwilioRequest::post(Product::TaskRouter, paths::tasks(ws), form),
                    None,
                )
            }
        };
        let idempotency_key = body
            .idempotency_key
            .clone()
            .unwrap_or_else(|| transfer_id.clone());
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let inserted = store::transfers::insert(
            &mut tx,
            &store::transfers::NewTransfer {
                transfer_id: &transfer_id,
                idempotency_key: &idempotency_key,
                task_sid: &task_sid,
                target_type,
                target_sid: &target,
                mode,
                notes: notes.as_deref(),
                initiated_by: &initiator.label,
                method,
            },
        )
        .await?;
        if !inserted {
            // A concurrent request with the same key won the race.
            drop(tx);
            let existing = self.by_idempotency_key(&idempotency_key).await?;
            return existing
                .map(|transfer| Requested {
                    transfer,
                    created: false,
                })
                .ok_or_else(|| ServiceError::Invalid("idempotency key conflict".into()));
        }
        store::outbox::enqueue(
            &mut tx,
            &store::outbox::NewCall {
                idempotency_key: format!("transfer:{transfer_id}"),
                kind,
                request,
                procedure: Some(Procedure::CreateOnce {
                    lookup,
                    marker: transfer_id.clone(),
                }),
                caused_by_event: None,
                conversation_sid: crate::domain::transfer::conversation_keys(&attributes)
                    .conversation_sid,
                guard: None,
                after_key: None,
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(%transfer_id, %task_sid, target = %target, mode = mode.as_str(), method, "transfer requested");
        let transfer = self
            .find(&transfer_id)
            .await?
            .ok_or_else(|| ServiceError::Invalid("transfer vanished".into()))?;
        Ok(Requested {
            transfer,
            created: true,
        })
    }

    async fn by_idempotency_key(&self, key: &str) -> Result<Option<TransferView>, StoreError> {
        store::transfers::by_idempotency_key(&self.pool, key).await
    }

    pub async fn find(&self, transfer_id: &str) -> Result<Option<TransferView>, StoreError> {
        store::transfers::find(&self.pool, transfer_id).await
    }

    /// The task's latest transfer if it is still in flight (not dead, no outcome yet).
    async fn in_flight(&self, task_sid: &str) -> Result<Option<TransferView>, StoreError> {
        Ok(store::transfers::latest_of_task(&self.pool, task_sid)
            .await?
            .filter(|t| t.state.in_flight()))
    }
}

/// The task as Twilio has it now, if it is assigned (a live customer with an agent).
pub async fn fetch_assigned_task(
    client: &TwilioClient,
    workspace_sid: &str,
    task_sid: &str,
) -> Result<Value, ServiceError> {
    let task = client
        .read(&TwilioRequest::get(
            Product::TaskRouter,
            paths::task(workspace_sid, task_sid),
        ))
        .await?;
    if task.status == 404 {
        return Err(ServiceError::TaskNotFound(task_sid.to_owned()));
    }
    if !(200..300).contains(&task.status) {
        return Err(ServiceError::Twilio(format!(
            "fetching the task answered HTTP {}",
            task.status
        )));
    }
    let task: Value = serde_json::from_str(&task.body)
        .map_err(|e| ServiceError::Twilio(format!("unreadable task: {e}")))?;
    let status = task["assignment_status"].as_str().unwrap_or("unknown");
    if status != "assigned" {
        return Err(ServiceError::TaskNotLive {
            task_sid: task_sid.to_owned(),
            status: status.to_owned(),
        });
    }
    Ok(task)
}

struct TransferMarksOut<'a> {
    transfer_id: &'a str,
    previous_task_sid: &'a str,
    target_sid: &'a str,
    target_type: TargetType,
    target_name: Option<&'a str>,
    mode: Mode,
    notes: Option<&'a str>,
    initiated_by: &'a str,
    transferring_worker: Option<&'a str>,
    chain_id: &'a str,
}

/// The new task's attributes: every original attribute (never a subset), baton's canonical
/// marks, the flex-project-template vocabulary existing transfer workflows route on, and the
/// Insights linkage.
fn transfer_attributes(original: &Value, m: &TransferMarksOut<'_>) -> Value {
    let mut attrs = match original {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    attrs.insert(
        "baton".into(),
        json!({
            "transfer_id": m.transfer_id,
            "previous_task_sid": m.previous_task_sid,
            "target_sid": m.target_sid,
            "mode": m.mode.as_str(),
            "notes": m.notes,
            "initiated_by": m.initiated_by,
        }),
    );
    attrs.insert("transferTargetSid".into(), json!(m.target_sid));
    attrs.insert("transferTargetType".into(), json!(m.target_type.as_str()));
    if let (TargetType::Queue, Some(name)) = (m.target_type, m.target_name) {
        attrs.insert("transferQueueName".into(), json!(name));
    }
    let mut in_conversation: Vec<Value> = attrs
        .get("workerSidsInConversation")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(worker) = m.transferring_worker {
        if !in_conversation.iter().any(|w| w.as_str() == Some(worker)) {
            in_conversation.push(json!(worker));
        }
    }
    attrs.insert(
        "workerSidsInConversation".into(),
        Value::Array(in_conversation),
    );
    let conversations = attrs.entry("conversations").or_insert_with(|| json!({}));
    if !conversations.is_object() {
        *conversations = json!({});
    }
    conversations["conversation_id"] = json!(m.chain_id);
    Value::Object(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_task_attributes_keep_everything_and_add_the_marks() {
        let original = json!({"from": "+1415", "customers": {"name": "Ada"},
            "conversations": {"communication_channel": "sms"}, "workerSidsInConversation": ["WK1"]});
        let out = transfer_attributes(
            &original,
            &TransferMarksOut {
                transfer_id: "TR1",
                previous_task_sid: "WTa",
                target_sid: "WQ1",
                target_type: TargetType::Queue,
                target_name: Some("Sales"),
                mode: Mode::Cold,
                notes: Some("VIP"),
                initiated_by: "alice",
                transferring_worker: Some("WK2"),
                chain_id: "WTroot",
            },
        );
        assert_eq!(out["from"], "+1415");
        assert_eq!(out["customers"]["name"], "Ada");
        assert_eq!(out["conversations"]["communication_channel"], "sms");
        assert_eq!(out["conversations"]["conversation_id"], "WTroot");
        assert_eq!(out["baton"]["previous_task_sid"], "WTa");
        assert_eq!(out["baton"]["transfer_id"], "TR1");
        assert_eq!(out["transferTargetType"], "queue");
        assert_eq!(out["transferQueueName"], "Sales");
        assert_eq!(out["workerSidsInConversation"], json!(["WK1", "WK2"]));
        let marks = crate::domain::transfer::transfer_marks(&out).expect("marks");
        assert_eq!(marks.vocabulary, crate::domain::transfer::Vocabulary::Baton);
        assert_eq!(marks.previous_task_sid.as_deref(), Some("WTa"));
    }
}
