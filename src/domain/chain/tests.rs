//! Chains and decisions from folded events, in every order.

use super::decide::*;
use super::derive::*;
use super::model::*;
use crate::domain::event::{
    EventTime, TaskRouterEvent, TaskRouterEventType, TaskSnapshot, WorkerSnapshot,
};
use crate::domain::facts::{merge_reservation, merge_task, Observation};
use crate::domain::facts::{ReservationFact, TaskFact};
use crate::domain::transfer::{Mode, NativeTransfer, TargetType, TransferStatus, Vocabulary};
use proptest::prelude::*;
use serde_json::json;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const A: &str = "WTaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "WTbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "WTcccccccccccccccccccccccccccccccc";
const ALICE: &str = "WK00000000000000000000000000000001";
const BOB: &str = "WK00000000000000000000000000000002";
const CAROL: &str = "WK00000000000000000000000000000003";
const SALES: &str = "WQ00000000000000000000000000000001";

#[derive(Clone)]
struct Ev {
    kind: &'static str,
    task: &'static str,
    status: &'static str,
    ms: i64,
    attrs: Value,
    reservation: Option<(&'static str, &'static str)>,
    reason: Option<&'static str>,
}

fn ev(kind: &'static str, task: &'static str, status: &'static str, ms: i64, attrs: &Value) -> Ev {
    Ev {
        kind,
        task,
        status,
        ms,
        attrs: attrs.clone(),
        reservation: None,
        reason: None,
    }
}

fn rev(
    kind: &'static str,
    task: &'static str,
    status: &'static str,
    ms: i64,
    attrs: &Value,
    reservation: &'static str,
    worker: &'static str,
) -> Ev {
    Ev {
        reservation: Some((reservation, worker)),
        ..ev(kind, task, status, ms, attrs)
    }
}

fn to_event(e: &Ev) -> TaskRouterEvent {
    TaskRouterEvent {
        event_type: TaskRouterEventType::parse(e.kind),
        event_sid: None,
        account_sid: None,
        workspace_sid: Some("WS1".into()),
        resource_type: None,
        resource_sid: None,
        time: Some(EventTime {
            ms: e.ms,
            millisecond_precision: true,
        }),
        task: Some(TaskSnapshot {
            task_sid: e.task.into(),
            assignment_status: Some(e.status.into()),
            attributes: Some(e.attrs.clone()),
            canceled_reason: e.reason.map(str::to_owned),
            ..Default::default()
        }),
        reservation_sid: e.reservation.map(|(r, _)| r.to_owned()),
        worker: e.reservation.map(|(_, w)| WorkerSnapshot {
            worker_sid: w.into(),
            ..Default::default()
        }),
        task_queue_sid: Some(SALES.into()),
        task_queue_name: None,
        workflow_sid: Some("WW1".into()),
        reason: None,
        transfer: None,
    }
}

/// Folds events (in the order given) into facts, then into task nodes.
fn nodes(events: &[Ev]) -> Vec<TaskNode> {
    let mut tasks: BTreeMap<String, TaskFact> = BTreeMap::new();
    let mut reservations: BTreeMap<String, ReservationFact> = BTreeMap::new();
    for e in events {
        let event = to_event(e);
        // The event's identity: a redelivery is the same event.
        let key = format!("{}:{}:{}", e.kind, e.task, e.ms);
        let obs = Observation {
            event: &event,
            event_key: &key,
            ms: e.ms,
        };
        merge_task(
            tasks
                .entry(e.task.to_owned())
                .or_insert_with(|| TaskFact::new(e.task)),
            &obs,
        );
        if let Some((r, _)) = e.reservation {
            merge_reservation(
                reservations
                    .entry(r.to_owned())
                    .or_insert_with(|| ReservationFact::new(r)),
                &obs,
            );
        }
    }
    tasks
        .values()
        .map(|t| {
            let rs: Vec<&ReservationFact> = reservations
                .values()
                .filter(|r| r.task_sid.as_deref() == Some(t.task_sid.as_str()))
                .collect();
            TaskNode::from_facts(t, t.attributes.as_ref(), &rs)
        })
        .collect()
}

