//! `pulsebus tail`: follow a topic, optionally as a durable consumer, reconnecting when
//! the server goes away: a durable consumer resumes from its server-side offset, an
//! ephemeral tail from the offset after the last one it printed.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use clap::Args;

use super::output::{Output, OutputArgs, record_json, record_line};
use super::position::Position;
use super::{Client, ClientError, Connection};
use crate::proto::pulsebus::v1 as pb;
use pb::subscribe_response::Message;

/// The back-off between reconnection attempts: from 100 ms, doubling, at most 5 s,
/// with jitter so many tails do not come back at once; forever (Ctrl-C stops).
const BACKOFF: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(100))
    .with_max_delay(Duration::from_secs(5))
    .with_jitter()
    .without_max_times();

/// Stream a topic (Ctrl-C to stop); with --consumer, as that durable consumer.
#[derive(Debug, Args)]
pub struct Tail {
    /// The topic.
    pub topic: String,
    /// Durable consumer name (without it: an ephemeral tail, no offset kept).
    #[arg(long)]
    pub consumer: Option<String>,
    /// Ack each record after printing it (needs --consumer).
    #[arg(long)]
    pub ack: bool,
    /// Where to start: earliest, latest, OFFSET or an RFC 3339 time (for a consumer,
    /// only while it has no committed offset). Default: earliest.
    #[arg(long)]
    pub from: Option<Position>,
    /// Only events of this type (repeat for several).
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// Stop after this many records.
    #[arg(long)]
    pub count: Option<u64>,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

/// What the tail has done so far, across reconnections.
#[derive(Debug, Default)]
struct Progress {
    printed: u64,
    last_offset: Option<i64>,
    /// The last record printed, sent again as `last_seen` on a resubscribe (a log that
    /// diverged under us then fails with LOG_DIVERGED).
    last_seen: Option<pb::LastSeen>,
    /// Whether a subscription was ever attached: failing before that is reported,
    /// after it is ridden out.
    attached_once: bool,
    /// Whether a subscription attached since the last failure (the back-off restarts).
    attached_now: bool,
}

impl Tail {
    /// Prints records as they come; a record is acked only once it was printed.
    pub async fn run(self) -> Result<(), ClientError> {
        if self.ack && self.consumer.is_none() {
            return Err(ClientError::Usage(
                "--ack acks for a durable consumer: give --consumer NAME too".to_owned(),
            ));
        }
        let mut progress = Progress::default();
        let mut backoff = BACKOFF.build();
        loop {
            match self.follow(&mut progress).await {
                Ok(()) => return Ok(()),
                Err(e) if progress.attached_once && can_resume(&e) => {
                    if std::mem::take(&mut progress.attached_now) {
                        backoff = BACKOFF.build();
                    }
                    let delay = backoff.next().unwrap_or(Duration::from_secs(5));
                    eprintln!(
                        "pulsebus: {}; reconnecting in {}",
                        e.to_string().lines().next().unwrap_or_default(),
                        humantime::format_duration(delay)
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One subscription, until `--count` records are printed (`Ok`) or it fails.
    async fn follow(&self, progress: &mut Progress) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let request = client.request(self.subscribe_request(progress));
        let mut stream = client.bus.subscribe(request).await?.into_inner();
        let output = Output::from(self.output);
        // The seek epoch the records that follow belong to, so an ack sent after a
        // Seek elsewhere cannot undo it.
        let mut epoch = None;
        while self.count.is_none_or(|n| progress.printed < n) {
            let Some(message) = stream.message().await? else {
                return Err(tonic::Status::unavailable("the server ended the stream").into());
            };
            let record = match message.message {
                Some(Message::Record(record)) => record,
                Some(Message::Attached(a)) => {
                    progress.attached_once = true;
                    progress.attached_now = true;
                    epoch = Some(a.seek_epoch);
                    continue;
                }
                Some(Message::Repositioned(r)) => {
                    epoch = Some(r.seek_epoch);
                    continue;
                }
                _ => continue,
            };
            progress.attached_once = true;
            progress.attached_now = true;
            let offset = record.offset;
            let seen = record.event.as_ref().map(|e| pb::LastSeen {
                offset,
                event_id: e.id.clone(),
            });
            if output.json {
                output.json_line(&record_json(record))?;
            } else {
                output.line(&record_line(record))?;
            }
            progress.printed += 1;
            progress.last_offset = Some(offset);
            progress.last_seen = seen.or(progress.last_seen.take());
            if self.ack {
                self.ack_one(&mut client, offset, epoch).await?;
            }
        }
        Ok(())
    }

    /// The subscription: a durable consumer resumes where the server says; an
    /// ephemeral tail that printed something goes on after the last offset printed.
    fn subscribe_request(&self, progress: &Progress) -> pb::SubscribeRequest {
        let start = match (&self.consumer, progress.last_offset) {
            (None, Some(last)) => Some(Position::Offset(last + 1)),
            _ => self.from.clone(),
        };
        pb::SubscribeRequest {
            topic: self.topic.clone(),
            consumer: self.consumer.clone().unwrap_or_default(),
            start: start.map(Into::into),
            types: self.types.clone(),
            last_seen: progress.last_seen.clone(),
            ..Default::default()
        }
    }

    async fn ack_one(
        &self,
        client: &mut Client,
        offset: i64,
        seek_epoch: Option<i64>,
    ) -> Result<(), ClientError> {
        let request = client.request(pb::AckRequest {
            topic: self.topic.clone(),
            consumer: self.consumer.clone().unwrap_or_default(),
            offset,
            seek_epoch,
            offsets: vec![],
        });
        client.bus.ack(request).await?;
        Ok(())
    }
}

/// Whether the failure is the server (or the way to it) going away, which a new
/// subscription can ride out, rather than something wrong with the request.
fn can_resume(error: &ClientError) -> bool {
    match error {
        ClientError::Unreachable { .. } => true,
        ClientError::Status(s) => matches!(
            s.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ),
        _ => false,
    }
}
