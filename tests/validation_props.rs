//! Property tests of request validation: random Publish, Read, Subscribe, Ack, Seek and
//! DeleteConsumer requests, valid and invalid, checked against an independent reference
//! of the documented rules written here (no server needed).
//!
//! For every request each property checks that validation
//! - never panics;
//! - accepts exactly what the reference accepts, and converts it faithfully;
//! - rejects everything else with `ApiError::Invalid` (INVALID_ARGUMENT) or
//!   `ApiError::TooLarge` (RESOURCE_EXHAUSTED, for size and count limits) whose field is
//!   one the reference finds at fault, and whose status message starts with that field.
//!
//! The reference lists every fault of a request; the validator stops at the first one
//! it finds, so it must name one of them (the order of checks is not a documented rule).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use proptest::collection::{hash_map, vec};
use proptest::prelude::*;
use prost::Message;
use pulsebus::config::Limits;
use pulsebus::error::ApiError;
use pulsebus::grpc::{validate, validate_subscribe};
use pulsebus::log::{Event, Payload};
use pulsebus::proto::pulsebus::v1 as pb;
use pulsebus::subscribe::Start;
use tonic::{Code, Status};

/// Longest text field (type, source, ..., attribute keys, type filters), in bytes.
const MAX_NAME_BYTES: usize = 1024;
/// Deepest JSON nesting accepted (serde_json's recursion limit; PostgreSQL allows more).
const MAX_JSON_DEPTH: usize = 127;
const CASES: u32 = 256;
/// Publish requests have the most rules; they get more cases (still about a second).
const PUBLISH_CASES: u32 = 512;

/// Failures print their minimal input; no regression files are written into tests/.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------
// The reference: what the documented rules say is wrong with a request.
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A rule is broken: `ApiError::Invalid`, INVALID_ARGUMENT.
    Invalid,
    /// A size or count limit is exceeded: `ApiError::TooLarge`, RESOURCE_EXHAUSTED.
    TooLarge,
}

/// One fault the reference finds: its kind and the field path at fault. With `nested`,
/// a path below the field (`events[0].attributes["k"]`) names it too.
#[derive(Debug, Clone)]
struct Fault {
    kind: Kind,
    field: String,
    nested: bool,
}

impl Fault {
    fn names(&self, kind: Kind, field: &str) -> bool {
        kind == self.kind
            && (field == self.field
                || (self.nested && field.starts_with(&format!("{}[", self.field))))
    }
}

#[derive(Debug, Default)]
struct Faults(Vec<Fault>);

impl Faults {
    fn invalid(&mut self, field: impl Into<String>) {
        self.push(Kind::Invalid, field.into(), false);
    }

    fn invalid_nested(&mut self, field: impl Into<String>) {
        self.push(Kind::Invalid, field.into(), true);
    }

    fn too_large(&mut self, field: impl Into<String>) {
        self.push(Kind::TooLarge, field.into(), false);
    }

    fn push(&mut self, kind: Kind, field: String, nested: bool) {
        self.0.push(Fault {
            kind,
            field,
            nested,
        });
    }
}

/// `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`, byte by byte.
fn topic_ok(name: &str) -> bool {
    let b = name.as_bytes();
    let name_char = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-');
    (1..=128).contains(&b.len()) && b[0].is_ascii_alphanumeric() && b[1..].iter().all(name_char)
}

/// A string stored in a TEXT column: at most 1024 bytes, and no NUL (PostgreSQL text
/// cannot hold one).
fn text_ok(value: &str) -> bool {
    value.len() <= MAX_NAME_BYTES && !value.contains('\0')
}

fn hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |n, &d| {
        let v = (d as char).to_digit(16)?;
        Some(n << 4 | u128::from(v))
    })
}

