//! `pulsebus publish`: one event, as JSON or text, or as a protobuf message built from
//! JSON when `--type` names a message the descriptor set knows.

use clap::Args;
use serde_json::{Value, json};

use super::encode::proto_payload;
use super::output::{Output, OutputArgs, Table, rfc3339};
use super::{Client, ClientError, Connection};
use crate::proto::pulsebus::v1 as pb;

/// Publish one event with a JSON (or plain text) payload; with --type naming a known
/// protobuf message (edupulse.events.v1.LessonPublished), the JSON is encoded as it.
#[derive(Debug, Args)]
pub struct Publish {
    /// The topic.
    pub topic: String,
    /// The event type, e.g. lesson.published or edupulse.events.v1.LessonPublished.
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
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Publish {
    /// Prints the stored event's offset (`{"id", "offset", "duplicate", "appended_at"}`).
    pub async fn run(self) -> Result<(), ClientError> {
        let event = self.event()?;
        let mut client = Client::connect(&self.connection).await?;
        let request = client.request(pb::PublishRequest {
            topic: self.topic.clone(),
            events: vec![event],
        });
        let reply = client.bus.publish(request).await?.into_inner();
        let mut table = Table::new(["ID", "OFFSET", "DUPLICATE", "APPENDED"]);
        let mut rows = Vec::new();
        for r in reply.results {
            let appended = rfc3339(r.appended_at.as_ref());
            table.push([
                r.id.clone(),
                r.offset.to_string(),
                r.duplicate.to_string(),
                appended.clone(),
            ]);
            rows.push(json!({"id": r.id, "offset": r.offset, "duplicate": r.duplicate, "appended_at": appended}));
        }
        Output::from(self.output).rows(table, &rows, "nothing published")
    }

    fn event(&self) -> Result<pb::Event, ClientError> {
        let (content_type, data) = match proto_payload(&self.event_type, &self.data)? {
            Some(any) => ("application/protobuf", pb::event::Data::ProtoData(any)),
            None if serde_json::from_str::<Value>(&self.data).is_ok() => (
                "application/json",
                pb::event::Data::TextData(self.data.clone()),
            ),
            None => ("text/plain", pb::event::Data::TextData(self.data.clone())),
        };
        Ok(pb::Event {
            id: self.id.clone(),
            r#type: self.event_type.clone(),
            subject: self.subject.clone(),
            source: self.source.clone(),
            content_type: content_type.to_owned(),
            data: Some(data),
            ..Default::default()
        })
    }
}
