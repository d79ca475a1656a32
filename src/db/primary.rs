//! Finding the primary among the URL's hosts, and following it when a failover moves
//! it.
//!
//! - A new pool connection that lands on a standby (`pg_is_in_recovery()`) is refused
//!   as unavailable ([`refuse_standby`]), so no request runs on one.
//! - [`follow`] checks every second that the pool's host is still the primary. When
//!   it is not (unreachable, or in recovery: demoted, or a standby behind an address
//!   that moved), it asks every host, points the pool at the one that is the primary
//!   and retires the connections opened before ([`Primary::is_stale`]): they are
//!   closed as they are next acquired. Until then requests fail with UNAVAILABLE.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::hosts::Hosts;
use super::session;
use crate::config::{SyncCommit, redact_url};

/// How often [`follow`] checks the pool's host, and how long one check may take.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// The hosts of the URL and which one is the primary as far as this server knows.
#[derive(Debug)]
pub struct Primary {
    hosts: Vec<Host>,
    current: AtomicUsize,
    switched: Mutex<Option<Instant>>,
}

#[derive(Debug)]
struct Host {
    options: PgConnectOptions,
    /// The host's URL with its password masked, for logs and errors.
    label: String,
}

/// What asking one host gave.
#[derive(Debug)]
pub enum Answer {
    /// It is a primary, on this timeline (`None` when it could not say).
    Primary(Option<u32>),
    /// It answers, in recovery (a standby).
    Standby,
    /// It cannot be reached, or refused us.
    Failed(sqlx::Error),
}

/// Whether the server is in recovery, and a primary's timeline: the first 8 hex digits
/// of its current WAL file's name. A promotion starts a new timeline, so of two
/// primaries the one on the higher timeline was promoted last.
const ASK: &str = "SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() \
                   THEN substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END";

