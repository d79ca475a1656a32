//! The `EventBus` gRPC service: one small function per RPC that validates the request,
//! checks the caller may touch the topic, calls the log or the subscription engine,
//! and converts the reply. No SQL here.

mod batching;
mod convert;
mod observe;
pub mod paging;
mod topics;
pub mod validate;
pub mod wire;

pub use convert::timestamp;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::auth::{Action, AuthError, Principal};
use crate::config::Limits;
use crate::error::ApiError;
use crate::log::{EventLog, Redelivery};
use crate::metrics::Metrics;
use crate::proto::pulsebus::v1 as pb;
use crate::proto::pulsebus::v1::event_bus_server::EventBus;
use crate::subscribe::Engine;
use crate::telemetry::{self, TRACEPARENT, TRACESTATE, TraceContext};
use tracing::Instrument;

/// The service behind `pulsebus.v1.EventBus`.
#[derive(Clone)]
pub struct EventBusService {
    log: EventLog,
    engine: Arc<Engine>,
    limits: Limits,
    metrics: Metrics,
}

/// The stream a Subscribe call returns: responses already encoded (see [`wire`]).
pub type SubscribeStream = Pin<Box<dyn Stream<Item = Result<wire::Encoded, Status>> + Send>>;

type Who = Arc<Principal>;

impl EventBusService {
    /// A service over `log` and `engine`, enforcing `limits` on requests.
    pub fn new(log: EventLog, engine: Arc<Engine>, limits: Limits) -> Self {
        Self {
            log,
            engine,
            limits,
            metrics: Metrics::new(),
        }
    }

    /// The service counting its requests in `metrics`.
    pub fn with_metrics(self, metrics: &Metrics) -> Self {
        let metrics = metrics.clone();
        Self { metrics, ..self }
    }

    async fn publish(
        &self,
        who: Who,
        req: pb::PublishRequest,
        trace: Option<TraceContext>,
    ) -> Result<pb::PublishResponse, ApiError> {
        let (topic, mut events, largest) = validate::publish(req, &self.limits)?;
        who.check(Action::Publish, &topic)?;
        if let Some(trace) = &trace {
            events
                .iter_mut()
                .for_each(|e| trace.stamp(&mut e.attributes));
        }
        let appended = self.log.append(&topic, events, largest).await?;
        let results = appended.into_iter().map(Into::into).collect();
        Ok(pb::PublishResponse { results })
    }

    async fn subscribe(
        &self,
        who: Who,
        req: pb::SubscribeRequest,
        peer: Option<SocketAddr>,
    ) -> Result<SubscribeStream, ApiError> {
        validate::request_size(&req, &self.limits)?;
        let batch_records = validate::batch_records(req.batch_records)?;
        let last_seen = validate::last_seen(req.last_seen.as_ref())?;
        let params = validate::subscribe(req)?;
        who.check(Action::Subscribe, &params.topic)?;
        if let Some(seen) = last_seen {
            self.log.check_seen(&params.topic, seen).await?;
        }
        let (topic, consumer) = (params.topic.clone(), params.consumer.clone());
        let items = ReceiverStream::new(self.engine.subscribe(params, peer).await?);
        let items = observe::subscription(&self.metrics, &topic, consumer.as_deref(), items);
        Ok(match batch_records {
            0 => Box::pin(items.map(batching::encoded)),
            max => Box::pin(batching::Batches::new(items, max)),
        })
    }

    async fn ack(&self, who: Who, req: pb::AckRequest) -> Result<pb::AckResponse, ApiError> {
        let (consumer, acked) = validate::ack(&req)?;
        who.check(Action::Subscribe, &req.topic)?;
        let position = match acked {
            validate::Acked::UpTo(offset) => {
                let consumer = consumer.as_deref();
                let epoch = req.seek_epoch;
                self.engine.ack(&req.topic, consumer, offset, epoch).await?
            }
            validate::Acked::Records(offsets) => {
                let consumer = consumer.ok_or(crate::subscribe::SubscribeError::Ephemeral)?;
                self.engine
                    .ack_records(&req.topic, &consumer, &offsets, req.seek_epoch)
                    .await?
            }
        };
        let consumer = Some(&*req.consumer).filter(|c| !c.is_empty());
        self.metrics.acked(&req.topic, consumer);
        Ok(pb::AckResponse {
            committed_offset: position.committed,
            seek_epoch: position.epoch,
        })
    }

