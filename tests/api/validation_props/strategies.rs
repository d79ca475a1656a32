//! Generators of requests, valid and invalid in every documented way.

use proptest::collection::{hash_map, vec};
use proptest::prelude::*;
use pulsebus::config::Limits;
use pulsebus::proto::pulsebus::v1 as pb;
use std::collections::HashMap;

use super::reference::*;

/// Valid names mostly, and every way of breaking the topic pattern.
pub fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        24 => "[A-Za-z0-9][A-Za-z0-9._-]{0,16}",
        4 => "[A-Za-z0-9][A-Za-z0-9._-]{125,128}",
        1 => Just(String::new()),
        1 => "[._-][A-Za-z0-9._-]{0,4}",
        1 => "[A-Za-z0-9]{1,4}[ /:@+é\\x00\\n*][A-Za-z0-9]{0,3}",
        1 => ".{0,6}",
    ]
}

/// About 1024 bytes: ASCII, or two-byte characters (bytes, not characters, count).
pub fn near_1024() -> impl Strategy<Value = String> {
    (1018usize..1030, any::<bool>()).prop_map(|(n, wide)| {
        if wide {
            "é".repeat(n / 2) + &"x".repeat(n % 2)
        } else {
            "x".repeat(n)
        }
    })
}

/// A string for a TEXT column, without NUL unless `nul`.
pub fn text(nul: bool) -> BoxedStrategy<String> {
    let s = prop_oneof![
        40 => "[a-z][a-z.-]{0,12}",
        1 => Just(String::new()),
        2 => near_1024(),
        2 => ".{0,8}",
    ];
    if nul {
        prop_oneof![
            6 => s,
            1 => "[a-z]{0,3}\\x00[a-z]{0,3}",
        ]
        .boxed()
    } else {
        s.prop_map(|s| s.replace('\0', "")).boxed()
    }
}

pub fn content_type(nul: bool) -> BoxedStrategy<String> {
    let listed = prop::sample::select(vec![
        "",
        "application/json",
        "Application/JSON; charset=utf-8",
        " application/json\t;",
        "application/cloudevents+json",
        "application/jsonx",
        "application/json-seq",
        "text/json; x=application/json",
        "text/plain",
        "application/protobuf",
        "+json",
    ])
    .prop_map(str::to_owned);
    prop_oneof![8 => listed, 1 => text(nul)].boxed()
}

/// Ids: empty, UUIDs in every text form, near-misses and garbage.
pub fn id() -> impl Strategy<Value = String> {
    let uuid = any::<u128>().prop_map(uuid::Uuid::from_u128);
    prop_oneof![
        12 => Just(String::new()),
        16 => uuid.clone().prop_map(|u| u.to_string()),
        2 => uuid.clone().prop_map(|u| u.to_string().to_uppercase()),
        2 => uuid.clone().prop_map(|u| u.simple().to_string()),
        2 => uuid.clone().prop_map(|u| u.braced().to_string()),
        2 => uuid.clone().prop_map(|u| u.urn().to_string().to_uppercase()),
        2 => (uuid, any::<prop::sample::Index>(), "[0-9a-zA-Z{}: -]").prop_map(|(u, at, c)| {
            let mut s: Vec<char> = u.to_string().chars().collect();
            let i = at.index(s.len() + 1);
            if i == s.len() { s.push('0') } else { s[i] = c.chars().next().unwrap() }
            s.into_iter().collect()
        }),
        1 => "[0-9a-f-]{30,40}",
        1 => ".{0,12}",
    ]
}

pub fn timestamp() -> impl Strategy<Value = prost_types::Timestamp> {
    let (min, max) = time_range();
    let seconds = prop_oneof![
        12 => -2_000_000_000i64..4_000_000_000,
        1 => prop::sample::select(vec![min - 1, min, max, max + 1, i64::MIN, i64::MAX]),
        1 => any::<i64>(),
    ];
    let nanos = prop_oneof![
        12 => 0i32..1_000_000_000,
        1 => prop::sample::select(vec![-1, 0, 999_999_999, 1_000_000_000, i32::MIN, i32::MAX]),
    ];
    (seconds, nanos).prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos })
}

