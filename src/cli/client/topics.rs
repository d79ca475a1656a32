//! `pulsebus topics`: one line per topic.

use clap::Args;
use serde_json::json;

use super::{Client, ClientError, Connection, print_json};
use crate::proto::pulsebus::v1 as pb;

/// List topics with their head offsets.
#[derive(Debug, Args)]
pub struct Topics {
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Topics {
    /// Prints `{"topic", "head_offset", "event_count"}` per topic.
    pub async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let mut page_token = String::new();
        loop {
            let request = client.request(pb::ListTopicsRequest {
                page_size: 0,
                page_token,
            });
            let reply = client.bus.list_topics(request).await?.into_inner();
            for t in reply.topics {
                print_json(
                    &json!({"topic": t.name, "head_offset": t.head_offset, "event_count": t.event_count}),
                )?;
            }
            if reply.next_page_token.is_empty() {
                return Ok(());
            }
            page_token = reply.next_page_token;
        }
    }
}
