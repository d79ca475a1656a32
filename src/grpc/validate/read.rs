//! Validation of Read.

use super::{topic, types};
use crate::error::ApiError;
use crate::proto::pulsebus::v1 as pb;

/// A validated Read request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadParams {
    /// The topic.
    pub topic: String,
    /// First offset (inclusive); 0: the first retained offset (the start).
    pub from: i64,
    /// Page size, 1 to [`MAX_READ_LIMIT`].
    pub limit: i64,
    /// Type filter; empty keeps all.
    pub types: Vec<String>,
}

/// Page size when a Read asks for 0.
pub const DEFAULT_READ_LIMIT: i64 = 100;
/// Largest page a Read returns.
pub const MAX_READ_LIMIT: i64 = 1000;

/// Validates a Read request: `from_offset` 0 means the start; `limit` 0 means 100 and is capped at 1000.
pub fn read(req: pb::ReadRequest) -> Result<ReadParams, ApiError> {
    topic("topic", &req.topic)?;
    if req.from_offset < 0 {
        return Err(ApiError::invalid(
            "from_offset",
            "must not be negative (0 means the start)",
        ));
    }
    types("types", &req.types)?;
    let limit = match i64::from(req.limit) {
        0 => DEFAULT_READ_LIMIT,
        n => n.min(MAX_READ_LIMIT),
    };
    Ok(ReadParams {
        topic: req.topic,
        from: req.from_offset,
        limit,
        types: req.types,
    })
}
