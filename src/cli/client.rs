//! The operator's client commands: talk to a running server the way a service would,
//! and print what comes back as JSON lines (pipe them into `jq`).

use std::error::Error;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::proto::pulsebus::v1 as pb;
use crate::proto::pulsebus::v1::event_bus_client::EventBusClient;

/// Where the server is and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Server URL (https:// for TLS).
    #[arg(
        long,
        env = "PULSEBUS_SERVER",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub server: String,
    /// Bearer token, when the server has --auth-file.
    #[arg(long, env = "PULSEBUS_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// PEM CA to trust for https:// servers (default: the system roots are not used).
    #[arg(long, env = "PULSEBUS_CA", global = true)]
    pub ca: Option<PathBuf>,
}

/// Client commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List topics with their head offsets.
    Topics,
    /// Publish one event with a JSON (or plain text) payload.
    Publish {
        /// The topic.
        topic: String,
        /// The event type, e.g. lesson.published.
        #[arg(long = "type")]
        event_type: String,
        /// The payload: JSON is sent as application/json, anything else as text/plain.
        #[arg(long, default_value = "{}")]
        data: String,
        /// The aggregate the event is about.
        #[arg(long, default_value = "")]
        subject: String,
        /// The producing service.
        #[arg(long, default_value = "pulsebus-cli")]
        source: String,
        /// The event id (a UUID); empty lets the server assign one.
        #[arg(long, default_value = "")]
        id: String,
    },
    /// Print a page of a topic's log.
    Read {
        /// The topic.
        topic: String,
        /// First offset.
        #[arg(long, default_value_t = 1)]
        from: i64,
        /// Most records.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Stream a topic (Ctrl-C to stop); with --consumer, as that durable consumer.
    Tail {
        /// The topic.
        topic: String,
        /// Durable consumer name (empty: ephemeral).
        #[arg(long, default_value = "")]
        consumer: String,
        /// Ack each record after printing it (durable consumers only).
        #[arg(long)]
        ack: bool,
        /// Stop after this many records.
        #[arg(long)]
        count: Option<usize>,
    },
    /// List a topic's durable consumers with their lag.
    Consumers {
        /// The topic.
        topic: String,
    },
    /// Commit a consumer's offset.
    Ack {
        /// The topic.
        topic: String,
        /// The consumer.
        consumer: String,
        /// Everything up to this offset is done.
        offset: i64,
    },
    /// Move a consumer to an offset (replay or skip).
    Seek {
        /// The topic.
        topic: String,
        /// The consumer.
        consumer: String,
        /// The next offset it should receive.
        offset: i64,
    },
}

/// Runs a client command against the server.
pub async fn run(conn: Connection, command: ClientCommand) -> Result<(), Box<dyn Error>> {
    let mut client = Client::connect(conn).await?;
    match command {
        ClientCommand::Topics => client.topics().await,
        ClientCommand::Publish {
            topic,
            event_type,
            data,
            subject,
            source,
            id,
        } => {
            let event = event(event_type, data, subject, source, id);
            client.publish(topic, event).await
        }
        ClientCommand::Read { topic, from, limit } => client.read(topic, from, limit).await,
        ClientCommand::Tail {
            topic,
            consumer,
            ack,
            count,
        } => client.tail(topic, consumer, ack, count).await,
        ClientCommand::Consumers { topic } => client.consumers(topic).await,
        ClientCommand::Ack {
            topic,
            consumer,
            offset,
        } => client.ack(topic, consumer, offset).await,
        ClientCommand::Seek {
            topic,
            consumer,
            offset,
        } => client.seek(topic, consumer, offset).await,
    }
}

fn event(
    event_type: String,
    data: String,
    subject: String,
    source: String,
    id: String,
) -> pb::Event {
    let is_json = serde_json::from_str::<Value>(&data).is_ok();
    pb::Event {
        id,
        r#type: event_type,
        subject,
        source,
        content_type: if is_json {
            "application/json"
        } else {
            "text/plain"
        }
        .to_owned(),
        data: Some(pb::event::Data::TextData(data)),
        ..Default::default()
    }
}

