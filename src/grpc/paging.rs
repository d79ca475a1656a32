//! Pagination of the List RPCs: a page size, and an opaque token naming where the
//! previous page ended (keyset by name, so pages stay right while items come and go).

use crate::error::ApiError;

/// Items per page when the request asks for 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Most items per page.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// What tokens start with, so a token of another kind (or version) is refused.
const TOKEN_PREFIX: &str = "pulsebus.v1:after:";

/// A validated page request: list names after `after`, at most `size` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageParams {
    /// Most items to return.
    pub size: u32,
    /// Return names after this one; `None` from the start.
    pub after: Option<String>,
}

/// Validates `page_size` and `page_token`.
pub fn page(size: u32, token: &str) -> Result<PageParams, ApiError> {
    let size = match size {
        0 => DEFAULT_PAGE_SIZE,
        n if n > MAX_PAGE_SIZE => {
            return Err(ApiError::invalid(
                "page_size",
                format!("{n} is above the maximum of {MAX_PAGE_SIZE}"),
            ));
        }
        n => n,
    };
    let after = match token {
        "" => None,
        token => Some(decode(token).ok_or_else(|| {
            ApiError::invalid(
                "page_token",
                "is not a token from this RPC: pass next_page_token of the previous page",
            )
        })?),
    };
    Ok(PageParams { size, after })
}

/// The token that continues after `last` (empty when there is nothing more).
pub fn next_token(last: Option<&str>) -> String {
    last.map_or_else(String::new, |name| {
        hex::encode(format!("{TOKEN_PREFIX}{name}"))
    })
}

fn decode(token: &str) -> Option<String> {
    let bytes = hex::decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let name = text.strip_prefix(TOKEN_PREFIX)?;
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_foreign_tokens_are_refused() {
        let token = next_token(Some("lessons.v2"));
        assert_eq!(
            page(0, &token).unwrap().after.as_deref(),
            Some("lessons.v2")
        );
        assert_eq!(
            page(0, "").unwrap(),
            PageParams {
                size: 100,
                after: None
            }
        );
        assert_eq!(next_token(None), "");
        for bad in ["zz", "6162", &hex::encode(TOKEN_PREFIX)] {
            let err = page(10, bad).unwrap_err().to_string();
            assert!(err.starts_with("page_token:"), "{err}");
        }
        assert!(
            page(1001, "")
                .unwrap_err()
                .to_string()
                .starts_with("page_size:")
        );
    }
}
