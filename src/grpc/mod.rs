//! The `EventBus` gRPC service: one small function per RPC that validates the request,
//! calls the log or the subscription engine, and converts the reply. No SQL here.

mod convert;
pub mod validate;
pub mod validate_subscribe;

pub use convert::timestamp;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::config::Limits;
use crate::error::ApiError;
use crate::log::EventLog;
use crate::proto::pulsebus::v1 as pb;
use crate::proto::pulsebus::v1::event_bus_server::EventBus;
use crate::subscribe::Engine;

/// The service behind `pulsebus.v1.EventBus`.
#[derive(Clone)]
pub struct EventBusService {
    log: EventLog,
    engine: Arc<Engine>,
    limits: Limits,
}

/// The stream a Subscribe call returns.
pub type SubscribeStream =
    Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

impl EventBusService {
    /// A service over `log` and `engine`, enforcing `limits` on requests.
    pub fn new(log: EventLog, engine: Arc<Engine>, limits: Limits) -> Self {
        Self {
            log,
            engine,
            limits,
        }
    }

    async fn publish(&self, req: pb::PublishRequest) -> Result<pb::PublishResponse, ApiError> {
        let (topic, events) = validate::publish(req, &self.limits)?;
        let appended = self.log.append(&topic, events).await?;
        let results = appended.into_iter().map(Into::into).collect();
        Ok(pb::PublishResponse { results })
    }

    async fn subscribe(
        &self,
        req: pb::SubscribeRequest,
        peer: Option<SocketAddr>,
    ) -> Result<SubscribeStream, ApiError> {
        let params = validate_subscribe::subscribe(req)?;
        let rx = self.engine.subscribe(params, peer).await?;
        let stream = ReceiverStream::new(rx).map(|item| {
            item.map(Into::into)
                .map_err(|e| Status::from(ApiError::from(e)))
        });
        Ok(Box::pin(stream))
    }

    async fn ack(&self, req: pb::AckRequest) -> Result<pb::AckResponse, ApiError> {
        let consumer = validate_subscribe::ack(&req)?;
        let committed = self
            .engine
            .ack(&req.topic, consumer.as_deref(), req.offset)
            .await?;
        Ok(pb::AckResponse {
            committed_offset: committed,
        })
    }

    async fn seek(&self, req: pb::SeekRequest) -> Result<pb::SeekResponse, ApiError> {
        let (topic, consumer, start) = validate_subscribe::seek(req)?;
        let committed = self.engine.seek(&topic, &consumer, start).await?;
        Ok(pb::SeekResponse {
            committed_offset: committed,
        })
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

    async fn list_consumers(
        &self,
        req: pb::ListConsumersRequest,
    ) -> Result<pb::ListConsumersResponse, ApiError> {
        validate::topic("topic", &req.topic)?;
        let consumers = self.engine.list(&req.topic).await?;
        let consumers = consumers
            .into_iter()
            .map(|c| convert::consumer_info(&req.topic, c))
            .collect();
        Ok(pb::ListConsumersResponse { consumers })
    }

    async fn delete_consumer(
        &self,
        req: pb::DeleteConsumerRequest,
    ) -> Result<pb::DeleteConsumerResponse, ApiError> {
        let (topic, consumer) = validate_subscribe::delete_consumer(req)?;
        self.engine.delete(&topic, &consumer).await?;
        Ok(pb::DeleteConsumerResponse {})
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

fn reply<T>(result: Result<T, ApiError>) -> RpcResult<T> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl EventBus for EventBusService {
    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> RpcResult<pb::PublishResponse> {
        reply(self.publish(request.into_inner()).await)
    }

    type SubscribeStream = SubscribeStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> RpcResult<Self::SubscribeStream> {
        let peer = request.remote_addr();
        reply(self.subscribe(request.into_inner(), peer).await)
    }

    async fn ack(&self, request: Request<pb::AckRequest>) -> RpcResult<pb::AckResponse> {
        reply(self.ack(request.into_inner()).await)
    }

    async fn seek(&self, request: Request<pb::SeekRequest>) -> RpcResult<pb::SeekResponse> {
        reply(self.seek(request.into_inner()).await)
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
        request: Request<pb::ListConsumersRequest>,
    ) -> RpcResult<pb::ListConsumersResponse> {
        reply(self.list_consumers(request.into_inner()).await)
    }

    async fn delete_consumer(
        &self,
        request: Request<pb::DeleteConsumerRequest>,
    ) -> RpcResult<pb::DeleteConsumerResponse> {
        reply(self.delete_consumer(request.into_inner()).await)
    }
}
