//! The Rust client (`pulsebus-client`) against real servers: publishing with retry-safe
//! ids, consumers that resume across restarts, the handler runner, shutdown. One file
//! per behaviour.

mod consume;
mod publish;
mod run;

use std::time::Duration;

use pulsebus_client as pc;

use crate::helpers::*;

/// A client of `server`.
pub fn client_of(server: &TestServer) -> pc::Client {
    pc::Client::connect(format!("http://{}", server.addr)).expect("the URL is valid")
}

/// Stops `server` and starts a new one on the same address and database.
pub async fn restart(server: TestServer) -> TestServer {
    let (addr, database_url) = (server.addr, server.database_url.clone());
    server.stop().await;
    TestServer::start_on(database_url, |c| {
        quick(c);
        c.listen = addr;
    })
    .await
}

/// The next message, within [`WAIT`].
pub async fn next_message(consumer: &mut pc::Consumer) -> pc::Message {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a message comes in time")
        .expect("the consumer is open")
        .expect("the consumer works")
}

/// Waits until the consumer is in a state `done` accepts.
pub async fn wait_state(consumer: &pc::Consumer, done: impl Fn(&pc::State) -> bool) -> pc::State {
    let mut state = consumer.state();
    tokio::time::timeout(WAIT, state.wait_for(|s| done(s)))
        .await
        .expect("the state comes in time")
        .expect("the consumer is alive")
        .clone()
}

/// Client-side events: `n` JSON events of type `t`.
pub fn json_events(t: &str, n: usize) -> Vec<pc::proto::pulsebus::v1::Event> {
    (0..n)
        .map(|i| pc::event::json(t, &serde_json::json!({ "n": i })).unwrap())
        .collect()
}

/// A short back-off, so tests reconnect quickly.
pub fn quick_retry() -> pc::RetryPolicy {
    pc::RetryPolicy {
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_retries: 50,
    }
}
