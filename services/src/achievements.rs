//! Achievements: a key-shared consumer of quizzes (subject = the student), so one
//! student's quizzes are handled one at a time and in order, while different students
//! proceed in parallel on any number of instances.
//!
//! A quiz with a score of at least [`Rules::min_percent`] counts as good. The count per
//! student lives in this service's PostgreSQL, updated in the transaction that records
//! the event in the inbox, so a redelivered quiz never counts twice. When a student's
//! count reaches [`Rules::good_quizzes`], a `BadgeAwarded` is published (before the
//! commit) with an id derived from the student and the badge: if the commit is lost and
//! the quiz comes again, the same badge is published again and the bus stores it once.

use std::time::Duration;

use pulsebus_client::event::{self, PayloadExt};
use pulsebus_client::inbox::Inbox;
use pulsebus_client::proto::edupulse::events::v1::{BadgeAwarded, QuizSubmitted};
use pulsebus_client::proto::pulsebus::v1::{ConsumerConfig, DeliveryMode, Record};
use pulsebus_client::{CancellationToken, Client, ConsumerOptions, Outcome, RunOptions};
use sqlx::PgPool;
use uuid::Uuid;

use crate::topics::{ACHIEVEMENTS, BADGES, QUIZZES, student_subject};

/// When a badge is deserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Good quizzes for the badge.
    pub good_quizzes: i32,
    /// A quiz is good from this score, in percent of its maximum.
    pub min_percent: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            good_quizzes: 3,
            min_percent: 80,
        }
    }
}

/// The badge this service awards.
pub const BADGE_NAME: &str = "quiz-streak";

/// Namespace of badge ids (UUIDv5 of `student/badge`).
const BADGE_IDS: Uuid = Uuid::from_u128(0x3b0d_5c11_77a4_4d3e_9f6b_21c8_a0e4_5d90);

/// The id of `student`'s badge: the same on every attempt.
pub fn badge_id(student: &str) -> Uuid {
    Uuid::new_v5(&BADGE_IDS, format!("{student}/{BADGE_NAME}").as_bytes())
}

/// Whether `quiz` counts as good under `rules`.
pub fn is_good(quiz: &QuizSubmitted, rules: Rules) -> bool {
    quiz.max_score > 0 && quiz.score * 100 >= rules.min_percent * quiz.max_score
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS achievement_progress (\
    student_id TEXT PRIMARY KEY, good_quizzes INT NOT NULL)";

const COUNT: &str = "INSERT INTO achievement_progress (student_id, good_quizzes) VALUES ($1, 1) \
    ON CONFLICT (student_id) DO UPDATE SET good_quizzes = achievement_progress.good_quizzes + 1 \
    RETURNING good_quizzes";

/// Runs the service until `shutdown`, with `concurrency` handlers.
pub async fn run(
    client: &Client,
    db: PgPool,
    rules: Rules,
    concurrency: usize,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    pulsebus_client::inbox::create_once(&db, SCHEMA).await?;
    let inbox = Inbox::new(db, ACHIEVEMENTS).await?;
    let config = ConsumerConfig {
        mode: DeliveryMode::KeyShared as i32,
        max_deliveries: 5,
        ..Default::default()
    };
    let consumer = client.consumer(ConsumerOptions::new(QUIZZES, ACHIEVEMENTS).config(config))?;
    let client = client.clone();
    let handler = move |record: Record| {
        let (client, inbox) = (client.clone(), inbox.clone());
        async move { handle(&client, &inbox, rules, record).await }
    };
    let options = RunOptions {
        concurrency,
        shutdown,
        ..Default::default()
    };
    consumer.run(handler, options).await?;
    Ok(())
}

async fn handle(client: &Client, inbox: &Inbox, rules: Rules, record: Record) -> Outcome {
    let quiz = match record.decode_proto::<QuizSubmitted>() {
        Ok(quiz) => quiz,
        Err(e) => return Outcome::Fail(format!("not a QuizSubmitted: {e}")),
    };
    match count(client, inbox, rules, &record, &quiz).await {
        Ok(()) => Outcome::Ack,
        Err(e) => {
            tracing::warn!(error = %e, offset = record.offset, "achievements: retrying a quiz");
            Outcome::Retry(Some(Duration::from_millis(200)))
        }
    }
}

async fn count(
    client: &Client,
    inbox: &Inbox,
    rules: Rules,
    record: &Record,
    quiz: &QuizSubmitted,
) -> anyhow::Result<()> {
    let Some(mut tx) = inbox.begin(record).await? else {
        return Ok(()); // counted before
    };
    if is_good(quiz, rules) {
        let good: i32 = sqlx::query_scalar(COUNT)
            .bind(&quiz.student_id)
            .fetch_one(&mut *tx)
            .await?;
        if good == rules.good_quizzes {
            publish_badge(client, record, quiz).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn publish_badge(
    client: &Client,
    record: &Record,
    quiz: &QuizSubmitted,
) -> anyhow::Result<()> {
    let cause = record.event.clone().unwrap_or_default();
    let badge = BadgeAwarded {
        badge_id: badge_id(&quiz.student_id).to_string(),
        student_id: quiz.student_id.clone(),
        badge_name: BADGE_NAME.into(),
        reason: format!("good quizzes up to {}", quiz.quiz_id),
        awarded_at: None,
    };
    let mut event = event::proto(&badge);
    event.id = badge.badge_id.clone();
    event.source = "achievements".into();
    event.subject = student_subject(&quiz.student_id);
    event.causation_id = cause.id;
    event.correlation_id = cause.correlation_id;
    client.publish(BADGES, vec![event]).await?;
    Ok(())
}
