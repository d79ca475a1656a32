//! Notifications: a shared consumer (run it on as many instances as you like) of badges
//! and peer feedback. Each event becomes one row of the `notifications` table, written
//! in the transaction that records the event in the inbox: once per event, whatever is
//! redelivered. Sending is simulated: feedback whose comment says `#bounce` fails every
//! time, is retried with the consumer's back-off, and lands in the dead-letter topic
//! after [`MAX_DELIVERIES`] attempts.

use std::time::Duration;

use pulsebus_client::event::PayloadExt;
use pulsebus_client::inbox::Inbox;
use pulsebus_client::proto::edupulse::events::v1::{BadgeAwarded, PeerFeedbackGiven};
use pulsebus_client::proto::pulsebus::v1::{ConsumerConfig, DeliveryMode, Record};
use pulsebus_client::{CancellationToken, Client, ConsumerOptions, Outcome, RunOptions};
use sqlx::PgPool;

use crate::topics::{BADGES, FEEDBACK, NOTIFICATIONS};

/// Attempts before a failing notification is dead-lettered.
pub const MAX_DELIVERIES: u32 = 3;

/// The marker of feedback whose notification cannot be delivered.
pub const BOUNCE: &str = "#bounce";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS notifications (\
    event_id TEXT PRIMARY KEY, student_id TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL, \
    created_at TIMESTAMPTZ NOT NULL DEFAULT now())";

const INSERT: &str =
    "INSERT INTO notifications (event_id, student_id, kind, text) VALUES ($1, $2, $3, $4)";

/// A notification to write.
struct Note {
    student_id: String,
    kind: &'static str,
    text: String,
}

/// Runs the service (both topics) until `shutdown`; `backoff` is the first redelivery
/// delay of a failed notification.
pub async fn run(
    client: &Client,
    db: PgPool,
    backoff: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    pulsebus_client::inbox::create_once(&db, SCHEMA).await?;
    let inbox = Inbox::new(db, NOTIFICATIONS).await?;
    let badges = consume(client, BADGES, inbox.clone(), backoff, shutdown.clone());
    let feedback = consume(client, FEEDBACK, inbox, backoff, shutdown);
    tokio::try_join!(badges, feedback)?;
    Ok(())
}

async fn consume(
    client: &Client,
    topic: &str,
    inbox: Inbox,
    backoff: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let backoff = prost_types::Duration {
        seconds: backoff.as_secs() as i64,
        nanos: backoff.subsec_nanos() as i32,
    };
    let config = ConsumerConfig {
        mode: DeliveryMode::Shared as i32,
        max_deliveries: MAX_DELIVERIES,
        min_backoff: Some(backoff),
        max_backoff: Some(backoff),
        ..Default::default()
    };
    let consumer = client.consumer(ConsumerOptions::new(topic, NOTIFICATIONS).config(config))?;
    let handler = move |record: Record| {
        let inbox = inbox.clone();
        async move { handle(&inbox, record).await }
    };
    let options = RunOptions {
        concurrency: 2,
        shutdown,
        ..Default::default()
    };
    consumer.run(handler, options).await?;
    Ok(())
}

async fn handle(inbox: &Inbox, record: Record) -> Outcome {
    let note = match note_of(&record) {
        Ok(note) => note,
        Err(reason) => return Outcome::Fail(reason),
    };
    if note.text.contains(BOUNCE) {
        return Outcome::Retry(None); // the mail server said no: again after the back-off
    }
    match write(inbox, &record, &note).await {
        Ok(()) => Outcome::Ack,
        Err(e) => {
            tracing::warn!(error = %e, offset = record.offset, "notifications: retrying");
            Outcome::Retry(None)
        }
    }
}

fn note_of(record: &Record) -> Result<Note, String> {
    if let Ok(badge) = record.decode_proto::<BadgeAwarded>() {
        return Ok(Note {
            student_id: badge.student_id,
            kind: "badge",
            text: format!("You earned the badge {}", badge.badge_name),
        });
    }
    match record.decode_proto::<PeerFeedbackGiven>() {
        Ok(feedback) => Ok(Note {
            student_id: feedback.reviewee_id,
            kind: "feedback",
            text: format!(
                "New feedback ({} stars): {}",
                feedback.rating, feedback.comment
            ),
        }),
        Err(e) => Err(format!("neither a badge nor feedback: {e}")),
    }
}

async fn write(inbox: &Inbox, record: &Record, note: &Note) -> anyhow::Result<()> {
    let Some(mut tx) = inbox.begin(record).await? else {
        return Ok(()); // written before
    };
    let id = record
        .event
        .as_ref()
        .map(|e| e.id.clone())
        .unwrap_or_default();
    sqlx::query(INSERT)
        .bind(id)
        .bind(&note.student_id)
        .bind(note.kind)
        .bind(&note.text)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
