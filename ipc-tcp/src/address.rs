//! [`TcpAddress`]: the tcp transport's endpoints, typed.

use std::fmt;
use std::net::SocketAddr;

use ipc_core::{Endpoint, Error};

/// The endpoint forms the tcp transport accepts.
pub(crate) const FORMS: &[&str] = &["tcp://HOST:PORT"];

/// Where a tcp channel lives (`tcp://127.0.0.1:7000`, `tcp://[::1]:7000`): parsed from
/// an [`Endpoint`] with `try_from`, made into one with `into`.
///
/// ```
/// use ipc_core::Endpoint;
/// use ipc_tcp::TcpAddress;
/// let ep: Endpoint = TcpAddress(([127, 0, 0, 1], 7000).into()).into();
/// assert_eq!(ep.to_string(), "tcp://127.0.0.1:7000");
/// assert_eq!(TcpAddress::try_from(&ep)?.0.port(), 7000);
/// assert!(TcpAddress::try_from(&"tcp://nohost".parse::<Endpoint>()?).is_err());
/// # Ok::<(), ipc_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpAddress(pub SocketAddr);

impl TryFrom<&Endpoint> for TcpAddress {
    type Error = Error;

    fn try_from(endpoint: &Endpoint) -> Result<Self, Error> {
        let bad = |why: String| endpoint.invalid("tcp", FORMS, why);
        if endpoint.scheme() != "tcp" {
            return Err(bad(format!("{}: is not the tcp scheme", endpoint.scheme())));
        }
        let addr = endpoint
            .address()
            .strip_prefix("//")
            .ok_or_else(|| bad("tcp endpoints look like tcp://127.0.0.1:7000".into()))?;
        addr.parse::<SocketAddr>()
            .map(TcpAddress)
            .map_err(|e| bad(format!("{addr:?} is not an IP:PORT address ({e})")))
    }
}

impl From<TcpAddress> for Endpoint {
    fn from(address: TcpAddress) -> Endpoint {
        Endpoint::new("tcp", format!("//{}", address.0))
    }
}

impl From<SocketAddr> for TcpAddress {
    fn from(addr: SocketAddr) -> TcpAddress {
        TcpAddress(addr)
    }
}

impl fmt::Display for TcpAddress {
    /// The endpoint form: `tcp://ADDR:PORT`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tcp://{}", self.0)
    }
}