struct Client {
    inner: EventBusClient<Channel>,
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl Client {
    async fn connect(conn: Connection) -> Result<Self, Box<dyn Error>> {
        let mut endpoint = Channel::from_shared(conn.server.clone())?;
        if let Some(ca) = &conn.ca {
            let tls =
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(ca)?));
            endpoint = endpoint.tls_config(tls)?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", conn.server))?;
        let token = conn
            .token
            .map(|t| format!("Bearer {t}").parse())
            .transpose()?;
        Ok(Self {
            inner: EventBusClient::new(channel),
            token,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        request
    }

    async fn topics(&mut self) -> Result<(), Box<dyn Error>> {
        let reply = self
            .inner
            .list_topics(self.request(pb::ListTopicsRequest::default()))
            .await?
            .into_inner();
        for t in reply.topics {
            print_json(
                json!({"topic": t.name, "head_offset": t.head_offset, "event_count": t.event_count}),
            );
        }
        Ok(())
    }

    async fn publish(&mut self, topic: String, event: pb::Event) -> Result<(), Box<dyn Error>> {
        let req = pb::PublishRequest {
            topic,
            events: vec![event],
        };
        let reply = self.inner.publish(self.request(req)).await?.into_inner();
        for r in reply.results {
            print_json(json!({"id": r.id, "offset": r.offset, "duplicate": r.duplicate}));
        }
        Ok(())
    }

    async fn read(&mut self, topic: String, from: i64, limit: u32) -> Result<(), Box<dyn Error>> {
        let req = pb::ReadRequest {
            topic,
            from_offset: from,
            limit,
            types: vec![],
        };
        let reply = self.inner.read(self.request(req)).await?.into_inner();
        reply
            .records
            .into_iter()
            .for_each(|r| print_json(record_json(r)));
        Ok(())
    }

    async fn tail(
        &mut self,
        topic: String,
        consumer: String,
        ack: bool,
        count: Option<usize>,
    ) -> Result<(), Box<dyn Error>> {
        let req = pb::SubscribeRequest {
            topic: topic.clone(),
            consumer: consumer.clone(),
            ..Default::default()
        };
        let mut stream = self.inner.subscribe(self.request(req)).await?.into_inner();
        let mut seen = 0;
        while count.is_none_or(|n| seen < n) {
            let Some(message) = stream.message().await? else {
                break;
            };
            let Some(pb::subscribe_response::Message::Record(record)) = message.message else {
                continue;
            };
            let offset = record.offset;
            print_json(record_json(record));
            seen += 1;
            if ack {
                self.ack_quietly(&topic, &consumer, offset).await?;
            }
        }
        Ok(())
    }

    async fn ack_quietly(
        &mut self,
        topic: &str,
        consumer: &str,
        offset: i64,
    ) -> Result<(), Box<dyn Error>> {
        let req = pb::AckRequest {
            topic: topic.to_owned(),
            consumer: consumer.to_owned(),
            offset,
            seek_epoch: None,
        };
        self.inner.ack(self.request(req)).await?;
        Ok(())
    }

    async fn consumers(&mut self, topic: String) -> Result<(), Box<dyn Error>> {
        let reply = self
            .inner
            .list_consumers(self.request(pb::ListConsumersRequest {
                topic,
                ..Default::default()
            }))
            .await?
            .into_inner();
        for c in reply.consumers {
            print_json(
                json!({"consumer": c.name, "committed_offset": c.committed_offset, "lag": c.lag, "attached": c.attached}),
            );
        }
        Ok(())
    }

    async fn ack(
        &mut self,
        topic: String,
        consumer: String,
        offset: i64,
    ) -> Result<(), Box<dyn Error>> {
        let reply = self
            .inner
            .ack(self.request(pb::AckRequest {
                topic,
                consumer,
                offset,
                seek_epoch: None,
            }))
            .await?
            .into_inner();
        print_json(json!({"committed_offset": reply.committed_offset}));
        Ok(())
    }

    async fn seek(
        &mut self,
        topic: String,
        consumer: String,
        offset: i64,
    ) -> Result<(), Box<dyn Error>> {
        let start = Some(pb::StartPosition {
            position: Some(pb::start_position::Position::Offset(offset)),
        });
        let reply = self
            .inner
            .seek(self.request(pb::SeekRequest {
                topic,
                consumer,
                start,
            }))
            .await?
            .into_inner();
        print_json(json!({"committed_offset": reply.committed_offset}));
        Ok(())
    }
}

fn record_json(r: pb::Record) -> Value {
    let e = r.event.unwrap_or_default();
    let data = match e.data {
        Some(pb::event::Data::TextData(t)) => serde_json::from_str(&t).unwrap_or(Value::String(t)),
        Some(pb::event::Data::BinaryData(b)) => json!({"bytes": b.len()}),
        Some(pb::event::Data::ProtoData(any)) => {
            json!({"type_url": any.type_url, "bytes": any.value.len()})
        }
        None => Value::Null,
    };
    json!({"offset": r.offset, "id": e.id, "type": e.r#type, "subject": e.subject, "source": e.source, "data": data})
}

fn print_json(value: Value) {
    println!("{value}");
}
