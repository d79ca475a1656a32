//! The NOTIFY doorbells, in one place: the channel names, the SQL that rings them and
//! the parsing of what arrives. Payloads are JSON arrays (`["lessons", 42]`), so no
//! name needs to avoid a separator character.
//!
//! - head: an append moved a topic's head, `[topic, head]`;
//! - consumer: an ack or a seek moved a consumer, `[topic, consumer, committed, epoch]`;
//! - release: a subscriber let go of a consumer's lease (or, shared, records became
//!   due again), `[topic, consumer]`;
//! - settle: records of a shared consumer were acked, `[topic, consumer]`;
//! - removed: events were deleted (retention, DeleteTopic, or SQL by hand), rung by the
//!   triggers of `migrations/0008_removed_events.sql`, `[topic, highest removed offset,
//!   topic row gone]`.

use super::Position;

/// The channel names; macros so that SQL statements can embed them with `concat!`.
macro_rules! head_channel {
    () => {
        "pulsebus_head"
    };
}
macro_rules! consumer_channel {
    () => {
        "pulsebus_consumer"
    };
}
macro_rules! release_channel {
    () => {
        "pulsebus_release"
    };
}
macro_rules! settle_channel {
    () => {
        "pulsebus_settle"
    };
}

macro_rules! removed_channel {
    () => {
        "pulsebus_removed"
    };
}

/// SQL that announces `$topic`'s new head `$head` (SQL expressions).
macro_rules! notify_head {
    ($topic:literal, $head:literal) => {
        concat!(
            "pg_notify('",
            head_channel!(),
            "', json_build_array(",
            $topic,
            ", ",
            $head,
            ")::text)"
        )
    };
}

/// SQL that announces a consumer's position (SQL expressions).
macro_rules! notify_consumer {
    ($topic:literal, $consumer:literal, $committed:literal, $epoch:literal) => {
        concat!(
            "pg_notify('",
            consumer_channel!(),
            "', json_build_array(",
            $topic,
            ", ",
            $consumer,
            ", ",
            $committed,
            ", ",
            $epoch,
            ")::text)"
        )
    };
}

/// SQL that announces a released lease (SQL expressions).
macro_rules! notify_release {
    ($topic:literal, $consumer:literal) => {
        concat!(
            "pg_notify('",
            release_channel!(),
            "', json_build_array(",
            $topic,
            ", ",
            $consumer,
            ")::text)"
        )
    };
}

/// SQL that announces settled records of a shared consumer (SQL expressions).
macro_rules! notify_settle {
    ($topic:literal, $consumer:literal) => {
        concat!(
            "pg_notify('",
            settle_channel!(),
            "', json_build_array(",
            $topic,
            ", ",
            $consumer,
            ")::text)"
        )
    };
}

/// Every channel a listener subscribes to.
pub const CHANNELS: [&str; 5] = [
    head_channel!(),
    consumer_channel!(),
    release_channel!(),
    settle_channel!(),
    removed_channel!(),
];

/// What a notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A topic's head moved.
    Head {
        /// The topic.
        topic: String,
        /// Its new head.
        head: i64,
    },
    /// A consumer's position moved (ack or seek).
    Consumer {
        /// The topic.
        topic: String,
        /// The consumer.
        consumer: String,
        /// Where it stands now.
        position: Position,
    },
    /// Records of a shared consumer were settled.
    Settled {
        /// The topic.
        topic: String,
        /// The consumer.
        consumer: String,
    },
    /// A consumer's lease was released (or, shared, records became due).
    Released {
        /// The topic.
        topic: String,
        /// The consumer.
        consumer: String,
    },
    /// Events of a topic were deleted.
    Removed {
        /// The topic.
        topic: String,
        /// The highest offset removed (the whole topic's head when `topic_gone`).
        through: i64,
        /// The topic row itself was deleted: its name may start again at offset 1.
        topic_gone: bool,
    },
}

/// Parses a notification; `None` for a channel or payload this version does not know.
pub fn parse(channel: &str, payload: &str) -> Option<Notice> {
    match channel {
        head_channel!() => {
            let (topic, head) = serde_json::from_str(payload).ok()?;
            Some(Notice::Head { topic, head })
        }
        consumer_channel!() => {
            let (topic, consumer, committed, epoch) = serde_json::from_str(payload).ok()?;
            let position = Position { committed, epoch };
            Some(Notice::Consumer {
                topic,
                consumer,
                position,
            })
        }
        release_channel!() => {
            let (topic, consumer) = serde_json::from_str(payload).ok()?;
            Some(Notice::Released { topic, consumer })
        }
        settle_channel!() => {
            let (topic, consumer) = serde_json::from_str(payload).ok()?;
            Some(Notice::Settled { topic, consumer })
        }
        removed_channel!() => {
            let (topic, through, topic_gone) = serde_json::from_str(payload).ok()?;
            Some(Notice::Removed {
                topic,
                through,
                topic_gone,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_whatever_the_names_contain() {
        assert_eq!(
            parse("pulsebus_head", r#"["a:b", 42]"#),
            Some(Notice::Head {
                topic: "a:b".into(),
                head: 42
            })
        );
        let notice = parse("pulsebus_consumer", r#"["t", "c:1", 7, 2]"#);
        let position = Position {
            committed: 7,
            epoch: 2,
        };
        assert_eq!(
            notice,
            Some(Notice::Consumer {
                topic: "t".into(),
                consumer: "c:1".into(),
                position
            })
        );
        assert_eq!(
            parse("pulsebus_removed", r#"["t", 9, true]"#),
            Some(Notice::Removed {
                topic: "t".into(),
                through: 9,
                topic_gone: true
            })
        );
        assert!(parse("pulsebus_release", r#"["t"]"#).is_none());
        assert!(parse("elsewhere", r#"["t", "c"]"#).is_none());
    }

    #[test]
    fn the_sql_rings_the_channel_it_names() {
        assert_eq!(
            notify_head!("$1", "$2"),
            "pg_notify('pulsebus_head', json_build_array($1, $2)::text)"
        );
        assert_eq!(CHANNELS[2], "pulsebus_release");
    }
}
