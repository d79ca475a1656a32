//! The topic admin RPCs: the topic's name and its config (retention, event size).

use std::time::Duration;

use super::{duration, topic};
use crate::config::Limits;
use crate::error::ApiError;
use crate::log::{TopicConfig, TopicPatch};
use crate::proto::pulsebus::v1 as pb;

/// The shortest and longest retention age (0 means none).
const RETENTION_AGE_RANGE: (Duration, Duration) = (
    Duration::from_secs(1),
    Duration::from_secs(100 * 365 * 24 * 3600),
);

/// A topic name in the `name` field.
pub fn topic_name(name: &str) -> Result<String, ApiError> {
    topic("name", name)?;
    Ok(name.to_owned())
}

/// CreateTopic: the name and the config (unset fields: no limit).
pub fn create_topic(
    req: pb::CreateTopicRequest,
    limits: &Limits,
) -> Result<(String, TopicConfig), ApiError> {
    let name = topic_name(&req.name)?;
    let patch = patch(req.config, limits)?;
    let config = TopicConfig {
        retention_age: patch.retention_age.flatten(),
        retention_events: patch.retention_events.flatten(),
        max_event_bytes: patch.max_event_bytes.flatten(),
    };
    Ok((name, config))
}

/// UpdateTopic: the name and what changes.
pub fn update_topic(
    req: pb::UpdateTopicRequest,
    limits: &Limits,
) -> Result<(String, TopicPatch), ApiError> {
    let name = topic_name(&req.name)?;
    Ok((name, patch(req.config, limits)?))
}

/// DeleteTopic: the name and whether to force it.
pub fn delete_topic(req: pb::DeleteTopicRequest) -> Result<(String, bool), ApiError> {
    Ok((topic_name(&req.name)?, req.force))
}

/// Each set field of `config` as a change: zero removes the limit.
fn patch(config: Option<pb::TopicConfig>, limits: &Limits) -> Result<TopicPatch, ApiError> {
    let Some(c) = config else {
        return Ok(TopicPatch::default());
    };
    let age = match c.retention_age {
        None => None,
        Some(d) if d.seconds == 0 && d.nanos == 0 => Some(None),
        Some(d) => {
            let field = "config.retention_age";
            Some(Some(duration(
                field,
                Some(d),
                RETENTION_AGE_RANGE,
                Duration::ZERO,
            )?))
        }
    };
    let events = match c.retention_events {
        None => None,
        Some(0) => Some(None),
        Some(n) if n < 0 => {
            let rule = format!("{n} is negative: use 0 for no limit, or the most events to keep");
            return Err(ApiError::invalid("config.retention_events", rule));
        }
        Some(n) => Some(Some(n)),
    };
    let max = limits.max_event_bytes;
    let bytes = match c.max_event_bytes {
        None => None,
        Some(0) => Some(None),
        Some(n) if n as usize > max => {
            let rule = format!(
                "{n} is above the server's --max-event-bytes ({max}); use at most that, or 0 for the server's limit"
            );
            return Err(ApiError::invalid("config.max_event_bytes", rule));
        }
        Some(n) => Some(Some(n)),
    };
    Ok(TopicPatch {
        retention_age: age,
        retention_events: events,
        max_event_bytes: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(age_s: Option<i64>, events: Option<i64>, bytes: Option<u32>) -> pb::TopicConfig {
        pb::TopicConfig {
            retention_age: age_s.map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
            retention_events: events,
            max_event_bytes: bytes,
        }
    }

    fn field_of(err: ApiError) -> String {
        match err {
            ApiError::Invalid { field, .. } => field,
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn unset_fields_keep_and_zero_removes_a_limit() {
        let limits = Limits::default();
        let p = patch(Some(config(Some(0), None, Some(0))), &limits).unwrap();
        assert_eq!(p.retention_age, Some(None));
        assert_eq!(p.retention_events, None);
        assert_eq!(p.max_event_bytes, Some(None));
        let p = patch(Some(config(Some(60), Some(10), Some(100))), &limits).unwrap();
        assert_eq!(p.retention_age, Some(Some(Duration::from_secs(60))));
        assert_eq!(p.retention_events, Some(Some(10)));
        assert_eq!(p.max_event_bytes, Some(Some(100)));
    }

    #[test]
    fn bad_configs_name_their_field() {
        let limits = Limits::default();
        let above = u32::try_from(limits.max_event_bytes + 1).unwrap();
        for (c, field) in [
            (config(Some(-1), None, None), "config.retention_age"),
            (config(None, Some(-5), None), "config.retention_events"),
            (config(None, None, Some(above)), "config.max_event_bytes"),
        ] {
            assert_eq!(field_of(patch(Some(c), &limits).unwrap_err()), field);
        }
        let bad_name = pb::GetTopicRequest {
            name: "no spaces".into(),
        };
        assert_eq!(field_of(topic_name(&bad_name.name).unwrap_err()), "name");
    }
}
