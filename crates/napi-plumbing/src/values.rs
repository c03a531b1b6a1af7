//! Small conversions between JavaScript values and Rust, and the values the
//! native side keeps alive.

use std::ffi::{c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

use napi::bindgen_prelude::{JsObjectValue, Result, ToNapiValue};
use napi::{sys, Env, JsValue};

/// A JavaScript value already built with raw napi calls, returned as is.
pub struct RawValue(pub sys::napi_value);

impl ToNapiValue for RawValue {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        Ok(val.0)
    }
}

/// `value` as a JavaScript value.
///
/// # Safety
/// `env` must be the live env of the current thread, with a handle scope open.
pub unsafe fn js<T: ToNapiValue>(env: sys::napi_env, value: T) -> Option<sys::napi_value> {
    // SAFETY: the caller's promise.
    unsafe { T::to_napi_value(env, value) }.ok()
}

/// The data and length (in elements) of `value`, a typed array of `kind`.
///
/// # Safety
/// `env` and `value` must be the live env and a value of the running call.
pub unsafe fn typed_array(
    env: sys::napi_env,
    value: sys::napi_value,
    kind: sys::napi_typedarray_type,
) -> Option<(*mut c_void, usize)> {
    let (mut actual, mut len, mut data, mut arraybuffer, mut offset) =
        (0, 0, ptr::null_mut(), ptr::null_mut(), 0);
    // SAFETY: the caller's promise; the out-pointers are locals.
    let status = unsafe {
        sys::napi_get_typedarray_info(
            env,
            value,
            &mut actual,
            &mut len,
            &mut data,
            &mut arraybuffer,
            &mut offset,
        )
    };
    (status == sys::Status::napi_ok && actual == kind).then_some((data, len))
}

/// The element type of a typed array shared with JavaScript.
pub trait Element: Copy {
    /// Its napi typed-array kind.
    const KIND: sys::napi_typedarray_type;
}

impl Element for u8 {
    const KIND: sys::napi_typedarray_type = sys::TypedarrayType::uint8_array;
}

impl Element for i32 {
    const KIND: sys::napi_typedarray_type = sys::TypedarrayType::int32_array;
}

/// Strong references that keep JavaScript values alive (typed arrays whose
/// memory the native side uses, functions it calls later) until they are
/// released together, by a call or a cleanup hook of their environment.
/// Dropping them releases nothing: the environment may be gone by then (a
/// thread's locals are destroyed after its environment).
pub struct KeptValues {
    env: sys::napi_env,
    references: Vec<sys::napi_ref>,
}

impl KeptValues {
    /// None yet, in `env`.
    pub fn new(env: sys::napi_env) -> Self {
        KeptValues {
            env,
            references: Vec::new(),
        }
    }

    /// Keeps `value`; returns its reference, to read it back with.
    ///
    /// # Safety
    /// `value` is a value of the running call in this set's env, which is live.
    pub unsafe fn value(&mut self, value: sys::napi_value) -> Option<sys::napi_ref> {
        let mut reference = ptr::null_mut();
        // SAFETY: the caller's promise; the out-pointer is a local.
        let status = unsafe { sys::napi_create_reference(self.env, value, 1, &mut reference) };
        (status == sys::Status::napi_ok).then(|| {
            self.references.push(reference);
            reference
        })
    }

    /// Keeps `value`, a typed array of `T` over an ArrayBuffer of its own
    /// (whose memory V8 never moves, unlike a small typed array's inline
    /// storage), and returns its memory and length in elements, valid and in
    /// place until [`release`](Self::release).
    ///
    /// # Safety
    /// As for [`value`](Self::value).
    pub unsafe fn typed_array<T: Element>(&mut self, value: sys::napi_value) -> Option<(*mut T, usize)> {
        // SAFETY: the caller's promise; the reference made right after keeps
        // the array, hence its memory, alive and in place until the release.
        unsafe {
            let (data, len) = typed_array(self.env, value, T::KIND)?;
            self.value(value)?;
            Some((data.cast(), len))
        }
    }

    /// Lets the values go.
    ///
    /// # Safety
    /// The env is alive: this runs in a call or a cleanup hook of it.
    pub unsafe fn release(self) {
        for reference in self.references {
            // SAFETY: made in this env, which is alive (the caller's promise).
            unsafe { sys::napi_delete_reference(self.env, reference) };
        }
    }
}

/// A new object with `properties`; None if the runtime refuses.
///
/// # Safety
/// `env` must be the live env of the current thread, with a handle scope
/// open, and the values made in it.
pub unsafe fn object(env: sys::napi_env, properties: &[(&CStr, sys::napi_value)]) -> Option<sys::napi_value> {
    let mut object = ptr::null_mut();
    // SAFETY: the caller's promise; the out-pointer is a local.
    if unsafe { sys::napi_create_object(env, &mut object) } != sys::Status::napi_ok {
        return None;
    }
    // SAFETY: as above, for the object just made.
    properties
        .iter()
        .all(|(name, value)| unsafe { set_property(env, object, name, *value) })
        .then_some(object)
}

/// Sets `object[name]`; whether the runtime did.
///
/// # Safety
/// As for [`object`].
pub unsafe fn set_property(
    env: sys::napi_env,
    object: sys::napi_value,
    name: &CStr,
    value: sys::napi_value,
) -> bool {
    // SAFETY: the caller's promise; `name` is NUL-terminated.
    unsafe { sys::napi_set_named_property(env, object, name.as_ptr(), value) == sys::Status::napi_ok }
}

/// Builds a JavaScript array of integers.
///
/// # Safety
/// `env` must be the live env of the current thread.
pub unsafe fn int_array(
    env: sys::napi_env,
    ints: impl ExactSizeIterator<Item = i32>,
) -> Option<sys::napi_value> {
    let env = Env::from_raw(env);
    let mut array = env.create_array(ints.len() as u32).ok()?;
    for (i, n) in ints.enumerate() {
        array.set(i as u32, n).ok()?;
    }
    Some(array.raw())
}

/// Whether this process runs Deno (a global named `Deno`), whose napi
/// differs from Node's in a few places that abort the process: Deno aborts
/// (V8: "Cannot create a handle without a HandleScope") on
/// `napi_async_destroy` once an environment is shutting down, so an async
/// context is left to end with its environment there. Asked once per process.
///
/// # Safety
/// `env` must be the live env of the current call, with a scope open.
pub unsafe fn is_deno(env: sys::napi_env) -> bool {
    static DENO: OnceLock<bool> = OnceLock::new();
    *DENO.get_or_init(|| {
        let global = Env::from_raw(env).get_global();
        global
            .and_then(|global| global.has_named_property("Deno"))
            .unwrap_or(false)
    })
}
