//! Topic patterns: `*` matches any run of characters (`lessons.*`, `*.audit`, `*`);
//! everything else matches itself.

/// A topic pattern from the auth file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// A pattern; `*` is the only wildcard.
    pub fn new(pattern: &str) -> Self {
        Self(pattern.to_owned())
    }

    /// Whether `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = topic.strip_prefix(first) else {
            return false;
        };
        let middle: Vec<&str> = parts.collect();
        let Some((last, middle)) = middle.split_last() else {
            return rest.is_empty(); // no `*` at all: exact match
        };
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    #[test]
    fn stars_match_any_run_and_the_rest_matches_itself() {
        let cases = [
            ("*", "anything", true),
            ("lessons", "lessons", true),
            ("lessons", "lessons.math", false),
            ("lessons.*", "lessons.math", true),
            ("lessons.*", "lessons", false),
            ("*.audit", "payments.audit", true),
            ("*.audit", "payments.audit.x", false),
            ("a*b*c", "a-x-b-y-c", true),
            ("a*b*c", "a-x-c", false),
            ("ab*ba", "aba", false),
        ];
        for (pattern, topic, expected) in cases {
            assert_eq!(
                Pattern::new(pattern).matches(topic),
                expected,
                "{pattern} ~ {topic}"
            );
        }
    }
}
