//! `pulsebus publish`: one event.

use clap::Args;
use serde_json::{Value, json};

use super::{Client, ClientError, Connection, print_json};
use crate::proto::pulsebus::v1 as pb;

/// Publish one event with a JSON (or plain text) payload.
#[derive(Debug, Args)]
pub struct Publish {
    /// The topic.
    pub topic: String,
    /// The event type, e.g. lesson.published.
    #[arg(long = "type")]
    pub event_type: String,
    /// The payload: JSON is sent as application/json, anything else as text/plain.
    #[arg(long, default_value = "{}")]
    pub data: String,
    /// The aggregate the event is about.
    #[arg(long, default_value = "")]
    pub subject: String,
    /// The producing service.
    #[arg(long, default_value = "pulsebus-cli")]
    pub source: String,
    /// The event id (a UUID); empty lets the server assign one.
    #[arg(long, default_value = "")]
    pub id: String,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Publish {
    /// Prints `{"id", "offset", "duplicate"}` for the stored event.
    pub async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let request = client.request(pb::PublishRequest {
            topic: self.topic.clone(),
            events: vec![self.event()],
        });
        let reply = client.bus.publish(request).await?.into_inner();
        for r in reply.results {
            print_json(&json!({"id": r.id, "offset": r.offset, "duplicate": r.duplicate}))?;
        }
        Ok(())
    }

    fn event(self) -> pb::Event {
        let is_json = serde_json::from_str::<Value>(&self.data).is_ok();
        let content_type = if is_json {
            "application/json"
        } else {
            "text/plain"
        };
        pb::Event {
            id: self.id,
            r#type: self.event_type,
            subject: self.subject,
            source: self.source,
            content_type: content_type.to_owned(),
            data: Some(pb::event::Data::TextData(self.data)),
            ..Default::default()
        }
    }
}
