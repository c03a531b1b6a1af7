//! `socketInfo(fd)`: the core's `socket_info`, as a plain object the
//! TypeScript layer reshapes into its public types.

use std::net::SocketAddr;

use napi::bindgen_prelude::{Buffer, Result};
use napi::Env;
use napi_derive::napi;

use fdpass::socket_info::{self, Address};

use crate::errors::OrThrow;
use crate::values::borrow_fd;

/// One end's address, flattened: `kind` says which fields are set.
#[napi(object)]
#[derive(Default)]
pub struct NativeSocketAddress {
    /// 'path', 'abstract', 'unnamed', 'inet', 'inet6' or 'other'.
    pub kind: String,
    /// The path or abstract name's bytes (Unix).
    pub name: Option<Buffer>,
    /// The IP address (inet, inet6).
    pub address: Option<String>,
    pub port: Option<u32>,
    pub flowinfo: Option<u32>,
    pub scope_id: Option<u32>,
}

/// What the core reports about a socket.
#[napi(object)]
pub struct NativeSocketInfo {
    pub family: String,
    pub family_number: i32,
    pub r#type: String,
    pub type_number: i32,
    pub protocol: i32,
    pub listening: bool,
    pub local: NativeSocketAddress,
    pub peer: Option<NativeSocketAddress>,
}

fn address(addr: Address) -> NativeSocketAddress {
    let of_kind = |kind: &str| NativeSocketAddress {
        kind: kind.into(),
        ..Default::default()
    };
    let inet = |kind: &str, ip: String, port: u16| NativeSocketAddress {
        address: Some(ip),
        port: Some(u32::from(port)),
        ..of_kind(kind)
    };
    match addr {
        Address::UnixPath(bytes) => NativeSocketAddress {
            name: Some(bytes.into()),
            ..of_kind("path")
        },
        Address::UnixAbstract(bytes) => NativeSocketAddress {
            name: Some(bytes.into()),
            ..of_kind("abstract")
        },
        Address::UnixUnnamed => of_kind("unnamed"),
        Address::Inet(SocketAddr::V4(v4)) => inet("inet", v4.ip().to_string(), v4.port()),
        Address::Inet(SocketAddr::V6(v6)) => NativeSocketAddress {
            flowinfo: Some(v6.flowinfo()),
            scope_id: Some(v6.scope_id()),
            ..inet("inet6", v6.ip().to_string(), v6.port())
        },
        Address::Other => of_kind("other"),
    }
}

/// Describes the socket `fd` (which stays the caller's).
#[napi(js_name = "socketInfo")]
pub fn socket_info(env: Env, fd: i32) -> Result<NativeSocketInfo> {
    let borrowed = borrow_fd(&env, fd)?;
    let info = socket_info::socket_info(borrowed).or_throw(&env)?;
    Ok(NativeSocketInfo {
        family: info.family.name().into(),
        family_number: info.family_number,
        r#type: socket_info::type_name(info.socket_type).into(),
        type_number: info.socket_type,
        protocol: info.protocol,
        listening: info.listening,
        local: address(info.local),
        peer: info.peer.map(address),
    })
}
