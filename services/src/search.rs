//! The search indexer: lessons into a tantivy index on disk, and queries over it.
//!
//! Each `LessonPublished` is upserted by lesson id (delete the term, add the document),
//! so a lesson delivered again after a crash replaces itself instead of appearing
//! twice. Records are acked only after the index commit that contains them: a crash
//! before the commit redelivers them, a crash after it finds them already there.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use pulsebus_client::event::PayloadExt;
use pulsebus_client::proto::edupulse::events::v1::LessonPublished;
use pulsebus_client::{CancellationToken, Client, ConsumerOptions, Message};
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, STORED, STRING, Schema, TEXT, Value};
use tantivy::{Index, IndexWriter, TantivyDocument, Term, doc};

use crate::topics::{LESSONS, SEARCH_INDEXER};

/// Most records indexed before a commit.
const COMMIT_BATCH: usize = 200;
/// Longest a record waits for its commit.
const COMMIT_EVERY: Duration = Duration::from_millis(200);

/// The index's fields.
#[derive(Clone, Copy)]
struct Fields {
    lesson_id: Field,
    course_id: Field,
    title: Field,
    tags: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let fields = Fields {
        lesson_id: builder.add_text_field("lesson_id", STRING | STORED),
        course_id: builder.add_text_field("course_id", STRING | STORED),
        title: builder.add_text_field("title", TEXT | STORED),
        tags: builder.add_text_field("tags", TEXT | STORED),
    };
    (builder.build(), fields)
}

fn open(dir: &Path) -> anyhow::Result<(Index, Fields)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (schema, fields) = schema();
    let directory = tantivy::directory::MmapDirectory::open(dir)?;
    Ok((Index::open_or_create(directory, schema)?, fields))
}

/// A lesson found by a query.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hit {
    pub lesson_id: String,
    pub course_id: String,
    pub title: String,
}

/// Lessons matching `query` (title and tags), best first.
pub fn search(dir: &Path, query: &str, limit: usize) -> anyhow::Result<Vec<Hit>> {
    let (index, f) = open(dir)?;
    let searcher = index.reader()?.searcher();
    let query = QueryParser::for_index(&index, vec![f.title, f.tags]).parse_query(query)?;
    let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
    top.into_iter()
        .map(|(_, address)| {
            let doc: TantivyDocument = searcher.doc(address)?;
            let text = |field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            Ok(Hit {
                lesson_id: text(f.lesson_id),
                course_id: text(f.course_id),
                title: text(f.title),
            })
        })
        .collect()
}

/// How many lessons the index holds (each lesson once).
pub fn count(dir: &Path) -> anyhow::Result<u64> {
    let (index, _) = open(dir)?;
    Ok(index.reader()?.searcher().num_docs())
}

/// Indexes lessons until `shutdown`; returns an error when the consumer stops for
/// good or the index fails.
pub async fn run(client: &Client, dir: &Path, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (index, fields) = open(dir)?;
    let writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000)?;
    let writer = Arc::new(Mutex::new(writer));
    let mut consumer = client.consumer(ConsumerOptions::new(LESSONS, SEARCH_INDEXER))?;
    let mut pending: Vec<Message> = Vec::new();
    let result = loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            next = tokio::time::timeout(COMMIT_EVERY, consumer.next()) => next,
        };
        let quiet = next.is_err();
        match next {
            Ok(None) => break Ok(()),
            Ok(Some(Err(e))) => break Err(e.into()),
            Ok(Some(Ok(message))) => match message.record().decode_proto::<LessonPublished>() {
                Ok(lesson) => {
                    upsert(&writer, fields, &lesson)?;
                    pending.push(message);
                }
                Err(e) => {
                    message
                        .dead_letter(format!("not a LessonPublished: {e}"))
                        .await?
                }
            },
            Err(_) => {} // quiet: commit what waits
        }
        if !pending.is_empty() && (pending.len() >= COMMIT_BATCH || quiet) {
            commit_and_ack(&writer, &mut pending).await?;
        }
    };
    commit_and_ack(&writer, &mut pending).await?;
    consumer.shutdown(Duration::from_secs(5)).await;
    result
}

fn upsert(writer: &Mutex<IndexWriter>, f: Fields, lesson: &LessonPublished) -> anyhow::Result<()> {
    let writer = writer.lock().expect("index writer lock");
    writer.delete_term(Term::from_field_text(f.lesson_id, &lesson.lesson_id));
    let mut document = doc!(
        f.lesson_id => lesson.lesson_id.as_str(),
        f.course_id => lesson.course_id.as_str(),
        f.title => lesson.title.as_str(),
    );
    for tag in &lesson.tags {
        document.add_text(f.tags, tag);
    }
    writer.add_document(document)?;
    Ok(())
}

/// Commits the index (off the async threads), then acks what the commit holds.
async fn commit_and_ack(
    writer: &Arc<Mutex<IndexWriter>>,
    pending: &mut Vec<Message>,
) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let writer = writer.clone();
    tokio::task::spawn_blocking(move || writer.lock().expect("index writer lock").commit())
        .await??;
    for message in pending.drain(..) {
        message.ack().await?;
    }
    Ok(())
}