/// A→B→C: a customer with Alice, transferred (project-template style) to the Sales queue
/// where Bob takes it, then by Bob to Carol (baton style).
fn three_hops() -> Vec<Ev> {
    let a = json!({"conversationSid": "CH1", "flexInteractionSid": "KD1", "flexInteractionChannelSid": "UO1"});
    let b = json!({"conversationSid": "CH1", "flexInteractionSid": "KD1", "flexInteractionChannelSid": "UO1",
        "transferTargetSid": SALES, "transferTargetType": "queue", "transferQueueName": "Sales",
        "workerSidsInConversation": [ALICE], "conversations": {"conversation_id": A}});
    let c = json!({"conversationSid": "CH1", "flexInteractionSid": "KD1", "flexInteractionChannelSid": "UO1",
        "baton": {"previous_task_sid": B, "target_sid": CAROL, "mode": "cold", "notes": "VIP",
            "initiated_by": BOB, "transfer_id": "TR1"}, "conversations": {"conversation_id": A}});
    vec![
        ev("task.created", A, "pending", 1000, &a),
        rev("reservation.created", A, "reserved", 1100, &a, "WRa", ALICE),
        rev(
            "reservation.accepted",
            A,
            "assigned",
            1200,
            &a,
            "WRa",
            ALICE,
        ),
        ev("task.created", B, "pending", 2000, &b),
        rev("reservation.created", B, "reserved", 2100, &b, "WRb", BOB),
        rev("reservation.accepted", B, "assigned", 2200, &b, "WRb", BOB),
        ev("task.completed", A, "completed", 2300, &a),
        ev("task.created", C, "pending", 3000, &c),
        rev("reservation.created", C, "reserved", 3100, &c, "WRc", CAROL),
        rev(
            "reservation.accepted",
            C,
            "assigned",
            3200,
            &c,
            "WRc",
            CAROL,
        ),
    ]
}

#[test]
fn hops_record_their_queues_and_when_the_target_let_the_customer_go() {
    let mut events = three_hops();
    // Bob's task ends once Carol has the customer.
    let b = events[3].attrs.clone();
    events.push(ev("task.completed", B, "completed", 3300, &b));
    let chain = &derive_chains(&nodes(&events))[0];
    let (h1, h2) = (&chain.hops[0], &chain.hops[1]);
    assert_eq!(h1.from_queue_sid.as_deref(), Some(SALES));
    assert_eq!(h1.to_queue_sid.as_deref(), Some(SALES));
    assert_eq!((h1.accepted_ms, h1.ended_ms), (Some(2200), Some(3300)));
    // Carol still has the customer.
    assert_eq!((h2.accepted_ms, h2.ended_ms), (Some(3200), None));
}

#[test]
fn a_three_hop_chain_has_its_root_and_two_ordered_hops() {
    let chains = derive_chains(&nodes(&three_hops()));
    assert_eq!(chains.len(), 1);
    let chain = &chains[0];
    assert_eq!(chain.chain_id, A);
    assert_eq!(chain.root_task_sid, A);
    let order: Vec<&str> = chain.tasks.iter().map(|t| t.task_sid.as_str()).collect();
    assert_eq!(order, vec![A, B, C]);
    assert_eq!(chain.hops.len(), 2);
    let h1 = &chain.hops[0];
    assert_eq!(
        (h1.seq, h1.from_task_sid.as_str(), h1.to_task_sid.as_str()),
        (1, A, B)
    );
    assert_eq!(h1.target_type, Some(TargetType::Queue));
    assert_eq!(h1.target_sid.as_deref(), Some(SALES));
    assert_eq!(h1.target_name.as_deref(), Some("Sales"));
    assert_eq!(h1.from_worker_sid.as_deref(), Some(ALICE));
    assert_eq!(h1.to_worker_sid.as_deref(), Some(BOB));
    assert_eq!(h1.vocabulary, Some(Vocabulary::ProjectTemplate));
    assert_eq!(
        (
            h1.initiated_ms,
            h1.offered_ms,
            h1.accepted_ms,
            h1.finished_ms
        ),
        (Some(2000), Some(2100), Some(2200), Some(2300))
    );
    assert_eq!(h1.outcome, Some(HopOutcome::Completed));
    let h2 = &chain.hops[1];
    assert_eq!(
        (h2.seq, h2.from_task_sid.as_str(), h2.to_task_sid.as_str()),
        (2, B, C)
    );
    assert_eq!(h2.target_type, Some(TargetType::Worker));
    assert_eq!(h2.notes.as_deref(), Some("VIP"));
    assert_eq!(h2.transfer_id.as_deref(), Some("TR1"));
    assert_eq!(h2.from_reservation_sid.as_deref(), Some("WRb"));
    assert_eq!(h2.outcome, Some(HopOutcome::Completed));
    assert_eq!(
        h2.finished_ms,
        Some(3200),
        "B is still assigned: finished when Carol took it"
    );
}

