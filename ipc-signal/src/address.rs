//! [`SignalAddress`]: the signal transport's endpoints, typed.

use std::fmt;

use ipc_core::{Endpoint, Error};

/// The endpoint forms the signal transport accepts.
pub(crate) const FORMS: &[&str] = &["signal:pid=N"];

/// The process signals go to and come from (`signal:pid=1234`): parsed from an
/// [`Endpoint`] with `try_from`, made into one with `into`.
///
/// ```
/// use ipc_core::Endpoint;
/// use ipc_signal::SignalAddress;
/// let ep: Endpoint = SignalAddress { pid: 1234 }.into();
/// assert_eq!(ep.to_string(), "signal:pid=1234");
/// assert_eq!(SignalAddress::try_from(&ep)?.pid, 1234);
/// assert!(SignalAddress::try_from(&"signal:pid=0".parse::<Endpoint>()?).is_err());
/// # Ok::<(), ipc_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalAddress {
    /// The peer's process id.
    pub pid: u32,
}

impl TryFrom<&Endpoint> for SignalAddress {
    type Error = Error;

    fn try_from(endpoint: &Endpoint) -> Result<Self, Error> {
        if endpoint.scheme() != "signal" {
            return Err(endpoint.invalid("signal", FORMS, "not a signal: endpoint"));
        }
        endpoint
            .address()
            .strip_prefix("pid=")
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|p| *p > 0)
            .map(|pid| SignalAddress { pid })
            .ok_or_else(|| {
                endpoint.invalid(
                    "signal",
                    FORMS,
                    "signal endpoints name a process id above 0",
                )
            })
    }
}

impl From<SignalAddress> for Endpoint {
    fn from(address: SignalAddress) -> Endpoint {
        Endpoint::new("signal", format!("pid={}", address.pid))
    }
}

impl fmt::Display for SignalAddress {
    /// The endpoint form: `signal:pid=N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "signal:pid={}", self.pid)
    }
}
