//! Realistic EduPulse traffic from a seed: lessons (some republished as updates),
//! students' quizzes with varied scores, peer feedback (some undeliverable), and what
//! the services must end up with for it.

use std::collections::{BTreeMap, BTreeSet};

use pulsebus_client::event;
use pulsebus_client::proto::edupulse::events::v1::{
    LessonPublished, PeerFeedbackGiven, QuizSubmitted,
};
use pulsebus_client::proto::pulsebus::v1::Event;

use crate::achievements::{Rules, is_good};
use crate::notifications::BOUNCE;
use crate::topics::student_subject;

/// How much traffic.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub seed: u64,
    pub students: usize,
    pub lessons: usize,
    pub quizzes_per_student: usize,
    pub feedback: usize,
}

/// Events per topic, in publishing order.
#[derive(Debug, Default, Clone)]
pub struct Traffic {
    pub lessons: Vec<Event>,
    pub quizzes: Vec<Event>,
    pub feedback: Vec<Event>,
}

/// What the services must end up with.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Lesson ids in the search index (each once).
    pub lessons: BTreeSet<String>,
    /// Students with a badge (each once).
    pub badges: BTreeSet<String>,
    /// Feedback event ids that become notifications.
    pub feedback_notes: BTreeSet<String>,
    /// Feedback event ids that end in the dead-letter topic.
    pub bounced: BTreeSet<String>,
}

/// A small deterministic generator (xorshift64*), so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

const TOPICS: &[&str] = &[
    "fractions",
    "photosynthesis",
    "rust ownership",
    "french verbs",
    "gravity",
];

/// The traffic of `shape`, and its expected outcome under `rules`.
pub fn generate(shape: Shape, rules: Rules) -> (Traffic, Expected) {
    let mut rng = Rng(shape.seed | 1);
    let mut traffic = Traffic::default();
    let mut expected = Expected::default();
    for n in 0..shape.lessons {
        let lesson = lesson(n, &mut rng);
        expected.lessons.insert(lesson.lesson_id.clone());
        traffic.lessons.push(event::proto(&lesson));
        if n % 4 == 0 {
            let update = LessonPublished {
                title: format!("{} (revised)", lesson.title),
                ..lesson
            };
            traffic.lessons.push(event::proto(&update)); // the same lesson again
        }
    }
    let mut good: BTreeMap<String, i32> = BTreeMap::new();
    for round in 0..shape.quizzes_per_student {
        for s in 0..shape.students {
            let quiz = QuizSubmitted {
                quiz_id: format!("quiz-{round}"),
                lesson_id: format!("lesson-{}", rng.below(shape.lessons as u64)),
                student_id: format!("s{s}"),
                score: rng.below(11) as u32,
                max_score: 10,
                attempt: 1,
                submitted_at: None,
            };
            if is_good(&quiz, rules) {
                *good.entry(quiz.student_id.clone()).or_default() += 1;
            }
            let mut e = event::proto(&quiz);
            e.subject = student_subject(&quiz.student_id);
            e.correlation_id = format!("session-{s}-{round}");
            traffic.quizzes.push(e);
        }
    }
    expected.badges = good
        .into_iter()
        .filter(|(_, n)| *n >= rules.good_quizzes)
        .map(|(s, _)| s)
        .collect();
    for n in 0..shape.feedback {
        let bounce = n % 7 == 3;
        let feedback = PeerFeedbackGiven {
            feedback_id: format!("fb-{n}"),
            lesson_id: format!("lesson-{}", rng.below(shape.lessons as u64)),
            reviewer_id: format!("s{}", rng.below(shape.students as u64)),
            reviewee_id: format!("s{}", rng.below(shape.students as u64)),
            rating: 1 + rng.below(5) as u32,
            comment: if bounce {
                format!("great work {BOUNCE}")
            } else {
                "great work".into()
            },
            given_at: None,
        };
        let mut e = event::proto(&feedback);
        e.subject = student_subject(&feedback.reviewee_id);
        if bounce {
            expected.bounced.insert(e.id.clone());
        } else {
            expected.feedback_notes.insert(e.id.clone());
        }
        traffic.feedback.push(e);
    }
    (traffic, expected)
}

fn lesson(n: usize, rng: &mut Rng) -> LessonPublished {
    let topic = TOPICS[rng.below(TOPICS.len() as u64) as usize];
    LessonPublished {
        lesson_id: format!("lesson-{n}"),
        course_id: format!("course-{}", n % 3),
        author_id: format!("author-{}", rng.below(4)),
        title: format!("Lesson {n}: {topic}"),
        tags: vec![topic.split(' ').next().unwrap_or(topic).to_owned()],
        published_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_outcome_and_some_of_everything() {
        let shape = Shape {
            seed: 7,
            students: 10,
            lessons: 8,
            quizzes_per_student: 6,
            feedback: 20,
        };
        let (traffic, expected) = generate(shape, Rules::default());
        let (_, again) = generate(shape, Rules::default());
        assert_eq!(expected.badges, again.badges);
        assert_eq!(traffic.lessons.len(), 10, "8 lessons, 2 republished");
        assert_eq!(expected.lessons.len(), 8);
        assert!(!expected.badges.is_empty() && expected.badges.len() < 10);
        assert_eq!(expected.bounced.len(), 3);
    }
}
