//! Stable JSON-RPC error codes. Scripts match on the number; the message is for people.

use jsonrpsee::types::ErrorObjectOwned;

/// pm's error codes, in the implementation-defined range of JSON-RPC 2.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ErrorCode {
    /// The frame is not JSON (JSON-RPC 2.0).
    ParseError = -32700,
    /// No such method (JSON-RPC 2.0).
    MethodNotFound = -32601,
    /// The params do not fit the method (JSON-RPC 2.0).
    InvalidParams = -32602,
    /// The frame is JSON but not a request, or an empty batch (JSON-RPC 2.0).
    InvalidRequest = -32600,
    /// The server failed while handling the request (JSON-RPC 2.0).
    InternalError = -32603,
    /// No definition or instance of that name.
    UnknownName = -32001,
    /// The sidecar exists but is not ready.
    NotReady = -32002,
    /// The sidecar has not registered any methods.
    NotCommandable = -32003,
    /// The call took longer than its deadline.
    DeadlineExceeded = -32004,
    /// Missing or wrong token, or a foreign uid on the Unix socket.
    Unauthorized = -32005,
    /// The sidecar went away while the call was pending.
    SidecarGone = -32006,
    /// A frame exceeded the connection's limit; the connection is closed.
    FrameTooLarge = -32007,
    /// Over a limit of the connection or the target (calls in flight, concurrent `pm.*`
    /// requests, a sidecar that is not taking requests): retry later, with fewer at once.
    Busy = -32008,
    /// A definition is invalid: bad name, dependency cycle, missing dependency.
    InvalidDefinition = -32010,
    /// A start failed: spawn error or readiness not met in time.
    StartFailed = -32011,
    /// A definition or instance of that name exists already.
    AlreadyExists = -32012,
    /// The daemon is shutting down.
    ShuttingDown = -32013,
    /// The change was made but state.json could not be written (the reason says why): a daemon
    /// restarted now would not know of it.
    StateNotSaved = -32014,
}

impl ErrorCode {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// A JSON-RPC error object with this code and message.
    pub fn err(self, message: impl Into<String>) -> ErrorObjectOwned {
        ErrorObjectOwned::owned::<()>(self.code(), message.into(), None)
    }
}
