//! Contact ids to their positions in a [`crate::contacts::ContactTable`].
//!
//! Open addressing with linear probing over slots that hold the id inline
//! (ids up to 24 bytes need no pointer), so a lookup reads one cache line.
//! The hash is computed once per event and the slot's line can be fetched
//! ahead of the lookup ([`ContactIndex::prefetch`]): in a time-ordered file
//! consecutive events belong to unrelated contacts, each lookup misses the
//! cache, and scoring an event's rules while the line arrives hides that
//! wait.

use std::hash::BuildHasher;

use compact_str::CompactString;
use rustc_hash::FxBuildHasher;

/// A slot: an id and its position, or empty (`at == EMPTY`).
#[derive(Clone, Debug)]
struct Slot {
    id: CompactString,
    at: u32,
}

const EMPTY: u32 = u32::MAX;

/// The index: at most half the slots are full.
#[derive(Debug)]
pub(crate) struct ContactIndex {
    slots: Vec<Slot>,
    /// log2 of the number of slots.
    bits: u32,
    len: usize,
}

/// A contact id's hash, computed once and used to prefetch and to look up.
#[derive(Clone, Copy)]
pub(crate) struct IdHash(u64);

impl IdHash {
    /// The hash of a contact id.
    pub(crate) fn of(id: &str) -> IdHash {
        IdHash(FxBuildHasher.hash_one(id))
    }
}

impl Default for ContactIndex {
    fn default() -> ContactIndex {
        ContactIndex::with_bits(4)
    }
}

impl ContactIndex {
    fn with_bits(bits: u32) -> ContactIndex {
        let mut slots = Vec::new();
        slots.resize(
            1 << bits,
            Slot {
                id: CompactString::default(),
                at: EMPTY,
            },
        );
        ContactIndex {
            slots,
            bits,
            len: 0,
        }
    }

    /// The first slot to probe: the high bits of a multiplicative mix of the
    /// hash (Fx's low bits are weak).
    fn home(&self, h: IdHash) -> usize {
        (h.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits)) as usize
    }

    /// Asks the processor to start loading the slot a lookup of `h` reads
    /// first, so that the lookup a little later finds it in cache.
    #[inline]
    pub(crate) fn prefetch(&self, h: IdHash) {
        let slot = &self.slots[self.home(h)];
        prefetch_line(std::ptr::from_ref(slot).cast());
    }

    /// The position stored for `id` (whose hash is `h`).
    #[inline]
    pub(crate) fn get(&self, id: &str, h: IdHash) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(h);
        loop {
            let slot = &self.slots[i];
            if slot.at == EMPTY {
                return None;
            }
            if slot.id == id {
                return Some(slot.at);
            }
            i = (i + 1) & mask;
        }
    }

    /// Stores `at` for `id`, which must not be in the index yet.
    pub(crate) fn insert(&mut self, id: CompactString, h: IdHash, at: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(h);
        while self.slots[i].at != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot { id, at };
        self.len += 1;
    }

    fn grow(&mut self) {
        let old = std::mem::replace(self, ContactIndex::with_bits(self.bits + 1));
        for slot in old.slots.into_iter().filter(|s| s.at != EMPTY) {
            let h = IdHash::of(&slot.id);
            self.insert(slot.id, h, slot.at);
        }
    }
}

/// A hint to load the cache line at `p`; it never faults and changes no
/// value, whatever `p` points to.
#[inline]
fn prefetch_line(p: *const i8) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: `_mm_prefetch` only hints the cache; it does not dereference
    // `p` in the language's sense and cannot fault. `sse` is enabled (cfg).
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p);
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_id_it_holds_and_no_other() {
        let mut index = ContactIndex::default();
        let ids: Vec<String> = (0..5000)
            .map(|i| {
                if i % 7 == 0 {
                    format!("a-contact-id-longer-than-twenty-four-bytes-{i}")
                } else {
                    format!("c{i}")
                }
            })
            .collect();
        for (n, id) in ids.iter().enumerate() {
            index.insert(id.into(), IdHash::of(id), n as u32);
        }
        for (n, id) in ids.iter().enumerate() {
            index.prefetch(IdHash::of(id));
            assert_eq!(index.get(id, IdHash::of(id)), Some(n as u32), "{id}");
        }
        for absent in ["", "c5000", "C1", "c1 "] {
            assert_eq!(index.get(absent, IdHash::of(absent)), None, "{absent:?}");
        }
        assert!(index.slots.len() >= 2 * ids.len());
    }

    #[test]
    fn an_empty_index_finds_nothing() {
        let index = ContactIndex::default();
        assert_eq!(index.get("c1", IdHash::of("c1")), None);
    }
}
