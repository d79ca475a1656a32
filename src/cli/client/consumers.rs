//! `pulsebus consumers`: a topic's durable consumers.

use clap::Args;
use serde_json::json;

use super::{Client, ClientError, Connection, print_json};
use crate::proto::pulsebus::v1 as pb;

/// List a topic's durable consumers with their lag.
#[derive(Debug, Args)]
pub struct Consumers {
    /// The topic.
    pub topic: String,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Consumers {
    /// Prints `{"consumer", "committed_offset", "lag", "attached"}` per consumer.
    pub async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let mut page_token = String::new();
        loop {
            let request = client.request(pb::ListConsumersRequest {
                topic: self.topic.clone(),
                page_size: 0,
                page_token,
            });
            let reply = client.bus.list_consumers(request).await?.into_inner();
            for c in reply.consumers {
                print_json(
                    &json!({"consumer": c.name, "committed_offset": c.committed_offset, "lag": c.lag, "attached": c.attached}),
                )?;
            }
            if reply.next_page_token.is_empty() {
                return Ok(());
            }
            page_token = reply.next_page_token;
        }
    }
}
