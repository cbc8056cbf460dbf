//! Client side: [`connect`] to an inherited offer (`shm:fd=N`) or a listener's
//! rendezvous socket (`shm:/path`).

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::{ChannelInfo, ConnectError, Endpoint, Error, Options, Result};

use crate::channel::{self, ShmChannel};
use crate::offer::{self, rendezvous_options, Offer, HELLO};
use crate::ShmAddress;

/// What to tell someone whose `shm:fd=N` is not the socket we expect.
const INHERIT_HINT: &str = "was this process started by ShmTransport::spawn (or ipc_shm::spawn)?";

/// Connect to a shared-memory endpoint: `shm:fd=N` (the socket a parent passed us, see
/// [`spawn`](crate::spawn)) or `shm:/path` (a [`ShmListener`](crate::ShmListener)'s
/// rendezvous socket). The segment is mapped only after checking it (sealed size,
/// magic, version, capacity); the channel's `peer_pid` and `peer_uid` come from the
/// kernel (`SO_PEERCRED` on the rendezvous socket). A peer that offers no segment
/// within the [handshake timeout](Options::handshake_timeout) (5 s by default) is a
/// [`ConnectError::Timeout`].
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
    let address = ShmAddress::try_from(endpoint)?;
    let timeout = options.get_handshake_timeout();
    let (offer, peer) = tokio::time::timeout(timeout, rendezvous(endpoint, &address))
        .await
        .map_err(|_| ConnectError::Timeout {
            after: timeout,
            during: "waiting for the shared-memory segment to be offered (is an ipc-shm \
                     listener, or the parent, at the other end?)",
        })??;
    let side = offer::open(offer)?;
    let channel = channel::from_side(side, options.frame_config(), channel::info(&peer))?;
    Ok(channel)
}

/// Reach the side that offers the segment, and take its offer.
async fn rendezvous(
    endpoint: &Endpoint,
    address: &ShmAddress,
) -> Result<(Offer, ChannelInfo), ConnectError> {
    let mut rendezvous = match address {
        ShmAddress::Fd(fd) => {
            let stream = ipc_core::inherit::claim_unix_stream(endpoint, *fd, INHERIT_HINT)?;
            let stream = tokio::net::UnixStream::from_std(stream)?;
            ipc_uds::from_stream(stream, &rendezvous_options())?
        }
        ShmAddress::Path(path) => {
            let socket: Endpoint = ipc_uds::UdsAddress::Path(path.clone()).into();
            let mut ch = ipc_uds::connect(&socket, &rendezvous_options()).await?;
            ch.send(Bytes::from_static(HELLO)).await.map_err(|e| {
                Error::Handshake(format!(
                    "the rendezvous socket {endpoint} hung up before we could say hello \
                     ({e}); is an ipc-shm listener there, and does it accept our uid?"
                ))
            })?;
            ch
        }
    };
    let offer = offer::recv_offer(&mut rendezvous).await?;
    let mut peer = rendezvous.info();
    if let ShmAddress::Path(_) = address {
        peer.peer_addr = Some(endpoint.to_string());
    }
    Ok((offer, peer))
}
