//! `pulsebus consumer delete`: remove a durable consumer and its offset.

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{Output, OutputArgs};
use super::{Client, ClientError, Connection};
use crate::proto::pulsebus::v1 as pb;

/// Manage one durable consumer.
#[derive(Debug, Args)]
pub struct Consumer {
    /// What to do with it.
    #[command(subcommand)]
    pub action: ConsumerAction,
}

/// What to do with a consumer.
#[derive(Debug, Subcommand)]
pub enum ConsumerAction {
    /// Delete a consumer: its offset and unacked records are forgotten.
    Delete(DeleteConsumer),
}

/// Delete a consumer.
#[derive(Debug, Args)]
pub struct DeleteConsumer {
    /// The topic.
    pub topic: String,
    /// The consumer.
    pub consumer: String,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Consumer {
    /// The connection flags of the action.
    pub fn connection_mut(&mut self) -> &mut Connection {
        match &mut self.action {
            ConsumerAction::Delete(d) => &mut d.connection,
        }
    }

    /// Runs the action.
    pub async fn run(self) -> Result<(), ClientError> {
        match self.action {
            ConsumerAction::Delete(d) => d.run().await,
        }
    }
}

impl DeleteConsumer {
    /// Prints what was deleted; NOT_FOUND when there is no such consumer.
    async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let request = client.request(pb::DeleteConsumerRequest {
            topic: self.topic.clone(),
            consumer: self.consumer.clone(),
        });
        client.bus.delete_consumer(request).await?;
        let output = Output::from(self.output);
        if output.json {
            output.json_line(
                &json!({"topic": self.topic, "consumer": self.consumer, "deleted": true}),
            )
        } else {
            output.line(&format!(
                "deleted consumer {} on topic {}",
                self.consumer, self.topic
            ))
        }
    }
}
