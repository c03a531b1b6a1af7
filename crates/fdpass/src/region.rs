//! Memory the core reads and writes but does not own: a typed array of the
//! JavaScript runtime, which the binding keeps alive, through which the hot
//! paths exchange data without creating objects (see [`crate::held_fds`] and
//! [`crate::shared_buffers`]).

use std::ptr::NonNull;

/// `len` elements of `T` owned by someone else (a JavaScript runtime), who
/// runs on the same thread and never while a method of the region runs.
/// Every access is bounds-checked; no reference into the memory is handed
/// out, so its owner may write it between two calls.
pub struct Region<T: Copy> {
    /// Non-null (dangling for an empty region), aligned, valid for `len`
    /// elements (see [`Region::new`]). A raw pointer also keeps the region on
    /// its owner's thread (neither `Send` nor `Sync`).
    ptr: NonNull<T>,
    len: usize,
}

impl<T: Copy> Region<T> {
    /// The `len` elements at `ptr` (which may be null when `len` is 0).
    ///
    /// # Safety
    /// `ptr` must be aligned and valid for reads and writes of `len` elements
    /// of `T` for as long as the region lives, and nothing else may access
    /// that memory while a method of the region runs.
    pub unsafe fn new(ptr: *mut T, len: usize) -> Self {
        Region {
            ptr: NonNull::new(ptr)
                .filter(|_| len > 0)
                .unwrap_or(NonNull::dangling()),
            len,
        }
    }

    /// A region of no elements.
    pub fn empty() -> Self {
        Region {
            ptr: NonNull::dangling(),
            len: 0,
        }
    }

    /// How many elements it has.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<T> {
        // SAFETY: in bounds of memory valid for reads (the promise of `new`),
        // which nothing else accesses during this call.
        (i < self.len).then(|| unsafe { self.ptr.as_ptr().add(i).read() })
    }

    /// Sets element `i`; false (nothing written) if there is no such element.
    pub fn set(&self, i: usize, value: T) -> bool {
        if i >= self.len {
            return false;
        }
        // SAFETY: as in `get`, for writes.
        unsafe { self.ptr.as_ptr().add(i).write(value) };
        true
    }

    /// Copies `values` to the start of the region; false (nothing written)
    /// if they do not fit.
    pub fn write_start(&self, values: &[T]) -> bool {
        if values.len() > self.len {
            return false;
        }
        // SAFETY: the destination holds `values.len()` elements (checked
        // above), is aligned and non-null even when empty; `values` is Rust
        // memory, which cannot overlap memory the runtime owns.
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), self.ptr.as_ptr(), values.len()) };
        true
    }

    /// The indexes of the elements for which `f` holds.
    pub fn positions<'a>(&'a self, f: impl Fn(T) -> bool + 'a) -> impl Iterator<Item = usize> + 'a {
        (0..self.len).filter(move |&i| self.get(i).is_some_and(&f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_access_is_bounds_checked() {
        let mut memory = vec![0i32; 4];
        // SAFETY: the Vec outlives the region and is not touched meanwhile.
        let region = unsafe { Region::new(memory.as_mut_ptr(), memory.len()) };
        assert!(region.set(3, 7));
        assert!(!region.set(4, 7));
        assert_eq!(region.get(3), Some(7));
        assert_eq!(region.get(4), None);
        assert!(region.write_start(&[1, 2]));
        assert!(!region.write_start(&[9; 5]), "too long: nothing written");
        assert_eq!(
            (0..4).map(|i| region.get(i)).collect::<Vec<_>>(),
            [Some(1), Some(2), Some(0), Some(7)]
        );
        assert_eq!(region.positions(|v| v != 0).collect::<Vec<_>>(), [0, 1, 3]);
        assert_eq!(memory, [1, 2, 0, 7]);
    }

    #[test]
    fn an_empty_region_from_a_null_pointer_is_usable() {
        // SAFETY: no element, so nothing is ever read or written.
        let region = unsafe { Region::<u8>::new(std::ptr::null_mut(), 0) };
        assert!(region.is_empty());
        assert!(region.write_start(&[]));
        assert!(!region.write_start(&[1]));
        assert_eq!(region.get(0), None);
        assert!(Region::<u8>::empty().is_empty());
    }
}
