//! The reference: the documented validation rules, written independently of the
//! server code, listing every fault of a request.

use chrono::{DateTime, NaiveDate, Utc};
use prost::Message;
use pulsebus::config::Limits;
use pulsebus::proto::edupulse::events::v1::LessonPublished;
use pulsebus::proto::pulsebus::v1 as pb;
use pulsebus::subscribe::Start;
use std::collections::HashMap;

/// Longest text field (type, source, ..., attribute keys, type filters), in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// Deepest JSON nesting accepted (serde_json's recursion limit; PostgreSQL allows more).
pub const MAX_JSON_DEPTH: usize = 127;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A rule is broken: `ApiError::Invalid`, INVALID_ARGUMENT.
    Invalid,
    /// A size or count limit is exceeded: `ApiError::TooLarge`, RESOURCE_EXHAUSTED.
    TooLarge,
}

/// One fault the reference finds: its kind and the field path at fault. With `nested`,
/// a path below the field (`events[0].attributes["k"]`) names it too.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: Kind,
    pub field: String,
    pub nested: bool,
}

impl Fault {
    pub fn names(&self, kind: Kind, field: &str) -> bool {
        kind == self.kind
            && (field == self.field
                || (self.nested && field.starts_with(&format!("{}[", self.field))))
    }
}

#[derive(Debug, Default)]
pub struct Faults(pub Vec<Fault>);

impl Faults {
    pub fn invalid(&mut self, field: impl Into<String>) {
        self.push(Kind::Invalid, field.into(), false);
    }

    pub fn invalid_nested(&mut self, field: impl Into<String>) {
        self.push(Kind::Invalid, field.into(), true);
    }

    pub fn too_large(&mut self, field: impl Into<String>) {
        self.push(Kind::TooLarge, field.into(), false);
    }

    pub fn push(&mut self, kind: Kind, field: String, nested: bool) {
        self.0.push(Fault {
            kind,
            field,
            nested,
        });
    }
}

/// `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`, byte by byte.
pub fn topic_ok(name: &str) -> bool {
    let b = name.as_bytes();
    let name_char = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-');
    (1..=128).contains(&b.len()) && b[0].is_ascii_alphanumeric() && b[1..].iter().all(name_char)
}

/// A string stored in a TEXT column: at most 1024 bytes, and no NUL (PostgreSQL text
/// cannot hold one).
pub fn text_ok(value: &str) -> bool {
    value.len() <= MAX_NAME_BYTES && !value.contains('\0')
}

pub fn hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |n, &d| {
        let v = (d as char).to_digit(16)?;
        Some(n << 4 | u128::from(v))
    })
}

/// A UUID in one of its text forms (any case): 32 hex digits, 8-4-4-4-12 hyphenated,
/// hyphenated in braces, or `urn:uuid:` and hyphenated. Returns its value.
pub fn parse_uuid(text: &str) -> Option<u128> {
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

pub fn time_range() -> (i64, i64) {
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
pub fn time_ok(t: &prost_types::Timestamp) -> bool {
    let (min, max) = time_range();
    (min..=max).contains(&t.seconds) && (0..1_000_000_000).contains(&t.nanos)
}

/// `application/json` or any `+json` type, parameters and surrounding blanks ignored.
pub fn json_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default();
    let essence = essence.trim_matches([' ', '\t']).to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// JSON text (RFC 8259) that JSONB can store (no `\u0000`, no lone surrogate), nested
/// at most [`MAX_JSON_DEPTH`] deep, with every number finite as an f64.
pub fn json_ok(text: &str) -> bool {
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
pub struct JsonCheck<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonCheck<'_> {
    pub fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    pub fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.i += usize::from(hit);
        hit
    }

    pub fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    pub fn word(&mut self, w: &[u8]) -> bool {
        let hit = self.s[self.i..].starts_with(w);
        self.i += if hit { w.len() } else { 0 };
        hit
    }

    pub fn value(&mut self, depth: usize) -> bool {
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

    pub fn array(&mut self, depth: usize) -> bool {
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

    pub fn object(&mut self, depth: usize) -> bool {
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

    pub fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.i..self.i + 4)?;
        self.i += 4;
        hex(digits).map(|n| n as u32)
    }

    pub fn string(&mut self) -> bool {
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

    pub fn escape(&mut self) -> bool {
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

    pub fn number(&mut self) -> bool {
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
pub fn publish_faults(req: &pb::PublishRequest, limits: &Limits) -> Faults {
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
                } else if any
                    .type_url
                    .ends_with("/edupulse.events.v1.LessonPublished")
                    && LessonPublished::decode(any.value.as_slice()).is_err()
                {
                    // A type the server knows must decode as that type.
                    f.invalid(at("proto_data"));
                }
            }
            Some(Data::BinaryData(_)) | None => {}
        }
    }
    f
}

pub fn read_faults(req: &pb::ReadRequest) -> Faults {
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
pub fn type_filter_faults(f: &mut Faults, types: &[String]) {
    for (i, t) in types.iter().enumerate() {
        if t.is_empty() || !text_ok(t) {
            f.invalid(format!("types[{i}]"));
        }
    }
}

/// Consumer names: empty (none), or a name following the topic rules.
pub fn consumer_faults(f: &mut Faults, consumer: &str, required: bool) {
    if (required && consumer.is_empty()) || (!consumer.is_empty() && !topic_ok(consumer)) {
        f.invalid("consumer");
    }
}

pub fn start_faults(f: &mut Faults, start: &Option<pb::StartPosition>, required: bool) {
    use pb::start_position::Position;
    match start.as_ref().and_then(|s| s.position.as_ref()) {
        None if required => f.invalid("start"),
        Some(Position::Offset(o)) if *o < 1 => f.invalid("start.offset"),
        Some(Position::Time(t)) if !time_ok(t) => f.invalid("start.time"),
        _ => {}
    }
}

pub fn subscribe_faults(req: &pb::SubscribeRequest) -> Faults {
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
pub fn expected_start(start: &Option<pb::StartPosition>) -> Start {
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
