//! The systems under test, behind one small interface the scenarios drive: make a
//! publisher, publish a batch durably, open a live (ephemeral) or durable subscription,
//! acknowledge. Dispatch is by enum: each adapter lives in its own module.

pub mod nats;
pub mod postgres;
pub mod pulsebus;

use anyhow::Result;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::procs::ProcGroup;

/// Which system a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum SystemKind {
    /// pulsebus over gRPC (the release server binary, on the harness's PostgreSQL).
    Pulsebus,
    /// The same rows written with the best SQL, taking the topic-row lock for
    /// gapless offsets in commit order (the guarantee pulsebus gives).
    Postgres,
    /// The same rows, offsets from a sequence, no topic lock (publish scenarios only).
    PostgresNolock,
    /// NATS JetStream, file storage, fsync before every ack (sync_interval: always).
    NatsSync,
    /// NATS JetStream, file storage, default lazy fsync: acked messages can be lost
    /// on a machine crash.
    NatsLazy,
}

impl SystemKind {
    pub const ALL: [Self; 5] = [
        Self::Pulsebus,
        Self::Postgres,
        Self::PostgresNolock,
        Self::NatsSync,
        Self::NatsLazy,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Pulsebus => "pulsebus",
            Self::Postgres => "postgres",
            Self::PostgresNolock => "postgres-nolock",
            Self::NatsSync => "nats-sync",
            Self::NatsLazy => "nats-lazy",
        }
    }
}

/// A topic of one run: each run has fresh topics so runs never see each other's data.
#[derive(Debug, Clone)]
pub struct Topic {
    /// The run (a NATS stream per run).
    pub run: String,
    /// The topic within the run.
    pub name: String,
}

impl Topic {
    /// The pulsebus / PostgreSQL topic name.
    pub fn flat(&self) -> String {
        format!("{}_{}", self.run, self.name)
    }

    /// The NATS subject.
    pub fn subject(&self) -> String {
        format!("{}.{}", self.run, self.name)
    }
}

/// How to reach a running system.
#[derive(Debug, Clone)]
pub enum Target {
    Pulsebus { addr: String },
    Postgres { url: String, lock: bool },
    Nats { url: String },
}

/// A system ready for load, with the processes whose cost we count.
pub struct System {
    pub kind: SystemKind,
    pub target: Target,
    /// The server's own process(es): pulsebus, the PostgreSQL cluster, nats-server
    /// (None for an external NATS_URL server).
    pub server: Option<ProcGroup>,
    /// The PostgreSQL cluster behind pulsebus (counted separately).
    pub backing_pg: Option<ProcGroup>,
    /// Index of the server process in the environment (for its log and liveness).
    pub proc_index: Option<usize>,
}

/// One record received by a subscriber, with what acknowledging it takes.
pub struct Delivery {
    pub payload: Bytes,
    pub token: AckToken,
}

/// What to acknowledge to move a consumer past a delivery.
#[derive(Clone)]
pub enum AckToken {
    /// A log offset (pulsebus, PostgreSQL).
    Offset(i64),
    /// A JetStream message (ack policy "all": acking it acks everything before).
    Nats(Box<async_nats::jetstream::Message>),
}

/// A subscription's records, in order.
pub type Deliveries = BoxStream<'static, Result<Delivery>>;

/// A connection that publishes; clone it to publish concurrently on one connection
/// (pulsebus, NATS) or pool (PostgreSQL).
#[derive(Clone)]
pub enum Publisher {
    Pulsebus(pulsebus::PbPublisher),
    Postgres(postgres::PgPublisher),
    Nats(nats::NatsPublisher),
}

impl Publisher {
    /// Publishes `payloads` to `topic` and returns once all are durably acknowledged.
    pub async fn publish(&mut self, topic: &Topic, payloads: Vec<Bytes>) -> Result<()> {
        match self {
            Self::Pulsebus(p) => p.publish(topic, payloads).await,
            Self::Postgres(p) => p.publish(topic, payloads).await,
            Self::Nats(p) => p.publish(topic, payloads).await,
        }
    }
}

/// Acknowledges a durable consumer's progress.
pub enum Acker {
    Pulsebus(pulsebus::PbAcker),
    Postgres(postgres::PgAcker),
    Nats,
}

impl Acker {
    /// Commits everything up to and including `token`; returns once committed.
    pub async fn ack(&mut self, token: AckToken) -> Result<()> {
        match (self, token) {
            (Self::Pulsebus(a), AckToken::Offset(o)) => a.ack(o).await,
            (Self::Postgres(a), AckToken::Offset(o)) => a.ack(o).await,
            (Self::Nats, AckToken::Nats(m)) => m.double_ack().await.map_err(anyhow::Error::msg),
            _ => anyhow::bail!("ack token from another system"),
        }
    }
}

