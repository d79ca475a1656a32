//! The `EventBus` gRPC service: one small function per RPC that validates the request,
//! calls the log, and converts the reply. No SQL here.

mod convert;
pub mod validate;

pub use convert::timestamp;

use tonic::{Request, Response, Status};

use crate::config::Limits;
use crate::error::ApiError;
use crate::log::EventLog;
use crate::proto::pulsebus::v1 as pb;
use crate::proto::pulsebus::v1::event_bus_server::EventBus;

/// The service behind `pulsebus.v1.EventBus`.
#[derive(Debug, Clone)]
pub struct EventBusService {
    log: EventLog,
    limits: Limits,
}

impl EventBusService {
    /// A service over `log`, enforcing `limits` on requests.
    pub fn new(log: EventLog, limits: Limits) -> Self {
        Self { log, limits }
    }

    async fn publish(&self, req: pb::PublishRequest) -> Result<pb::PublishResponse, ApiError> {
        let (topic, events) = validate::publish(req, &self.limits)?;
        let appended = self.log.append(&topic, &events).await?;
        let results = appended.into_iter().map(Into::into).collect();
        Ok(pb::PublishResponse { results })
    }

    async fn read(&self, req: pb::ReadRequest) -> Result<pb::ReadResponse, ApiError> {
        let p = validate::read(req)?;
        let (records, head) = self.log.read(&p.topic, p.from, p.limit, &p.types).await?;
        let records = records.into_iter().map(Into::into).collect();
        Ok(pb::ReadResponse {
            records,
            head_offset: head,
        })
    }

    async fn list_topics(&self) -> Result<pb::ListTopicsResponse, ApiError> {
        let topics = self.log.list_topics().await?;
        Ok(pb::ListTopicsResponse {
            topics: topics.into_iter().map(Into::into).collect(),
        })
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

fn reply<T>(result: Result<T, ApiError>) -> RpcResult<T> {
    result.map(Response::new).map_err(Status::from)
}

fn not_yet<T>(rpc: &'static str) -> RpcResult<T> {
    reply(Err(ApiError::NotImplemented { rpc }))
}

#[tonic::async_trait]
impl EventBus for EventBusService {
    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> RpcResult<pb::PublishResponse> {
        reply(self.publish(request.into_inner()).await)
    }

    type SubscribeStream = tokio_stream::Empty<Result<pb::SubscribeResponse, Status>>;

    async fn subscribe(
        &self,
        _: Request<pb::SubscribeRequest>,
    ) -> RpcResult<Self::SubscribeStream> {
        not_yet("Subscribe")
    }

    async fn ack(&self, _: Request<pb::AckRequest>) -> RpcResult<pb::AckResponse> {
        not_yet("Ack")
    }

    async fn seek(&self, _: Request<pb::SeekRequest>) -> RpcResult<pb::SeekResponse> {
        not_yet("Seek")
    }

    async fn read(&self, request: Request<pb::ReadRequest>) -> RpcResult<pb::ReadResponse> {
        reply(self.read(request.into_inner()).await)
    }

    async fn list_topics(
        &self,
        _: Request<pb::ListTopicsRequest>,
    ) -> RpcResult<pb::ListTopicsResponse> {
        reply(self.list_topics().await)
    }

    async fn list_consumers(
        &self,
        _: Request<pb::ListConsumersRequest>,
    ) -> RpcResult<pb::ListConsumersResponse> {
        not_yet("ListConsumers")
    }

    async fn delete_consumer(
        &self,
        _: Request<pb::DeleteConsumerRequest>,
    ) -> RpcResult<pb::DeleteConsumerResponse> {
        not_yet("DeleteConsumer")
    }
}
