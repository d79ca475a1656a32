//! `pulsebus topics`: every topic with its head offset.

use clap::Args;
use serde_json::json;

use super::output::{Output, OutputArgs, Table, rfc3339};
use super::{Client, ClientError, Connection};
use crate::proto::pulsebus::v1 as pb;

/// List topics with their head offsets.
#[derive(Debug, Args)]
pub struct Topics {
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Topics {
    /// A table, or `{"topic", "head_offset", "event_count", "created_at"}` per topic.
    pub async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let topics = list_topics(&mut client).await?;
        let mut table = Table::new(["TOPIC", "HEAD", "EVENTS", "CREATED"]);
        let mut rows = Vec::new();
        for t in topics {
            let created = rfc3339(t.created_at.as_ref());
            table.push([
                t.name.clone(),
                t.head_offset.to_string(),
                t.event_count.to_string(),
                created.clone(),
            ]);
            rows.push(json!({"topic": t.name, "head_offset": t.head_offset, "event_count": t.event_count, "created_at": created}));
        }
        Output::from(self.output).rows(table, &rows, "no topics")
    }
}

/// Every topic, page by page.
pub async fn list_topics(client: &mut Client) -> Result<Vec<pb::TopicInfo>, ClientError> {
    let mut page_token = String::new();
    let mut topics = Vec::new();
    loop {
        let request = client.request(pb::ListTopicsRequest {
            page_size: 0,
            page_token,
        });
        let reply = client.bus.list_topics(request).await?.into_inner();
        topics.extend(reply.topics);
        if reply.next_page_token.is_empty() {
            return Ok(topics);
        }
        page_token = reply.next_page_token;
    }
}
