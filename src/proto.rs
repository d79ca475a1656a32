//! Code generated from `proto/` by build.rs, and the descriptor set that server
//! reflection serves so grpcurl can encode and decode every message, EduPulse payloads
//! included.

use std::sync::LazyLock;

/// The pulsebus API: the event envelope and the `EventBus` service.
pub mod pulsebus {
    /// Version 1 of the API; names are fixed, clients in other languages use them.
    #[allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]
    pub mod v1 {
        tonic::include_proto!("pulsebus.v1");
        // The server, generated apart so Subscribe can use its own codec (build.rs).
        include!(concat!(env!("OUT_DIR"), "/pulsebus.v1.EventBus.rs"));
    }
}

/// EduPulse domain events, sent as `Event.proto_data`.
pub mod edupulse {
    /// Namespace of the EduPulse event payloads.
    pub mod events {
        /// Version 1 of the EduPulse payloads.
        pub mod v1 {
            tonic::include_proto!("edupulse.events.v1");
        }
    }
}

/// Every file under `proto/` (and its well-known imports) as an encoded
/// `FileDescriptorSet`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

/// The messages of [`FILE_DESCRIPTOR_SET`], decoded once: the types whose payloads the
/// server validates and renders as JSON.
pub fn descriptor_pool() -> &'static prost_reflect::DescriptorPool {
    static POOL: LazyLock<prost_reflect::DescriptorPool> = LazyLock::new(|| {
        prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET)
            .expect("build.rs writes a complete descriptor set")
    });
    &POOL
}

/// The canonical name of a gRPC code, as grpcurl, the gRPC docs and the Prometheus
/// interceptors of other ecosystems spell it (CLI output, metric labels).
pub fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
