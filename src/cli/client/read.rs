//! `pulsebus read`: records of a topic's log, page by page.

use clap::Args;

use super::output::{Output, OutputArgs, Progress, record_json, record_line};
use super::{Client, ClientError, Connection};
use crate::proto::pulsebus::v1 as pb;

/// The largest page the server returns.
const PAGE: u32 = 1000;

/// Print records of a topic's log, from an offset on.
#[derive(Debug, Args)]
pub struct Read {
    /// The topic.
    pub topic: String,
    /// First offset (0: the topic's first retained offset).
    #[arg(long, default_value_t = 0)]
    pub from: i64,
    /// Most records (read in pages of up to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    /// Only events of this type (repeat for several).
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Read {
    /// Prints one line per record, with a progress line on a terminal's stderr; stops
    /// quietly if stdout is closed.
    pub async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let output = Output::from(self.output);
        let mut progress = Progress::on_terminal();
        let (mut from, mut printed) = (self.from, 0u64);
        while printed < self.limit {
            let want = u32::try_from(self.limit - printed)
                .unwrap_or(PAGE)
                .min(PAGE);
            let request = client.request(pb::ReadRequest {
                topic: self.topic.clone(),
                from_offset: from,
                limit: want,
                types: self.types.clone(),
            });
            let reply = client.bus.read(request).await?.into_inner();
            let Some(last) = reply.records.last().map(|r| r.offset) else {
                break;
            };
            for record in reply.records {
                if output.json {
                    output.json_line(&record_json(record))?;
                } else {
                    output.line(&record_line(record))?;
                }
                printed += 1;
            }
            let left = u64::try_from(reply.head_offset - last).unwrap_or(0);
            progress.update(printed, Some(printed + left.min(self.limit - printed)));
            if last >= reply.head_offset {
                break;
            }
            from = last + 1;
        }
        progress.finish();
        Ok(())
    }
}
