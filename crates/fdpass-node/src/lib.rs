//! Node.js binding of the `fdpass` crate: conversion between JavaScript values
//! and the core, nothing more. The public API is the TypeScript layer
//! (`index.ts`), which validates arguments before they reach this module. The
//! connection logic is the core's (`fdpass::conn`).
//!
//! The Node-API and libuv plumbing (the watched fd and its callback, kept
//! values, error objects, plain functions) is `napi_plumbing`'s, which knows
//! nothing of fdpass.
//!
//! Layers, each using only those above it (no module cycle):
//! 1. `errors`, then `values`: core errors as JavaScript errors, core types
//!    from JavaScript values (the global allocator is the core's
//!    `fdpass::alloc`).
//! 2. `lean`: the scratch buffer of the per-message calls.
//! 3. `held_fds`, then `shared_buffers`: memory shared with JavaScript.
//! 4. `raw`, `unix`, `memfd`, `notify`, `socket_info`, `stream`: exported functions over
//!    the core.
//! 5. `socket`: the `NativeSocket` class, a `fdpass::conn::Connection` in a
//!    `napi_plumbing::watch::Watcher`.
//! 6. `lean_exports`: `bindLean`, which gathers the lean functions of `raw`
//!    and `socket`.

// napi-derive registers exports only outside `cfg(test)`, so the unit-test
// build of this crate sees them as unused.
#![cfg_attr(test, allow(dead_code))]

mod errors;
mod held_fds;
mod lean;
mod lean_exports;
mod memfd;
mod notify;
mod raw;
mod shared_buffers;
mod socket;
mod socket_info;
mod stream;
mod unix;
mod values;

#[global_allocator]
static ALLOCATOR: fdpass::alloc::Allocator = fdpass::alloc::Allocator;
