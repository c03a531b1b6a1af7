//! Plain napi functions: callbacks without napi-rs's generated glue (which
//! allocates borrow-tracking state on every call and, for a method, unwraps
//! and type-checks `this`), for the calls made so often that this costs more
//! than their system calls. The functions of one [`bind`] share one value of
//! per-environment data, their napi `data`.

use std::ffi::{c_void, CStr};
use std::ptr;

use napi::sys;

use crate::values::{object, set_property};

/// A plain napi callback.
pub type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;
/// A plain function: its JavaScript name and its callback.
pub type Function = (&'static CStr, Callback);

/// The data the functions of one [`bind`] share, which lives as long as its
/// environment.
pub trait EnvData: 'static {
    /// Lets go of what the data holds in its environment (which it must know:
    /// a cleanup hook is told nothing else), from the environment's cleanup
    /// hook, or when [`bind`] fails.
    ///
    /// # Safety
    /// Its env is alive; none of the functions runs again.
    unsafe fn teardown(self: Box<Self>);
}

/// An object with `properties` and `functions`, each of which finds `data`
/// with [`args`]; `data` is freed by the environment's cleanup hook, after
/// which none of them can run. None if the runtime refuses (`data` is torn
/// down at once if the hook could not be registered, else by the hook).
///
/// # Safety
/// `env` must be the live env of the running call, `properties` values of it.
pub unsafe fn bind<T: EnvData>(
    env: sys::napi_env,
    data: Box<T>,
    properties: &[(&CStr, sys::napi_value)],
    functions: impl IntoIterator<Item = Function>,
) -> Option<sys::napi_value> {
    let data = Box::into_raw(data);
    // SAFETY: `data` is a Box::into_raw, given to the hook that frees it once
    // (Node runs a hook once, while its env is alive); raw napi calls on the
    // live env with values of it and out-pointers to locals.
    unsafe {
        if sys::napi_add_env_cleanup_hook(env, Some(free::<T>), data.cast()) != sys::Status::napi_ok {
            Box::from_raw(data).teardown();
            return None;
        }
        let object = object(env, properties)?;
        for (name, callback) in functions {
            let mut function = ptr::null_mut();
            if sys::napi_create_function(
                env,
                name.as_ptr(),
                name.count_bytes() as isize,
                Some(callback),
                data.cast(),
                &mut function,
            ) != sys::Status::napi_ok
                || !set_property(env, object, name, function)
            {
                return None;
            }
        }
        Some(object)
    }
}

unsafe extern "C" fn free<T: EnvData>(arg: *mut c_void) {
    // SAFETY: `arg` is the Box::into_raw of `bind`, registered once with this
    // hook, which Node calls once, with the env still alive.
    unsafe { Box::from_raw(arg.cast::<T>()).teardown() }
}

/// The data and the first `N` arguments of a running plain call (None if the
/// call has fewer, or no data). The data is borrowed for the call: JavaScript
/// is single-threaded per environment, so no other call holds it unless this
/// one runs JavaScript, which it must not do while it holds it.
///
/// # Safety
/// `env` and `info` are those of a running callback of [`bind`] with data of
/// type `T`; the borrow ends before the call runs any JavaScript.
pub unsafe fn args<'a, T: EnvData, const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Option<(&'a mut T, [sys::napi_value; N])> {
    let (mut argc, mut argv, mut data) = (N, [ptr::null_mut(); N], ptr::null_mut());
    // SAFETY: env and info are those of the running callback (the caller's
    // promise); the out-pointers are locals with room for N arguments.
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        )
    };
    if status != sys::Status::napi_ok || argc < N || data.is_null() {
        return None;
    }
    // SAFETY: `data` is the `T` bind gave every function, alive until the
    // environment's cleanup hook; the caller's promise makes this the only
    // live reference to it.
    Some((unsafe { &mut *data.cast::<T>() }, argv))
}
