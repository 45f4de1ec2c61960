//! The conversations of a run: their kinds spread evenly, their agents, tasks and attributes
//! as Flex makes them, seeded into the stand-in so that baton's calls
//! find the matching state there.

use super::{random_sid, Conversation, E2eArgs, Kind, Setup, TaskPlan, Worker};
use anyhow::{bail, Context};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

/// Conversations seeded into the stand-in per request.
const SEED_BATCH: usize = 500;

#[derive(Debug, Deserialize)]
struct Seeded {
    interaction_sid: String,
    channel_sid: String,
    participants: BTreeMap<String, String>,
    reservations: BTreeMap<String, String>,
}

/// Plans the conversations and seeds their state into the stand-in.
pub(super) async fn seed(
    client: &reqwest::Client,
    control: &str,
    setup: &Setup,
    args: &E2eArgs,
    count: u64,
) -> anyhow::Result<Vec<Arc<Conversation>>> {
    let workers = &setup.workers;
    if workers.len() < 2 {
        bail!("the stand-in seeded fewer than 2 workers");
    }
    let mut planned = Vec::with_capacity(count as usize);
    for index in 0..count {
        let kind = kind_of(index, args.cancel_percent, args.park_percent);
        let alice = workers[(2 * index as usize) % workers.len()].clone();
        let bob = workers[(2 * index as usize + 1) % workers.len()].clone();
        let customer = format!("+1415{:07}", index % 10_000_000);
        planned.push((index, kind, random_sid("CH"), customer, alice, bob));
    }
    let mut conversations = Vec::with_capacity(planned.len());
    for chunk in planned.chunks(SEED_BATCH) {
        let specs: Vec<Value> = chunk
            .iter()
            .map(|(index, kind, ch, customer, alice, bob)| {
                let a = json!({"sid": task_sid(*index, 'a'), "agent": *kind != Kind::Canceled,
                    "status": if *kind == Kind::Canceled { "canceled" } else { "assigned" },
                    "worker_sid": (*kind != Kind::Canceled).then_some(&alice.sid),
                    "task_channel": "chat", "attributes": customer_attributes(*index, customer)});
                let mut tasks = vec![a];
                if *kind != Kind::Canceled {
                    tasks.push(json!({"sid": task_sid(*index, 'b'), "agent": true,
                        "status": "assigned", "worker_sid": bob.sid, "task_channel": "chat",
                        "attributes": transfer_attributes(*index, customer, alice, bob)}));
                }
                json!({"conversation_sid": ch, "customer": customer, "proxy": "+18005550100",
                    "channel_type": "sms", "tasks": tasks})
            })
            .collect();
        let seeded: Vec<Seeded> = client
            .post(format!("{control}/conversations"))
            .json(&specs)
            .send()
            .await?
            .error_for_status()
            .context("seeding conversations into the stand-in")?
            .json()
            .await?;
        for ((index, kind, ch, customer, alice, bob), s) in chunk.iter().zip(seeded) {
            let keys = |mut v: Value| {
                v["conversationSid"] = json!(ch);
                v["flexInteractionSid"] = json!(s.interaction_sid);
                v["flexInteractionChannelSid"] = json!(s.channel_sid);
                v.to_string()
            };
            let a_sid = task_sid(*index, 'a');
            let b_sid = task_sid(*index, 'b');
            let a = TaskPlan {
                attributes: keys(customer_attributes(*index, customer)),
                reservation_sid: s
                    .reservations
                    .get(&a_sid)
                    .cloned()
                    .unwrap_or_else(|| random_sid("WR")),
                worker: alice.clone(),
                sid: a_sid.clone(),
            };
            let b = (*kind != Kind::Canceled).then(|| TaskPlan {
                attributes: keys(transfer_attributes(*index, customer, alice, bob)),
                reservation_sid: s
                    .reservations
                    .get(&b_sid)
                    .cloned()
                    .unwrap_or_else(|| random_sid("WR")),
                worker: bob.clone(),
                sid: b_sid.clone(),
            });
            conversations.push(Arc::new(Conversation {
                kind: *kind,
                ch: ch.clone(),
                customer: customer.clone(),
                kd: s.interaction_sid,
                uo: s.channel_sid,
                participant_a: s.participants.get(&a_sid).cloned(),
                participant_b: s.participants.get(&b_sid).cloned(),
                a,
                b,
                last_ms: AtomicI64::new(0),
                started_ms: AtomicI64::new(0),
            }));
        }
    }
    Ok(conversations)
}

/// The kinds spread evenly over the run: index × 37 visits every residue mod 100 once per 100
/// conversations.
fn kind_of(index: u64, cancel_percent: u32, park_percent: u32) -> Kind {
    let slot = (index * 37 % 100) as u32;
    if slot < cancel_percent {
        Kind::Canceled
    } else if slot < cancel_percent + park_percent {
        Kind::Park
    } else {
        Kind::Transfer
    }
}

/// Unique per run and conversation: the run's random high bits, the index, the task.
fn task_sid(index: u64, task: char) -> String {
    static RUN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| rand::thread_rng().gen::<u64>());
    let which = if task == 'a' { 0xa } else { 0xb };
    format!("WT{run:016x}{index:015x}{which:x}")
}

/// What Flex puts on a customer's first task (an SMS conversation routed by the interaction).
fn customer_attributes(index: u64, customer: &str) -> Value {
    json!({
        "from": customer,
        "name": customer,
        "customerName": format!("Customer {index}"),
        "customerAddress": customer,
        "channelType": "sms",
        "direction": "inbound",
        "conversations": {"communication_channel": "sms", "direction": "inbound"},
    })
}

/// Flex's native (cold) messaging transfer to an agent: the original attributes, Flex's
/// `transfer_sid` and `previous_task_sid`, the target fields existing workflows route on, and no
/// Insights `conversation_id`. A cold transfer whose agent is still in the conversation once the
/// target accepted is left undone: baton finishes it (a template transfer, warm or cold as it
/// may be, is left to the template).
fn transfer_attributes(index: u64, customer: &str, from: &Worker, to: &Worker) -> Value {
    let mut attributes = customer_attributes(index, customer);
    attributes["transfer_sid"] = json!(format!("UX{index:032x}"));
    attributes["previous_task_sid"] = json!(task_sid(index, 'a'));
    attributes["transferTargetSid"] = json!(to.sid);
    attributes["transferTargetType"] = json!("worker");
    attributes["workerSidsInConversation"] = json!([from.sid]);
    attributes["ignoreWorkerContactUri"] = json!(format!("client:{}", from.friendly_name));
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_follows_the_percentages_in_every_hundred() {
        for start in [0u64, 100, 12_300] {
            let mut counts = [0u32; 3];
            for i in start..start + 100 {
                counts[match kind_of(i, 10, 20) {
                    Kind::Canceled => 0,
                    Kind::Park => 1,
                    Kind::Transfer => 2,
                }] += 1;
            }
            assert_eq!(counts, [10, 20, 70]);
        }
        assert_eq!(kind_of(5, 0, 0), Kind::Transfer);
    }
}
