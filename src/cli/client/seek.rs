//! `pulsebus seek`: move a consumer.

use clap::Args;
use serde_json::json;

use super::output::{Output, OutputArgs};
use super::position::Position;
use super::{Client, ClientError, Connection};
use crate::proto::pulsebus::v1 as pb;

/// Move a consumer (replay or skip): to earliest, latest, an offset or a time.
#[derive(Debug, Args)]
pub struct Seek {
    /// The topic.
    pub topic: String,
    /// The consumer.
    pub consumer: String,
    /// Where its next record comes from: earliest, latest, OFFSET, or an RFC 3339 time
    /// (the first event appended at or after it).
    pub to: Position,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Seek {
    /// Prints the committed offset and seek epoch after the move.
    pub async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let request = client.request(pb::SeekRequest {
            topic: self.topic,
            consumer: self.consumer,
            start: Some(self.to.into()),
        });
        let reply = client.bus.seek(request).await?.into_inner();
        Output::from(self.output).object(
            &json!({"committed_offset": reply.committed_offset, "seek_epoch": reply.seek_epoch}),
        )
    }
}