#[test]
fn accepted_policy_finishes_the_transferring_side_only_after_acceptance() {
    let all = three_hops();
    let before_accept: Vec<Ev> = all
        .into_iter()
        .filter(|e| !(e.task == C && e.kind == "reservation.accepted"))
        .collect();
    let ns = nodes(&before_accept);
    let chain = &derive_chains(&ns)[0];
    let by_sid: BTreeMap<&str, &TaskNode> = ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
    let actions = decide(chain, &by_sid, CompleteOn::Accepted);
    assert!(!actions.iter().any(|a| matches!(a, Action::FinishTransferringSide { from_task_sid, .. } if from_task_sid == B)), "{actions:?}");
    let created = decide(chain, &by_sid, CompleteOn::Created);
    assert!(
        created.contains(&Action::FinishTransferringSide {
            from_task_sid: B.into(),
            to_task_sid: C.into(),
            interaction: Some(("KD1".into(), "UO1".into())),
            once: Once::TargetCreated,
        }),
        "{created:?}"
    );

    let ns = nodes(&three_hops());
    let chain = &derive_chains(&ns)[0];
    let by_sid: BTreeMap<&str, &TaskNode> = ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
    let actions = decide(chain, &by_sid, CompleteOn::Accepted);
    assert_eq!(
        actions,
        vec![Action::FinishTransferringSide {
            from_task_sid: B.into(),
            to_task_sid: C.into(),
            interaction: Some(("KD1".into(), "UO1".into())),
            once: Once::TargetAccepted,
        }],
        "A is completed already; B and C carry the chain id"
    );
}

#[test]
fn unlinked_live_tasks_are_stamped_with_the_chain_id() {
    // plugin-chat-sms-transfer's guard: the task had a `conversations` object, so the
    // plugin left conversation_id out.
    let a = json!({"channelSid": "CH9", "conversations": {"communication_channel": "chat"}});
    let b = json!({"channelSid": "CH9", "targetSid": BOB, "ignoreAgent": "alice",
        "conversations": {"communication_channel": "chat"}});
    let events = vec![
        ev("task.created", A, "pending", 1000, &a),
        rev(
            "reservation.accepted",
            A,
            "assigned",
            1200,
            &a,
            "WRa",
            ALICE,
        ),
        ev("task.created", B, "pending", 2000, &b),
    ];
    let ns = nodes(&events);
    let chain = &derive_chains(&ns)[0];
    let by_sid: BTreeMap<&str, &TaskNode> = ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
    let actions = decide(chain, &by_sid, CompleteOn::Accepted);
    assert_eq!(
        actions,
        vec![Action::StampInsights {
            task_sid: B.into(),
            chain_id: A.into()
        }]
    );
    assert_eq!(actions[0].idempotency_key(), format!("stamp:{B}:{A}"));
}

