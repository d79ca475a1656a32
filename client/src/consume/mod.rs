//! Durable consumers: [`Consumer`] hands out [`Message`]s (as a `Stream`, or through
//! [`Consumer::next`]) from a Subscribe stream it reopens after every outage, and
//! settles them through a task that coalesces acks. [`Consumer::run`](crate::run)
//! drives a handler over it.

mod held;
mod message;
mod session;
mod settle;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use message::Message;

use self::held::Held;
use self::session::Engine;
use self::settle::{AckBatching, Command, Settler};
use crate::connect::Client;
use crate::error::ClientError;
use crate::proto::pulsebus::v1::{ConsumerConfig, DeliveryMode, StartPosition};

/// Records per message a consumer asks for by default: it saves the per-message cost
/// when the consumer is behind, and costs nothing live (the server never waits to fill
/// a batch).
pub const DEFAULT_BATCH_RECORDS: u32 = 256;

/// What to consume and how.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// The topic.
    pub topic: String,
    /// The durable consumer's name: its position is kept by the server under it.
    pub consumer: String,
    /// Mode, ack deadline, back-off and dead letters, applied when the consumer is
    /// created (`None`: the server's defaults, an exclusive consumer).
    pub config: Option<ConsumerConfig>,
    /// Where a new consumer starts (default: the earliest event).
    pub start: Option<StartPosition>,
    /// Only these event types (exclusive consumers); empty: all.
    pub types: Vec<String>,
    /// Most records delivered and not settled. Default 1000.
    pub max_in_flight: u32,
    /// Most records the server may send in one message (`batch_records`); they are
    /// still handed out one at a time, in order. 0: one record per message. Default
    /// [`DEFAULT_BATCH_RECORDS`].
    pub batch_records: u32,
    /// How long an ack waits to be sent with others. Default 5 ms.
    pub ack_linger: Duration,
    /// Most offsets in one Ack. Default 1000.
    pub max_ack_batch: usize,
    /// A stream silent for this long (the server sends heartbeats on idle streams,
    /// every 5 s by default) is taken for dead and reopened. Default 15 s.
    pub heartbeat_timeout: Duration,
}

impl ConsumerOptions {
    /// The consumer `consumer` of `topic`, with defaults.
    pub fn new(topic: impl Into<String>, consumer: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            consumer: consumer.into(),
            config: None,
            start: None,
            types: Vec::new(),
            max_in_flight: 1000,
            batch_records: DEFAULT_BATCH_RECORDS,
            ack_linger: Duration::from_millis(5),
            max_ack_batch: 1000,
            heartbeat_timeout: Duration::from_secs(15),
        }
    }

    /// With this delivery mode (the rest of the config as it is).
    pub fn mode(mut self, mode: DeliveryMode) -> Self {
        self.config.get_or_insert_with(ConsumerConfig::default).mode = mode as i32;
        self
    }

    /// With this consumer config.
    pub fn config(mut self, config: ConsumerConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// The delivery mode asked for (exclusive when unset).
    pub fn delivery_mode(&self) -> DeliveryMode {
        self.config
            .as_ref()
            .and_then(|c| DeliveryMode::try_from(c.mode).ok())
            .unwrap_or(DeliveryMode::Exclusive)
    }
}

/// Where a consumer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Opening a stream.
    Connecting,
    /// This stream holds the consumer: records follow after `committed`.
    Attached { committed: i64 },
    /// Another subscriber holds the (exclusive) consumer; this one waits to take over.
    Standby,
    /// The stream ended (`error` says why, when it failed); a new one opens after a
    /// back-off.
    Reconnecting { error: Option<String> },
    /// Closed, or stopped by an error the consumer cannot get past.
    Closed,
}

/// A durable consumer that reconnects and resumes by itself.
pub struct Consumer {
    pub(crate) options: ConsumerOptions,
    messages: mpsc::Receiver<Result<Message, ClientError>>,
    state: watch::Receiver<State>,
    commands: mpsc::Sender<Command>,
    held: Arc<Held>,
    drain: CancellationToken,
    close: CancellationToken,
    engine: Option<JoinHandle<()>>,
}

impl Client {
    /// Starts consuming (on the current tokio runtime). Fails only on options that
    /// cannot work; the server is reached in the background.
    pub fn consumer(&self, options: ConsumerOptions) -> Result<Consumer, ClientError> {
        if options.consumer.is_empty() {
            return Err(ClientError::InvalidOptions(
                "consumer: a durable consumer needs a name".into(),
            ));
        }
        let capacity = options.max_in_flight.max(1) as usize;
        let (out, messages) = mpsc::channel(capacity);
        let (commands, command_rx) = mpsc::channel(capacity + 64);
        let (state_tx, state) = watch::channel(State::Connecting);
        let held = Arc::new(Held::default());
        let (drain, close) = (CancellationToken::new(), CancellationToken::new());
        let batching = AckBatching {
            linger: options.ack_linger,
            max_offsets: options.max_ack_batch.max(1),
        };
        let settler = Settler::new(
            self.clone(),
            &options.topic,
            &options.consumer,
            held.clone(),
            batching,
        );
        tokio::spawn(settler.run(command_rx));
        let engine = Engine {
            client: self.clone(),
            options: options.clone(),
            held: held.clone(),
            commands: commands.clone(),
            out,
            state: state_tx,
            drain: drain.clone(),
            close: close.clone(),
            last_seen: std::sync::Mutex::new(None),
        };
        Ok(Consumer {
            options,
            messages,
            state,
            commands,
            held,
            drain,
            close,
            engine: Some(tokio::spawn(engine.run())),
        })
    }
}

impl Consumer {
    /// The next message; `None` once closed. An `Err` means the consumer stopped for
    /// good (the request is refused: a bad option, a missing permission, a mode
    /// mismatch); outages are retried and never show here.
    pub async fn next(&mut self) -> Option<Result<Message, ClientError>> {
        self.messages.recv().await
    }

    /// Where the consumer is, as it changes (attached, standby, reconnecting...).
    pub fn state(&self) -> watch::Receiver<State> {
        self.state.clone()
    }

    /// Sends the gathered acks now and waits for their answers.
    pub async fn flush(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Flush(reply)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Graceful shutdown: hands out nothing more, waits up to `grace` for the messages
    /// the user holds to be settled, sends every ack, then closes the stream (the
    /// server gives what it still held to other subscribers, or to the next one).
    pub async fn shutdown(mut self, grace: Duration) {
        self.drain.cancel();
        self.messages.close();
        while let Ok(Ok(message)) = self.messages.try_recv() {
            message.forget();
        }
        if tokio::time::timeout(grace, self.held.emptied())
            .await
            .is_err()
        {
            tracing::warn!(topic = %self.options.topic, consumer = %self.options.consumer, "shutdown: messages still in hand after the grace period; they come again");
        }
        self.flush().await;
        self.close.cancel();
        if let Some(engine) = self.engine.take() {
            let _ = engine.await;
        }
        // The settler ends by itself once the last message is gone.
    }

    /// Hands out nothing more (records already received are forgotten: the server
    /// gives them back when the stream closes); for [`Consumer::run`](crate::run).
    pub(crate) fn stop_handing_out(&mut self) {
        self.drain.cancel();
    }
}

impl futures_util::Stream for Consumer {
    type Item = Result<Message, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.messages.poll_recv(cx)
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.close.cancel();
    }
}
