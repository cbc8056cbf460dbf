//! [`StdioAddress`]: the stdio transport's one endpoint, typed.

use std::fmt;

use ipc_core::{Endpoint, Error};

use crate::channel::NAME;

/// The endpoint forms the stdio transport accepts.
pub(crate) const FORMS: &[&str] = &["stdio:"];

/// This process's stdin and stdout (`stdio:`): parsed from an [`Endpoint`] with
/// `try_from`, made into one with `into`.
///
/// ```
/// use ipc_core::Endpoint;
/// use ipc_stdio::StdioAddress;
/// let ep: Endpoint = StdioAddress.into();
/// assert_eq!(ep.to_string(), "stdio:");
/// assert!(StdioAddress::try_from(&ep).is_ok());
/// assert!(StdioAddress::try_from(&"stdio:x".parse::<Endpoint>()?).is_err());
/// # Ok::<(), ipc_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StdioAddress;

impl TryFrom<&Endpoint> for StdioAddress {
    type Error = Error;

    fn try_from(endpoint: &Endpoint) -> Result<Self, Error> {
        match (endpoint.scheme(), endpoint.address()) {
            ("stdio", "") => Ok(StdioAddress),
            ("stdio", _) => Err(endpoint.invalid(NAME, FORMS, "stdio takes no address")),
            _ => Err(endpoint.invalid(
                NAME,
                FORMS,
                "the stdio transport only connects to this process's stdin/stdout",
            )),
        }
    }
}

impl From<StdioAddress> for Endpoint {
    fn from(_: StdioAddress) -> Endpoint {
        Endpoint::new("stdio", "")
    }
}

impl fmt::Display for StdioAddress {
    /// The endpoint form: `stdio:`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdio:")
    }
}
