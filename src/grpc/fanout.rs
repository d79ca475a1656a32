//! Subscribe's own route, so fan-out scales with records rather than with records times
//! subscribers: a record goes out as the bytes of its `SubscribeResponse`, encoded once
//! and shared by every stream that sends it (`SharedRecord::wire`), instead of being
//! cloned, converted and encoded per subscriber. The route shadows the generated one
//! for that one path; authentication (the interceptor wraps this service), size limits
//! and statuses are the same, and the messages on the wire are identical.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{BufMut, Bytes};
use prost::Message as _;
use tokio_stream::{Stream, StreamExt};
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Context, Poll, Service, StdError, http};
use tonic::server::{Grpc, NamedService, ServerStreamingService};
use tonic::{Request, Response, Status};
use tonic_prost::{ProstCodec, ProstDecoder};

use super::{EventBusService, caller};
use crate::log::Record;
use crate::proto::pulsebus::v1 as pb;
use crate::proto::pulsebus::v1::event_bus_server::EventBusServer;
use crate::subscribe::Delivery;

const SUBSCRIBE_PATH: &str = "/pulsebus.v1.EventBus/Subscribe";

/// One `SubscribeResponse`, already encoded.
pub struct Encoded(Bytes);

impl From<Delivery> for Encoded {
    fn from(delivery: Delivery) -> Self {
        match delivery {
            Delivery::Record(shared) => Self(shared.wire(encode_record)),
            heartbeat => Self(
                pb::SubscribeResponse::from(heartbeat)
                    .encode_to_vec()
                    .into(),
            ),
        }
    }
}

fn encode_record(record: &Record) -> Bytes {
    let message = pb::subscribe_response::Message::Record(record.clone().into());
    let response = pb::SubscribeResponse {
        message: Some(message),
    };
    response.encode_to_vec().into()
}

/// Sends `Encoded` as it is; decodes requests with prost like the generated route.
#[derive(Default)]
struct WireCodec;

impl Codec for WireCodec {
    type Encode = Encoded;
    type Decode = pb::SubscribeRequest;
    type Encoder = WireEncoder;
    type Decoder = ProstDecoder<pb::SubscribeRequest>;

    fn encoder(&mut self) -> Self::Encoder {
        WireEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<pb::SubscribeResponse, pb::SubscribeRequest>::default().decoder()
    }
}

struct WireEncoder;

impl Encoder for WireEncoder {
    type Item = Encoded;
    type Error = Status;

    fn encode(&mut self, item: Encoded, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item.0);
        Ok(())
    }
}

type EncodedStream = Pin<Box<dyn Stream<Item = Result<Encoded, Status>> + Send>>;

/// Subscribe, answering with encoded responses.
struct SubscribeRoute(Arc<EventBusService>);

impl ServerStreamingService<pb::SubscribeRequest> for SubscribeRoute {
    type Response = Encoded;
    type ResponseStream = EncodedStream;
    type Future = BoxFuture<Response<EncodedStream>, Status>;

    fn call(&mut self, request: Request<pb::SubscribeRequest>) -> Self::Future {
        let service = Arc::clone(&self.0);
        Box::pin(async move {
            let peer = request.remote_addr();
            let (who, req) = caller(request)?;
            let items = service.open_subscription(who, req, peer).await?;
            let stream: EncodedStream = Box::pin(items.map(|item| {
                item.map(Encoded::from)
                    .map_err(|e| Status::from(crate::error::ApiError::from(e)))
            }));
            Ok(Response::new(stream))
        })
    }
}

/// The generated `EventBus` server with Subscribe served by `SubscribeRoute`.
#[derive(Clone)]
pub struct EventBusRoutes {
    generated: EventBusServer<EventBusService>,
    service: Arc<EventBusService>,
    max_decode: usize,
}

impl EventBusRoutes {
    /// Serves `service`, refusing request messages over `max_decode` bytes.
    pub fn new(service: EventBusService, max_decode: usize) -> Self {
        Self {
            generated: EventBusServer::new(service.clone()).max_decoding_message_size(max_decode),
            service: Arc::new(service),
            max_decode,
        }
    }
}

impl NamedService for EventBusRoutes {
    const NAME: &'static str = <EventBusServer<EventBusService> as NamedService>::NAME;
}

impl<B> Service<http::Request<B>> for EventBusRoutes
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<http::Request<B>>::poll_ready(&mut self.generated, cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != SUBSCRIBE_PATH {
            return self.generated.call(req);
        }
        let route = SubscribeRoute(Arc::clone(&self.service));
        let mut grpc = Grpc::new(WireCodec).max_decoding_message_size(self.max_decode);
        Box::pin(async move { Ok(grpc.server_streaming(route, req).await) })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::log::{Event, Payload};
    use crate::subscribe::tail::SharedRecord;

    fn record() -> Record {
        Record {
            topic: "lessons".into(),
            offset: 7,
            appended_at: Utc::now(),
            event: Event {
                id: Uuid::now_v7(),
                event_type: "lesson.published".into(),
                source: "catalog".into(),
                subject: "lesson/42".into(),
                time: Some(Utc::now()),
                correlation_id: "c".into(),
                causation_id: String::new(),
                schema_version: 2,
                attributes: serde_json::Map::from_iter([("k".into(), "v".into())]),
                content_type: "application/json".into(),
                payload: Payload::Json(r#"{"a":1}"#.into()),
            },
        }
    }

    /// The shared encoding is exactly what the generated route would send.
    #[test]
    fn encoded_records_decode_as_the_generated_response() {
        let shared = SharedRecord::new(record());
        let first = Encoded::from(Delivery::Record(Arc::clone(&shared)));
        let again = Encoded::from(Delivery::Record(Arc::clone(&shared)));
        assert_eq!(
            first.0.as_ptr(),
            again.0.as_ptr(),
            "encoded once, then shared"
        );
        let expected = pb::SubscribeResponse::from(Delivery::Record(shared));
        assert_eq!(pb::SubscribeResponse::decode(first.0).unwrap(), expected);
    }

    #[test]
    fn heartbeats_are_encoded_like_the_generated_response() {
        let beat = || Delivery::Heartbeat {
            head: 9,
            committed: 4,
        };
        let encoded = Encoded::from(beat());
        let decoded = pb::SubscribeResponse::decode(encoded.0).unwrap();
        assert_eq!(decoded, pb::SubscribeResponse::from(beat()));
    }
}