/// A UUID in one of its text forms (any case): 32 hex digits, 8-4-4-4-12 hyphenated,
/// hyphenated in braces, or `urn:uuid:` and hyphenated. Returns its value.
fn parse_uuid(text: &str) -> Option<u128> {
    let b = text.as_bytes();
    let hyphenated = |s: &[u8]| -> Option<u128> {
        if s.len() != 36 || [8, 13, 18, 23].iter().any(|&i| s[i] != b'-') {
            return None;
        }
        let digits: Vec<u8> = s.iter().copied().filter(|&c| c != b'-').collect();
        if digits.len() != 32 {
            None
        } else {
            hex(&digits)
        }
    };
    match b.len() {
        32 => hex(b),
        36 => hyphenated(b),
        38 if b[0] == b'{' && b[37] == b'}' => hyphenated(&b[1..37]),
        45 if b[..9].eq_ignore_ascii_case(b"urn:uuid:") => hyphenated(&b[9..]),
        _ => None,
    }
}

fn time_range() -> (i64, i64) {
    let at = |y, m, d, h, min, s| {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, s)
            .unwrap()
            .and_utc()
            .timestamp()
    };
    (at(1, 1, 1, 0, 0, 0), at(9999, 12, 31, 23, 59, 59))
}

/// A protobuf timestamp between years 1 and 9999 with nanos in `0..1e9`.
fn time_ok(t: &prost_types::Timestamp) -> bool {
    let (min, max) = time_range();
    (min..=max).contains(&t.seconds) && (0..1_000_000_000).contains(&t.nanos)
}

/// `application/json` or any `+json` type, parameters and surrounding blanks ignored.
fn json_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default();
    let essence = essence.trim_matches([' ', '\t']).to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// JSON text (RFC 8259) that JSONB can store (no `\u0000`, no lone surrogate), nested
/// at most [`MAX_JSON_DEPTH`] deep, with every number finite as an f64.
fn json_ok(text: &str) -> bool {
    let mut p = JsonCheck {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    let ok = p.value(1);
    p.ws();
    ok && p.i == p.s.len()
}

/// A recursive-descent JSON recognizer, independent of serde_json.
struct JsonCheck<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonCheck<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.i += usize::from(hit);
        hit
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn word(&mut self, w: &[u8]) -> bool {
        let hit = self.s[self.i..].starts_with(w);
        self.i += if hit { w.len() } else { 0 };
        hit
    }

    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'[') => depth <= MAX_JSON_DEPTH && self.array(depth),
            Some(b'{') => depth <= MAX_JSON_DEPTH && self.object(depth),
            Some(b'"') => self.string(),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.i += 1;
        self.ws();
        if self.eat(b']') {
            return true;
        }
        loop {
            self.ws();
            if !self.value(depth + 1) {
                return false;
            }
            self.ws();
            if !self.eat(b',') {
                return self.eat(b']');
            }
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.i += 1;
        self.ws();
        if self.eat(b'}') {
            return true;
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') || !self.string() {
                return false;
            }
            self.ws();
            if !self.eat(b':') {
                return false;
            }
            self.ws();
            if !self.value(depth + 1) {
                return false;
            }
            self.ws();
            if !self.eat(b',') {
                return self.eat(b'}');
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.i..self.i + 4)?;
        self.i += 4;
        hex(digits).map(|n| n as u32)
    }

    fn string(&mut self) -> bool {
        self.i += 1;
        loop {
            let Some(c) = self.peek() else { return false };
            self.i += 1;
            match c {
                b'"' => return true,
                b'\\' if !self.escape() => return false,
                0..=0x1f => return false,
                _ => {}
            }
        }
    }

    fn escape(&mut self) -> bool {
        let Some(c) = self.peek() else { return false };
        self.i += 1;
        match c {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => true,
            b'u' => match self.hex4() {
                None | Some(0) | Some(0xDC00..=0xDFFF) => false,
                Some(0xD800..=0xDBFF) => {
                    self.word(b"\\u") && matches!(self.hex4(), Some(0xDC00..=0xDFFF))
                }
                Some(_) => true,
            },
            _ => false,
        }
    }

    fn number(&mut self) -> bool {
        let start = self.i;
        self.eat(b'-');
        let digits = |p: &mut Self| {
            let from = p.i;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i > from
        };
        let integer = self.eat(b'0') || (matches!(self.peek(), Some(b'1'..=b'9')) && digits(self));
        if !integer {
            return false;
        }
        if self.eat(b'.') && !digits(self) {
            return false;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            if !digits(self) {
                return false;
            }
        }
        let token = std::str::from_utf8(&self.s[start..self.i]).unwrap();
        token.parse::<f64>().is_ok_and(f64::is_finite)
    }
}

