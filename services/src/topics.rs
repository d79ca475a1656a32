//! The topics the services read and write, and their consumer names.

/// `LessonPublished` events.
pub const LESSONS: &str = "lessons";
/// `QuizSubmitted` events, subject `student/<id>`.
pub const QUIZZES: &str = "quizzes";
/// `BadgeAwarded` events, published by the achievements service.
pub const BADGES: &str = "badges";
/// `PeerFeedbackGiven` events, subject `student/<reviewee>`.
pub const FEEDBACK: &str = "feedback";

/// The search indexer's consumer of [`LESSONS`].
pub const SEARCH_INDEXER: &str = "search-indexer";
/// The achievements service's consumer of [`QUIZZES`].
pub const ACHIEVEMENTS: &str = "achievements";
/// The notification service's consumer of [`BADGES`] and [`FEEDBACK`].
pub const NOTIFICATIONS: &str = "notifications";

/// The subject of a student's events.
pub fn student_subject(student_id: &str) -> String {
    format!("student/{student_id}")
}
