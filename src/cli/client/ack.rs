//! `pulsebus ack`: commit a consumer's offset.

use clap::Args;
use serde_json::json;

use super::output::{Output, OutputArgs};
use super::{Client, ClientError, Connection};
use crate::proto::pulsebus::v1 as pb;

/// Commit a consumer's offset.
#[derive(Debug, Args)]
pub struct Ack {
    /// The topic.
    pub topic: String,
    /// The consumer.
    pub consumer: String,
    /// Everything up to this offset is done.
    pub offset: i64,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Ack {
    /// Prints the committed offset (`{"committed_offset"}` with --json).
    pub async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let request = client.request(pb::AckRequest {
            topic: self.topic,
            consumer: self.consumer,
            offset: self.offset,
            seek_epoch: None,
            offsets: vec![],
        });
        let reply = client.bus.ack(request).await?.into_inner();
        Output::from(self.output).object(&json!({"committed_offset": reply.committed_offset}))
    }
}
