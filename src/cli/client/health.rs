//! `pulsebus health`: ask the server's grpc.health.v1 service whether it serves, for
//! container health checks and scripts (exit 0 serving, else non-zero), so an image
//! needs no separate probe binary.

use clap::Args;
use serde_json::json;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::output::{Output, OutputArgs};
use super::{Client, ClientError, Connection};

/// Check that the server is serving (grpc.health.v1.Health/Check); exit 0 when it is.
#[derive(Debug, Args)]
pub struct Health {
    /// The service to ask about; empty: the whole server.
    #[arg(long, default_value = "")]
    pub service: String,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

impl Health {
    /// Prints the status; NOT_SERVING (or unknown) is an error with exit code 4.
    pub async fn run(self) -> Result<(), ClientError> {
        let client = Client::connect(&self.connection).await?;
        let mut health = HealthClient::new(client.channel.clone());
        let request = client.request(HealthCheckRequest {
            service: self.service.clone(),
        });
        let reply = health.check(request).await?.into_inner();
        let status = ServingStatus::try_from(reply.status).unwrap_or(ServingStatus::Unknown);
        let name = status.as_str_name();
        let output = Output::from(self.output);
        if output.json {
            output.json_line(&json!({"service": self.service, "status": name}))?;
        } else {
            output.line(name)?;
        }
        if status == ServingStatus::Serving {
            return Ok(());
        }
        let service = if self.service.is_empty() {
            "the server".to_owned()
        } else {
            self.service
        };
        Err(ClientError::NotServing {
            service,
            status: name.to_owned(),
        })
    }
}
