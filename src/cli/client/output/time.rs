//! Times as RFC 3339 (UTC, milliseconds), the form `--from` and `seek` accept back.

/// `t` as RFC 3339 in UTC, or `-` when unset or out of range.
pub fn rfc3339(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_rfc3339_in_utc() {
        let t = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5_000_000,
        };
        assert_eq!(rfc3339(Some(&t)), "2023-11-14T22:13:20.005Z");
        assert_eq!(rfc3339(None), "-");
    }
}
