//! `pulsebus topic create|describe|update|delete`: one topic and its config (retention
//! by age and count, the largest event), through the topic admin RPCs.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::output::{Output, OutputArgs, rfc3339};
use super::{Client, ClientError, Connection};
use crate::proto::pulsebus::v1 as pb;

/// Manage one topic.
#[derive(Debug, Args)]
pub struct Topic {
    /// What to do with it.
    #[command(subcommand)]
    pub action: TopicAction,
}

/// The flags every topic subcommand takes after its arguments.
#[derive(Debug, Args)]
pub struct Common {
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

/// What to do with a topic.
#[derive(Debug, Subcommand)]
pub enum TopicAction {
    /// Create a topic with a config (admin); ALREADY_EXISTS when it exists.
    Create(Configure),
    /// Show a topic: offsets, event count and config.
    Describe(Named),
    /// Change a topic's config (admin); flags not given keep their value, 0 removes a
    /// limit.
    Update(Configure),
    /// Delete a topic with its events and consumers (admin).
    Delete(Delete),
}

/// A topic name.
#[derive(Debug, Args)]
pub struct Named {
    /// The topic.
    pub name: String,
    /// Output and connection flags.
    #[command(flatten)]
    pub common: Common,
}

/// A topic name and the config flags.
#[derive(Debug, Args)]
pub struct Configure {
    /// The topic.
    pub name: String,
    /// Remove events older than this (e.g. 7d, 12h; 0 for no age limit).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub retention_age: Option<Duration>,
    /// Keep at most this many of the newest events (0 for no count limit).
    #[arg(long)]
    pub retention_events: Option<i64>,
    /// The largest event the topic accepts, in bytes (0: the server's limit).
    #[arg(long)]
    pub max_event_bytes: Option<u32>,
    /// Output and connection flags.
    #[command(flatten)]
    pub common: Common,
}

/// A topic to delete.
#[derive(Debug, Args)]
pub struct Delete {
    /// The topic.
    pub name: String,
    /// Delete even while subscribers are attached (their streams end).
    #[arg(long)]
    pub force: bool,
    /// Output and connection flags.
    #[command(flatten)]
    pub common: Common,
}

impl Configure {
    fn config(&self) -> pb::TopicConfig {
        pb::TopicConfig {
            retention_age: self.retention_age.map(|d| prost_types::Duration {
                seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(d.subsec_nanos()).expect("below 10^9"),
            }),
            retention_events: self.retention_events,
            max_event_bytes: self.max_event_bytes,
        }
    }
}

impl Topic {
    /// The output and connection flags of the action.
    fn common(&self) -> &Common {
        match &self.action {
            TopicAction::Create(c) | TopicAction::Update(c) => &c.common,
            TopicAction::Describe(n) => &n.common,
            TopicAction::Delete(d) => &d.common,
        }
    }

    /// The connection flags of the action.
    pub fn connection_mut(&mut self) -> &mut Connection {
        match &mut self.action {
            TopicAction::Create(c) | TopicAction::Update(c) => &mut c.common.connection,
            TopicAction::Describe(n) => &mut n.common.connection,
            TopicAction::Delete(d) => &mut d.common.connection,
        }
    }

    /// Runs the action and prints the topic (or what a delete removed).
    pub async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.common().connection).await?;
        let output = Output::from(self.common().output);
        let info = match self.action {
            TopicAction::Create(c) => {
                let request = client.request(pb::CreateTopicRequest {
                    config: Some(c.config()),
                    name: c.name,
                });
                client.bus.create_topic(request).await?.into_inner()
            }
            TopicAction::Describe(n) => {
                let request = client.request(pb::GetTopicRequest { name: n.name });
                client.bus.get_topic(request).await?.into_inner()
            }
            TopicAction::Update(c) => {
                let request = client.request(pb::UpdateTopicRequest {
                    config: Some(c.config()),
                    name: c.name,
                });
                client.bus.update_topic(request).await?.into_inner()
            }
            TopicAction::Delete(d) => {
                let request = client.request(pb::DeleteTopicRequest {
                    name: d.name.clone(),
                    force: d.force,
                });
                let reply = client.bus.delete_topic(request).await?.into_inner();
                return output.object(&json!({
                    "topic": d.name, "deleted": true, "events_deleted": reply.events_deleted,
                    "consumers_deleted": reply.consumers_deleted,
                }));
            }
        };
        output.object(&topic_json(info))
    }
}

/// A topic with its config; limits that are not set show as null (`-` in text).
fn topic_json(t: pb::TopicInfo) -> Value {
    let config = t.config.unwrap_or_default();
    let age = config.retention_age.and_then(|d| {
        let d = Duration::new(u64::try_from(d.seconds).ok()?, u32::try_from(d.nanos).ok()?);
        (!d.is_zero()).then(|| humantime::format_duration(d).to_string())
    });
    json!({
        "topic": t.name,
        "head_offset": t.head_offset,
        "first_offset": t.first_offset,
        "event_count": t.event_count,
        "created_at": rfc3339(t.created_at.as_ref()),
        "retention_age": age,
        "retention_events": config.retention_events.filter(|n| *n > 0),
        "max_event_bytes": config.max_event_bytes.filter(|n| *n > 0),
    })
}
