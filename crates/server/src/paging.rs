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

    /// How many items from the start of a list the page needs.
    pub fn needed(self) -> usize {
        self.offset.saturating_add(self.limit)
    }

    /// The page of a list of `total` items given only its first ones, in
    /// order (at least [`Page::needed`] of them, or all), as `{"items",
    /// "total", "next_cursor"}`.
    pub fn answer<T>(self, first: &[T], total: usize, item: impl Fn(&T) -> Value) -> Value {
        let items: Vec<Value> = first
            .iter()
            .skip(self.offset)
            .take(self.limit)
            .map(item)
            .collect();
        let next = (self.needed() < total).then(|| format!("o{}", self.needed()));
        json!({"items": items, "total": total, "next_cursor": next})
    }
}
