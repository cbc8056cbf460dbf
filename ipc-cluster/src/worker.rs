//! The worker side: what a process started by a [`Supervisor`](crate::Supervisor) or a
//! cluster calls.

use ipc_core::prelude::*;
use ipc_core::Channel;

/// Tell the supervisor (or a Node parent, or pm2) this process is ready: sends the
/// JSON string `"ready"` on `channel` (what `process.send('ready')` sends).
///
/// ```no_run
/// # async fn demo() -> ipc_cluster::Result<()> {
/// let mut parent = ipc_uds::connect(&ipc_core::env::endpoint_from_env()?, Default::default()).await?;
/// ipc_cluster::worker::ready(&mut parent).await?;
/// # Ok(()) }
/// ```
pub async fn ready<C: Channel + ?Sized>(channel: &mut C) -> crate::Result<()> {
    channel.send(crate::protocol::Ctl::Ready.encode()).await?;
    Ok(())
}
