//! A position in a topic as the command line spells it: `earliest`, `latest`, an
//! offset, or an RFC 3339 time; for `tail --from` and `seek`.

use std::str::FromStr;

use crate::proto::pulsebus::v1 as pb;
use pb::start_position::{Earliest, Latest, Position as Pb};

/// Where to start or move to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// The first retained event.
    Earliest,
    /// Only events appended from now on.
    Latest,
    /// This offset, inclusive.
    Offset(i64),
    /// The first event appended at or after this time.
    Time(prost_types::Timestamp),
}

impl FromStr for Position {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "earliest" => return Ok(Self::Earliest),
            "latest" => return Ok(Self::Latest),
            _ => {}
        }
        if let Ok(offset) = s.parse::<i64>() {
            return Ok(Self::Offset(offset));
        }
        let time = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| {
            format!(
                "{s:?} is not earliest, latest, an offset or an RFC 3339 time \
                 (e.g. 2026-12-02T09:00:00Z)"
            )
        })?;
        Ok(Self::Time(prost_types::Timestamp {
            seconds: time.timestamp(),
            nanos: i32::try_from(time.timestamp_subsec_nanos()).expect("below 10^9"),
        }))
    }
}

impl From<Position> for pb::StartPosition {
    fn from(p: Position) -> Self {
        let position = match p {
            Position::Earliest => Pb::Earliest(Earliest {}),
            Position::Latest => Pb::Latest(Latest {}),
            Position::Offset(o) => Pb::Offset(o),
            Position::Time(t) => Pb::Time(t),
        };
        Self {
            position: Some(position),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_from_names_offsets_and_rfc3339_times() {
        assert_eq!("earliest".parse(), Ok(Position::Earliest));
        assert_eq!("latest".parse(), Ok(Position::Latest));
        assert_eq!("42".parse(), Ok(Position::Offset(42)));
        assert_eq!(
            "2023-11-14T22:13:20.5+00:00".parse(),
            Ok(Position::Time(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 500_000_000
            }))
        );
        assert!(
            "yesterday"
                .parse::<Position>()
                .unwrap_err()
                .contains("RFC 3339")
        );
    }
}
