//! A table of shared values by small integer id, for a binding whose hot
//! calls name a connection with an integer rather than an object to unwrap.
//!
//! An id is a slot index and that slot's generation: a stale id (its value
//! dropped, the slot reused) or a made-up one finds nothing, and an id from
//! another owner (say, another JavaScript environment on the same thread) is
//! refused, so a wrong id is an error, never a wrong or freed value. The
//! table holds `Weak` references: it never keeps a value alive.

use std::rc::{Rc, Weak};

/// Index bits of an id; the generation takes the bits above, up to bit 30,
/// so that ids are positive i32s.
const INDEX_BITS: u32 = 20;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;
const GENERATION_MASK: u32 = (1 << (31 - INDEX_BITS)) - 1;

struct Slot<K, T> {
    generation: u32,
    entry: Option<(K, Weak<T>)>,
}

/// A table of `T`s by id, each with the owner `K` it belongs to.
pub struct IdTable<K, T> {
    slots: Vec<Slot<K, T>>,
    free: Vec<u32>,
}

impl<K: Copy + Eq, T> Default for IdTable<K, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq, T> IdTable<K, T> {
    /// An empty table.
    pub const fn new() -> Self {
        IdTable {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Adds `value` of `owner`; returns its id, or None when the table is
    /// full (about a million values).
    pub fn insert(&mut self, owner: K, value: &Rc<T>) -> Option<i32> {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i <= INDEX_MASK)?;
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                index
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.entry = Some((owner, Rc::downgrade(value)));
        Some(((slot.generation << INDEX_BITS) | index) as i32)
    }

    /// The live value of `id`, if `id` names one of `owner`.
    pub fn get(&self, owner: K, id: i32) -> Option<Rc<T>> {
        let (index, generation) = split(id)?;
        let slot = self.slots.get(index as usize)?;
        match &slot.entry {
            Some((of, value)) if slot.generation == generation && *of == owner => value.upgrade(),
            _ => None,
        }
    }

    /// Removes `id` (its value is being dropped); a stale id does nothing.
    pub fn remove(&mut self, id: i32) {
        let Some((index, generation)) = split(id) else {
            return;
        };
        if let Some(slot) = self.slots.get_mut(index as usize) {
            if slot.generation == generation && slot.entry.is_some() {
                slot.entry = None;
                slot.generation = (slot.generation + 1) & GENERATION_MASK;
                self.free.push(index);
            }
        }
    }
}

/// An id's slot index and generation.
fn split(id: i32) -> Option<(u32, u32)> {
    let id = u32::try_from(id).ok()?;
    Some((id & INDEX_MASK, id >> INDEX_BITS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(n: usize) -> usize {
        n
    }

    #[test]
    fn ids_find_their_value_and_nothing_else() {
        let mut t = IdTable::new();
        let (a, b) = (Rc::new(1), Rc::new(2));
        let ia = t.insert(env(1), &a).expect("room");
        let ib = t.insert(env(1), &b).expect("room");
        assert_ne!(ia, ib);
        assert_eq!(t.get(env(1), ia).as_deref(), Some(&1));
        assert_eq!(t.get(env(1), ib).as_deref(), Some(&2));
        // Another environment's id, a made-up one, a negative one.
        assert!(t.get(env(2), ia).is_none());
        assert!(t.get(env(1), 12345).is_none());
        assert!(t.get(env(1), -1).is_none());
    }

    #[test]
    fn a_stale_id_finds_nothing_after_its_slot_is_reused() {
        let mut t = IdTable::new();
        let a = Rc::new(1);
        let ia = t.insert(env(1), &a).expect("room");
        t.remove(ia);
        assert!(t.get(env(1), ia).is_none());
        let b = Rc::new(2);
        let ib = t.insert(env(1), &b).expect("room");
        assert_ne!(ia, ib, "same slot, new generation");
        assert!(t.get(env(1), ia).is_none());
        assert_eq!(t.get(env(1), ib).as_deref(), Some(&2));
        t.remove(ia); // stale: does not remove b
        assert_eq!(t.get(env(1), ib).as_deref(), Some(&2));
    }

    #[test]
    fn the_table_never_keeps_a_value_alive() {
        let mut t = IdTable::new();
        let a = Rc::new(1);
        let ia = t.insert(env(1), &a).expect("room");
        drop(a);
        assert!(t.get(env(1), ia).is_none());
    }
}
