//! Helpers of the TaskRouter callback tests: a stand-in whose callbacks go to a receiver, a
//! task created over REST, the event types of deliveries.
#![allow(dead_code)]

use super::receiver::Receiver;
use super::Client;
use twilio_standin::{DeliveredCallback, StandIn, StandInConfig};

pub async fn standin(config: StandInConfig, receiver: &Receiver) -> (StandIn, Client) {
    let twilio = StandIn::start(config).await;
    twilio.set_callback_url(Some(receiver.url.clone()));
    let client = Client::new(&twilio);
    (twilio, client)
}

pub async fn create_task(twilio: &StandIn, client: &Client, attributes: &str) -> String {
    let r = client
        .post(
            &format!("{}/Tasks", client.ws(twilio)),
            &[("Attributes", attributes)],
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.str("sid").to_owned()
}

pub fn types(callbacks: &[DeliveredCallback]) -> Vec<&str> {
    callbacks
        .iter()
        .map(DeliveredCallback::event_type)
        .collect()
}