#[test]
fn a_failed_transfer_is_failed_or_returned_by_policy() {
    let a = json!({"flexInteractionSid": "KD1", "flexInteractionChannelSid": "UO1"});
    let b = json!({"flexInteractionSid": "KD1", "flexInteractionChannelSid": "UO1",
        "baton": {"previous_task_sid": A, "target_sid": BOB}});
    let mut events = vec![
        ev("task.created", A, "pending", 1000, &a),
        rev(
            "reservation.accepted",
            A,
            "assigned",
            1200,
            &a,
            "WRa",
            ALICE,
        ),
        ev("task.created", B, "pending", 2000, &b),
        rev("reservation.created", B, "reserved", 2100, &b, "WRb", BOB),
        rev("reservation.rejected", B, "pending", 2200, &b, "WRb", BOB),
    ];
    events.push(Ev {
        reason: Some("Task TTL Exceeded"),
        ..ev("task.canceled", B, "canceled", 2900, &b)
    });
    let ns = nodes(&events);
    let chain = &derive_chains(&ns)[0];
    assert_eq!(chain.hops[0].outcome, Some(HopOutcome::Failed));
    assert_eq!(chain.hops[0].finished_ms, Some(2900));
    let by_sid: BTreeMap<&str, &TaskNode> = ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
    assert_eq!(
        decide(chain, &by_sid, CompleteOn::Accepted),
        vec![],
        "Alice keeps the customer"
    );
    // With `created`, Alice was released when B was created; once she is gone, route back.
    let mut released = events;
    released.push(ev("task.completed", A, "completed", 2050, &a));
    let ns = nodes(&released);
    let chain = &derive_chains(&ns)[0];
    let by_sid: BTreeMap<&str, &TaskNode> = ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
    let actions = decide(chain, &by_sid, CompleteOn::Created);
    assert_eq!(actions.len(), 1, "{actions:?}");
    let Action::RouteBack {
        worker_sid,
        failed_task_sid,
        attributes,
        ..
    } = &actions[0]
    else {
        panic!("{actions:?}");
    };
    assert_eq!(worker_sid.as_deref(), Some(ALICE));
    assert_eq!(failed_task_sid, B);
    assert_eq!(attributes["baton"]["returning_from"], B);
    assert_eq!(attributes["conversations"]["conversation_id"], A);
}

#[test]
fn a_template_transfer_is_warm_when_the_agent_stayed_and_is_never_finished_by_baton() {
    let a = json!({"conversationSid": "CH1", "flexInteractionSid": "KD1", "flexInteractionChannelSid": "UO1"});
    let b = json!({"conversationSid": "CH1", "flexInteractionSid": "KD1", "flexInteractionChannelSid": "UO1",
        "transferTargetSid": BOB, "transferTargetType": "worker",
        "workerSidsInConversation": [ALICE], "conversations": {"conversation_id": A}});
    let consult = vec![
        ev("task.created", A, "pending", 1000, &a),
        rev(
            "reservation.accepted",
            A,
            "assigned",
            1200,
            &a,
            "WRa",
            ALICE,
        ),
        ev("task.created", B, "pending", 2000, &b),
        rev("reservation.accepted", B, "assigned", 2200, &b, "WRb", BOB),
    ];
    let ns = nodes(&consult);
    let chain = &derive_chains(&ns)[0];
    assert_eq!(chain.hops[0].mode, Some(Mode::Warm));
    let by_sid: BTreeMap<&str, &TaskNode> = ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
    for policy in [CompleteOn::Accepted, CompleteOn::Created] {
        assert_eq!(decide(chain, &by_sid, policy), vec![], "Alice consults");
    }
    // A cold one: the template removed Alice before Bob accepted.
    let mut cold = consult.clone();
    cold.push(ev("task.completed", A, "completed", 2050, &a));
    let chain = &derive_chains(&nodes(&cold))[0];
    assert_eq!(chain.hops[0].mode, Some(Mode::Cold));
}

#[test]
fn a_transfer_back_to_a_worker_in_wrap_up_finishes_that_wrap_up() {
    let a = json!({"conversationSid": "CH1"});
    let b = json!({"conversationSid": "CH1", "targetSid": BOB, "conversations": {"conversation_id": A}});
    let c = json!({"conversationSid": "CH1", "targetSid": ALICE, "conversations": {"conversation_id": A}});
    let events = vec![
        ev("task.created", A, "pending", 1000, &a),
        rev(
            "reservation.accepted",
            A,
            "assigned",
            1200,
            &a,
            "WRa",
            ALICE,
        ),
        ev("task.created", B, "pending", 2000, &b),
        rev("reservation.accepted", B, "assigned", 2200, &b, "WRb", BOB),
        ev("task.wrapup", A, "wrapping", 2300, &a),
        ev("task.created", C, "pending", 3000, &c),
    ];
    let ns = nodes(&events);
    let chain = &derive_chains(&ns)[0];
    let by_sid: BTreeMap<&str, &TaskNode> = ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
    let actions = decide(chain, &by_sid, CompleteOn::Accepted);
    assert!(
        actions.contains(&Action::CompleteStaleWrapup {
            task_sid: A.into(),
            for_task_sid: C.into()
        }),
        "{actions:?}"
    );
}

