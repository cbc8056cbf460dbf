//! [`NodeAddress`]: the node transport's endpoints, typed.

use std::fmt;
use std::os::fd::RawFd;

use ipc_core::{Endpoint, Error};

use crate::channel::NAME;

/// The endpoint forms the node transport accepts.
pub(crate) const FORMS: &[&str] = &["node:fd=N"];

/// The inherited socket of a Node.js `fork()` channel (`node:fd=3`, what
/// `NODE_CHANNEL_FD=3` names): parsed from an [`Endpoint`] with `try_from`, made into
/// one with `into`.
///
/// ```
/// use ipc_core::Endpoint;
/// use ipc_node::NodeAddress;
/// let ep: Endpoint = NodeAddress { fd: 3 }.into();
/// assert_eq!(ep.to_string(), "node:fd=3");
/// assert_eq!(NodeAddress::try_from(&ep)?.fd, 3);
/// assert!(NodeAddress::try_from(&"node:3".parse::<Endpoint>()?).is_err());
/// # Ok::<(), ipc_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeAddress {
    /// The inherited socket's fd number.
    pub fd: RawFd,
}

impl TryFrom<&Endpoint> for NodeAddress {
    type Error = Error;

    fn try_from(endpoint: &Endpoint) -> Result<Self, Error> {
        if endpoint.scheme() != "node" {
            return Err(endpoint.invalid(
                NAME,
                FORMS,
                "the node transport connects only to Node's fork channel",
            ));
        }
        endpoint
            .address()
            .strip_prefix("fd=")
            .and_then(ipc_core::endpoint::parse_fd)
            .map(|fd| NodeAddress { fd })
            .ok_or_else(|| {
                endpoint.invalid(NAME, FORMS, "node: names an inherited socket, as node:fd=3")
            })
    }
}

impl From<NodeAddress> for Endpoint {
    fn from(address: NodeAddress) -> Endpoint {
        Endpoint::new("node", format!("fd={}", address.fd))
    }
}

impl fmt::Display for NodeAddress {
    /// The endpoint form: `node:fd=N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node:fd={}", self.fd)
    }
}
