//! Client side: [`connect`] to an inherited offer (`shm:fd=N`) or a listener's
//! rendezvous socket (`shm:/path`).

use std::time::Duration;

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::{ConnectError, Endpoint, Error, Options, Result};

use crate::channel::{self, ShmChannel};
use crate::offer::{self, rendezvous_options, HELLO};

/// How long a client waits for the segment to be offered.
const OFFER_TIMEOUT: Duration = Duration::from_secs(30);

/// What to tell someone whose `shm:fd=N` is not the socket we expect.
const INHERIT_HINT: &str = "was this process started by ShmTransport::spawn (or ipc_shm::spawn)?";

/// Connect to a shared-memory endpoint: `shm:fd=N` (the socket a parent passed us, see
/// [`spawn`](crate::spawn)) or `shm:/path` (a [`ShmListener`](crate::ShmListener)'s
/// rendezvous socket). The segment is mapped only after checking it (sealed size,
/// magic, version, capacity); the channel's `peer_pid` and `peer_uid` come from the
/// kernel (`SO_PEERCRED` on the rendezvous socket). A peer that offers no segment
/// within 30 s is a [`ConnectError::Handshake`].
///
/// ```no_run
/// # async fn demo() -> ipc_core::Result<()> {
/// use ipc_core::prelude::*;
/// let endpoint = "shm:/run/user/1000/app.sock".parse()?;
/// let mut channel = ipc_shm::connect(&endpoint, &ipc_core::Options::default()).await?;
/// channel.send("hello".into()).await?;
/// # Ok(()) }
/// ```
pub async fn connect(endpoint: &Endpoint, options: &Options) -> Result<ShmChannel, ConnectError> {
    let mut rendezvous = match endpoint {
        Endpoint::ShmFd(fd) => {
            let stream = ipc_core::inherit::claim_unix_stream(endpoint, *fd, INHERIT_HINT)?;
            let stream = tokio::net::UnixStream::from_std(stream)?;
            ipc_uds::from_stream(stream, &rendezvous_options())?
        }
        Endpoint::ShmPath(path) => {
            let socket = Endpoint::UnixPath(path.clone());
            let mut ch = ipc_uds::connect(&socket, &rendezvous_options()).await?;
            ch.send(Bytes::from_static(HELLO)).await.map_err(|e| {
                Error::Handshake(format!(
                    "the rendezvous socket {endpoint} hung up before we could say hello \
                     ({e}); is an ipc-shm listener there, and does it accept our uid?"
                ))
            })?;
            ch
        }
        other => {
            return Err(Error::BadEndpoint {
                input: other.to_string(),
                reason: "the shm transport serves shm:/PATH and shm:fd=N".into(),
            }
            .into())
        }
    };
    let offer = tokio::time::timeout(OFFER_TIMEOUT, offer::recv_offer(&mut rendezvous))
        .await
        .map_err(|_| {
            Error::Handshake(format!(
                "no shared-memory segment was offered on {endpoint} within {OFFER_TIMEOUT:?}; \
             is an ipc-shm listener (or parent) at the other end?"
            ))
        })??;
    let mut peer = rendezvous.info();
    if let Endpoint::ShmPath(_) = endpoint {
        peer.peer_addr = Some(endpoint.to_string());
    }
    let side = offer::open(offer)?;
    let channel = channel::from_side(side, options.frame_config(), channel::info(&peer))?;
    Ok(channel)
}
