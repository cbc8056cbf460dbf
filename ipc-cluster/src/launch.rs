//! Starting one managed process with its control channel: the only module that calls
//! the backends' spawn entry points (`ipc_uds::spawn`, `ipc_node::spawn`).

use std::os::fd::BorrowedFd;
use std::process::Command;
use std::time::Instant;

use bytes::Bytes;
use futures_util::SinkExt;
use ipc_core::{Child, Options, RecvHalf, SendHalf};
use ipc_uds::{SendFds, UdsSender};

use crate::config::ControlChannel;
use crate::error::{Error, Result};
use crate::notify::{NotifySocket, NOTIFY_SOCKET};

/// The sending half of a control channel; only the uds one passes fds.
pub(crate) enum ControlSender {
    Uds(Box<UdsSender>),
    Other(Box<dyn SendHalf>),
}

impl std::fmt::Debug for ControlSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ControlSender::Uds(_) => "ControlSender::Uds",
            ControlSender::Other(_) => "ControlSender::Other",
        })
    }
}

impl ControlSender {
    /// Send one frame, with at most one fd.
    pub(crate) async fn send(&mut self, frame: Bytes, fd: Option<BorrowedFd<'_>>) -> Result<()> {
        match (self, fd) {
            (ControlSender::Uds(tx), Some(fd)) => Ok(tx.send_with_fds(frame, &[fd]).await?),
            (ControlSender::Uds(tx), None) => Ok(tx.send(frame).await?),
            (ControlSender::Other(tx), None) => Ok(tx.send(frame).await?),
            (ControlSender::Other(_), Some(_)) => Err(Error::State(
                "this control channel cannot pass file descriptors; use ControlChannel::Uds".into(),
            )),
        }
    }

    /// Close cleanly (the peer's stream ends).
    pub(crate) async fn close(&mut self) -> Result<()> {
        match self {
            ControlSender::Uds(tx) => Ok(tx.close().await?),
            ControlSender::Other(tx) => Ok(tx.close().await?),
        }
    }
}

/// A process just started.
pub(crate) struct Launched {
    pub(crate) child: Child,
    pub(crate) tx: Option<ControlSender>,
    pub(crate) rx: Option<Box<dyn RecvHalf>>,
    pub(crate) notify: Option<NotifySocket>,
    pub(crate) started: Instant,
}

/// Start `command` with the control channel asked for (and a private `NOTIFY_SOCKET`
/// when `notify`), in a process group of its own that dies with us.
pub(crate) async fn launch(
    mut command: Command,
    control: ControlChannel,
    notify: bool,
) -> Result<Launched> {
    let notify = if notify {
        let socket = NotifySocket::new()?;
        command.env(NOTIFY_SOCKET, socket.path());
        Some(socket)
    } else {
        command.env_remove(NOTIFY_SOCKET);
        None
    };
    let options = Options::default();
    let (child, tx, rx) = match control {
        ControlChannel::Uds => {
            let (child, channel) = ipc_uds::spawn(command, &options).await?;
            let (tx, rx) = channel.into_split();
            (
                child,
                Some(ControlSender::Uds(Box::new(tx))),
                Some(rx.into_box()),
            )
        }
        ControlChannel::Node => {
            let (child, channel) = ipc_node::spawn(command, &options).await?;
            let (tx, rx) = ipc_core::Channel::split(Box::new(channel));
            (child, Some(ControlSender::Other(tx)), Some(rx))
        }
        ControlChannel::None => {
            for var in [
                ipc_core::env::IPC_ENDPOINT,
                ipc_core::env::IPC_TOKEN,
                ipc_core::env::NODE_CHANNEL_FD,
            ] {
                command.env_remove(var);
            }
            (ipc_core::spawn::spawn_child(command)?, None, None)
        }
    };
    crate::tree_guard::watch(child.pid());
    Ok(Launched {
        child,
        tx,
        rx,
        notify,
        started: Instant::now(),
    })
}