    async fn seek(&self, who: Who, req: pb::SeekRequest) -> Result<pb::SeekResponse, ApiError> {
        let (topic, consumer, start) = validate::seek(req)?;
        who.check(Action::Subscribe, &topic)?;
        let position = self.engine.seek(&topic, &consumer, start).await?;
        Ok(pb::SeekResponse {
            committed_offset: position.committed,
            seek_epoch: position.epoch,
        })
    }

    async fn read(&self, who: Who, req: pb::ReadRequest) -> Result<pb::ReadResponse, ApiError> {
        validate::request_size(&req, &self.limits)?;
        let p = validate::read(req)?;
        who.check(Action::Subscribe, &p.topic)?;
        let (records, head) = self.log.read(&p.topic, p.from, p.limit, &p.types).await?;
        let records = records.into_iter().map(Into::into).collect();
        Ok(pb::ReadResponse {
            records,
            head_offset: head,
        })
    }

    async fn list_topics(
        &self,
        who: Who,
        req: pb::ListTopicsRequest,
    ) -> Result<pb::ListTopicsResponse, ApiError> {
        let page = paging::page(req.page_size, &req.page_token)?;
        let mut topics = self
            .log
            .list_topics(page.after.as_deref(), i64::from(page.size) + 1)
            .await?;
        let more = topics.len() > page.size as usize;
        topics.truncate(page.size as usize);
        let next_page_token = paging::next_token(more.then(|| &*topics[topics.len() - 1].name));
        let visible = topics.into_iter().filter(|t| who.sees(&t.name));
        Ok(pb::ListTopicsResponse {
            topics: visible.map(Into::into).collect(),
            next_page_token,
        })
    }

    async fn list_consumers(
        &self,
        who: Who,
        req: pb::ListConsumersRequest,
    ) -> Result<pb::ListConsumersResponse, ApiError> {
        validate::topic("topic", &req.topic)?;
        let page = paging::page(req.page_size, &req.page_token)?;
        who.check(Action::Subscribe, &req.topic)?;
        let limit = i64::from(page.size) + 1;
        let mut consumers = self
            .engine
            .list(&req.topic, page.after.as_deref(), limit)
            .await?;
        let more = consumers.len() > page.size as usize;
        consumers.truncate(page.size as usize);
        let last = more.then(|| &*consumers[consumers.len() - 1].name);
        let next_page_token = paging::next_token(last);
        let consumers = consumers
            .into_iter()
            .map(|c| convert::consumer_info(&req.topic, c))
            .collect();
        Ok(pb::ListConsumersResponse {
            consumers,
            next_page_token,
        })
    }

    async fn delete_consumer(
        &self,
        who: Who,
        req: pb::DeleteConsumerRequest,
    ) -> Result<pb::DeleteConsumerResponse, ApiError> {
        let (topic, consumer) = validate::delete_consumer(req)?;
        who.check(Action::Admin, &topic)?;
        self.engine.delete(&topic, &consumer).await?;
        Ok(pb::DeleteConsumerResponse {})
    }
}

impl EventBusService {
    async fn update_consumer(
        &self,
        who: Who,
        req: pb::UpdateConsumerRequest,
    ) -> Result<pb::ConsumerInfo, ApiError> {
        let (topic, consumer, patch) = validate::update_consumer(&req)?;
        who.check(Action::Admin, &topic)?;
        let info = self.engine.update(&topic, &consumer, &patch).await?;
        Ok(convert::consumer_info(&topic, info))
    }

    async fn nack(&self, who: Who, req: pb::NackRequest) -> Result<pb::NackResponse, ApiError> {
        let p = validate::nack(req)?;
        who.check(Action::Subscribe, &p.topic)?;
        let redelivery = match p.dead_letter {
            true => Redelivery::DeadLetter(&p.reason),
            false => Redelivery::After(p.delay, &p.reason),
        };
        self.engine
            .nack(&p.topic, &p.consumer, &p.offsets, redelivery)
            .await?;
        Ok(pb::NackResponse {})
    }

