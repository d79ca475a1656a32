//! Counts every gRPC call by method and final status code, as a tower layer on the
//! tonic server. A unary call's status is in its trailers (or, for an early error, in
//! the response headers); a stream's is in the trailers it ends with. A call whose
//! response body is dropped before it ended (the client went away) counts as
//! CANCELLED.

use crate::proto::code_name;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Code;

use super::Metrics;
use super::families::Families;
use super::labels::CallLabels;
use crate::proto::pulsebus::v1::event_bus_server::SERVICE_NAME;

/// The methods whose paths become labels; any other path counts as `unknown`, so a
/// client cannot grow the label set.
const OTHER_METHODS: [&str; 4] = [
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The method label of `path`: itself when the server serves it, else `unknown`.
fn method(path: &str) -> &'static str {
    OTHER_METHODS
        .iter()
        .chain(event_bus_methods())
        .find(|m| **m == path)
        .copied()
        .unwrap_or("unknown")
}

/// `/pulsebus.v1.EventBus/<Method>` for every method the descriptor set declares,
/// built once.
fn event_bus_methods() -> &'static [&'static str] {
    static METHODS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    METHODS.get_or_init(|| {
        let pool = prost_reflect::DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("the built descriptor set decodes");
        let service = pool
            .get_service_by_name(SERVICE_NAME)
            .expect("the descriptor set declares EventBus");
        service
            .methods()
            .map(|m| &*format!("/{SERVICE_NAME}/{}", m.name()).leak())
            .collect()
    })
}

/// The `grpc-status` of a header or trailer map, if it has one.
fn status_in(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(Code::from_i32(value.parse().ok()?))
}

/// The layer to put on the tonic server.
#[derive(Clone)]
pub struct CallsLayer {
    metrics: Metrics,
}

impl CallsLayer {
    /// Counts into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> tower_layer::Layer<S> for CallsLayer {
    type Service = Calls<S>;

    fn layer(&self, inner: S) -> Calls<S> {
        Calls {
            inner,
            families: Arc::clone(&self.metrics.families),
        }
    }
}

/// The service the layer wraps around the server's routes.
#[derive(Clone)]
pub struct Calls<S> {
    inner: S,
    families: Arc<Families>,
}

impl<S, B, R> tower_service::Service<Request<B>> for Calls<S>
where
    S: tower_service::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<Counted<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = method(req.uri().path());
        let families = Arc::clone(&self.families);
        let call = self.inner.call(req);
        Box::pin(async move {
            let response = call.await?;
            let early = status_in(response.headers());
            Ok(response.map(|body| Counted {
                body,
                call: Some(Call {
                    families,
                    method,
                    early,
                }),
            }))
        })
    }
}

/// A call not yet counted.
struct Call {
    families: Arc<Families>,
    method: &'static str,
    /// A status already in the response headers (a trailers-only response).
    early: Option<Code>,
}

impl Call {
    fn count(self, code: Code) {
        let labels = CallLabels {
            method: self.method,
            code: code_name(code),
        };
        self.families.grpc_requests.get_or_create(&labels).inc();
    }
}

pin_project! {
    /// A response body that counts its call when it ends (or is dropped unfinished).
    pub struct Counted<B> {
        #[pin]
        body: B,
        call: Option<Call>,
    }

    impl<B> PinnedDrop for Counted<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(call) = this.project().call.take() {
                let code = call.early.unwrap_or(Code::Cancelled);
                call.count(code);
            }
        }
    }
}

impl<B: Body> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.body.poll_frame(cx));
        let code = match &frame {
            Some(Ok(frame)) => frame.trailers_ref().and_then(status_in),
            Some(Err(_)) => Some(Code::Unknown),
            None => Some(
                this.call
                    .as_ref()
                    .and_then(|c| c.early)
                    .unwrap_or(Code::Unknown),
            ),
        };
        if let Some(code) = code
            && let Some(call) = this.call.take()
        {
            call.count(code);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