/// Everything wrong with a Publish request under `limits`.
fn publish_faults(req: &pb::PublishRequest, limits: &Limits) -> Faults {
    let mut f = Faults::default();
    if req.encoded_len() > limits.max_request_bytes {
        f.too_large("request");
    }
    if !topic_ok(&req.topic) {
        f.invalid("topic");
    }
    if req.events.is_empty() {
        f.invalid("events");
    }
    if req.events.len() > limits.max_batch_events {
        f.too_large("events");
    }
    let mut ids: HashMap<u128, usize> = HashMap::new();
    for (i, e) in req.events.iter().enumerate() {
        let at = |name: &str| format!("events[{i}].{name}");
        if e.encoded_len() > limits.max_event_bytes {
            f.too_large(format!("events[{i}]"));
        }
        if e.r#type.is_empty() {
            f.invalid(at("type"));
        }
        for (name, value) in [
            ("type", &e.r#type),
            ("source", &e.source),
            ("subject", &e.subject),
            ("correlation_id", &e.correlation_id),
            ("causation_id", &e.causation_id),
            ("content_type", &e.content_type),
        ] {
            if !text_ok(value) {
                f.invalid(at(name));
            }
        }
        if e.schema_version > i32::MAX as u32 {
            f.invalid(at("schema_version"));
        }
        if !e.id.is_empty() {
            match parse_uuid(&e.id) {
                None => f.invalid(at("id")),
                Some(id) => {
                    if ids.insert(id, i).is_some() {
                        f.invalid(at("id"));
                    }
                }
            }
        }
        if e.time.as_ref().is_some_and(|t| !time_ok(t)) {
            f.invalid(at("time"));
        }
        for (key, value) in &e.attributes {
            if key.is_empty() || key.contains('\0') || value.contains('\0') || key.len() > 1024 {
                f.invalid_nested(at("attributes"));
            }
        }
        use pb::event::Data;
        match &e.data {
            Some(Data::TextData(text)) if json_type(&e.content_type) => {
                if !json_ok(text) {
                    f.invalid(at("text_data"));
                }
            }
            Some(Data::TextData(text)) => {
                if text.contains('\0') {
                    f.invalid(at("text_data"));
                }
            }
            Some(Data::ProtoData(any)) => {
                if any.type_url.is_empty() || !text_ok(&any.type_url) {
                    f.invalid(at("proto_data.type_url"));
                }
            }
            Some(Data::BinaryData(_)) | None => {}
        }
    }
    f
}

fn read_faults(req: &pb::ReadRequest) -> Faults {
    let mut f = Faults::default();
    if !topic_ok(&req.topic) {
        f.invalid("topic");
    }
    if req.from_offset < 0 {
        f.invalid("from_offset");
    }
    type_filter_faults(&mut f, &req.types);
    f
}

/// Type filters: each non-empty, at most 1024 bytes and without NUL (they are sent to
/// PostgreSQL as a text[] parameter, which cannot hold one).
fn type_filter_faults(f: &mut Faults, types: &[String]) {
    for (i, t) in types.iter().enumerate() {
        if t.is_empty() || !text_ok(t) {
            f.invalid(format!("types[{i}]"));
        }
    }
}

/// Consumer names: empty (none), or a name following the topic rules.
fn consumer_faults(f: &mut Faults, consumer: &str, required: bool) {
    if (required && consumer.is_empty()) || (!consumer.is_empty() && !topic_ok(consumer)) {
        f.invalid("consumer");
    }
}

fn start_faults(f: &mut Faults, start: &Option<pb::StartPosition>, required: bool) {
    use pb::start_position::Position;
    match start.as_ref().and_then(|s| s.position.as_ref()) {
        None if required => f.invalid("start"),
        Some(Position::Offset(o)) if *o < 1 => f.invalid("start.offset"),
        Some(Position::Time(t)) if !time_ok(t) => f.invalid("start.time"),
        _ => {}
    }
}

