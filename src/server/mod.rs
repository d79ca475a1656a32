//! The gRPC server: EventBus, health and reflection on one listener, run until a
//! shutdown future fires. `main` and the tests build it the same way.

mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;

use crate::auth::{AuthFileError, Authenticator};
use crate::config::ServeConfig;
use crate::db::{self, DbError};
use crate::error::ApiError;
use crate::grpc::EventBusService;
use crate::log::EventLog;
use crate::metrics::{self, Metrics, grpc::CallsLayer};
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::proto::pulsebus::v1::event_bus_server::EventBusServer;
use crate::subscribe::Engine;
use crate::subscribe::tail::{
    Catchup, DEFAULT_WINDOW_BYTES, DEFAULT_WINDOW_RECORDS, DEFAULT_WINDOW_TOTAL_BYTES, Tail, Window,
};
use crate::tasks::{Tasks, remaining};

/// How often the health service checks that PostgreSQL answers.
const HEALTH_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// Room above the request limit so oversized requests reach our own check, which names
/// the limit, rather than the transport's.
const DECODE_SLACK_BYTES: usize = 1024 * 1024;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Connecting or migrating failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The auth file could not be used.
    #[error(transparent)]
    Auth(#[from] AuthFileError),
    /// A TLS certificate or key file could not be read.
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reflection could not load the descriptor set (a build problem).
    #[error("cannot set up server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed while serving.
    #[error("gRPC transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A bound, migrated server that is not serving yet.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    pool: PgPool,
    primary: Arc<db::primary::Primary>,
    replication: db::Replication,
    tls: Option<tonic::transport::ServerTlsConfig>,
    auth: Authenticator,
    config: ServeConfig,
}

impl Server {
    /// Connects to `database_url`, applies migrations and binds the listen address.
    pub async fn build(config: ServeConfig, database_url: &str) -> Result<Self, ServerError> {
        let tls = tls::server_tls(&config.tls)?;
        let auth = match &config.auth_file {
            Some(path) => crate::auth::load(path)?,
            None => Authenticator::open(),
        };
        let db::Database { pool, primary } = db::connect(database_url, &config.database).await?;
        db::migrate(&pool).await?;
        let replication = db::check_replication(&pool, &config.database).await?;
        let addr = config.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        Ok(Self {
            listener,
            metrics_listener,
            pool,
            primary,
            replication,
            tls,
            auth,
            config,
        })
    }

    /// The address actually bound (tests bind port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address `/metrics` is served on, when `--metrics-listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        let listener = self.metrics_listener.as_ref()?;
        Some(
            listener
                .local_addr()
                .expect("a bound listener has an address"),
        )
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests
    /// finish, ends every subscription and background task and closes the pool, all
    /// within one `--shutdown-timeout`.
    pub async fn run_until(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let tasks = Tasks::new();
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(SYNC_REPLICATION_HEALTH, serving(self.replication.healthy()))
            .await;
        tasks.spawn(probe_health(self.pool.clone(), reporter, tasks.token()));
        tasks.spawn(db::primary::follow(
            self.pool.clone(),
            self.primary.clone(),
            tasks.token(),
        ));
        let tail = Tail::with(
            Window::new(
                DEFAULT_WINDOW_RECORDS,
                DEFAULT_WINDOW_BYTES,
                DEFAULT_WINDOW_TOTAL_BYTES,
            ),
            Catchup::new(self.config.subscriptions.shared_catchup_bytes),
        );
        let metrics = Metrics::new();
        self.serve_metrics(&metrics, &tail, &tasks);
        let policy = self.config.topics.policy();
        let log = EventLog::with(self.pool.clone(), tail.clone(), &tasks, policy, &metrics);
        crate::retention::spawn(self.pool.clone(), self.config.retention, &tasks);
        let engine = Arc::new(Engine::start(
            log.clone(),
            tail,
            self.config.subscriptions,
            &tasks,
        ));
        let service = EventBusService::new(log, engine, self.config.limits).with_metrics(&metrics);
        let max_decode = self.config.limits.max_request_bytes + DECODE_SLACK_BYTES;
        let router = self
            .transport()?
            .layer(CallsLayer::new(metrics))
            .add_service(health)
            .add_service(reflection_v1()?)
            .add_service(reflection_v1alpha()?)
            .add_service(InterceptedService::new(
                EventBusServer::new(service).max_decoding_message_size(max_decode),
                authenticate(self.auth.clone()),
            ));
        tracing::info!(addr = %self.local_addr(), "pulsebus serving");
        // Small request/response messages: without TCP_NODELAY, Nagle's algorithm and
        // delayed ACKs add tens of milliseconds per call.
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        let serve = router.serve_with_incoming_shutdown(incoming, tasks.token().cancelled_owned());
        let budget = self.config.shutdown_timeout;
        let (result, deadline) = drain(serve, shutdown, &tasks, budget).await;
        if !tasks.stop(deadline).await {
            tracing::warn!(?budget, "some background tasks did not end in time");
        }
        if tokio::time::timeout(remaining(deadline), self.pool.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections did not close in time");
        }
        tracing::info!("pulsebus stopped");
        result
    }

