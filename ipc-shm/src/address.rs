//! [`ShmAddress`]: the shm transport's endpoints, typed.

use std::fmt;
use std::os::fd::RawFd;
use std::path::PathBuf;

use ipc_core::{Endpoint, Error};

use crate::channel::NAME;

/// The endpoint forms the shm transport accepts.
pub(crate) const FORMS: &[&str] = &["shm:/PATH", "shm:fd=N"];

/// Where a shm channel lives: parsed from an [`Endpoint`] with `try_from`, made into one
/// with `into`.
///
/// ```
/// use ipc_core::Endpoint;
/// use ipc_shm::ShmAddress;
/// let ep: Endpoint = ShmAddress::Path("/run/app.sock".into()).into();
/// assert_eq!(ep.to_string(), "shm:/run/app.sock");
/// assert_eq!(ShmAddress::try_from(&"shm:fd=3".parse::<Endpoint>()?)?, ShmAddress::Fd(3));
/// assert!(ShmAddress::try_from(&"shm:".parse::<Endpoint>()?).is_err());
/// # Ok::<(), ipc_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ShmAddress {
    /// `shm:/path`: the rendezvous socket file of a [`ShmListener`](crate::ShmListener).
    Path(PathBuf),
    /// `shm:fd=N`: an inherited socket on which the parent offers a segment.
    Fd(RawFd),
}

impl TryFrom<&Endpoint> for ShmAddress {
    type Error = Error;

    fn try_from(endpoint: &Endpoint) -> Result<Self, Error> {
        let bad = |why: &str| endpoint.invalid(NAME, FORMS, why);
        let address = endpoint.address();
        match endpoint.scheme() {
            "shm" => match address.strip_prefix("fd=") {
                Some(fd) => ipc_core::endpoint::parse_fd(fd)
                    .map(ShmAddress::Fd)
                    .ok_or_else(|| bad("shm:fd= names an inherited socket by number, as shm:fd=3")),
                None if address.is_empty() => Err(bad("the rendezvous socket path is empty")),
                None => Ok(ShmAddress::Path(PathBuf::from(address))),
            },
            other => Err(bad(&format!("{other}: is not a shm scheme"))),
        }
    }
}

impl From<ShmAddress> for Endpoint {
    fn from(address: ShmAddress) -> Endpoint {
        match address {
            ShmAddress::Path(path) => Endpoint::new("shm", path.display().to_string()),
            ShmAddress::Fd(fd) => Endpoint::new("shm", format!("fd={fd}")),
        }
    }
}

impl fmt::Display for ShmAddress {
    /// The endpoint form: `shm:/path`, `shm:fd=N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Endpoint::from(self.clone()).fmt(f)
    }
}
