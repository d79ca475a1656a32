//! A `DATABASE_URL` naming several hosts, as libpq writes it:
//! `postgres://user:secret@db1:5432,db2:5433/pulsebus?sslmode=require`.
//!
//! sqlx connects to one host, so the URL is split into one URL per host, the rest
//! (user, password, database, parameters) the same. `target_session_attrs` is taken
//! out: pulsebus always wants the primary and finds it itself (see [`super::primary`]).

/// The URL of each host, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosts(Vec<String>);

/// Why a URL's host list cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostsError {
    /// An empty entry, as in `db1,,db2` or a trailing comma.
    #[error("the URL's host list has an empty entry: write hosts as host[:port],host[:port]")]
    EmptyHost,
}

impl Hosts {
    /// Splits `url`'s host list; a URL with one host (or no authority, such as a
    /// key/value string) is kept as it is, but for `target_session_attrs`.
    pub fn parse(url: &str) -> Result<Self, HostsError> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Ok(Self(vec![url.to_owned()]));
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, host_list) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
            None => (String::new(), authority),
        };
        let tail = without_session_attrs(tail);
        let hosts: Vec<&str> = host_list.split(',').collect();
        if hosts.len() > 1 && hosts.iter().any(|h| h.is_empty()) {
            return Err(HostsError::EmptyHost);
        }
        Ok(Self(
            hosts
                .into_iter()
                .map(|host| format!("{scheme}://{userinfo}{host}{tail}"))
                .collect(),
        ))
    }

    /// The URLs, one per host.
    pub fn urls(&self) -> &[String] {
        &self.0
    }

    /// Whether the URL named more than one host.
    pub fn is_many(&self) -> bool {
        self.0.len() > 1
    }
}

/// `/db?a=1&target_session_attrs=read-write&b=2` without the `target_session_attrs`
/// parameter.
fn without_session_attrs(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.starts_with("target_session_attrs="))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_host_gets_the_same_user_database_and_parameters() {
        let hosts =
            Hosts::parse("postgres://app:s3cret@db1:5432,db2,[::1]:5433/pulsebus?sslmode=require")
                .unwrap();
        assert_eq!(
            hosts.urls(),
            [
                "postgres://app:s3cret@db1:5432/pulsebus?sslmode=require",
                "postgres://app:s3cret@db2/pulsebus?sslmode=require",
                "postgres://app:s3cret@[::1]:5433/pulsebus?sslmode=require",
            ]
        );
        assert!(hosts.is_many());
    }

    #[test]
    fn one_host_is_kept_as_given_but_for_target_session_attrs() {
        let url = "postgres://app@db1:5432/pulsebus?host=%2Ftmp&port=5432";
        assert_eq!(Hosts::parse(url).unwrap().urls(), [url]);
        let hosts = Hosts::parse("postgres://db1/p?target_session_attrs=read-write").unwrap();
        assert_eq!(hosts.urls(), ["postgres://db1/p"]);
        let hosts = Hosts::parse("postgres://a,b/p?x=1&target_session_attrs=primary&y=2").unwrap();
        assert_eq!(
            hosts.urls(),
            ["postgres://a/p?x=1&y=2", "postgres://b/p?x=1&y=2"]
        );
        assert!(!Hosts::parse("postgres://db1").unwrap().is_many());
    }

    #[test]
    fn an_empty_host_in_the_list_is_refused() {
        assert_eq!(
            Hosts::parse("postgres://a,,b/p"),
            Err(HostsError::EmptyHost)
        );
        assert_eq!(Hosts::parse("postgres://a,/p"), Err(HostsError::EmptyHost));
    }
}
