//! [`Endpoint`]: where a channel lives, `SCHEME:ADDRESS`.
//!
//! The core knows no scheme: an endpoint is a scheme and an address, split at the
//! first `:`, and the transport that serves the scheme parses the address (each
//! backend has its own typed address: `ipc_uds::UdsAddress`, `ipc_tcp::TcpAddress`,
//! ...). [`Registry::endpoint`](crate::Registry::endpoint) parses a string and has the
//! owning transport check it; a string no transport serves gets an error listing the
//! schemes and forms the registry has. The table of every built-in form is in
//! `docs/PROTOCOL.md`, section 4 (Endpoint strings).
//!
//! `Display` prints `SCHEME:ADDRESS`, so `endpoint.to_string().parse()` gives it back.
//!
//! ```
//! use ipc_core::Endpoint;
//! let ep: Endpoint = "unix:@my-app".parse()?;
//! assert_eq!(ep.scheme(), "unix");
//! assert_eq!(ep.address(), "@my-app");
//! assert_eq!(ep.to_string(), "unix:@my-app");
//! assert_eq!(ep, Endpoint::new("unix", "@my-app"));
//! assert!("no scheme here".parse::<Endpoint>().is_err());
//! # Ok::<(), ipc_core::Error>(())
//! ```

use std::fmt;
use std::os::fd::RawFd;
use std::str::FromStr;

use crate::error::Error;

/// `SCHEME:ADDRESS`, the address meaningful to the transport serving the scheme. See
/// the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    scheme: String,
    address: String,
}

impl Endpoint {
    /// The endpoint `scheme:address`. A backend builds its endpoints with this (its
    /// typed address converts into an `Endpoint` through it).
    ///
    /// ```
    /// let ep = ipc_core::Endpoint::new("tcp", "//127.0.0.1:7000");
    /// assert_eq!(ep.to_string(), "tcp://127.0.0.1:7000");
    /// ```
    pub fn new(scheme: impl Into<String>, address: impl Into<String>) -> Endpoint {
        Endpoint {
            scheme: scheme.into(),
            address: address.into(),
        }
    }

    /// The scheme, before the first `:` (`tcp`, `unix`, ...).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Everything after the first `:` (`//127.0.0.1:7000`, `/run/app.sock`, `fd=3`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// An [`Error::BadEndpoint`] for this endpoint: `why` it is wrong, then the `forms`
    /// the `transport` accepts. What a backend's address parser returns.
    ///
    /// ```
    /// let ep: ipc_core::Endpoint = "mem:".parse()?;
    /// let err = ep.invalid("mem", &["mem:NAME"], "the name is empty");
    /// assert_eq!(
    ///     err.to_string(),
    ///     "bad endpoint \"mem:\": the name is empty; the mem transport takes mem:NAME"
    /// );
    /// # Ok::<(), ipc_core::Error>(())
    /// ```
    pub fn invalid(&self, transport: &str, forms: &[&str], why: impl fmt::Display) -> Error {
        Error::BadEndpoint {
            input: self.to_string(),
            reason: format!(
                "{why}; the {transport} transport takes {}",
                forms.join(", ")
            ),
        }
    }
}

/// A file descriptor number in an address (`3` in `uds:fd=3`): `None` unless it is a
/// number `>= 0`.
///
/// ```
/// assert_eq!(ipc_core::endpoint::parse_fd("3"), Some(3));
/// assert_eq!(ipc_core::endpoint::parse_fd("-1"), None);
/// ```
pub fn parse_fd(text: &str) -> Option<RawFd> {
    text.trim().parse::<RawFd>().ok().filter(|fd| *fd >= 0)
}

/// True for a URI scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

impl FromStr for Endpoint {
    type Err = Error;

    /// Split at the first `:`; only the scheme's syntax is checked here (the owning
    /// transport checks the address: see
    /// [`Registry::endpoint`](crate::Registry::endpoint)).
    fn from_str(input: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadEndpoint {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, address) = input.split_once(':').ok_or_else(|| {
            bad("missing scheme (expected SCHEME:ADDRESS, such as unix:/run/app.sock)")
        })?;
        if !is_scheme(scheme) {
            return Err(bad(
                "the scheme before ':' must be a letter followed by letters, digits, '+', '-' or '.'",
            ));
        }
        Ok(Endpoint::new(scheme, address))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme, self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip() {
        for s in [
            "tcp://[::1]:9",
            "unix:/run/app.sock",
            "stdio:",
            "x+y.z-1:a:b",
        ] {
            let ep: Endpoint = s.parse().expect(s);
            assert_eq!(ep.to_string(), s);
            assert_eq!(ep.to_string().parse::<Endpoint>().expect(s), ep);
        }
        let ep: Endpoint = "pipe:fd=3,4".parse().expect("pipe");
        assert_eq!((ep.scheme(), ep.address()), ("pipe", "fd=3,4"));
    }

    #[test]
    fn strings_without_a_scheme_are_refused() {
        for s in ["", "nocolon", ":x", "1tcp:x", "a b:c"] {
            let err = s.parse::<Endpoint>().expect_err(s);
            assert!(matches!(err, Error::BadEndpoint { .. }), "{err}");
            assert!(err.to_string().contains("scheme"), "{err}");
        }
    }
}
