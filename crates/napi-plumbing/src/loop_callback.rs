//! A JavaScript function the event loop calls back (a socket's event
//! callback, the settle function of the deferred stops), with the async
//! context its calls run in, so that `async_hooks` and `AsyncLocalStorage`
//! see them as they see Node's own I/O callbacks.

use std::ffi::CStr;
use std::ptr;

use napi::sys;

use crate::values::is_deno;

/// The function's reference and async context, released with
/// [`release`](LoopCallback::release) by a call or a cleanup hook of its
/// environment at the latest (dropping it releases nothing: the environment
/// may be gone by then).
pub struct LoopCallback {
    func: sys::napi_ref,
    context: sys::napi_async_context,
    strong: bool,
    /// Whether the context may be destroyed from the environment's cleanup
    /// hook (not on Deno, see [`is_deno`]).
    destroy_at_teardown: bool,
}

impl LoopCallback {
    /// `func`, held strongly or weakly (see [`set_strong`](Self::set_strong)),
    /// with a new async context named `name`; None if napi fails.
    ///
    /// # Safety
    /// `env` must be the live env of the running call, with a handle scope
    /// open, and `func` a value of it.
    pub unsafe fn new(env: sys::napi_env, func: sys::napi_value, name: &CStr, strong: bool) -> Option<Self> {
        let (mut reference, mut string, mut resource, mut context) =
            (ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        // SAFETY: raw napi calls on the live env, with values of this call, a
        // NUL-terminated name and out-pointers to locals; a reference made
        // before a later step fails is deleted.
        unsafe {
            if sys::napi_create_reference(env, func, u32::from(strong), &mut reference)
                != sys::Status::napi_ok
            {
                return None;
            }
            if sys::napi_create_string_utf8(env, name.as_ptr(), -1, &mut string) != sys::Status::napi_ok
                || sys::napi_create_object(env, &mut resource) != sys::Status::napi_ok
                || sys::napi_async_init(env, resource, string, &mut context) != sys::Status::napi_ok
            {
                sys::napi_delete_reference(env, reference);
                return None;
            }
        }
        Some(LoopCallback {
            func: reference,
            context,
            strong,
            // SAFETY: the caller's promise.
            destroy_at_teardown: !unsafe { is_deno(env) },
        })
    }

    /// Holds the function strongly, or weakly (so that an idle socket, which
    /// its owner no longer reaches, can be collected with its callback).
    ///
    /// # Safety
    /// `env` must be this callback's env, alive.
    pub unsafe fn set_strong(&mut self, env: sys::napi_env, strong: bool) {
        if self.strong == strong {
            return;
        }
        let mut count = 0;
        // SAFETY: the reference belongs to this live env and is not released.
        unsafe {
            if strong {
                sys::napi_reference_ref(env, self.func, &mut count);
            } else {
                sys::napi_reference_unref(env, self.func, &mut count);
            }
        }
        self.strong = strong;
    }

    /// The function, unless it was collected.
    ///
    /// # Safety
    /// `env` must be this callback's env, alive, with a handle scope open.
    pub unsafe fn function(&self, env: sys::napi_env) -> Option<sys::napi_value> {
        let mut value = ptr::null_mut();
        // SAFETY: the caller's promise; the out-pointer is a local.
        let status = unsafe { sys::napi_get_reference_value(env, self.func, &mut value) };
        (status == sys::Status::napi_ok && !value.is_null()).then_some(value)
    }

    /// The async context its calls run in.
    pub fn context(&self) -> sys::napi_async_context {
        self.context
    }

    /// Lets go of the function and of the async context; `at_teardown` when
    /// called from the environment's cleanup hook, where on Deno the context
    /// is left to end with the environment.
    ///
    /// # Safety
    /// `env` must be this callback's env, alive.
    pub unsafe fn release(self, env: sys::napi_env, at_teardown: bool) {
        // SAFETY: both belong to this live env and are released once (`self`
        // is consumed).
        unsafe {
            sys::napi_delete_reference(env, self.func);
            if !at_teardown || self.destroy_at_teardown {
                sys::napi_async_destroy(env, self.context);
            }
        }
    }
}

/// Runs `f` inside a handle scope, which bounds the values it makes.
///
/// # Safety
/// `env` must be the live env of the current thread.
pub unsafe fn in_handle_scope(env: sys::napi_env, f: impl FnOnce()) {
    let mut scope = ptr::null_mut();
    // SAFETY: the caller's promise; the scope opened here is closed here.
    unsafe {
        if sys::napi_open_handle_scope(env, &mut scope) == sys::Status::napi_ok {
            f();
            sys::napi_close_handle_scope(env, scope);
        }
    }
}

/// Runs `f` inside a callback scope of `context`, as the event loop runs an
/// I/O callback: microtasks and `nextTick` run once it ends. Nothing runs if
/// the scope cannot be opened.
///
/// # Safety
/// `env` must be the live env of the current thread, with a handle scope
/// open, and `context` an async context of it.
pub unsafe fn in_callback_scope(env: sys::napi_env, context: sys::napi_async_context, f: impl FnOnce()) {
    let mut scope = ptr::null_mut();
    // SAFETY: the caller's promise; the scope opened here is closed here.
    unsafe {
        if sys::napi_open_callback_scope(env, ptr::null_mut(), context, &mut scope) == sys::Status::napi_ok {
            f();
            sys::napi_close_callback_scope(env, scope);
        }
    }
}

/// Calls `func` with `args` (`this`: the global object); whether it returned
/// normally. With `uncaught`, an exception it throws is reported as uncaught
/// (`process.on('uncaughtException')`), as for any callback from the event
/// loop; otherwise it stays pending, for the running call to throw.
///
/// # Safety
/// `env` must be the live env of the current thread, with a handle scope
/// open, and `func` a function made in it.
pub unsafe fn call(
    env: sys::napi_env,
    func: sys::napi_value,
    args: &[sys::napi_value],
    uncaught: bool,
) -> bool {
    let (mut global, mut result) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: raw napi calls on the live env (the caller's promise), with
    // values made in it and out-pointers to locals.
    unsafe {
        sys::napi_get_global(env, &mut global);
        let status = sys::napi_call_function(env, global, func, args.len(), args.as_ptr(), &mut result);
        if status == sys::Status::napi_pending_exception && uncaught {
            let mut error = ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env, &mut error);
            sys::napi_fatal_exception(env, error);
        }
        status == sys::Status::napi_ok
    }
}
