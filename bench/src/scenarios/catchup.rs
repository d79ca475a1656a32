//! `catchup`: one durable consumer replays a topic of stored events from the start,
//! acking as it goes. The events are loaded first, untimed, in big batches. pulsebus
//! is replayed once per reader: the harness's Rust client with each
//! `--catchup-batch-records`, then, with `--catchup-python`, a Python grpcio reader
//! (`catchup_python`) with each; every replay is a new consumer of the same topic.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::StreamExt;
use tokio::task::JoinSet;

use super::{Ctx, Meter, Outcome, checked, failed_row, limited, record_row, spawn_acker};
use crate::report::Row;
use crate::scenarios::publish::{connect, reads};
use crate::stats::{now_nanos, stamped};
use crate::systems::{Acker, Deliveries, SystemKind, Target, Topic};

/// Publishers used to load the topic.
const LOADERS: usize = 4;

/// Stores `events` stamped events in `topic` (4 publishers, `--load-batch` per call);
/// returns how long it took.
pub async fn load(ctx: &Ctx, index: usize, topic: &Topic, events: u64) -> Result<Duration> {
    let batches = [(topic.clone(), events)];
    load_many(ctx, index, &batches, ctx.settings.payload_bytes).await
}

/// Stores, for each `(topic, n)`, `n` more stamped events of `payload_bytes` in the
/// topic: 4 publishers take `--load-batch` calls from one list in which the topics
/// alternate (so they grow together); returns how long it took.
pub async fn load_many(
    ctx: &Ctx,
    index: usize,
    topics: &[(Topic, u64)],
    payload_bytes: usize,
) -> Result<Duration> {
    let started = Instant::now();
    let calls = Arc::new(load_calls(topics, ctx.settings.load_batch as u64));
    let next = Arc::new(AtomicUsize::new(0));
    let pubs = connect(ctx, index, LOADERS, false).await?;
    let mut set = JoinSet::new();
    for mut p in pubs {
        let (calls, next) = (calls.clone(), next.clone());
        set.spawn(async move {
            while let Some((topic, n)) = calls.get(next.fetch_add(1, Ordering::Relaxed)) {
                let payloads = (0..*n)
                    .map(|_| stamped(payload_bytes, now_nanos()))
                    .collect();
                p.publish(topic, payloads).await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(joined) = set.join_next().await {
        joined??;
    }
    Ok(started.elapsed())
}

/// The publish calls storing `(topic, n)` for each topic, at most `batch` events each:
/// round k holds every topic's k-th call.
fn load_calls(topics: &[(Topic, u64)], batch: u64) -> Vec<(Topic, u64)> {
    let batch = batch.max(1);
    let rounds = topics.iter().map(|(_, n)| n.div_ceil(batch)).max();
    (0..rounds.unwrap_or(0))
        .flat_map(|k| {
            topics.iter().filter_map(move |(topic, n)| {
                let left = n.saturating_sub(k * batch);
                (left > 0).then(|| (topic.clone(), left.min(batch)))
            })
        })
        .collect()
}

/// Who replays the topic, and in batches of how many records (pulsebus only; the
/// other systems have one reader, the harness's Rust client).
#[derive(Debug, Clone)]
pub struct Replay {
    /// The Python interpreter running `bench/python/catchup.py`, or None: the
    /// harness's Rust (tonic) client.
    pub python: Option<PathBuf>,
    /// `SubscribeRequest.batch_records` (0: one record per message).
    pub batch_records: u32,
}

impl Replay {
    /// The row's system label: `pulsebus` alone when there is one pulsebus reader, else
    /// `pulsebus-` and what differs (`pulsebus-batch256`, `pulsebus-python-batch0`),
    /// so the ratio columns compare each with the same baselines.
    fn label(&self, kind: SystemKind, several: bool) -> String {
        let mut label = kind.label().to_owned();
        if self.python.is_some() {
            label.push_str("-python");
        }
        if several {
            label.push_str(&format!("-batch{}", self.batch_records));
        }
        label
    }
}

/// The replays of a system: for pulsebus each `--catchup-batch-records` with the Rust
/// client, then the same with `--catchup-python` when given; one for the others.
fn replays(batches: &[u32], python: Option<&PathBuf>, kind: SystemKind) -> Vec<Replay> {
    if kind != SystemKind::Pulsebus {
        return vec![Replay {
            python: None,
            batch_records: 0,
        }];
    }
    let pythons = std::iter::once(None).chain(python.cloned().map(Some));
    pythons
        .flat_map(|python| {
            batches.iter().map(move |&batch_records| Replay {
                python: python.clone(),
                batch_records,
            })
        })
        .collect()
}

/// One replay of the loaded `topic` by a new consumer, metered.
async fn replay(ctx: &Ctx, index: usize, topic: &Topic, how: &Replay, n: usize) -> Result<Row> {
    let s = &ctx.settings;
    let system = &ctx.env.systems[index];
    let consumer = format!("catchup{n}");
    let max_in_flight = (4 * s.ack_every).min(100_000) as u32;
    let meter = Meter::start(ctx, system).await;
    let (outcome, client_cpu) = match (&how.python, &system.target) {
        (Some(python), Target::Pulsebus { addr }) => {
            let run = super::catchup_python::Run {
                python,
                addr,
                topic,
                consumer: &consumer,
                events: s.catchup_events,
                ack_every: s.ack_every,
                max_in_flight,
                batch_records: how.batch_records,
            };
            let replayed = run.replay().await?;
            (replayed.outcome(), Some(replayed.cpu_seconds))
        }
        (Some(_), _) => bail!("the Python reader reads pulsebus only"),
        (None, _) => {
            let start = Instant::now();
            let (stream, acker) = system
                .durable(topic, &consumer, max_in_flight, how.batch_records)
                .await?;
            let replay = rust_replay(start, stream, acker, s.catchup_events, s.ack_every);
            (replay.await?, None)
        }
    };
    let mut row = meter.finish(system, outcome);
    if let Some(cpu) = client_cpu {
        // The reader is another process: its CPU (while it replayed) is the client's,
        // not the machine's "other" (its start-up and stub generation stay there).
        row.bench_cpu_s = Some(row.bench_cpu_s.unwrap_or(0.0) + cpu);
        row.other_cpu_s = row.other_cpu_s.map(|other| (other - cpu).max(0.0));
    }
    Ok(row)
}

/// Replays with the harness's own client (subscribed at `start`): takes `events`
/// records, acks every `ack_every`.
pub async fn rust_replay(
    start: Instant,
    mut stream: Deliveries,
    acker: Acker,
    events: u64,
    ack_every: u64,
) -> Result<Outcome> {
    let (ack_tx, ack_task) = spawn_acker(acker);
    let mut got = 0u64;
    while got < events {
        let Some(item) = stream.next().await else {
            bail!("the stream ended after {got} of {events} events");
        };
        let d = item?;
        got += 1;
        if got.is_multiple_of(ack_every) || got == events {
            ack_tx.send(Some(d.token))?;
        }
    }
    let elapsed = start.elapsed();
    drop(ack_tx);
    let (acks, _acker) = ack_task.await?;
    let acks = acks?;
    drop(stream);
    Ok(Outcome {
        events: got,
        elapsed,
        note: format!("{got} events replayed, {acks} acks"),
        ..Default::default()
    })
}

/// `catchup`: replay `--catchup-events` (default 1,000,000) stored events, loaded once
/// per system and replayed by each of its readers (a new consumer each).
pub async fn run(ctx: &mut Ctx) {
    let variant = format!("{} events", ctx.settings.catchup_events);
    let limit = Duration::from_secs(600);
    for i in 0..ctx.env.systems.len() {
        let kind = ctx.env.systems[i].kind;
        if !reads(kind) {
            continue;
        }
        if kind == SystemKind::NatsSync && !ctx.settings.catchup_nats_sync {
            ctx.record(Row {
                scenario: "catchup".to_owned(),
                variant: variant.clone(),
                system: kind.label().to_owned(),
                note: "not run (--catchup-nats-sync runs it): loading fsyncs every message \
                       (~1k events/s here, so ~17 min for 1M); the replay reads the same \
                       file store as nats-lazy"
                    .to_owned(),
                ..Default::default()
            });
            continue;
        }
        let run = ctx.next_run();
        let topic = Topic {
            run: run.clone(),
            name: "t".to_owned(),
        };
        let events = ctx.settings.catchup_events;
        let loaded = limited_load(limit, ctx, i, &topic, events).await;
        let s = &ctx.settings;
        let replays = replays(&s.catchup_batch_records, s.catchup_python.as_ref(), kind);
        let several = replays.len() > 1;
        for (n, how) in replays.iter().enumerate() {
            let row = match &loaded {
                Ok(loaded_in) => {
                    limited(limit, replay(ctx, i, &topic, how, n))
                        .await
                        .map(|mut row| {
                            let rate = events as f64 / loaded_in.as_secs_f64();
                            row.note.push_str(&format!(
                                "; loaded untimed in {:.1} s ({rate:.0}/s)",
                                loaded_in.as_secs_f64()
                            ));
                            row
                        })
                }
                Err(e) => Err(anyhow::anyhow!("loading: {e:#}")),
            };
            let system = &ctx.env.systems[i];
            let mut row = row.unwrap_or_else(|e| failed_row(system, &e));
            (row.scenario, row.variant) = ("catchup".to_owned(), variant.clone());
            row.system = how.label(kind, several);
            checked(ctx, i, &mut row);
            record_row(ctx, row);
        }
        if let Err(e) = ctx.env.systems[i].finish(&run).await {
            eprintln!(
                "pulsebus-bench: catchup: cleaning up {}: {e:#}",
                kind.label()
            );
        }
    }
}

/// Prepares the system and loads the topic, within `limit`.
async fn limited_load(
    limit: Duration,
    ctx: &Ctx,
    index: usize,
    topic: &Topic,
    events: u64,
) -> Result<Duration> {
    let run = async {
        let system = &ctx.env.systems[index];
        system
            .prepare(&topic.run, std::slice::from_ref(topic))
            .await?;
        load(ctx, index, topic, events).await
    };
    tokio::time::timeout(limit, run)
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("did not finish within {limit:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(batches: &[u32], python: bool, kind: SystemKind) -> Vec<String> {
        let python = python.then(|| PathBuf::from("python3"));
        let replays = replays(batches, python.as_ref(), kind);
        let several = replays.len() > 1;
        replays.iter().map(|r| r.label(kind, several)).collect()
    }

    #[test]
    fn loading_alternates_the_topics_and_stores_each_its_count() {
        let topic = |name: &str| Topic {
            run: "r1".to_owned(),
            name: name.to_owned(),
        };
        let calls = load_calls(
            &[(topic("a"), 250), (topic("b"), 100), (topic("c"), 0)],
            100,
        );
        let got: Vec<(String, u64)> = calls.into_iter().map(|(t, n)| (t.name, n)).collect();
        let want = [("a", 100), ("b", 100), ("a", 100), ("a", 50)];
        let want: Vec<(String, u64)> = want.iter().map(|(t, n)| (t.to_string(), *n)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn one_pulsebus_reader_keeps_the_plain_label_and_several_say_what_differs() {
        assert_eq!(labels(&[256], false, SystemKind::Pulsebus), ["pulsebus"]);
        assert_eq!(
            labels(&[0, 256], true, SystemKind::Pulsebus),
            [
                "pulsebus-batch0",
                "pulsebus-batch256",
                "pulsebus-python-batch0",
                "pulsebus-python-batch256"
            ]
        );
        assert_eq!(labels(&[0, 256], true, SystemKind::Postgres), ["postgres"]);
    }
}
