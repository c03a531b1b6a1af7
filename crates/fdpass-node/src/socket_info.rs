//! `socketInfo(fd)`: the core's `socket_info`, as a plain object the
//! TypeScript layer reshapes into its public types.

use napi::bindgen_prelude::{Buffer, Result};
use napi::Env;
use napi_derive::napi;

use fdpass::socket_info::{self, Address};

use crate::errors::OrThrow;
use crate::values::borrow_fd;

/// One end's address, flattened: `kind` says which fields are set.
#[napi(object)]
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
    let mut out = NativeSocketAddress {
        kind: String::new(),
        name: None,
        address: None,
        port: None,
        flowinfo: None,
        scope_id: None,
    };
    match addr {
        Address::UnixPath(bytes) => {
            out.kind = "path".into();
            out.name = Some(bytes.into());
        }
        Address::UnixAbstract(bytes) => {
            out.kind = "abstract".into();
            out.name = Some(bytes.into());
        }
        Address::UnixUnnamed => out.kind = "unnamed".into(),
        Address::Inet(std::net::SocketAddr::V4(v4)) => {
            out.kind = "inet".into();
            out.address = Some(v4.ip().to_string());
            out.port = Some(u32::from(v4.port()));
        }
        Address::Inet(std::net::SocketAddr::V6(v6)) => {
            out.kind = "inet6".into();
            out.address = Some(v6.ip().to_string());
            out.port = Some(u32::from(v6.port()));
            out.flowinfo = Some(v6.flowinfo());
            out.scope_id = Some(v6.scope_id());
        }
        Address::Other => out.kind = "other".into(),
    }
    out
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
