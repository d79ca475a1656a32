//! The server's grpc.health.v1 service, as a load balancer or an operator sees it.

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{TestServer, WAIT};

/// Waits (bounded by [`WAIT`]) until the health service's Watch stream reports `want`
/// for `service` (empty: the whole server).
pub async fn wait_for_health(server: &TestServer, service: &str, want: ServingStatus) {
    let mut client = HealthClient::new(server.channel().await);
    let mut watch = client
        .watch(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let reached = async {
        while let Some(reply) = watch.message().await.unwrap() {
            if reply.status() == want {
                return;
            }
        }
        panic!("the health stream ended");
    };
    tokio::time::timeout(WAIT, reached)
        .await
        .unwrap_or_else(|_| panic!("health of {service:?} never became {want:?}"));
}