#[test]
fn voice_transfers_are_hops_between_reservations_of_one_task() {
    let a = json!({"call_sid": "CA1"});
    let events = vec![
        ev("task.created", A, "pending", 1000, &a),
        rev(
            "reservation.accepted",
            A,
            "assigned",
            1200,
            &a,
            "WR1",
            ALICE,
        ),
        rev("reservation.created", A, "assigned", 2000, &a, "WR2", BOB),
        rev("reservation.accepted", A, "assigned", 2100, &a, "WR2", BOB),
    ];
    let chain = &derive_chains(&nodes(&events))[0];
    assert_eq!(chain.hops.len(), 1);
    let hop = &chain.hops[0];
    assert_eq!(
        (hop.from_task_sid.as_str(), hop.to_task_sid.as_str()),
        (A, A)
    );
    assert_eq!(hop.from_worker_sid.as_deref(), Some(ALICE));
    assert_eq!(hop.to_worker_sid.as_deref(), Some(BOB));
    assert_eq!(hop.accepted_ms, Some(2100));
}

#[test]
fn offers_without_transfer_events_are_one_hop_until_one_is_accepted() {
    // A queue transfer offered to Bob, who declines, then to Carol: one transfer, in
    // flight, not a failed one and another.
    let a = json!({"call_sid": "CA1"});
    let mut events = vec![
        ev("task.created", A, "pending", 1000, &a),
        rev(
            "reservation.accepted",
            A,
            "assigned",
            1200,
            &a,
            "WR1",
            ALICE,
        ),
        rev("reservation.created", A, "assigned", 2000, &a, "WR2", BOB),
        rev("reservation.rejected", A, "assigned", 2100, &a, "WR2", BOB),
        rev("reservation.created", A, "assigned", 3000, &a, "WR3", CAROL),
    ];
    let summary = |events: &[Ev]| -> Vec<_> {
        derive_chains(&nodes(events))[0]
            .hops
            .iter()
            .map(|h| {
                (
                    h.from_worker_sid.clone(),
                    h.to_worker_sid.clone(),
                    h.outcome,
                    h.offered_ms,
                )
            })
            .collect()
    };
    assert_eq!(
        summary(&events),
        vec![(Some(ALICE.into()), Some(CAROL.into()), None, Some(2000))]
    );
    // Carol too declines, and nobody else is offered it: the transfer failed.
    events.push(rev(
        "reservation.rejected",
        A,
        "assigned",
        3100,
        &a,
        "WR3",
        CAROL,
    ));
    assert_eq!(
        summary(&events),
        vec![(
            Some(ALICE.into()),
            Some(CAROL.into()),
            Some(HopOutcome::Failed),
            Some(2000)
        )]
    );
}

