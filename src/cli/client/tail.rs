//! `pulsebus tail`: follow a topic, optionally as a durable consumer.

use clap::Args;

use super::{Client, ClientError, Connection, print_json, record_json};
use crate::proto::pulsebus::v1 as pb;

/// Stream a topic (Ctrl-C to stop); with --consumer, as that durable consumer.
#[derive(Debug, Args)]
pub struct Tail {
    /// The topic.
    pub topic: String,
    /// Durable consumer name (empty: ephemeral).
    #[arg(long, default_value = "")]
    pub consumer: String,
    /// Ack each record after printing it (durable consumers only).
    #[arg(long)]
    pub ack: bool,
    /// Stop after this many records.
    #[arg(long)]
    pub count: Option<usize>,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Tail {
    /// Prints records as they come; a record is acked only once it was printed.
    pub async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let request = client.request(pb::SubscribeRequest {
            topic: self.topic.clone(),
            consumer: self.consumer.clone(),
            ..Default::default()
        });
        let mut stream = client.bus.subscribe(request).await?.into_inner();
        let mut seen = 0;
        // The seek epoch the records that follow belong to, so an ack sent after a
        // Seek elsewhere cannot undo it.
        let mut epoch = None;
        while self.count.is_none_or(|n| seen < n) {
            let Some(message) = stream.message().await? else {
                break;
            };
            use pb::subscribe_response::Message;
            let record = match message.message {
                Some(Message::Record(record)) => record,
                Some(Message::Attached(a)) => {
                    epoch = Some(a.seek_epoch);
                    continue;
                }
                Some(Message::Repositioned(r)) => {
                    epoch = Some(r.seek_epoch);
                    continue;
                }
                _ => continue,
            };
            let offset = record.offset;
            print_json(&record_json(record))?;
            seen += 1;
            if self.ack {
                self.ack_quietly(&mut client, offset, epoch).await?;
            }
        }
        Ok(())
    }

    async fn ack_quietly(
        &self,
        client: &mut Client,
        offset: i64,
        seek_epoch: Option<i64>,
    ) -> Result<(), ClientError> {
        let request = client.request(pb::AckRequest {
            topic: self.topic.clone(),
            consumer: self.consumer.clone(),
            offset,
            seek_epoch,
            offsets: vec![],
        });
        client.bus.ack(request).await?;
        Ok(())
    }
}
