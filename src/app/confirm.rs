//! Asking Twilio, just before a destructive call is sent, whether the facts that justified it
//! still hold (`domain::guard`). Used by the outbox dispatcher and the orphan sweep.

use crate::domain::guard::{self, ConversationAnswers, Guard, Verdict};
use crate::domain::outbound::TwilioRequest;
use crate::twilio::{Response, TransportError, TwilioClient};
use serde_json::Value;

/// What asking Twilio found.
#[derive(Debug)]
pub enum Confirmed {
    Verdict(Verdict),
    /// A read was refused (5xx, 429, 4xx): this answer decides the attempt. Nothing is sent now.
    Unanswered(Response),
}

/// A single resource's read: its answer decoded (404: it is gone), or the refusal that ends
/// the check.
async fn read_one(
    client: &TwilioClient,
    request: &TwilioRequest,
) -> Result<Result<(u16, Value), Response>, TransportError> {
    read(client, request, true).await
}

/// A list's read: a 404 means the list could not be read, not that it is empty.
async fn read_list(
    client: &TwilioClient,
    request: &TwilioRequest,
) -> Result<Result<(u16, Value), Response>, TransportError> {
    read(client, request, false).await
}

async fn read(
    client: &TwilioClient,
    request: &TwilioRequest,
    gone_is_an_answer: bool,
) -> Result<Result<(u16, Value), Response>, TransportError> {
    let response = client.send(request).await?;
    if (200..300).contains(&response.status) || gone_is_an_answer && response.status == 404 {
        let body = serde_json::from_str(&response.body).unwrap_or(Value::Null);
        Ok(Ok((response.status, body)))
    } else {
        Ok(Err(response))
    }
}

macro_rules! answer {
    ($e:expr) => {
        match $e {
            Ok(answer) => answer,
            Err(refused) => return Ok(Confirmed::Unanswered(refused)),
        }
    };
}

/// Makes the guard's reads and judges them. Boxed: `All` recurses.
pub fn confirm<'a>(
    client: &'a TwilioClient,
    guard: &'a Guard,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Confirmed, TransportError>> + Send + 'a>,
> {
    Box::pin(async move {
        match guard {
            Guard::All { guards } => {
                for g in guards {
                    match confirm(client, g).await? {
                        Confirmed::Verdict(Verdict::Proceed) => {}
                        other => return Ok(other),
                    }
                }
                Ok(Confirmed::Verdict(Verdict::Proceed))
            }
            Guard::TaskIs {
                workspace_sid,
                task_sid,
                statuses,
            } => {
                let (status, task) =
                    answer!(read_one(client, &guard::task_read(workspace_sid, task_sid)).await?);
                Ok(Confirmed::Verdict(guard::judge_task(
                    status, &task, task_sid, statuses,
                )))
            }
            Guard::LeftBehind {
                workspace_sid,
                task_sid,
                reservation_sid,
            } => {
                let (status, list) = answer!(
                    read_list(client, &guard::reservations_read(workspace_sid, task_sid)).await?
                );
                if status == 404 {
                    return Ok(Confirmed::Verdict(Verdict::Gone(format!(
                        "task {task_sid} is gone"
                    ))));
                }
                Ok(Confirmed::Verdict(guard::judge_left_behind(
                    &list,
                    reservation_sid,
                )))
            }
            Guard::Unattended {
                workspace_sid,
                conversation_sid,
                interaction,
                except_tasks,
                own_park,
            } => {
                unattended(
                    client,
                    workspace_sid,
                    conversation_sid,
                    interaction.as_ref(),
                    except_tasks,
                    own_park.as_deref(),
                )
                .await
            }
        }
    })
}

async fn unattended(
    client: &TwilioClient,
    workspace_sid: &str,
    conversation_sid: &str,
    interaction: Option<&(String, String)>,
    except_tasks: &[String],
    own_park: Option<&str>,
) -> Result<Confirmed, TransportError> {
    let reads = guard::conversation_reads(conversation_sid, interaction);
    let (status, resource) = answer!(read_one(client, &reads.resource).await?);
    if status == 404 {
        return Ok(Confirmed::Verdict(Verdict::Gone("already_closed".into())));
    }
    let mut answers = ConversationAnswers {
        resource,
        ..ConversationAnswers::default()
    };
    // Each read can settle it: stop at the first that does.
    let judged = |answers: &ConversationAnswers| match guard::judge_unattended(
        answers,
        except_tasks,
        own_park,
    ) {
        Verdict::Proceed => None,
        other => Some(other),
    };
    if let Some(verdict) = judged(&answers) {
        return Ok(Confirmed::Verdict(verdict));
    }
    answers.participants = answer!(read_list(client, &reads.participants).await?).1;
    if let Some(verdict) = judged(&answers) {
        return Ok(Confirmed::Verdict(verdict));
    }
    answers.live_tasks = answer!(
        read_list(
            client,
            &guard::live_tasks_read(workspace_sid, conversation_sid, interaction)
        )
        .await?
    )
    .1;
    if let Some(verdict) = judged(&answers) {
        return Ok(Confirmed::Verdict(verdict));
    }
    answers.webhooks = answer!(read_list(client, &reads.webhooks).await?).1;
    answers.conversation = match &reads.conversation {
        Some(own) => answer!(read_one(client, own).await?).1,
        None => answers.resource.clone(),
    };
    if let Some(verdict) = judged(&answers) {
        return Ok(Confirmed::Verdict(verdict));
    }
    if let Some(invites) = &reads.invites {
        // Invites whose tasks the list did not show (their attributes may name neither the
        // conversation nor the channel): the newest few, fetched one by one.
        let listed: Vec<String> = guard::listed_tasks(&answers.live_tasks)
            .into_iter()
            .map(|(sid, _)| sid)
            .collect();
        let invited = guard::invite_tasks(&answer!(read_list(client, invites).await?).1);
        let unseen: Vec<&String> = invited
            .iter()
            .rev()
            .filter(|sid| !listed.contains(sid) && !except_tasks.contains(sid))
            .take(guard::INVITES_CHECKED)
            .collect();
        for sid in unseen {
            let (status, task) =
                answer!(read_one(client, &guard::task_read(workspace_sid, sid)).await?);
            if status == 404 {
                continue;
            }
            if let Some(current) = task.get("assignment_status").and_then(Value::as_str) {
                answers
                    .live_invite_tasks
                    .push((sid.clone(), current.to_owned()));
            }
        }
    }
    Ok(Confirmed::Verdict(guard::judge_unattended(
        &answers,
        except_tasks,
        own_park,
    )))
}
