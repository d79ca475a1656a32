//! Every server restarted (SIGKILL) in the middle of a shared consumer's work: nothing
//! is lost; what the killed servers' subscribers held comes again after its deadline.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tonic::transport::Channel;

use super::{config, consumer_info, shared_sub};
use crate::helpers::process::ServerProcess;
use crate::helpers::*;

const EVENTS: usize = 400;

/// Two shared subscribers on two server processes handle 400 events; when 150 are
/// handled both servers are SIGKILLed and two new ones start on the same database.
/// The subscribers reconnect (to the new addresses) and carry on: every event is
/// handled, and the consumer's committed offset reaches the head.
#[tokio::test]
async fn restarting_every_server_midway_loses_nothing() {
    let database_url = fresh_database().await;
    let servers = vec![
        ServerProcess::on_database(&database_url, &[]).await,
        ServerProcess::on_database(&database_url, &[]).await,
    ];
    let mut client = servers[0].client().await;
    publish(&mut client, "jobs", events("job", EVENTS)).await;
    let (addresses_tx, addresses) = watch::channel(addrs(&servers));
    let handled = Handled::default();
    let mut workers = Vec::new();
    for i in 0..2 {
        let (handled, addresses) = (handled.clone(), addresses.clone());
        workers.push(tokio::spawn(work(i, addresses, handled)));
    }

    handled.reaches(150).await;
    for server in servers {
        server.kill().await;
    }
    let servers = vec![
        ServerProcess::on_database(&database_url, &[]).await,
        ServerProcess::on_database(&database_url, &[]).await,
    ];
    addresses_tx.send_replace(addrs(&servers));
    handled.reaches(EVENTS).await;
    let all: BTreeSet<i64> = (1..=EVENTS as i64).collect();
    assert_eq!(
        *handled.offsets.lock().unwrap(),
        all,
        "every event was handled"
    );
    // Records handled but not acked when their server died come again and are acked.
    let mut client = servers[0].client().await;
    let settled = async {
        loop {
            let info = consumer_info(&mut client, "jobs", "workers").await;
            if info.committed_offset == EVENTS as i64 {
                return info;
            }
            tokio::task::yield_now().await;
        }
    };
    let info = tokio::time::timeout(WAIT, settled)
        .await
        .expect("all settled");
    for w in workers {
        w.abort();
    }
    eprintln!("after the restart: {} redelivered", info.redelivered);
}

fn addrs(servers: &[ServerProcess]) -> Vec<String> {
    servers.iter().map(|s| s.addr.clone()).collect()
}

/// The offsets handled so far, and a watch of how many.
#[derive(Clone)]
struct Handled {
    offsets: Arc<Mutex<BTreeSet<i64>>>,
    count: Arc<watch::Sender<usize>>,
}

impl Default for Handled {
    fn default() -> Self {
        Self {
            offsets: Arc::default(),
            count: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl Handled {
    fn insert(&self, offset: i64) {
        let n = {
            let mut offsets = self.offsets.lock().unwrap();
            offsets.insert(offset);
            offsets.len()
        };
        self.count.send_replace(n);
    }

    /// Waits (within a bound that only catches a hang) until `n` offsets are handled.
    async fn reaches(&self, n: usize) {
        let mut count = self.count.subscribe();
        tokio::time::timeout(WAIT * 3, count.wait_for(|&c| c >= n))
            .await
            .expect("the workers make progress")
            .unwrap();
    }
}

/// A subscriber that handles and acks every record, reconnecting to its server's
/// current address whenever its stream or a call fails.
async fn work(i: usize, mut addresses: watch::Receiver<Vec<String>>, handled: Handled) {
    let cfg = config(DeliveryMode::Shared, Duration::from_secs(2), Duration::ZERO);
    loop {
        let addr = addresses.borrow_and_update()[i].clone();
        let Ok(channel) = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
        else {
            let _ = addresses.changed().await;
            continue;
        };
        let mut c = Client::new(channel);
        let Ok(stream) = c.subscribe(shared_sub("jobs", "workers", &cfg)).await else {
            let _ = addresses.changed().await;
            continue;
        };
        let mut stream = stream.into_inner();
        while let Ok(Some(message)) = stream.message().await {
            if let Some(subscribe_response::Message::Record(r)) = message.message {
                // Handled before it is acked: an ack whose answer is lost may still
                // have settled the record, which then never comes again.
                handled.insert(r.offset);
                let req = AckRequest {
                    topic: "jobs".into(),
                    consumer: "workers".into(),
                    offsets: vec![r.offset],
                    ..Default::default()
                };
                if c.ack(req).await.is_err() {
                    break; // the server went away; unsettled, this record comes again
                }
            }
        }
        // The stream ended: wait for the next address unless it already changed.
        if !addresses.has_changed().unwrap_or(false) {
            let _ = addresses.changed().await;
        }
    }
}
