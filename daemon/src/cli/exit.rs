//! pm's exit codes, so that a script can tell failures apart (documented in the README):
//! 0 success, 1 any other failure, 2 usage (clap's too), 3 the daemon cannot be reached, 4 no
//! such definition, instance or method, 5 the daemon refused (unauthorized, busy, invalid
//! definition, already exists, shutting down), 6 an error answer from a sidecar, 101 a panic.

use jsonrpsee::core::client::Error as RpcError;
use jsonrpsee::types::ErrorObjectOwned;
use pm_protocol::ErrorCode;
use std::process::ExitCode;

pub const USAGE: u8 = 2;
pub const UNREACHABLE: u8 = 3;
pub const NOT_FOUND: u8 = 4;
pub const REFUSED: u8 = 5;
pub const RPC: u8 = 6;

/// The daemon cannot be reached: not running, not answering, or not reachable at its address.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

/// The command line asks for something that cannot be: checked by pm after clap.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The exit code an error answer with this code gives.
fn of_code(code: i32) -> u8 {
    let is = |c: ErrorCode| c as i32 == code;
    if is(ErrorCode::UnknownName) || is(ErrorCode::MethodNotFound) {
        NOT_FOUND
    } else if [
        ErrorCode::Unauthorized,
        ErrorCode::Busy,
        ErrorCode::InvalidDefinition,
        ErrorCode::AlreadyExists,
        ErrorCode::ShuttingDown,
    ]
    .into_iter()
    .any(is)
    {
        REFUSED
    } else {
        RPC
    }
}

/// Says what failed on stderr, in one line (and an error answer's data, if it has some), and
/// gives the exit code for it.
pub fn fail(e: anyhow::Error) -> ExitCode {
    let code = match e.downcast_ref::<RpcError>() {
        // The daemon's message is already the one line a person needs.
        Some(RpcError::Call(obj)) => answered(obj, None),
        Some(RpcError::RequestTimeout) => {
            eprintln!("pm: the daemon did not answer in time");
            UNREACHABLE
        }
        Some(RpcError::RestartNeeded(_)) => {
            eprintln!("pm: the daemon closed the connection (see daemon.log in PM_HOME)");
            UNREACHABLE
        }
        _ => {
            eprintln!("pm: {e:#}");
            if e.downcast_ref::<Unreachable>().is_some() {
                UNREACHABLE
            } else if e.downcast_ref::<Usage>().is_some() {
                USAGE
            } else {
                1
            }
        }
    };
    ExitCode::from(code)
}

/// Says an error answer on stderr and gives its exit code: its message (with the method and
/// the code before it, when `method` is given), then its `data`, where the reason often is, on
/// the lines after.
pub fn answered(obj: &ErrorObjectOwned, method: Option<&str>) -> u8 {
    match method {
        Some(method) => eprintln!("pm: {method}: error {}: {}", obj.code(), obj.message()),
        None => eprintln!("pm: {}", obj.message()),
    }
    if let Some(data) = obj.data() {
        match serde_json::from_str::<serde_json::Value>(data.get()).and_then(|v| serde_json::to_string_pretty(&v)) {
            Ok(pretty) => eprintln!("data: {pretty}"),
            Err(_) => eprintln!("data: {}", data.get()),
        }
    }
    of_code(obj.code())
}
