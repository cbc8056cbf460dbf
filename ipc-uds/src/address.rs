//! [`UdsAddress`]: the uds transport's endpoints, typed.

use std::fmt;
use std::os::fd::RawFd;
use std::path::PathBuf;

use ipc_core::{Endpoint, Error};

use crate::channel::NAME;

/// The endpoint forms the uds transport accepts.
pub(crate) const FORMS: &[&str] = &["unix:/PATH", "unix:@NAME", "uds:fd=N"];

/// Where a uds channel lives: parsed from an [`Endpoint`] with `try_from`, made into one
/// with `into`.
///
/// ```
/// use ipc_core::Endpoint;
/// use ipc_uds::UdsAddress;
/// let ep: Endpoint = UdsAddress::Abstract("my-app".into()).into();
/// assert_eq!(ep.to_string(), "unix:@my-app");
/// assert_eq!(UdsAddress::try_from(&"uds:fd=3".parse::<Endpoint>()?)?, UdsAddress::Fd(3));
/// assert!(UdsAddress::try_from(&"unix:".parse::<Endpoint>()?).is_err());
/// # Ok::<(), ipc_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UdsAddress {
    /// `unix:/path`: a socket file.
    Path(PathBuf),
    /// `unix:@name`: a Linux abstract socket name.
    Abstract(String),
    /// `uds:fd=N`: an inherited, already connected socket.
    Fd(RawFd),
}

impl TryFrom<&Endpoint> for UdsAddress {
    type Error = Error;

    fn try_from(endpoint: &Endpoint) -> Result<Self, Error> {
        let bad = |why: &str| endpoint.invalid(NAME, FORMS, why);
        let address = endpoint.address();
        match endpoint.scheme() {
            "unix" => match address.strip_prefix('@') {
                Some("") => Err(bad("the abstract socket name is empty")),
                Some(name) => Ok(UdsAddress::Abstract(name.to_string())),
                None if address.is_empty() => Err(bad("the socket path is empty")),
                None => Ok(UdsAddress::Path(PathBuf::from(address))),
            },
            "uds" => address
                .strip_prefix("fd=")
                .and_then(ipc_core::endpoint::parse_fd)
                .map(UdsAddress::Fd)
                .ok_or_else(|| bad("uds: names an inherited socket by number, as uds:fd=3")),
            other => Err(bad(&format!("{other}: is not a uds scheme"))),
        }
    }
}

impl From<UdsAddress> for Endpoint {
    fn from(address: UdsAddress) -> Endpoint {
        match address {
            UdsAddress::Path(path) => Endpoint::new("unix", path.display().to_string()),
            UdsAddress::Abstract(name) => Endpoint::new("unix", format!("@{name}")),
            UdsAddress::Fd(fd) => Endpoint::new("uds", format!("fd={fd}")),
        }
    }
}

impl fmt::Display for UdsAddress {
    /// The endpoint form: `unix:/path`, `unix:@name`, `uds:fd=N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Endpoint::from(self.clone()).fmt(f)
    }
}