/// A record handed to a work-queue subscriber.
pub struct WqDelivery {
    /// The record's position: its offset (pulsebus) or stream sequence (NATS), 1, 2, ...
    pub id: u64,
    pub payload: Bytes,
    /// 1 on the first delivery, then 2, 3, ... on redeliveries.
    pub attempt: u32,
    pub token: WqToken,
}

/// What settling a work-queue record takes.
pub enum WqToken {
    Offset(i64),
    Nats(Box<async_nats::jetstream::Message>),
}

/// A work-queue subscription's records.
pub type WqDeliveries = BoxStream<'static, Result<WqDelivery>>;

/// Settles work-queue records; cheap to clone (it shares the subscriber's connection).
#[derive(Clone)]
pub enum WqAcker {
    Pulsebus(std::sync::Arc<pulsebus::WqAcker>),
    /// Every message acked with its own request (`double_ack`), all at once.
    Nats,
}

impl WqAcker {
    /// Settles every record of `tokens` (handed to this subscriber); returns once the
    /// server confirmed.
    pub async fn settle(&self, tokens: Vec<WqToken>) -> Result<()> {
        match self {
            Self::Pulsebus(a) => a.settle(tokens).await,
            Self::Nats => {
                let acks = tokens.into_iter().map(|t| async move {
                    match t {
                        WqToken::Nats(m) => m.double_ack().await.map_err(anyhow::Error::msg),
                        WqToken::Offset(_) => anyhow::bail!("ack token from another system"),
                    }
                });
                futures::future::try_join_all(acks).await?;
                Ok(())
            }
        }
    }
}

/// Options of a publisher connection.
#[derive(Debug, Clone, Copy)]
pub struct PublisherOpts {
    /// Connections (PostgreSQL pool size; gRPC and NATS multiplex one connection).
    pub connections: u32,
    /// PostgreSQL only: ring a NOTIFY doorbell in each transaction (for live readers).
    pub notify: bool,
}

impl System {
    pub fn label(&self) -> &'static str {
        self.kind.label()
    }

    /// Creates the run's topics (a stream for NATS, topic rows for PostgreSQL).
    pub async fn prepare(&self, run: &str, topics: &[Topic]) -> Result<()> {
        match &self.target {
            Target::Pulsebus { .. } => Ok(()),
            Target::Postgres { url, .. } => postgres::prepare(url, topics).await,
            Target::Nats { url } => nats::prepare(url, run).await,
        }
    }

    /// Frees what the run stored where that is cheap (the NATS stream).
    pub async fn finish(&self, run: &str) -> Result<()> {
        match &self.target {
            Target::Nats { url } => nats::delete_stream(url, run).await,
            _ => Ok(()),
        }
    }

    /// A new publisher with its own connection(s).
    pub async fn publisher(&self, opts: PublisherOpts) -> Result<Publisher> {
        Ok(match &self.target {
            Target::Pulsebus { addr } => {
                Publisher::Pulsebus(pulsebus::PbPublisher::connect(addr).await?)
            }
            Target::Postgres { url, lock } => {
                Publisher::Postgres(postgres::PgPublisher::connect(url, *lock, opts).await?)
            }
            Target::Nats { url } => Publisher::Nats(nats::NatsPublisher::connect(url).await?),
        })
    }

    /// An ephemeral subscription to `topic` delivering only what is published after it
    /// returns.
    /// A live subscriber of `topic` from now on; pulsebus's in batches of up to
    /// `batch_records` (0: one record per message).
    pub async fn live(&self, topic: &Topic, batch_records: u32) -> Result<Deliveries> {
        match &self.target {
            Target::Pulsebus { addr } => pulsebus::live(addr, topic, batch_records).await,
            Target::Postgres { url, .. } => postgres::live(url, topic).await,
            Target::Nats { url } => nats::live(url, topic).await,
        }
    }

    /// A durable consumer `name` of `topic` from the beginning, with at most
    /// `max_in_flight` unacknowledged records where the system has such a limit, and
    /// records in batches of up to `batch_records` where it has them (pulsebus; 0:
    /// one record per message).
    pub async fn durable(
        &self,
        topic: &Topic,
        name: &str,
        max_in_flight: u32,
        batch_records: u32,
    ) -> Result<(Deliveries, Acker)> {
        match &self.target {
            Target::Pulsebus { addr } => {
                pulsebus::durable(addr, topic, name, max_in_flight, batch_records).await
            }
            Target::Postgres { url, .. } => postgres::durable(url, topic, name).await,
            Target::Nats { url } => nats::durable(url, topic, name, max_in_flight).await,
        }
    }
}
