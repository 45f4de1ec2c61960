//! Twilio's REST paths baton calls, formatted in one place (TaskRouter, Conversations, Flex
//! Interactions). Each names the resource as Twilio's API reference does.

/// `/v1/Workspaces/{WS}`.
pub fn workspace(ws: &str) -> String {
    format!("/v1/Workspaces/{ws}")
}

/// `/v1/Workspaces/{WS}/Tasks`.
pub fn tasks(ws: &str) -> String {
    format!("/v1/Workspaces/{ws}/Tasks")
}

/// `/v1/Workspaces/{WS}/Tasks/{WT}`.
pub fn task(ws: &str, task: &str) -> String {
    format!("/v1/Workspaces/{ws}/Tasks/{task}")
}

/// `/v1/Workspaces/{WS}/Tasks/{WT}/Reservations`.
pub fn task_reservations(ws: &str, task: &str) -> String {
    format!("/v1/Workspaces/{ws}/Tasks/{task}/Reservations")
}

/// `/v1/Workspaces/{WS}/Tasks/{WT}/Reservations/{WR}`.
pub fn task_reservation(ws: &str, task: &str, reservation: &str) -> String {
    format!("/v1/Workspaces/{ws}/Tasks/{task}/Reservations/{reservation}")
}

/// `/v1/Workspaces/{WS}/Workers/{WK}`.
pub fn worker(ws: &str, worker: &str) -> String {
    format!("/v1/Workspaces/{ws}/Workers/{worker}")
}

/// `/v1/Workspaces/{WS}/TaskQueues/{WQ}`.
pub fn task_queue(ws: &str, queue: &str) -> String {
    format!("/v1/Workspaces/{ws}/TaskQueues/{queue}")
}

/// `/v1/Workspaces/{WS}/Workflows/{WW}`.
pub fn workflow(ws: &str, workflow: &str) -> String {
    format!("/v1/Workspaces/{ws}/Workflows/{workflow}")
}

/// `/v1/Workspaces/{WS}/Events`.
pub fn events(ws: &str) -> String {
    format!("/v1/Workspaces/{ws}/Events")
}

/// `/v1/Conversations/{CH}`.
pub fn conversation(ch: &str) -> String {
    format!("/v1/Conversations/{ch}")
}

/// `/v1/Conversations/{CH}/Participants`.
pub fn conversation_participants(ch: &str) -> String {
    format!("/v1/Conversations/{ch}/Participants")
}

/// `/v1/Conversations/{CH}/Webhooks`.
pub fn conversation_webhooks(ch: &str) -> String {
    format!("/v1/Conversations/{ch}/Webhooks")
}

/// `/v1/Conversations/{CH}/Webhooks/{WH}`.
pub fn conversation_webhook(ch: &str, webhook: &str) -> String {
    format!("/v1/Conversations/{ch}/Webhooks/{webhook}")
}

/// `/v1/Interactions/{KD}/Channels/{UO}`.
pub fn interaction_channel(kd: &str, uo: &str) -> String {
    format!("/v1/Interactions/{kd}/Channels/{uo}")
}

/// `/v1/Interactions/{KD}/Channels/{UO}/Invites`.
pub fn interaction_channel_invites(kd: &str, uo: &str) -> String {
    format!("/v1/Interactions/{kd}/Channels/{uo}/Invites")
}

/// `/v1/Interactions/{KD}/Channels/{UO}/Participants`.
pub fn interaction_channel_participants(kd: &str, uo: &str) -> String {
    format!("/v1/Interactions/{kd}/Channels/{uo}/Participants")
}

/// `/v1/Interactions/{KD}/Channels/{UO}/Participants/{UT}`.
pub fn interaction_channel_participant(kd: &str, uo: &str, participant: &str) -> String {
    format!("/v1/Interactions/{kd}/Channels/{uo}/Participants/{participant}")
}
