//! Reading rows on one thread while the rows read before are worked on by
//! the others: a SQLite statement is stepped by one thread, and the work
//! on its rows (matching, scoring) is parallel, so the two overlap.

use crate::error::Result;

/// A batch of rows read: whether it holds any.
pub(crate) trait Filled {
    /// Whether the batch holds at least one row.
    fn filled(&self) -> bool;
}

impl<T> Filled for Vec<T> {
    fn filled(&self) -> bool {
        !self.is_empty()
    }
}

/// Fills batches with `read` (which returns `true` once nothing is left to
/// read) and hands each batch to `work` on another thread while the next
/// one is read; `work`'s results go to `done` in the order read. A panic
/// in `work` is passed on to the caller.
pub(crate) fn overlapped<B: Send + Default + Filled, U: Send>(
    mut read: impl FnMut(&mut B) -> Result<bool>,
    work: impl Fn(B) -> Result<U> + Sync,
    mut done: impl FnMut(U) -> Result<()>,
) -> Result<()> {
    let mut in_flight: Option<B> = None;
    loop {
        let mut batch = B::default();
        let (finished, previous) = std::thread::scope(|s| {
            let working = in_flight.take().map(|b| s.spawn(|| work(b)));
            let finished = read(&mut batch);
            let previous = working
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .transpose();
            (finished, previous)
        });
        let finished = finished?;
        if let Some(u) = previous? {
            done(u)?;
        }
        if finished {
            if batch.filled() {
                done(work(batch)?)?;
            }
            return Ok(());
        }
        in_flight = Some(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_batch_is_worked_on_once_in_order() {
        for total in [0usize, 1, 3, 4, 10] {
            let mut next = 0;
            let mut got = Vec::new();
            overlapped(
                |batch: &mut Vec<usize>| {
                    while batch.len() < 3 && next < total {
                        batch.push(next);
                        next += 1;
                    }
                    Ok(next == total)
                },
                |batch| Ok(batch.iter().map(|x| x * 10).collect::<Vec<_>>()),
                |out| {
                    got.extend(out);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(got, (0..total).map(|x| x * 10).collect::<Vec<_>>());
        }
    }

    #[test]
    fn an_error_while_reading_or_working_stops_the_loop() {
        let mut reads = 0;
        let r = overlapped(
            |batch: &mut Vec<u8>| {
                reads += 1;
                batch.push(1);
                if reads == 3 {
                    return Err(crate::StoreError::Corrupt("read".into()));
                }
                Ok(false)
            },
            |b| Ok(b.len()),
            |_| Ok(()),
        );
        assert!(matches!(r, Err(crate::StoreError::Corrupt(m)) if m == "read"));
        let r = overlapped(
            |batch: &mut Vec<u8>| {
                batch.push(1);
                Ok(false)
            },
            |_| Err::<(), _>(crate::StoreError::Corrupt("work".into())),
            |_| Ok(()),
        );
        assert!(matches!(r, Err(crate::StoreError::Corrupt(m)) if m == "work"));
    }
}