    /// Serves `/metrics` in `tasks` when `--metrics-listen` is set.
    fn serve_metrics(&mut self, metrics: &Metrics, tail: &Arc<Tail>, tasks: &Tasks) {
        let Some(listener) = self.metrics_listener.take() else {
            return;
        };
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "metrics served on /metrics");
        }
        let tail = Arc::clone(tail);
        let scrape = metrics::http::Scrape {
            metrics: metrics.clone(),
            pool: self.pool.clone(),
            window_bytes: Box::new(move || tail.window_bytes()),
        };
        metrics::http::spawn(listener, scrape, tasks);
    }

    /// The transport with TLS, timeouts and keepalive as configured.
    fn transport(&self) -> Result<tonic::transport::Server, ServerError> {
        let conn = self.config.connections;
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = self.tls.clone() {
            builder = builder.tls_config(tls)?;
        }
        Ok(builder
            .timeout(conn.request_timeout)
            .http2_keepalive_interval(Some(conn.keepalive_interval))
            .http2_keepalive_timeout(Some(conn.keepalive_timeout)))
    }
}

/// The interceptor that authenticates every EventBus call and attaches the caller.
fn authenticate(
    auth: Authenticator,
) -> impl Fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |mut request| {
        let who = auth
            .authenticate(request.metadata())
            .map_err(|e| tonic::Status::from(ApiError::from(e)))?;
        request.extensions_mut().insert(who);
        Ok(request)
    }
}

/// Runs `serve` until `shutdown` fires; then cancels every task (streams end with
/// UNAVAILABLE, the server stops accepting) and gives in-flight requests until the
/// returned deadline, `timeout` after the signal, which the rest of shutdown shares.
async fn drain(
    serve: impl Future<Output = Result<(), tonic::transport::Error>>,
    shutdown: impl Future<Output = ()>,
    tasks: &Tasks,
    timeout: Duration,
) -> (Result<(), ServerError>, Instant) {
    tokio::pin!(serve);
    tokio::select! {
        result = &mut serve => return (result.map_err(Into::into), Instant::now() + timeout),
        () = shutdown => tracing::info!("shutting down: no new connections, finishing in-flight requests"),
    }
    let deadline = Instant::now() + timeout;
    tasks.cancel();
    match tokio::time::timeout_at(deadline, serve).await {
        Ok(result) => (result.map_err(Into::into), deadline),
        Err(_) => {
            tracing::warn!(
                ?timeout,
                "in-flight requests did not finish in time; closing anyway"
            );
            (Ok(()), deadline)
        }
    }
}

fn reflection_v1() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    ServerError,
> {
    Ok(tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?)
}

/// grpcurl 1.8 speaks only the v1alpha reflection protocol.
fn reflection_v1alpha() -> Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
    ServerError,
> {
    Ok(tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?)
}

/// The health service name that reports whether acknowledged publishes survive a
/// PostgreSQL failover right now (see [`db::replication`]).
pub const SYNC_REPLICATION_HEALTH: &str = "pulsebus.sync_replication";

/// Reports SERVING only while PostgreSQL answers a trivial query; and, under
/// [`SYNC_REPLICATION_HEALTH`], SERVING only while commits wait for a synchronous
/// standby that streams.
async fn probe_health(pool: PgPool, reporter: HealthReporter, token: CancellationToken) {
    use tonic_health::ServingStatus;
    let mut tick = tokio::time::interval(HEALTH_PROBE_INTERVAL);
    let mut last = None;
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => break,
            _ = tick.tick() => {}
        }
        let replication = tokio::time::timeout(HEALTH_PROBE_INTERVAL, db::Replication::read(&pool))
            .await
            .ok()
            .and_then(Result::ok);
        let up = replication.is_some();
        let replicated = replication.as_ref().is_some_and(db::Replication::healthy);
        if last != Some((up, replicated)) {
            tracing::info!(
                database_up = up,
                sync_replication = replicated,
                "health changed"
            );
            if let Some(replication) = replication.as_ref().filter(|_| last.is_some()) {
                replication.log();
            }
            last = Some((up, replicated));
        }
        set_health(&reporter, serving(up)).await;
        reporter
            .set_service_status(SYNC_REPLICATION_HEALTH, serving(replicated))
            .await;
    }
    // Draining: load balancers should stop sending new calls here.
    set_health(&reporter, ServingStatus::NotServing).await;
    reporter
        .set_service_status(SYNC_REPLICATION_HEALTH, ServingStatus::NotServing)
        .await;
}

fn serving(yes: bool) -> tonic_health::ServingStatus {
    if yes {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    }
}

/// Sets the server's overall status and the EventBus service's.
async fn set_health(reporter: &HealthReporter, status: tonic_health::ServingStatus) {
    for service in ["", "pulsebus.v1.EventBus"] {
        reporter.set_service_status(service, status).await;
    }
}