pub fn attributes() -> impl Strategy<Value = HashMap<String, String>> {
    let key = prop_oneof![
        30 => "[a-z][a-z_.-]{0,8}",
        1 => Just(String::new()),
        1 => "[a-z]{0,2}\\x00[a-z]{0,2}",
        1 => near_1024(),
        1 => ".{1,6}",
    ];
    let value = prop_oneof![
        20 => "[ -~]{0,12}",
        1 => "[a-z]{0,2}\\x00",
        2 => (1000usize..2100).prop_map(|n| "v".repeat(n)),
    ];
    prop_oneof![2 => Just(HashMap::new()), 3 => hash_map(key, value, 0..4)]
}

pub fn json_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => "[a-zA-Z0-9 é€😀]{0,4}",
        4 => prop::sample::select(vec![
            "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t",
            "\\u00e9", "\\u20AC", "\\ud83d\\ude00", "\\uD83D\\uDE00", "\\\\u0000",
        ])
        .prop_map(str::to_owned),
        1 => prop::sample::select(vec![
            "\\u0000", "\\ud800", "\\udc00", "\\ud800\\u0041", "\\ud800x", "\\x", "\\u12",
            "\u{1}", "\t", "\n", "\"",
        ])
        .prop_map(str::to_owned),
    ];
    vec(piece, 0..4).prop_map(|p| format!("\"{}\"", p.concat()))
}

pub fn json_number() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "-?(0|[1-9][0-9]{0,5})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
        1 => (1u8..=9, 300usize..=320).prop_map(|(d, n)| format!("{d}{}", "0".repeat(n))),
        1 => prop::sample::select(vec![
            "01", "1.", ".5", "+1", "1e", "1e+", "-", "NaN", "Infinity", "0x1F", "1_000",
        ])
        .prop_map(str::to_owned),
    ]
}

pub fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(vec!["null", "true", "false", "nul", "True"]).prop_map(str::to_owned),
        json_number(),
        json_string(),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(","))),
            vec((json_string(), inner), 0..4).prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// JSON text: mostly valid, with odd whitespace, mutations, deep nesting and garbage.
pub fn json_text() -> impl Strategy<Value = String> {
    let ws = || "[ \t\r\n]{0,2}";
    prop_oneof![
        6 => (ws(), json_value(), ws()).prop_map(|(a, v, b)| format!("{a}{v}{b}")),
        2 => (json_value(), any::<prop::sample::Index>(), "[\\[\\]{}\",:0a\\\\ \\x0b\\x00]?")
            .prop_map(|(v, at, c)| {
                let mut cut = at.index(v.len() + 1);
                while !v.is_char_boundary(cut) {
                    cut -= 1;
                }
                let rest: String = v[cut..].chars().skip(1).collect();
                format!("{}{c}{rest}", &v[..cut])
            }),
        1 => (MAX_JSON_DEPTH - 3..MAX_JSON_DEPTH + 4, any::<bool>()).prop_map(|(d, obj)| {
            if obj {
                "{\"a\":".repeat(d - 1) + "{}" + &"}".repeat(d - 1)
            } else {
                "[".repeat(d) + &"]".repeat(d)
            }
        }),
        1 => ".{0,10}",
    ]
}

pub fn data(nul: bool) -> BoxedStrategy<Option<pb::event::Data>> {
    use pb::event::Data;
    let type_url = prop_oneof![
        4 => Just("type.googleapis.com/edupulse.events.v1.LessonPublished".to_owned()),
        1 => Just(String::new()),
        1 => text(nul),
    ];
    prop_oneof![
        2 => Just(None),
        2 => (0usize..700).prop_map(|n| Some(Data::BinaryData(vec![0xAB; n]))),
        4 => json_value().prop_map(|t| Some(Data::TextData(t))),
        1 => json_text().prop_map(|t| Some(Data::TextData(t))),
        1 => "[ -~]{0,20}|[a-z]{0,3}\\x00".prop_map(|t| Some(Data::TextData(t))),
        // Bytes of 1s are a valid message only when empty; "lesson" is a valid one.
        1 => (type_url, 0usize..64, any::<bool>()).prop_map(|(type_url, n, valid)| {
            Some(Data::ProtoData(prost_types::Any {
                type_url,
                value: if valid { b"\x0a\x06lesson".to_vec() } else { vec![1; n] },
            }))
        }),
    ]
    .boxed()
}

