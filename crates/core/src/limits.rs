//! Rule limits: how many events of one rule may count, in all or per sliding
//! window of `per_days`.
//!
//! Eligible events are offered in (timestamp, id) order. An event at `t`
//! counts if fewer than `count` events of the rule have already counted with
//! a timestamp in `(t - per_days, t]` (or in all, without `per_days`).

use std::collections::VecDeque;

use crate::model::Limit;
use crate::timestamp::Timestamp;

/// The running state of one rule's limit while its events are offered in
/// (timestamp, id) order.
#[derive(Debug)]
pub struct LimitCounter<'a> {
    limit: Option<&'a Limit>,
    /// Timestamps (ns) of counted events still inside the sliding window.
    recent: VecDeque<i64>,
    /// Events counted so far.
    counted: u64,
}

impl<'a> LimitCounter<'a> {
    /// A counter for a rule's limit (`None`: every eligible event counts).
    pub fn new(limit: Option<&'a Limit>) -> Self {
        LimitCounter {
            limit,
            recent: VecDeque::new(),
            counted: 0,
        }
    }

    /// Offers the next eligible event; returns whether it counts. Calls must
    /// come in non-decreasing timestamp order.
    pub fn admit(&mut self, at: Timestamp) -> bool {
        let Some(limit) = self.limit else {
            self.counted += 1;
            return true;
        };
        let count = limit.count as usize;
        let admitted = match limit.per_nanos {
            None => (self.counted as usize) < count,
            Some(per) => {
                let start = at.0.saturating_sub(per);
                while self.recent.front().is_some_and(|&t| t <= start) {
                    self.recent.pop_front();
                }
                self.recent.len() < count
            }
        };
        if admitted {
            self.counted += 1;
            if limit.per_nanos.is_some() {
                self.recent.push_back(at.0);
            }
        }
        admitted
    }

    /// After [`LimitCounter::admit`] refused an event: the earliest time
    /// (ns) at which an event may count again; every event before it would
    /// be refused too. `None`: none ever will (a limit in all, reached).
    pub fn reopens_at(&self) -> Option<i64> {
        let per = self.limit?.per_nanos?;
        self.recent.front().map(|&t| t.saturating_add(per))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::{NANOS_PER_DAY, days_to_nanos};

    fn day(d: f64) -> Timestamp {
        Timestamp((d * NANOS_PER_DAY as f64) as i64)
    }

    fn limit(count: u32, per_days: Option<f64>) -> Limit {
        Limit {
            count,
            per_days,
            per_nanos: per_days.map(days_to_nanos),
        }
    }

    #[test]
    fn count_in_all() {
        let l = limit(2, None);
        let mut c = LimitCounter::new(Some(&l));
        let got: Vec<bool> = [0.0, 1.0, 2.0, 300.0].map(|d| c.admit(day(d))).to_vec();
        assert_eq!(got, vec![true, true, false, false]);
    }

    #[test]
    fn sliding_window_is_open_at_the_start() {
        // Two per 7 days: the spec's worked example, days relative to 03-16.
        let l = limit(2, Some(7.0));
        let mut c = LimitCounter::new(Some(&l));
        assert!(c.admit(day(6.0))); // 03-22 00:00
        assert!(c.admit(day(6.4))); // 03-22 10:00
        assert!(!c.admit(day(7.0))); // 03-23: both still in (03-16, 03-23]
        assert!(c.admit(day(13.0))); // exactly 7 days after the first: it left the window
        assert!(c.admit(day(46.0)));
    }

    #[test]
    fn left_out_events_do_not_use_the_window() {
        let l = limit(1, Some(10.0));
        let mut c = LimitCounter::new(Some(&l));
        assert!(c.admit(day(0.0)));
        assert!(!c.admit(day(5.0)));
        // Only day 0 counted, so day 10 is free even though day 5 was seen.
        assert!(c.admit(day(10.0)));
    }

    #[test]
    fn no_limit_counts_everything() {
        let mut c = LimitCounter::new(None);
        assert!((0..100).all(|i| c.admit(day(i as f64))));
    }
}