impl Primary {
    /// The hosts of `url`, each with pulsebus's pinned session settings; the first is
    /// taken for the primary until one is asked.
    pub fn new(hosts: &Hosts, level: SyncCommit) -> Result<Self, sqlx::Error> {
        let hosts = hosts
            .urls()
            .iter()
            .map(|url| {
                Ok(Host {
                    options: session::options(url, level)?,
                    label: redact_url(url),
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Self {
            hosts,
            current: AtomicUsize::new(0),
            switched: Mutex::new(None),
        })
    }

    /// Connect options of the host taken for the primary.
    pub fn current(&self) -> PgConnectOptions {
        self.hosts[self.current_index()].options.clone()
    }

    /// The masked URL of the host taken for the primary.
    pub fn current_label(&self) -> &str {
        &self.hosts[self.current_index()].label
    }

    /// The masked URL of each host, in order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.hosts.iter().map(|h| h.label.as_str())
    }

    fn current_index(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// Asks host `index` whether it is the primary, on a connection of its own.
    pub async fn ask(&self, index: usize, timeout: Duration) -> Answer {
        let asked = async {
            let mut conn = PgConnection::connect_with(&self.hosts[index].options).await?;
            let answer: Result<(bool, Option<String>), _> =
                sqlx::query_as(ASK).fetch_one(&mut conn).await;
            let _ = conn.close().await;
            answer
        };
        match tokio::time::timeout(timeout, asked).await {
            Ok(Ok((false, timeline))) => {
                Answer::Primary(timeline.and_then(|t| u32::from_str_radix(&t, 16).ok()))
            }
            Ok(Ok((true, _))) => Answer::Standby,
            Ok(Err(e)) => Answer::Failed(e),
            Err(_) => Answer::Failed(sqlx::Error::PoolTimedOut),
        }
    }

    /// Asks every host, the current one first. The primary is the one on the highest
    /// timeline: a failed primary that comes back as a primary (split brain) stays on
    /// the timeline its standby left when promoted, so pulsebus keeps to the promoted
    /// one (and logs both). Returns it, with every host's answer.
    pub async fn find(&self, timeout: Duration) -> (Option<usize>, Vec<(usize, Answer)>) {
        let start = self.current_index();
        let mut answers = Vec::new();
        for step in 0..self.hosts.len() {
            let index = (start + step) % self.hosts.len();
            answers.push((index, self.ask(index, timeout).await));
        }
        let primaries: Vec<(usize, Option<u32>)> = answers
            .iter()
            .filter_map(|(index, answer)| match answer {
                Answer::Primary(timeline) => Some((*index, *timeline)),
                _ => None,
            })
            .collect();
        if primaries.len() > 1 {
            let found: Vec<String> = primaries
                .iter()
                .map(|(i, t)| format!("{} (timeline {t:?})", self.hosts[*i].label))
                .collect();
            tracing::error!(
                primaries = %found.join(", "),
                "several PostgreSQL hosts answer as primary (split brain): using the one on \
                 the highest timeline; fence the other"
            );
        }
        // max_by_key keeps the last of equals: reverse so the first asked wins ties.
        let chosen = primaries
            .iter()
            .rev()
            .max_by_key(|(_, timeline)| *timeline)
            .map(|(index, _)| *index);
        (chosen, answers)
    }

    /// Takes host `index` for the primary from now on; connections opened before are
    /// stale.
    pub fn switch_to(&self, index: usize) {
        self.current.store(index, Ordering::Release);
        *self.switched.lock().expect("never poisoned") = Some(Instant::now());
    }

    /// Whether a pool connection opened `age` ago predates the last switch (or retire),
    /// and so may be on a host that is no longer the primary.
    pub fn is_stale(&self, age: Duration) -> bool {
        let switched = *self.switched.lock().expect("never poisoned");
        switched.is_some_and(|at| age > at.elapsed())
    }
}

/// Whether the session's server is a standby.
pub async fn in_recovery(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    conn.fetch_one("SELECT pg_is_in_recovery()")
        .await
        .and_then(|row| sqlx::Row::try_get(&row, 0))
}

/// The pool's `after_connect`: a connection to a standby is refused, as unavailable.
pub async fn refuse_standby(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    if in_recovery(conn).await? {
        return Err(sqlx::Error::Io(std::io::Error::other(
            "the PostgreSQL server is a standby (in recovery), not the primary",
        )));
    }
    Ok(())
}

/// Keeps the pool on the primary until `token` is cancelled (see the module doc).
pub async fn follow(pool: PgPool, primary: std::sync::Arc<Primary>, token: CancellationToken) {
    let mut tick = tokio::time::interval(FOLLOW_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut searching = false;
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let checked = tokio::time::timeout(FOLLOW_INTERVAL, async {
            let mut conn = pool.acquire().await?;
            in_recovery(&mut conn).await
        })
        .await;
        let demoted = match checked {
            Ok(Ok(false)) => {
                searching = false;
                continue;
            }
            Ok(Ok(true)) => true,
            _ => false,
        };
        searching = !relocate(&pool, &primary, demoted, !searching).await;
    }
}

/// The pool's host is not a reachable primary (`demoted`: it answers, in recovery):
/// finds the one that is and points the pool there; false while there is none.
/// `first` logs what each host answered, once per search.
async fn relocate(pool: &PgPool, primary: &Primary, demoted: bool, first: bool) -> bool {
    let before = primary.current_index();
    let (found, answers) = primary.find(FOLLOW_INTERVAL).await;
    let Some(index) = found else {
        for (index, answer) in answers.iter().filter(|_| first) {
            let host = &primary.hosts[*index].label;
            tracing::warn!(host = %host, answer = ?answer, "looking for the PostgreSQL primary");
        }
        return false;
    };
    if index == before && !demoted {
        return true; // the same host, back: its pool connections reconnect by themselves
    }
    primary.switch_to(index);
    pool.set_connect_options(primary.current());
    tracing::warn!(
        from = %primary.hosts[before].label,
        to = %primary.current_label(),
        "following the PostgreSQL primary: connections opened before are closed"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn primary(url: &str) -> Primary {
        Primary::new(&Hosts::parse(url).unwrap(), SyncCommit::On).unwrap()
    }

    #[test]
    fn connections_opened_before_a_switch_are_stale_and_later_ones_are_not() {
        let p = primary("postgres://u:pw@a:1,b:2/db");
        assert!(!p.is_stale(Duration::from_secs(3600)), "no switch yet");
        p.switch_to(1);
        assert_eq!(p.current_label(), "postgres://u:***@b:2/db");
        assert!(p.is_stale(Duration::from_secs(3600)));
        assert!(!p.is_stale(Duration::ZERO));
    }

    #[test]
    fn every_host_keeps_the_pinned_session_settings() {
        let p = primary("postgres://u@a,b/db");
        assert_eq!(p.labels().count(), 2);
        p.switch_to(1);
        let options = p.current().get_options().unwrap().to_owned();
        assert!(options.contains("synchronous_commit=on"), "{options}");
    }
}
