//! `GET /metrics` on its own listener (`--metrics-listen`), served with hyper's
//! HTTP/1 server: hyper is already in the tree (tonic serves gRPC with it), and one
//! route needs no router. Connections are few (Prometheus keeps one open), bounded by
//! [`MAX_CONNECTIONS`], and end with the server's task tree.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Metrics;
use super::stored::Stored;
use crate::tasks::Tasks;

/// Most scrape connections open at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The OpenMetrics text format, which Prometheus negotiates and parses.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a scrape reads: this server's counters, PostgreSQL, and the gauges sampled
/// when asked (the pool and the tail window).
pub struct Scrape {
    /// The server's registry.
    pub metrics: Metrics,
    /// The pool, for its gauges and the stored reads.
    pub pool: PgPool,
    /// The size of the tail window now, in bytes.
    pub window_bytes: Box<dyn Fn() -> usize + Send + Sync>,
}

struct Endpoint {
    scrape: Scrape,
    stored: Stored,
}

impl Endpoint {
    async fn render(&self) -> String {
        let s = &self.scrape;
        self.stored.refresh(&s.metrics).await;
        let f = &s.metrics.families;
        f.pool_connections.set(i64::from(s.pool.size()));
        f.pool_idle.set(s.pool.num_idle() as i64);
        f.pool_max
            .set(i64::from(s.pool.options().get_max_connections()));
        f.tail_window_bytes.set((s.window_bytes)() as i64);
        s.metrics.encode()
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let found = req.uri().path() == "/metrics";
        let status = match (found, req.method()) {
            (true, &Method::GET) => {
                let body = self.render().await;
                return Response::builder()
                    .header(hyper::header::CONTENT_TYPE, CONTENT_TYPE)
                    .body(Full::new(Bytes::from(body)))
                    .expect("a valid response");
            }
            (true, _) => StatusCode::METHOD_NOT_ALLOWED,
            (false, _) => StatusCode::NOT_FOUND,
        };
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::from(
                status.canonical_reason().unwrap_or(""),
            )))
            .expect("a valid response")
    }
}

/// Serves `/metrics` on `listener` in `tasks` until they stop.
pub fn spawn(listener: TcpListener, scrape: Scrape, tasks: &Tasks) {
    let endpoint = Arc::new(Endpoint {
        stored: Stored::new(scrape.pool.clone()),
        scrape,
    });
    tasks.spawn(accept(listener, endpoint, tasks.clone(), tasks.token()));
}

async fn accept(
    listener: TcpListener,
    endpoint: Arc<Endpoint>,
    tasks: Tasks,
    token: CancellationToken,
) {
    let room = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = token.cancelled() => return,
            permit = Arc::clone(&room).acquire_owned() => permit.expect("never closed"),
        };
        let stream = tokio::select! {
            _ = token.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "metrics: accept failed");
                    continue;
                }
            },
        };
        let endpoint = Arc::clone(&endpoint);
        let token = token.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let endpoint = Arc::clone(&endpoint);
                async move { Ok::<_, Infallible>(endpoint.answer(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = token.cancelled() => {}
                result = conn => if let Err(e) = result {
                    tracing::debug!(error = %e, "metrics: connection ended");
                },
            }
        });
    }
}
