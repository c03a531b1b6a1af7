//! The sockets of this thread by id, so that the lean calls (see lean.rs) can
//! name a socket with a small integer passed through the scratch, rather than
//! with an object argument to unwrap.
//!
//! An id is a slot index and that slot's generation: a stale id (its socket
//! collected, the slot reused) or a made-up one finds nothing, and an id from
//! another environment on the same thread is refused, so a wrong id from
//! JavaScript is an error, never a wrong or freed socket. The table holds
//! `Weak` references: it never keeps a socket alive.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use napi::sys;

/// Index bits of an id; the generation takes the bits above, up to bit 30,
/// so that ids are positive i32s.
const INDEX_BITS: u32 = 20;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;
const GENERATION_MASK: u32 = (1 << (31 - INDEX_BITS)) - 1;

struct Slot<T> {
    generation: u32,
    entry: Option<(sys::napi_env, Weak<T>)>,
}

/// A table of `T`s by id.
pub struct SocketTable<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
}

impl<T> SocketTable<T> {
    pub const fn new() -> Self {
        SocketTable {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Adds `value` of environment `env`; returns its id, or None when the
    /// table is full (a million sockets on one thread).
    pub fn insert(&mut self, env: sys::napi_env, value: &Rc<T>) -> Option<i32> {
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
        slot.entry = Some((env, Rc::downgrade(value)));
        Some(((slot.generation << INDEX_BITS) | index) as i32)
    }

    /// The live value of `id`, if `id` names one of environment `env`.
    pub fn get(&self, env: sys::napi_env, id: i32) -> Option<Rc<T>> {
        let (index, generation) = split(id)?;
        let slot = self.slots.get(index as usize)?;
        match &slot.entry {
            Some((owner, value)) if slot.generation == generation && *owner == env => value.upgrade(),
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

thread_local! {
    static TABLE: RefCell<SocketTable<crate::socket::SharedSocket>> = const { RefCell::new(SocketTable::new()) };
}

/// Registers a socket of `env`; its id, if the table has room.
pub fn register(env: sys::napi_env, socket: &Rc<crate::socket::SharedSocket>) -> Option<i32> {
    TABLE.with_borrow_mut(|t| t.insert(env, socket))
}

/// The socket `id` names in `env`, if it is alive.
pub fn lookup(env: sys::napi_env, id: i32) -> Option<Rc<crate::socket::SharedSocket>> {
    TABLE.with_borrow(|t| t.get(env, id))
}

/// Forgets `id`. Also called while the thread shuts down (a worker's last
/// finalizers), when the table may be gone already: nothing to forget then.
pub fn unregister(id: i32) {
    let _ = TABLE.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut() {
            t.remove(id);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(n: usize) -> sys::napi_env {
        n as sys::napi_env
    }

    #[test]
    fn ids_find_their_value_and_nothing_else() {
        let mut t = SocketTable::new();
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
        let mut t = SocketTable::new();
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
        let mut t = SocketTable::new();
        let a = Rc::new(1);
        let ia = t.insert(env(1), &a).expect("room");
        drop(a);
        assert!(t.get(env(1), ia).is_none());
    }
}
