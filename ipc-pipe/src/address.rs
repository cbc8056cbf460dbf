//! [`PipeAddress`] and [`FifoAddress`]: the pipe and fifo transports' endpoints, typed.

use std::fmt;
use std::os::fd::RawFd;
use std::path::PathBuf;

use ipc_core::{Endpoint, Error};

use crate::channel::{FIFO, PIPE};

/// The endpoint forms the pipe transport accepts.
pub(crate) const PIPE_FORMS: &[&str] = &["pipe:fd=R,W"];

/// The endpoint forms the fifo transport accepts.
pub(crate) const FIFO_FORMS: &[&str] = &["fifo:/DIR"];

/// The inherited pipe ends of a child (`pipe:fd=3,4`): parsed from an [`Endpoint`] with
/// `try_from`, made into one with `into`.
///
/// ```
/// use ipc_core::Endpoint;
/// use ipc_pipe::PipeAddress;
/// let ep: Endpoint = PipeAddress { read: 3, write: 4 }.into();
/// assert_eq!(ep.to_string(), "pipe:fd=3,4");
/// assert_eq!(PipeAddress::try_from(&ep)?, PipeAddress { read: 3, write: 4 });
/// assert!(PipeAddress::try_from(&"pipe:fd=3".parse::<Endpoint>()?).is_err());
/// # Ok::<(), ipc_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PipeAddress {
    /// The fd this process reads from.
    pub read: RawFd,
    /// The fd this process writes to.
    pub write: RawFd,
}

impl TryFrom<&Endpoint> for PipeAddress {
    type Error = Error;

    fn try_from(endpoint: &Endpoint) -> Result<Self, Error> {
        let bad = |why: &str| endpoint.invalid(PIPE, PIPE_FORMS, why);
        if endpoint.scheme() != "pipe" {
            return Err(bad(
                "not a pipe: endpoint (for a FIFO directory use the fifo transport)",
            ));
        }
        let fds = endpoint
            .address()
            .strip_prefix("fd=")
            .ok_or_else(|| bad("pipe endpoints look like pipe:fd=3,4"))?;
        let (read, write) = fds
            .split_once(',')
            .ok_or_else(|| bad("pipe endpoints need two fds: pipe:fd=READ,WRITE"))?;
        match (
            ipc_core::endpoint::parse_fd(read),
            ipc_core::endpoint::parse_fd(write),
        ) {
            (Some(read), Some(write)) => Ok(PipeAddress { read, write }),
            _ => Err(bad(&format!("{fds:?} are not two file descriptor numbers"))),
        }
    }
}

impl From<PipeAddress> for Endpoint {
    fn from(address: PipeAddress) -> Endpoint {
        Endpoint::new("pipe", format!("fd={},{}", address.read, address.write))
    }
}

impl fmt::Display for PipeAddress {
    /// The endpoint form: `pipe:fd=R,W`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Endpoint::from(*self).fmt(f)
    }
}

/// A directory holding a FIFO pair (`fifo:/tmp/dir`): parsed from an [`Endpoint`] with
/// `try_from`, made into one with `into`.
///
/// ```
/// use ipc_core::Endpoint;
/// use ipc_pipe::FifoAddress;
/// let ep: Endpoint = FifoAddress("/tmp/app".into()).into();
/// assert_eq!(ep.to_string(), "fifo:/tmp/app");
/// assert_eq!(FifoAddress::try_from(&ep)?.0, std::path::Path::new("/tmp/app"));
/// assert!(FifoAddress::try_from(&"fifo:".parse::<Endpoint>()?).is_err());
/// # Ok::<(), ipc_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FifoAddress(pub PathBuf);

impl TryFrom<&Endpoint> for FifoAddress {
    type Error = Error;

    fn try_from(endpoint: &Endpoint) -> Result<Self, Error> {
        let bad = |why: &str| endpoint.invalid(FIFO, FIFO_FORMS, why);
        match (endpoint.scheme(), endpoint.address()) {
            ("fifo", "") => Err(bad("fifo endpoints name a directory: fifo:/tmp/dir")),
            ("fifo", dir) => Ok(FifoAddress(PathBuf::from(dir))),
            _ => Err(bad("not a fifo: endpoint")),
        }
    }
}

impl From<FifoAddress> for Endpoint {
    fn from(address: FifoAddress) -> Endpoint {
        Endpoint::new("fifo", address.0.display().to_string())
    }
}

impl fmt::Display for FifoAddress {
    /// The endpoint form: `fifo:/DIR`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Endpoint::from(self.clone()).fmt(f)
    }
}
