//! # The EduPulse services, on pulsebus
//!
//! Three downstream services of EduPulse Live, built on `pulsebus-client` the way a
//! service team would: each is a durable consumer with its own state, and each
//! survives being killed and restarted without doing anything twice.
//!
//! ## Layout
//! - [`topics`]: the topics and consumer names the services share.
//! - [`search`]: the search indexer: `LessonPublished` into a tantivy index on disk
//!   (upserted by lesson id, acked after the index commit), and the query side.
//! - [`achievements`]: key-shared by student: counts good `QuizSubmitted` results in
//!   its own PostgreSQL and publishes one `BadgeAwarded` per deserved badge (inbox +
//!   deterministic badge ids).
//! - [`notifications`]: a shared consumer of badges and peer feedback, writing one row
//!   per event into its `notifications` table; a delivery that fails is retried with
//!   back-off and dead-lettered after a few attempts.
//! - [`traffic`]: a generator of realistic EduPulse traffic, and what the services
//!   must end up with for it.

pub mod achievements;
pub mod notifications;
pub mod search;
pub mod topics;
pub mod traffic;
