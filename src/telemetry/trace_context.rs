//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): the `traceparent` and
//! `tracestate` a caller sends, checked the way the spec asks a receiver to check them,
//! and stamped onto events as the CloudEvents distributed-tracing extension attributes.

use serde_json::{Map, Value};

/// The CloudEvents extension attribute (and gRPC metadata key) holding the traceparent.
pub const TRACEPARENT: &str = "traceparent";
/// The CloudEvents extension attribute (and gRPC metadata key) holding the tracestate.
pub const TRACESTATE: &str = "tracestate";
/// The longest tracestate kept; the spec lets receivers drop longer ones (it allows
/// 32 list members, which fit in 512 characters).
pub const MAX_TRACESTATE_LEN: usize = 512;
/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
const VERSION_00_LEN: usize = 55;

/// A caller's trace context, known to be well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    traceparent: String,
    tracestate: Option<String>,
}

impl TraceContext {
    /// The context in `traceparent` (and `tracestate`), or `None` when traceparent is
    /// malformed: the spec says to ignore it and start a new trace, so a bad header is
    /// not an error for the caller. A tracestate that is too long or not printable
    /// ASCII is dropped on its own.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let traceparent = well_formed(traceparent.trim())?;
        let tracestate = tracestate
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE_LEN)
            .filter(|s| s.bytes().all(|b| (0x20..=0x7e).contains(&b)))
            .map(str::to_owned);
        Some(Self {
            traceparent,
            tracestate,
        })
    }

    /// The traceparent, as received (a future version's extra fields cut off).
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The tracestate, when one was sent and kept.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// The 16 hex digits of the caller's span id (the parent of the server's span).
    pub fn parent_id(&self) -> &str {
        &self.traceparent[36..52]
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        u8::from_str_radix(&self.traceparent[53..55], 16).expect("checked in parse")
    }

    /// Adds this context to an event's attributes unless the event carries trace
    /// context of its own (either attribute): a producer that traces per event knows
    /// better than its request, and the event's attributes are stored as sent.
    pub fn stamp(&self, attributes: &mut Map<String, Value>) {
        if attributes.contains_key(TRACEPARENT) || attributes.contains_key(TRACESTATE) {
            return;
        }
        attributes.insert(TRACEPARENT.into(), self.traceparent.clone().into());
        if let Some(state) = &self.tracestate {
            attributes.insert(TRACESTATE.into(), state.clone().into());
        }
    }
}

/// The version-00 prefix of `value` when it is a valid traceparent.
fn well_formed(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    if bytes.len() < VERSION_00_LEN {
        return None;
    }
    let version = &value[0..2];
    // Version 00 has exactly these fields; a later version may append "-..." fields.
    let length_ok = match version {
        "00" => bytes.len() == VERSION_00_LEN,
        "ff" => false,
        _ => bytes.len() == VERSION_00_LEN || bytes[VERSION_00_LEN] == b'-',
    };
    let dashes = bytes[2] == b'-' && bytes[35] == b'-' && bytes[52] == b'-';
    let (trace_id, parent_id, flags) = (&value[3..35], &value[36..52], &value[53..55]);
    let valid = length_ok
        && dashes
        && lower_hex(version)
        && lower_hex(trace_id)
        && lower_hex(parent_id)
        && lower_hex(flags)
        && !all_zero(trace_id)
        && !all_zero(parent_id);
    valid.then(|| value[..VERSION_00_LEN].to_owned())
}

fn lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn all_zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_well_formed_traceparent_is_taken_apart() {
        let ctx = TraceContext::parse(GOOD, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent_id(), "00f067aa0ba902b7");
        assert_eq!(ctx.flags(), 1);
        assert_eq!(ctx.tracestate(), Some("congo=t61rcWkgMzE"));
    }

    #[test]
    fn malformed_traceparents_are_ignored_as_the_spec_asks() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bx-01",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_keeps_the_fields_this_version_knows() {
        let newer = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        let ctx = TraceContext::parse(newer, None).unwrap();
        assert_eq!(
            ctx.traceparent(),
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    #[test]
    fn an_unusable_tracestate_is_dropped_but_the_traceparent_kept() {
        let long = "k=".to_owned() + &"v".repeat(MAX_TRACESTATE_LEN);
        for bad in [long.as_str(), "", "k=v\nw=x", "k=\u{e9}"] {
            let ctx = TraceContext::parse(GOOD, Some(bad)).unwrap();
            assert_eq!(ctx.tracestate(), None, "{bad:?}");
        }
    }

    #[test]
    fn an_event_with_its_own_traceparent_keeps_it() {
        let ctx = TraceContext::parse(GOOD, Some("a=b")).unwrap();
        let mut own = Map::new();
        own.insert(TRACEPARENT.into(), "00-own".into());
        ctx.stamp(&mut own);
        assert_eq!(own[TRACEPARENT], "00-own");
        assert!(!own.contains_key(TRACESTATE));

        let mut state_only = Map::new();
        state_only.insert(TRACESTATE.into(), "mine=1".into());
        ctx.stamp(&mut state_only);
        assert!(!state_only.contains_key(TRACEPARENT));
        assert_eq!(state_only[TRACESTATE], "mine=1");

        let mut plain = Map::new();
        ctx.stamp(&mut plain);
        assert_eq!(plain[TRACEPARENT], GOOD);
        assert_eq!(plain[TRACESTATE], "a=b");

        let mut no_state = Map::new();
        TraceContext::parse(GOOD, None)
            .unwrap()
            .stamp(&mut no_state);
        assert_eq!(no_state.len(), 1);
    }
}
