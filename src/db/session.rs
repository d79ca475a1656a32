//! The settings pulsebus pins on each of its PostgreSQL sessions.
//!
//! They go in the startup packet (`options`), which outranks `ALTER ROLE` and
//! `ALTER DATABASE` defaults and holds from a session's first statement.

use sqlx::postgres::PgConnectOptions;

use crate::config::SyncCommit;

/// `url`'s connect options with pulsebus's session settings added after any the URL
/// has (so ours win).
pub fn options(url: &str, level: SyncCommit) -> Result<PgConnectOptions, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    Ok(options.options(settings(level)))
}

/// The pinned settings:
/// - `synchronous_commit`: what a commit waits for before pulsebus answers OK;
/// - `statement_timeout = 0`: a commit waiting for its synchronous standby that is
///   cancelled (a statement timeout cancels it) returns success with only a WARNING,
///   though the standby may never get it; so none of pulsebus's statements has a
///   timeout. Requests are bounded by the pool's acquire timeout and the gRPC
///   deadline instead, neither of which cancels a running statement.
fn settings(level: SyncCommit) -> [(&'static str, &'static str); 2] {
    [
        ("synchronous_commit", level.as_setting()),
        ("statement_timeout", "0"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_settings_follow_those_of_the_url() {
        let url = "postgres://u@localhost/db?options=-c%20synchronous_commit%3Doff";
        let options = options(url, SyncCommit::RemoteApply).unwrap();
        let text = options.get_options().unwrap();
        let theirs = text
            .find("synchronous_commit=off")
            .expect("the URL's setting kept");
        let ours = text
            .find("synchronous_commit=remote_apply")
            .expect("ours added");
        assert!(ours > theirs, "ours come last, so they win: {text}");
        assert!(text.contains("statement_timeout=0"), "{text}");
    }
}
