//! `pulsebus seek`: move a consumer.

use clap::Args;
use serde_json::json;

use super::{Client, ClientError, Connection, print_json};
use crate::proto::pulsebus::v1 as pb;

/// Move a consumer to an offset (replay or skip).
#[derive(Debug, Args)]
pub struct Seek {
    /// The topic.
    pub topic: String,
    /// The consumer.
    pub consumer: String,
    /// The next offset it should receive.
    pub offset: i64,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Seek {
    /// Prints `{"committed_offset"}` after the move.
    pub async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let start = Some(pb::StartPosition {
            position: Some(pb::start_position::Position::Offset(self.offset)),
        });
        let request = client.request(pb::SeekRequest {
            topic: self.topic,
            consumer: self.consumer,
            start,
        });
        let reply = client.bus.seek(request).await?.into_inner();
        print_json(&json!({"committed_offset": reply.committed_offset}))
    }
}
