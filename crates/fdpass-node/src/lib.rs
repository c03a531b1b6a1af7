//! Node.js binding of the `fdpass` crate: conversion between JavaScript values
//! and the core, nothing more. The public API is the TypeScript layer
//! (`index.ts`), which validates arguments before they reach this module.

// napi-derive registers exports only outside `cfg(test)`, so the unit-test
// build of this crate sees them as unused.
#![cfg_attr(test, allow(dead_code))]

mod allocator;
mod datagram_scratch;
mod errors;
mod held_fds;
mod lean;
mod memfd;
mod notify;
mod raw;
mod shared_buffers;
mod socket;
mod socket_info;
mod socket_table;
mod stream;
mod unix;
mod uv;
mod values;

#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;
