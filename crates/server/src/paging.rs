//! Cursor paging of lists: `limit` and an opaque `cursor` in, a page with
//! `next_cursor` out.

use serde_json::{Value, json};

use crate::error::ApiError;

/// Which slice of a list to answer.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    /// Items to skip.
    pub offset: usize,
    /// Items to give.
    pub limit: usize,
}

impl Page {
    /// Reads `limit` (default `default`, at most `max`) and `cursor`.
    pub fn read(
        limit: Option<usize>,
        cursor: Option<&str>,
        default: usize,
        max: usize,
    ) -> Result<Page, ApiError> {
        let limit = limit.unwrap_or(default);
        if limit == 0 || limit > max {
            return Err(ApiError::bad(
                "invalid_limit",
                format!("limit is 1 to {max}"),
                Some("query.limit"),
            ));
        }
        let offset = match cursor {
            None => 0,
            Some(c) => c
                .strip_prefix('o')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| {
                    ApiError::bad(
                        "invalid_cursor",
                        "not a cursor this service gave",
                        Some("query.cursor"),
                    )
                })?,
        };
        Ok(Page { offset, limit })
    }

    /// The page of `all` (already in order), as `{"items", "total",
    /// "next_cursor"}`.
    pub fn answer<T>(self, all: &[T], item: impl Fn(&T) -> Value) -> Value {
        let items: Vec<Value> = all
            .iter()
            .skip(self.offset)
            .take(self.limit)
            .map(item)
            .collect();
        let next = (self.offset + self.limit < all.len())
            .then(|| format!("o{}", self.offset + self.limit));
        json!({"items": items, "total": all.len(), "next_cursor": next})
    }
}
