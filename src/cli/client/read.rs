//! `pulsebus read`: a page of a topic's log.

use clap::Args;

use super::{Client, ClientError, Connection, print_json, record_json};
use crate::proto::pulsebus::v1 as pb;

/// Print a page of a topic's log.
#[derive(Debug, Args)]
pub struct Read {
    /// The topic.
    pub topic: String,
    /// First offset.
    #[arg(long, default_value_t = 1)]
    pub from: i64,
    /// Most records.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Read {
    /// Prints one line per record; stops quietly if stdout is closed.
    pub async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let request = client.request(pb::ReadRequest {
            topic: self.topic,
            from_offset: self.from,
            limit: self.limit,
            types: vec![],
        });
        let reply = client.bus.read(request).await?.into_inner();
        for record in reply.records {
            print_json(&record_json(record))?;
        }
        Ok(())
    }
}