pub fn schema_version() -> impl Strategy<Value = u32> {
    prop_oneof![
        20 => 0u32..5,
        1 => prop::sample::select(vec![i32::MAX as u32, i32::MAX as u32 + 1, u32::MAX]),
        1 => any::<u32>(),
    ]
}

/// One event; `nul` lets NUL into the strings stored in TEXT columns.
pub fn event(nul: bool) -> impl Strategy<Value = pb::Event> {
    let strings = (text(nul), text(nul), text(nul), text(nul), text(nul));
    let envelope = (id(), strings, content_type(nul), schema_version());
    let rest = (
        prop::option::weighted(0.3, timestamp()),
        attributes(),
        data(nul),
    );
    (envelope, rest).prop_map(
        |((id, (t, source, subject, correlation_id, causation_id), content_type, v), rest)| {
            let (time, attributes, data) = rest;
            pb::Event {
                id,
                r#type: t,
                source,
                subject,
                time,
                correlation_id,
                causation_id,
                schema_version: v,
                attributes,
                content_type,
                data,
            }
        },
    )
}

/// Small limits so sizes straddle them, or the defaults so the 1024-byte rules show.
pub fn limits() -> impl Strategy<Value = Limits> {
    let small =
        (64usize..1500, 128usize..4000, 1usize..8).prop_map(|(event, request, batch)| Limits {
            max_event_bytes: event,
            max_request_bytes: request,
            max_batch_events: batch,
        });
    prop_oneof![small, Just(Limits::default())]
}

/// A Publish request; some events then repeat an earlier event's id, in any text form.
pub fn publish_request(nul: bool) -> impl Strategy<Value = pb::PublishRequest> {
    let copies = vec(
        (
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            0..3u8,
        ),
        0..2,
    );
    let count = prop_oneof![1 => Just(0usize), 20 => 1usize..5, 2 => 5usize..9];
    let events = count.prop_flat_map(move |n| vec(event(nul), n));
    (name(), events, copies).prop_map(|(topic, mut events, copies)| {
        for (from, to, form) in copies {
            if events.len() < 2 {
                break;
            }
            let (from, to) = (from.index(events.len()), to.index(events.len()));
            let id = match (parse_uuid(&events[from].id), form) {
                (Some(id), 0) => uuid::Uuid::from_u128(id).simple().to_string(),
                (Some(id), 1) => uuid::Uuid::from_u128(id).to_string().to_uppercase(),
                _ => events[from].id.clone(),
            };
            events[to].id = id;
        }
        pb::PublishRequest { topic, events }
    })
}

/// Type filters, without NUL unless `nul`.
pub fn types(nul: bool) -> BoxedStrategy<Vec<String>> {
    let t = prop_oneof![
        12 => "[a-z][a-z.]{0,10}",
        1 => Just(String::new()),
        1 => near_1024(),
        1 => ".{1,6}",
    ];
    if nul {
        let t = prop_oneof![5 => t, 1 => "[a-z]{0,3}\\x00[a-z]{0,3}"];
        vec(t, 0..4).boxed()
    } else {
        let t = t.prop_map(|t| t.replace('\0', ""));
        vec(t, 0..4).boxed()
    }
}

pub fn start() -> impl Strategy<Value = Option<pb::StartPosition>> {
    use pb::start_position::Position;
    let position = prop_oneof![
        Just(None),
        Just(Some(Position::Earliest(Default::default()))),
        Just(Some(Position::Latest(Default::default()))),
        prop_oneof![-2i64..4, any::<i64>()].prop_map(|o| Some(Position::Offset(o))),
        timestamp().prop_map(|t| Some(Position::Time(t))),
    ];
    prop_oneof![
        1 => Just(None),
        4 => position.prop_map(|position| Some(pb::StartPosition { position })),
    ]
}

pub fn consumer() -> impl Strategy<Value = String> {
    prop_oneof![1 => Just(String::new()), 3 => name()]
}
