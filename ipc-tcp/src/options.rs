//! The token of one listener or connection, from [`Options`] or `IPC_TOKEN`.

use ipc_core::Options;

/// The handshake secret a child spawned over tcp finds in its environment (64 hex
/// digits), and a tcp client or listener uses when its [`Options`] set no token.
pub const IPC_TOKEN: &str = "IPC_TOKEN";

/// The token bytes to present or expect (empty for none).
pub(crate) fn token_bytes(options: &Options) -> &[u8] {
    options.get_token().unwrap_or("").as_bytes()
}

/// The token in `IPC_TOKEN`, if set and not empty. Once read, it is kept from the
/// children this process spawns over any transport (a token is never passed on by
/// accident).
///
/// ```
/// if std::env::var_os("IPC_TOKEN").is_none() {
///     assert_eq!(ipc_tcp::token_from_env(), None);
/// }
/// ```
pub fn token_from_env() -> Option<String> {
    ipc_core::spawn::keep_from_children(IPC_TOKEN);
    std::env::var(IPC_TOKEN).ok().filter(|t| !t.is_empty())
}

/// `options`, with the token from `IPC_TOKEN` when it sets none (what
/// [`TcpTransport`](crate::TcpTransport) does for listen and connect).
pub(crate) fn with_env_token(options: &Options) -> Options {
    match (options.get_token(), token_from_env()) {
        (None, Some(token)) => options.clone().token(token),
        _ => options.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_read_from_the_environment_is_kept_from_every_child() {
        let _ = token_from_env();
        let mut command = std::process::Command::new("child");
        command.env(IPC_TOKEN, "inherited");
        let endpoint = "uds:fd=3".parse().expect("endpoint");
        ipc_core::spawn::set_child_env(&mut command, &endpoint, &Options::default());
        let token = command
            .get_envs()
            .find(|(name, _)| *name == IPC_TOKEN)
            .map(|(_, value)| value);
        assert_eq!(token, Some(None), "set_child_env removes IPC_TOKEN");
    }
}