    async fn extend_ack_deadline(
        &self,
        who: Who,
        req: pb::ExtendAckDeadlineRequest,
    ) -> Result<pb::ExtendAckDeadlineResponse, ApiError> {
        let (topic, consumer, offsets, deadline) = validate::extend(req)?;
        who.check(Action::Subscribe, &topic)?;
        self.engine
            .extend(&topic, &consumer, &offsets, deadline)
            .await?;
        Ok(pb::ExtendAckDeadlineResponse {})
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

fn reply<T>(result: Result<T, ApiError>) -> RpcResult<T> {
    result.map(Response::new).map_err(Status::from)
}

/// The W3C trace context in the request's metadata, when well formed.
fn trace_context(metadata: &tonic::metadata::MetadataMap) -> Option<TraceContext> {
    let text = |key| metadata.get(key).and_then(|v| v.to_str().ok());
    TraceContext::parse(text(TRACEPARENT)?, text(TRACESTATE))
}

/// The caller the auth interceptor attached to the request, and the message. Fails
/// closed: a request that did not pass the interceptor is unauthenticated.
fn caller<T>(request: Request<T>) -> Result<(Who, T), Status> {
    let who = request.extensions().get::<Who>().cloned();
    let who = who.ok_or_else(|| Status::from(ApiError::from(AuthError::Missing)))?;
    Ok((who, request.into_inner()))
}

#[tonic::async_trait]
impl EventBus for EventBusService {
    async fn create_topic(
        &self,
        request: Request<pb::CreateTopicRequest>,
    ) -> RpcResult<pb::TopicInfo> {
        let (who, req) = caller(request)?;
        reply(self.create_topic(who, req).await)
    }

    async fn get_topic(&self, request: Request<pb::GetTopicRequest>) -> RpcResult<pb::TopicInfo> {
        let (who, req) = caller(request)?;
        reply(self.get_topic(who, req).await)
    }

    async fn update_topic(
        &self,
        request: Request<pb::UpdateTopicRequest>,
    ) -> RpcResult<pb::TopicInfo> {
        let (who, req) = caller(request)?;
        reply(self.update_topic(who, req).await)
    }

    async fn delete_topic(
        &self,
        request: Request<pb::DeleteTopicRequest>,
    ) -> RpcResult<pb::DeleteTopicResponse> {
        let (who, req) = caller(request)?;
        reply(self.delete_topic(who, req).await)
    }

    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> RpcResult<pb::PublishResponse> {
        let trace = trace_context(request.metadata());
        let (who, req) = caller(request)?;
        let span = telemetry::publish_span(&req.topic, req.events.len(), trace.as_ref());
        let observed = observe::Publish::of(&req);
        let result = self.publish(who, req, trace).instrument(span).await;
        observed.ended(&self.metrics, &result);
        reply(result)
    }

    type SubscribeStream = SubscribeStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> RpcResult<Self::SubscribeStream> {
        let peer = request.remote_addr();
        let (who, req) = caller(request)?;
        reply(self.subscribe(who, req, peer).await)
    }

    async fn ack(&self, request: Request<pb::AckRequest>) -> RpcResult<pb::AckResponse> {
        let (who, req) = caller(request)?;
        reply(self.ack(who, req).await)
    }

    async fn seek(&self, request: Request<pb::SeekRequest>) -> RpcResult<pb::SeekResponse> {
        let (who, req) = caller(request)?;
        reply(self.seek(who, req).await)
    }

    async fn read(&self, request: Request<pb::ReadRequest>) -> RpcResult<pb::ReadResponse> {
        let (who, req) = caller(request)?;
        reply(self.read(who, req).await)
    }

    async fn list_topics(
        &self,
        request: Request<pb::ListTopicsRequest>,
    ) -> RpcResult<pb::ListTopicsResponse> {
        let (who, req) = caller(request)?;
        reply(self.list_topics(who, req).await)
    }

    async fn list_consumers(
        &self,
        request: Request<pb::ListConsumersRequest>,
    ) -> RpcResult<pb::ListConsumersResponse> {
        let (who, req) = caller(request)?;
        reply(self.list_consumers(who, req).await)
    }

    async fn delete_consumer(
        &self,
        request: Request<pb::DeleteConsumerRequest>,
    ) -> RpcResult<pb::DeleteConsumerResponse> {
        let (who, req) = caller(request)?;
        reply(self.delete_consumer(who, req).await)
    }

    async fn update_consumer(
        &self,
        request: Request<pb::UpdateConsumerRequest>,
    ) -> RpcResult<pb::ConsumerInfo> {
        let (who, req) = caller(request)?;
        reply(self.update_consumer(who, req).await)
    }

    async fn nack(&self, request: Request<pb::NackRequest>) -> RpcResult<pb::NackResponse> {
        let (who, req) = caller(request)?;
        reply(self.nack(who, req).await)
    }

    async fn extend_ack_deadline(
        &self,
        request: Request<pb::ExtendAckDeadlineRequest>,
    ) -> RpcResult<pb::ExtendAckDeadlineResponse> {
        let (who, req) = caller(request)?;
        reply(self.extend_ack_deadline(who, req).await)
    }
}