#[test]
fn native_transfer_events_make_one_hop_each_with_their_mode_and_outcome() {
    let a = json!({"call_sid": "CA1"});
    let events = vec![
        ev("task.created", A, "pending", 1000, &a),
        rev(
            "reservation.accepted",
            A,
            "assigned",
            1200,
            &a,
            "WR1",
            ALICE,
        ),
        // TT1: to Sales, warm; Bob declines, Carol takes it.
        rev("reservation.created", A, "assigned", 2000, &a, "WR2", BOB),
        rev("reservation.rejected", A, "assigned", 2100, &a, "WR2", BOB),
        rev("reservation.created", A, "assigned", 2200, &a, "WR3", CAROL),
        rev(
            "reservation.accepted",
            A,
            "assigned",
            2300,
            &a,
            "WR3",
            CAROL,
        ),
        // TT2: Carol to Bob, cold; it fails.
        rev("reservation.created", A, "assigned", 4000, &a, "WR4", BOB),
        rev("reservation.timeout", A, "assigned", 4500, &a, "WR4", BOB),
    ];
    let mut ns = nodes(&events);
    ns[0].transfers = vec![
        NativeTransfer {
            transfer_sid: "TT1".into(),
            mode: Some(Mode::Warm),
            target_sid: Some(SALES.into()),
            target_type: Some(TargetType::Queue),
            initiating_worker_sid: Some(ALICE.into()),
            initiating_reservation_sid: Some("WR1".into()),
            status: TransferStatus::Completed,
            status_ms: Some(2300),
            initiated_ms: Some(1900),
        },
        NativeTransfer {
            transfer_sid: "TT2".into(),
            mode: Some(Mode::Cold),
            target_sid: Some(BOB.into()),
            target_type: Some(TargetType::Worker),
            initiating_worker_sid: Some(CAROL.into()),
            initiating_reservation_sid: Some("WR3".into()),
            status: TransferStatus::Failed,
            status_ms: Some(4600),
            initiated_ms: Some(3900),
        },
    ];
    let chain = &derive_chains(&ns)[0];
    let summary: Vec<_> = chain
        .hops
        .iter()
        .map(|h| {
            (
                h.native_transfer_sid.as_deref(),
                h.from_worker_sid.as_deref(),
                h.to_worker_sid.as_deref(),
                h.mode,
                h.target_type,
                h.outcome,
                h.offered_ms,
                h.finished_ms,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                Some("TT1"),
                Some(ALICE),
                Some(CAROL),
                Some(Mode::Warm),
                Some(TargetType::Queue),
                Some(HopOutcome::Completed),
                Some(2000),
                Some(2300)
            ),
            (
                Some("TT2"),
                Some(CAROL),
                Some(BOB),
                Some(Mode::Cold),
                Some(TargetType::Worker),
                Some(HopOutcome::Failed),
                Some(4000),
                Some(4600)
            ),
        ]
    );
    assert_eq!(chain.hops[0].to_queue_sid.as_deref(), Some(SALES));
    let by_sid: BTreeMap<&str, &TaskNode> = ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
    assert_eq!(
        decide(chain, &by_sid, CompleteOn::Accepted),
        vec![],
        "Flex's own voice transfers are Flex's to finish"
    );
}

#[test]
fn unrelated_tasks_are_separate_chains() {
    let events = vec![
        ev(
            "task.created",
            A,
            "pending",
            1000,
            &json!({"conversationSid": "CH1"}),
        ),
        ev(
            "task.created",
            B,
            "pending",
            1000,
            &json!({"conversationSid": "CH2"}),
        ),
    ];
    let chains = derive_chains(&nodes(&events));
    assert_eq!(chains.len(), 2);
    assert!(chains.iter().all(|c| c.hops.is_empty()));
}

#[test]
fn links_cover_every_vocabulary() {
    let l = links(
        B,
        &json!({"previous_task_sid": A, "conversationSid": "CH1",
        "flexInteractionChannelSid": "UO1", "channelSid": "CH2", "conversations": {"conversation_id": C}}),
    );
    let expected: BTreeSet<String> = [
        format!("id:{B}"),
        format!("id:{A}"),
        format!("id:{C}"),
        "conv:CH1".into(),
        "conv:CH2".into(),
        "uo:UO1".into(),
    ]
    .into_iter()
    .collect();
    assert_eq!(l, expected);
}

proptest! {
    /// Invariant: any order (and duplication) of the same deliveries gives the same chain and
    /// the same decisions.
    #[test]
    fn any_order_of_deliveries_converges(
        perm in Just((0..three_hops().len()).collect::<Vec<_>>()).prop_shuffle(),
        dups in proptest::collection::vec(0..10usize, 0..4),
    ) {
        let base = three_hops();
        let expected = derive_chains(&nodes(&base));
        let mut order: Vec<usize> = perm;
        order.extend(dups);
        let shuffled: Vec<Ev> = order.iter().map(|&i| base[i].clone()).collect();
        let ns = nodes(&shuffled);
        let got = derive_chains(&ns);
        prop_assert_eq!(&got, &expected);
        let by_sid: BTreeMap<&str, &TaskNode> = ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
        let exp_nodes = nodes(&base);
        let exp_by_sid: BTreeMap<&str, &TaskNode> = exp_nodes.iter().map(|n| (n.task_sid.as_str(), n)).collect();
        prop_assert_eq!(
            decide(&got[0], &by_sid, CompleteOn::Accepted),
            decide(&expected[0], &exp_by_sid, CompleteOn::Accepted)
        );
    }
}