fn subscribe_faults(req: &pb::SubscribeRequest) -> Faults {
    let mut f = Faults::default();
    if !topic_ok(&req.topic) {
        f.invalid("topic");
    }
    type_filter_faults(&mut f, &req.types);
    if req.max_in_flight > 100_000 {
        f.invalid("max_in_flight");
    }
    consumer_faults(&mut f, &req.consumer, false);
    start_faults(&mut f, &req.start, false);
    f
}

/// The start a valid position means.
fn expected_start(start: &Option<pb::StartPosition>) -> Start {
    use pb::start_position::Position;
    match start.as_ref().and_then(|s| s.position.as_ref()) {
        None | Some(Position::Earliest(_)) => Start::Earliest,
        Some(Position::Latest(_)) => Start::Latest,
        Some(Position::Offset(offset)) => Start::Offset { offset: *offset },
        Some(Position::Time(t)) => Start::Time {
            at: DateTime::<Utc>::from_timestamp(t.seconds, t.nanos as u32).unwrap(),
        },
    }
}

// ---------------------------------------------------------------------------------
// Checking an outcome against the reference.
// ---------------------------------------------------------------------------------

/// A rejection must be a field error the reference expects, mapped to the right code,
/// with a message that starts with the field path.
fn check_rejection(err: ApiError, faults: &Faults) -> Result<(), TestCaseError> {
    let (kind, field) = match &err {
        ApiError::Invalid { field, .. } => (Kind::Invalid, field.clone()),
        ApiError::TooLarge { field, .. } => (Kind::TooLarge, field.clone()),
        other => return Err(TestCaseError::fail(format!("not a field error: {other:?}"))),
    };
    prop_assert!(
        faults.0.iter().any(|f| f.names(kind, &field)),
        "validator blamed {kind:?} {field:?} ({err}); the reference finds {:?}",
        faults.0
    );
    let status = Status::from(err);
    let code = match kind {
        Kind::Invalid => Code::InvalidArgument,
        Kind::TooLarge => Code::ResourceExhausted,
    };
    prop_assert_eq!(status.code(), code, "{:?}", status);
    prop_assert!(
        status.message().starts_with(&format!("{field}: ")),
        "message {:?} does not start with the field {:?}",
        status.message(),
        field
    );
    Ok(())
}

fn check<T>(
    outcome: Result<T, ApiError>,
    faults: &Faults,
    accepted: impl FnOnce(T) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    match outcome {
        Ok(value) => {
            prop_assert!(
                faults.0.is_empty(),
                "accepted although the reference finds {:?}",
                faults.0
            );
            accepted(value)
        }
        Err(err) => {
            prop_assert!(
                !faults.0.is_empty(),
                "rejected a request the reference accepts: {err}"
            );
            check_rejection(err, faults)
        }
    }
}

