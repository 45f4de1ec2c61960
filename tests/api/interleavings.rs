//! A property over random interleavings, duplicates and losses of the events of the template's
//! flows (cold and warm transfers that are accepted or time out, parks), Flex's native voice
//! transfers and the voice transfer-park plugin: whatever order the
//! callbacks arrive in, and whichever are lost (recovered later from the Events API, as the
//! reconciler does), baton never ends live work, and once events stop the customer is never
//! left without an agent, a live task, a park or a closed conversation.

use crate::backfill::{baton_command, run_command};
use crate::beside::{agents_in, conversation_of, describe, destructive, GRACE};
use crate::flex::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use twilio_standin::{ChannelStatus, TaskStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// The template's cold transfer to a queue; nobody takes it (the customer is alone).
    ColdToQueueTimesOut,
    /// The template's cold transfer to Bob, who takes the customer.
    ColdToWorkerAccepted,
    /// A consult: Bob joins Alice.
    WarmToWorkerAccepted,
    /// A consult to a queue nobody takes: Alice keeps the customer.
    WarmToQueueTimesOut,
    /// The template parks the conversation (its webhook waits for the customer).
    Park,
    /// Flex's warm voice transfer to Bob, who takes the call.
    NativeWarmAccepted,
    /// Flex's cold voice transfer to Sales: Bob declines, it fails, Alice keeps the call.
    NativeColdFails,
    /// The transfer-park plugin parks the call; Alice picks it up; its marks stay on the task.
    PluginParkPickedUp,
}

impl Flow {
    fn voice(self) -> bool {
        matches!(
            self,
            Flow::NativeWarmAccepted | Flow::NativeColdFails | Flow::PluginParkPickedUp
        )
    }
}

#[derive(Debug, Clone)]
struct Case {
    flow: Flow,
    /// A sort key per held callback: their delivery order.
    order: Vec<u32>,
    lost: Vec<bool>,
    twice: Vec<bool>,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            Just(Flow::ColdToQueueTimesOut),
            Just(Flow::ColdToWorkerAccepted),
            Just(Flow::WarmToWorkerAccepted),
            Just(Flow::WarmToQueueTimesOut),
            Just(Flow::Park),
            Just(Flow::NativeWarmAccepted),
            Just(Flow::NativeColdFails),
            Just(Flow::PluginParkPickedUp),
        ],
        proptest::collection::vec(any::<u32>(), 40),
        proptest::collection::vec(proptest::bool::weighted(0.25), 40),
        proptest::collection::vec(proptest::bool::weighted(0.2), 40),
    )
        .prop_map(|(flow, order, lost, twice)| Case {
            flow,
            order,
            lost,
            twice,
        })
}

/// Plays the flow with every callback held; returns the transfer task, if any.
fn play(flex: &Flex, flow: Flow, a: &str, ch: &str) -> Option<String> {
    let twilio = &flex.twilio;
    match flow {
        Flow::ColdToQueueTimesOut => {
            let b = twilio.fpt_transfer(a, &flex.sales, false);
            twilio.time_out_task(&b);
            Some(b)
        }
        Flow::ColdToWorkerAccepted => {
            let b = twilio.fpt_transfer(a, &flex.bob, false);
            let r = twilio.offer(&b, &flex.bob);
            twilio.accept(&r);
            Some(b)
        }
        Flow::WarmToWorkerAccepted => {
            let b = twilio.fpt_transfer(a, &flex.bob, true);
            let r = twilio.offer(&b, &flex.bob);
            twilio.accept(&r);
            twilio.fpt_invite_joined(ch, &b);
            Some(b)
        }
        Flow::WarmToQueueTimesOut => {
            let b = twilio.fpt_transfer(a, &flex.sales, true);
            twilio.time_out_task(&b);
            Some(b)
        }
        Flow::Park => {
            twilio.fpt_park(a, "https://template.example.com/unpark-interaction");
            None
        }
        Flow::NativeWarmAccepted => {
            let transfer = twilio.start_transfer(a, &flex.bob, true);
            let offer = twilio
                .transfer(&transfer)
                .and_then(|t| t.reservations.last().cloned())
                .expect("the offer to Bob");
            twilio.accept(&offer);
            Some(transfer)
        }
        Flow::NativeColdFails => {
            let transfer = twilio.start_transfer(a, &flex.sales, false);
            let offer = twilio.offer_transfer(&transfer, &flex.bob);
            twilio.reject(&offer);
            twilio.fail_transfer(&transfer, "no answer");
            Some(transfer)
        }
        Flow::PluginParkPickedUp => {
            let park = twilio.plugin_park_call(a);
            twilio.plugin_pickup(&park);
            Some(park)
        }
    }
}

