//! The messages and the EventBus client, generated from the repository's `proto/` by
//! build.rs. Names follow the proto packages.

/// The pulsebus API: the event envelope and the `EventBus` service.
pub mod pulsebus {
    /// Version 1 of the API.
    #[allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]
    pub mod v1 {
        tonic::include_proto!("pulsebus.v1");
    }
}

/// EduPulse domain events, sent as `Event.proto_data`.
pub mod edupulse {
    /// Namespace of the EduPulse event payloads.
    pub mod events {
        /// Version 1 of the EduPulse payloads.
        #[allow(clippy::doc_lazy_continuation)]
        pub mod v1 {
            tonic::include_proto!("edupulse.events.v1");
        }
    }
}
