//! Records in batches on the wire (`SubscribeRequest.batch_records`): a batched stream
//! holds exactly what an unbatched one does, in the same order; work queues still
//! settle per record; grpcurl shows batches as JSON; the bound is enforced.

mod bad_input;
mod grpcurl;
mod same_records;
mod work_queue;

use crate::helpers::*;

/// A Subscribe request for `topic` asking for batches of at most `max` records.
pub fn batched(topic: &str, consumer: &str, max: u32) -> SubscribeRequest {
    SubscribeRequest {
        batch_records: max,
        ..sub_req(topic, consumer)
    }
}

/// Records of one stream as its subscriber would take them, one at a time.
#[derive(Debug, Default)]
pub struct Received {
    /// The records, flattened, in stream order.
    pub records: Vec<Record>,
    /// How many records each message that carried records held.
    pub per_message: Vec<usize>,
}

impl Received {
    /// The records of `message` (a `record` or a `batch`), empty for anything else.
    pub fn records_of(message: subscribe_response::Message) -> Vec<Record> {
        match message {
            subscribe_response::Message::Record(r) => vec![r],
            subscribe_response::Message::Batch(b) => b.records,
            _ => Vec::new(),
        }
    }

    /// Adds the records of `message`; returns how many it held.
    pub fn take(&mut self, message: subscribe_response::Message) -> usize {
        let records = Self::records_of(message);
        let n = records.len();
        if n > 0 {
            self.per_message.push(n);
            self.records.extend(records);
        }
        n
    }

    /// The next `n` records of `stream` (skipping other messages), each within [`WAIT`].
    pub async fn next(&mut self, stream: &mut tonic::Streaming<SubscribeResponse>, n: usize) {
        let target = self.records.len() + n;
        while self.records.len() < target {
            self.take(next_message(stream).await);
        }
        assert_eq!(
            self.records.len(),
            target,
            "a message held more records than there were to send"
        );
    }

    /// The next message of `stream` that carries records (any number), within [`WAIT`].
    pub async fn next_message(&mut self, stream: &mut tonic::Streaming<SubscribeResponse>) {
        while self.take(next_message(stream).await) == 0 {}
    }

    /// (offset, id) of every record, in order.
    pub fn offsets_and_ids(&self) -> Vec<(i64, String)> {
        let id = |r: &Record| r.event.as_ref().map(|e| e.id.clone()).unwrap_or_default();
        self.records.iter().map(|r| (r.offset, id(r))).collect()
    }
}

/// The next message of `stream` must be a heartbeat (no record comes first; stream
/// state messages may): proof that the server had nothing more to send.
pub async fn heartbeat_next(stream: &mut tonic::Streaming<SubscribeResponse>) -> Heartbeat {
    loop {
        match next_message(stream).await {
            subscribe_response::Message::Heartbeat(h) => return h,
            subscribe_response::Message::Record(r) => {
                panic!("record {} before a heartbeat", r.offset)
            }
            subscribe_response::Message::Batch(b) => {
                panic!("{} records before a heartbeat", b.records.len())
            }
            _ => {}
        }
    }
}
