//! `pulsebus consumers`: a topic's durable consumers.

use clap::Args;
use serde_json::json;

use super::output::{Output, OutputArgs, Table, rfc3339};
use super::{Client, ClientError, Connection};
use crate::proto::pulsebus::v1 as pb;

/// List a topic's durable consumers with their lag.
#[derive(Debug, Args)]
pub struct Consumers {
    /// The topic.
    pub topic: String,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Consumers {
    /// A table (or "no consumers on topic X"), or one JSON object per consumer.
    pub async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let consumers = list_consumers(&mut client, &self.topic).await?;
        let mut table = Table::new([
            "CONSUMER",
            "COMMITTED",
            "LAG",
            "IN FLIGHT",
            "ATTACHED",
            "UPDATED",
        ]);
        let mut rows = Vec::new();
        for c in consumers {
            let updated = rfc3339(c.updated_at.as_ref());
            table.push([
                c.name.clone(),
                c.committed_offset.to_string(),
                c.lag.to_string(),
                c.in_flight.to_string(),
                if c.attached { "yes" } else { "no" }.to_owned(),
                updated.clone(),
            ]);
            rows.push(json!({
                "consumer": c.name, "committed_offset": c.committed_offset, "lag": c.lag,
                "attached": c.attached, "in_flight": c.in_flight, "updated_at": updated,
            }));
        }
        let empty = format!("no consumers on topic {}", self.topic);
        Output::from(self.output).rows(table, &rows, &empty)
    }
}

/// Every consumer of `topic`, page by page.
pub async fn list_consumers(
    client: &mut Client,
    topic: &str,
) -> Result<Vec<pb::ConsumerInfo>, ClientError> {
    let mut page_token = String::new();
    let mut consumers = Vec::new();
    loop {
        let request = client.request(pb::ListConsumersRequest {
            topic: topic.to_owned(),
            page_size: 0,
            page_token,
        });
        let reply = client.bus.list_consumers(request).await?.into_inner();
        consumers.extend(reply.consumers);
        if reply.next_page_token.is_empty() {
            return Ok(consumers);
        }
        page_token = reply.next_page_token;
    }
}