/// The voice flows: no conversation, the call is the task. baton makes no call at all: Flex's
/// transfers and the plugin's park are theirs, and nothing of them is left undone.
async fn check_voice(
    flex: &Flex,
    flow: Flow,
    task: &str,
    played: &str,
) -> Result<(), TestCaseError> {
    let made = destructive(flex);
    prop_assert!(made.is_empty(), "{:?}: {:?}", flow, describe(&made));
    prop_assert_eq!(flex.status(task), TaskStatus::Assigned, "the call goes on");
    let chain = flex.chain(task).await;
    let outcomes: Vec<String> = chain["hops"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| h["outcome"].as_str().unwrap_or("-").to_owned())
        .collect();
    match flow {
        Flow::NativeWarmAccepted => prop_assert_eq!(outcomes, vec!["completed".to_owned()]),
        Flow::NativeColdFails => prop_assert_eq!(outcomes, vec!["failed".to_owned()]),
        _ => {
            let reservation = flex
                .twilio
                .reservation(played)
                .expect("the park reservation");
            prop_assert_eq!(reservation.status.as_str(), "accepted");
        }
    }
    Ok(())
}

async fn run(case: Case) -> Result<(), TestCaseError> {
    eprintln!("interleaving case: {:?}", case.flow);
    let flex = Flex::start(FlexOptions {
        orphan_grace: Some(GRACE),
        events_list: true,
        ..FlexOptions::default()
    })
    .await;
    let voice = case.flow.voice();
    let (a, uo) = if voice {
        let call = flex
            .legacy_task_with(
                &flex.alice,
                json!({"call_sid": "CA0003", "from": "+14155550100"}),
            )
            .await;
        (call, String::new())
    } else {
        let (a, _, uo) = flex.conversation_with(&flex.alice).await;
        (a, uo)
    };
    let ch = if voice {
        String::new()
    } else {
        conversation_of(&flex, &uo)
    };
    flex.twilio.hold_callbacks(true);
    let b = play(&flex, case.flow, &a, &ch);
    let held = flex.twilio.take_queued_callbacks();
    flex.twilio.hold_callbacks(false);
    let mut order: Vec<usize> = (0..held.len()).collect();
    order.sort_by_key(|&i| (case.order[i % case.order.len()], i));
    for i in order {
        if case.lost[i % case.lost.len()] {
            continue;
        }
        let times = if case.twice[i % case.twice.len()] {
            2
        } else {
            1
        };
        for _ in 0..times {
            flex.deliver(&held[i].params).await;
        }
    }
    flex.settle_past_grace().await;
    // TaskRouter sends no failed callback again: the reconciler's backfill recovers them.
    let (code, summary, stderr) = run_command(baton_command(
        &flex.app,
        &flex.twilio,
        &[
            "backfill",
            "events",
            "--since",
            "1h",
            "--json",
            "--wait-secs",
            "0",
        ],
    ))
    .await;
    prop_assert_eq!(code, Some(0), "{} {}", summary, stderr);
    flex.settle_past_grace().await;
    flex.settle_past_grace().await;
    if voice {
        return check_voice(&flex, case.flow, &a, b.as_deref().unwrap_or_default()).await;
    }

    let made = destructive(&flex);
    let channel = flex.twilio.channel(&uo).expect("channel");
    let closed = channel.status == ChannelStatus::Closed;
    let agents = agents_in(&flex, &uo);
    let live_tasks: Vec<String> = flex
        .twilio
        .tasks()
        .into_iter()
        .filter(|t| t.attributes.contains(&uo))
        .filter(|t| {
            matches!(
                t.assignment_status,
                TaskStatus::Pending
                    | TaskStatus::Reserved
                    | TaskStatus::Assigned
                    | TaskStatus::Wrapping
            )
        })
        .map(|t| t.sid)
        .collect();
    let parked = flex.twilio.conversation(&ch).is_some_and(|c| {
        c.webhooks
            .iter()
            .any(|w| w.filters.iter().any(|f| f == "onMessageAdded"))
    });
    // Never stranded once events stop.
    prop_assert!(
        closed || !agents.is_empty() || !live_tasks.is_empty() || parked,
        "{:?}: the customer was left alone: {:?}",
        case.flow,
        describe(&made)
    );
    // baton never took over the template's work: no completion, no participant removed.
    let takeovers: Vec<_> = made
        .iter()
        .filter(|r| {
            r.form_value("AssignmentStatus").is_some()
                || r.form_value("ReservationStatus").is_some()
                || r.path.contains("/Participants/")
        })
        .collect();
    prop_assert!(
        takeovers.is_empty(),
        "{:?}: {:?}",
        case.flow,
        describe(&made)
    );
    let invites = made.iter().filter(|r| r.path.ends_with("/Invites")).count();
    match case.flow {
        // Live work (a consult, a served customer, a park) is never ended.
        Flow::ColdToWorkerAccepted => {
            prop_assert!(!closed, "{:?}", describe(&made));
            prop_assert_eq!(agents, vec![flex.bob.clone()]);
            prop_assert_eq!(invites, 1, "only the customer's");
        }
        Flow::WarmToWorkerAccepted | Flow::WarmToQueueTimesOut => {
            prop_assert!(!closed, "{:?}", describe(&made));
            prop_assert!(agents.contains(&flex.alice), "{:?}", agents);
            prop_assert_eq!(flex.status(&a), TaskStatus::Assigned);
            prop_assert_eq!(invites, 1, "only the customer's: {:?}", describe(&made));
        }
        Flow::Park => {
            prop_assert!(!closed, "{:?}", describe(&made));
            prop_assert!(parked);
            prop_assert_eq!(invites, 1, "only the customer's");
        }
        // Alone after a failed transfer: routed back to Alice once, or (when the failure
        // reached baton only after the conversation was found orphaned) closed.
        Flow::NativeWarmAccepted | Flow::NativeColdFails | Flow::PluginParkPickedUp => {}
        Flow::ColdToQueueTimesOut => {
            prop_assert!(invites <= 2, "{:?}", describe(&made));
            if invites == 2 {
                let back = made
                    .iter()
                    .rev()
                    .find(|r| r.path.ends_with("/Invites"))
                    .unwrap();
                let routing: Value = serde_json::from_str(form(back, "Routing").unwrap()).unwrap();
                prop_assert_eq!(
                    &routing["properties"]["attributes"]["originalRouting"]["workerSid"],
                    flex.alice.as_str()
                );
                prop_assert_eq!(
                    &routing["properties"]["attributes"]["baton"]["returning_from"],
                    b.as_deref().unwrap_or_default()
                );
            } else {
                prop_assert!(closed, "neither routed back nor closed");
            }
        }
    }
    Ok(())
}

#[test]
fn no_interleaving_or_loss_of_template_events_ends_live_work_or_strands_a_customer() {
    let cases_to_run = std::env::var("BATON_INTERLEAVING_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(16);
    let mut runner = TestRunner::new(Config {
        cases: cases_to_run,
        failure_persistence: None,
        max_shrink_iters: 8,
        ..Config::default()
    });
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runner
        .run(&cases(), |case| runtime.block_on(run(case)))
        .unwrap_or_else(|e| panic!("{e}"));
}
