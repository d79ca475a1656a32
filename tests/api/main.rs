//! The integration tests of pulsebus, in one binary (one link instead of one per
//! file): real servers on 127.0.0.1:0, each over a fresh database of one shared
//! throwaway PostgreSQL cluster (see `helpers`). One module per behaviour area.

mod helpers;

mod auth;
mod batches;
mod binary;
mod catchup_sharing;
mod cli;
mod client;
mod consumers;
mod divergence;
mod e2e;
mod error_details;
mod failover;
mod faults;
mod first_run;
mod flow_control;
mod group_commit;
mod idempotency;
mod limits;
mod metrics;
mod node_client;
mod offsets;
mod outage;
mod pagination;
mod payloads;
mod publish;
mod python_client;
mod read;
mod replication;
mod retention;
mod services;
mod stream_states;
mod subscribe_concurrency;
mod subscribe_tail;
mod takeover;
mod tls;
mod topics_admin;
mod trace_context;
mod validation;
mod validation_props;
mod wire_garbage;
mod work_queue;
