//! The token of one listener or connection, from [`Options`] or `IPC_TOKEN`.

use ipc_core::Options;

/// The token bytes to present or expect (empty for none).
pub(crate) fn token_bytes(options: &Options) -> &[u8] {
    options.get_token().unwrap_or("").as_bytes()
}

/// `options`, with the token from `IPC_TOKEN` when it sets none (what
/// [`TcpTransport`](crate::TcpTransport) does for listen and connect).
pub(crate) fn with_env_token(options: &Options) -> Options {
    match (options.get_token(), ipc_core::env::token_from_env()) {
        (None, Some(token)) => options.clone().token(token),
        _ => options.clone(),
    }
}