/// An accepted Publish keeps every field, fills in the defaults, and has unique ids.
fn check_converted(
    req: &pb::PublishRequest,
    (topic, events): (String, Vec<Event>),
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&topic, &req.topic);
    prop_assert_eq!(events.len(), req.events.len());
    let mut ids = HashSet::new();
    for (got, sent) in events.iter().zip(&req.events) {
        match parse_uuid(&sent.id) {
            Some(id) => prop_assert_eq!(got.id.as_u128(), id),
            None => prop_assert_eq!(got.id.get_version_num(), 7, "an assigned id is a UUIDv7"),
        }
        prop_assert!(ids.insert(got.id), "id {} repeats", got.id);
        prop_assert_eq!(&got.event_type, &sent.r#type);
        prop_assert_eq!(&got.source, &sent.source);
        prop_assert_eq!(&got.subject, &sent.subject);
        prop_assert_eq!(&got.correlation_id, &sent.correlation_id);
        prop_assert_eq!(&got.causation_id, &sent.causation_id);
        prop_assert_eq!(&got.content_type, &sent.content_type);
        let version = if sent.schema_version == 0 {
            1
        } else {
            i64::from(sent.schema_version)
        };
        prop_assert_eq!(i64::from(got.schema_version), version);
        let time = got
            .time
            .map(|t| (t.timestamp(), t.timestamp_subsec_nanos() as i32));
        prop_assert_eq!(time, sent.time.map(|t| (t.seconds, t.nanos)));
        let attributes: HashMap<String, serde_json::Value> = got
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let sent_attributes: HashMap<String, serde_json::Value> = sent
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        prop_assert_eq!(attributes, sent_attributes);
        use pb::event::Data;
        match (&got.payload, &sent.data) {
            (Payload::None, None) => {}
            (Payload::Binary(a), Some(Data::BinaryData(b))) => prop_assert_eq!(a, b),
            (Payload::Json(a), Some(Data::TextData(b))) if json_type(&sent.content_type) => {
                prop_assert_eq!(a, b)
            }
            (Payload::Text(a), Some(Data::TextData(b))) if !json_type(&sent.content_type) => {
                prop_assert_eq!(a, b)
            }
            (Payload::Proto { type_url, value }, Some(Data::ProtoData(any))) => {
                prop_assert_eq!(type_url, &any.type_url);
                prop_assert_eq!(value, &any.value);
            }
            (got, sent) => {
                return Err(TestCaseError::fail(format!(
                    "payload {got:?} does not match {sent:?}"
                )));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Generators.
// ---------------------------------------------------------------------------------

/// Valid names mostly, and every way of breaking the topic pattern.
fn name() -> impl Strategy<Value = String> {
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
fn near_1024() -> impl Strategy<Value = String> {
    (1018usize..1030, any::<bool>()).prop_map(|(n, wide)| {
        if wide {
            "é".repeat(n / 2) + &"x".repeat(n % 2)
        } else {
            "x".repeat(n)
        }
    })
}

/// A string for a TEXT column, without NUL unless `nul`.
fn text(nul: bool) -> BoxedStrategy<String> {
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

fn content_type(nul: bool) -> BoxedStrategy<String> {
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
fn id() -> impl Strategy<Value = String> {
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

fn timestamp() -> impl Strategy<Value = prost_types::Timestamp> {
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

fn attributes() -> impl Strategy<Value = HashMap<String, String>> {
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

fn json_string() -> impl Strategy<Value = String> {
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

fn json_number() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "-?(0|[1-9][0-9]{0,5})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
        1 => (1u8..=9, 300usize..=320).prop_map(|(d, n)| format!("{d}{}", "0".repeat(n))),
        1 => prop::sample::select(vec![
            "01", "1.", ".5", "+1", "1e", "1e+", "-", "NaN", "Infinity", "0x1F", "1_000",
        ])
        .prop_map(str::to_owned),
    ]
}

fn json_value() -> impl Strategy<Value = String> {
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
fn json_text() -> impl Strategy<Value = String> {
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

fn data(nul: bool) -> BoxedStrategy<Option<pb::event::Data>> {
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
        1 => (type_url, 0usize..64).prop_map(|(type_url, n)| {
            Some(Data::ProtoData(prost_types::Any {
                type_url,
                value: vec![1; n],
            }))
        }),
    ]
    .boxed()
}

fn schema_version() -> impl Strategy<Value = u32> {
    prop_oneof![
        20 => 0u32..5,
        1 => prop::sample::select(vec![i32::MAX as u32, i32::MAX as u32 + 1, u32::MAX]),
        1 => any::<u32>(),
    ]
}

/// One event; `nul` lets NUL into the strings stored in TEXT columns.
fn event(nul: bool) -> impl Strategy<Value = pb::Event> {
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
fn limits() -> impl Strategy<Value = Limits> {
    let small =
        (64usize..1500, 128usize..4000, 1usize..8).prop_map(|(event, request, batch)| Limits {
            max_event_bytes: event,
            max_request_bytes: request,
            max_batch_events: batch,
        });
    prop_oneof![small, Just(Limits::default())]
}

/// A Publish request; some events then repeat an earlier event's id, in any text form.
fn publish_request(nul: bool) -> impl Strategy<Value = pb::PublishRequest> {
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
fn types(nul: bool) -> BoxedStrategy<Vec<String>> {
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

fn start() -> impl Strategy<Value = Option<pb::StartPosition>> {
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

fn consumer() -> impl Strategy<Value = String> {
    prop_oneof![1 => Just(String::new()), 3 => name()]
}

// ---------------------------------------------------------------------------------
// The properties.
// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(PUBLISH_CASES))]

    /// Publish: random requests under random (small or default) limits.
    #[test]
    fn publish_accepts_exactly_what_the_rules_allow(
        req in publish_request(false),
        limits in limits(),
    ) {
        let faults = publish_faults(&req, &limits);
        let outcome = validate::publish(req.clone(), &limits);
        check(outcome, &faults, |ok| check_converted(&req, ok))?;
    }

    /// Publish: strings stored in TEXT columns (type, source, subject, correlation_id,
    /// causation_id, content_type, proto_data.type_url) must not hold NUL, which
    /// PostgreSQL cannot store: the validator must reject it naming the field, not
    /// pass it on to fail the insert with INTERNAL.
    #[test]
    fn publish_rejects_nul_in_text_columns(
        req in publish_request(true),
        limits in limits(),
    ) {
        let faults = publish_faults(&req, &limits);
        let outcome = validate::publish(req.clone(), &limits);
        check(outcome, &faults, |ok| check_converted(&req, ok))?;
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    /// The JSON rule alone: with an `application/json` content type, text_data must be
    /// JSON that JSONB can store.
    #[test]
    fn json_text_data_is_accepted_exactly_when_valid(
        text in json_text(),
        content_type in prop::sample::select(vec!["application/json", "application/x+json; v=1"]),
    ) {
        let req = pb::PublishRequest {
            topic: "t".into(),
            events: vec![pb::Event {
                r#type: "x".into(),
                content_type: content_type.into(),
                data: Some(pb::event::Data::TextData(text.clone())),
                ..Default::default()
            }],
        };
        let faults = publish_faults(&req, &Limits::default());
        prop_assert_eq!(faults.0.is_empty(), json_ok(&text));
        let outcome = validate::publish(req.clone(), &Limits::default());
        check(outcome, &faults, |ok| check_converted(&req, ok))?;
    }

    /// Read: topic, offset, page size and type filters.
    #[test]
    fn read_accepts_exactly_what_the_rules_allow(
        topic in name(),
        from_offset in prop_oneof![-3i64..5, any::<i64>()],
        limit in prop_oneof![0u32..3, 998u32..1003, any::<u32>()],
        types in types(false),
    ) {
        let req = pb::ReadRequest { topic, from_offset, limit, types };
        let faults = read_faults(&req);
        check(validate::read(req.clone()), &faults, |p| {
            prop_assert_eq!(&p.topic, &req.topic);
            prop_assert_eq!(p.from, req.from_offset.max(1));
            let limit = match req.limit { 0 => 100, n => i64::from(n).min(1000) };
            prop_assert_eq!(p.limit, limit);
            prop_assert_eq!(&p.types, &req.types);
            Ok(())
        })?;
    }

    /// Subscribe: topic, consumer, start position, type filters and max_in_flight.
    #[test]
    fn subscribe_accepts_exactly_what_the_rules_allow(
        topic in name(),
        consumer in consumer(),
        start in start(),
        types in types(false),
        max_in_flight in prop_oneof![0u32..3, 99_999u32..100_002, any::<u32>()],
    ) {
        let req = pb::SubscribeRequest { topic, consumer, start, types, max_in_flight };
        let faults = subscribe_faults(&req);
        check(validate_subscribe::subscribe(req.clone()), &faults, |p| {
            prop_assert_eq!(&p.topic, &req.topic);
            let consumer = Some(req.consumer.clone()).filter(|c| !c.is_empty());
            prop_assert_eq!(&p.consumer, &consumer);
            prop_assert_eq!(p.start, expected_start(&req.start));
            prop_assert_eq!(&p.types, &req.types);
            let max = match req.max_in_flight { 0 => 1000, n => n as usize };
            prop_assert_eq!(p.max_in_flight, max);
            Ok(())
        })?;
    }

    /// Read and Subscribe: a NUL in a type filter is refused naming the filter, not
    /// sent to PostgreSQL to fail the query with INTERNAL.
    #[test]
    fn read_and_subscribe_reject_nul_in_type_filters(
        topic in name(),
        types in types(true),
    ) {
        let read = pb::ReadRequest { topic: topic.clone(), types: types.clone(), ..Default::default() };
        let faults = read_faults(&read);
        check(validate::read(read), &faults, |_| Ok(()))?;
        let sub = pb::SubscribeRequest { topic, types, ..Default::default() };
        let faults = subscribe_faults(&sub);
        check(validate_subscribe::subscribe(sub), &faults, |_| Ok(()))?;
    }

    /// Ack, Seek and DeleteConsumer share the topic, consumer and start rules.
    #[test]
    fn ack_seek_and_delete_accept_exactly_what_the_rules_allow(
        topic in name(),
        consumer in consumer(),
        offset in prop_oneof![-2i64..3, any::<i64>()],
        start in start(),
    ) {
        let ack = pb::AckRequest { topic: topic.clone(), consumer: consumer.clone(), offset };
        let mut faults = Faults::default();
        if !topic_ok(&topic) {
            faults.invalid("topic");
        }
        if offset < 0 {
            faults.invalid("offset");
        }
        consumer_faults(&mut faults, &consumer, false);
        check(validate_subscribe::ack(&ack), &faults, |c| {
            prop_assert_eq!(c, Some(consumer.clone()).filter(|c| !c.is_empty()));
            Ok(())
        })?;

        let seek = pb::SeekRequest { topic: topic.clone(), consumer: consumer.clone(), start };
        let mut faults = Faults::default();
        if !topic_ok(&topic) {
            faults.invalid("topic");
        }
        consumer_faults(&mut faults, &consumer, true);
        start_faults(&mut faults, &seek.start, true);
        check(validate_subscribe::seek(seek.clone()), &faults, |(t, c, s)| {
            prop_assert_eq!(&t, &topic);
            prop_assert_eq!(&c, &consumer);
            prop_assert_eq!(s, expected_start(&seek.start));
            Ok(())
        })?;

        let delete = pb::DeleteConsumerRequest { topic: topic.clone(), consumer: consumer.clone() };
        let mut faults = Faults::default();
        if !topic_ok(&topic) {
            faults.invalid("topic");
        }
        consumer_faults(&mut faults, &consumer, true);
        check(validate_subscribe::delete_consumer(delete), &faults, |(t, c)| {
            prop_assert_eq!((t, c), (topic.clone(), consumer.clone()));
            Ok(())
        })?;
    }
}

/// The reference's own edge cases, so a wrong reference cannot hide a wrong validator.
#[test]
fn the_reference_knows_the_edge_cases() {
    assert!(topic_ok("a") && topic_ok(&"x".repeat(128)) && topic_ok("A.b_c-9"));
    assert!(!topic_ok("") && !topic_ok(&"x".repeat(129)) && !topic_ok("-a") && !topic_ok("aé"));
    let u = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    let n = parse_uuid(u).unwrap();
    for form in [
        u.to_uppercase(),
        u.replace('-', ""),
        format!("{{{u}}}"),
        format!("URN:uuid:{u}"),
    ] {
        assert_eq!(parse_uuid(&form), Some(n), "{form}");
    }
    for bad in [
        "",
        "67e55044",
        &u.replace('-', "_"),
        &format!("{u}0"),
        &format!("({u})"),
    ] {
        assert_eq!(parse_uuid(bad), None, "{bad}");
    }
    for good in [
        "0",
        "-0.5e-3",
        " [1, {\"a\": [true, null]}]\n",
        "\"\\ud83d\\ude00\\\\u0000\"",
        "1e308",
        "1e-400",
        &("[".repeat(127) + &"]".repeat(127)),
    ] {
        assert!(json_ok(good), "{good}");
    }
    for bad in [
        "",
        "01",
        "1.",
        "[1,]",
        "{\"a\"}",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\t\"",
        "2e308",
        "[] []",
        "\u{a0}1",
        &("[".repeat(128) + &"]".repeat(128)),
    ] {
        assert!(!json_ok(bad), "{bad}");
    }
}
