//! Handing an instance its listening socket the way systemd's socket activation does
//! (fd 3, `LISTEN_FDS=1`, `LISTEN_PID`, `LISTEN_FDNAMES`) next to its control channel.
//!
//! The control channel is placed at fd 3 too by whoever starts the process
//! (`ipc_uds::spawn`, `ipc_node::spawn`), and after our own placement. So the socket
//! goes to fd [`SOCKET_FD`] first, and a shell in front of the program swaps the two:
//! the socket ends at fd 3, the channel at fd [`CHANNEL_FD`], and the variable that
//! names the channel (`IPC_ENDPOINT`, `NODE_CHANNEL_FD`) is changed to match. The
//! shell also sets `LISTEN_PID` to its `$$`, which the program keeps when the shell
//! execs it.
//!
//! Placing fd 4 overwrites whatever the child inherited there, so the daemon keeps its
//! fds 3 to 9 taken for its whole life ([`reserve_low_fds`]): the channel's end that
//! the starter places at fd 3 is never numbered 4 when our placement runs.

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;

use ipc_cluster::ControlChannel;
use ipc_core::Endpoint;
use ipc_uds::UdsAddress;

/// Where the listening socket is placed before the shell swaps it to fd 3.
const SOCKET_FD: i32 = 4;
/// Where the control channel ends up in the program.
pub(crate) const CHANNEL_FD: i32 = 4;

/// The program `cmd` behind the shell that gives it `socket` at fd 3, with the
/// control channel `control` at fd [`CHANNEL_FD`].
pub(crate) fn command(cmd: &[String], socket: &OwnedFd, control: ControlChannel) -> Command {
    let (place, swap) = match control {
        ControlChannel::None => (3, String::new()),
        ControlChannel::Uds => {
            let endpoint: Endpoint = UdsAddress::Fd(CHANNEL_FD).into();
            (
                SOCKET_FD,
                format!(
                    "exec 5<&3 3<&4 4<&5 5<&-; {}={endpoint}; export {};",
                    ipc_core::env::IPC_ENDPOINT,
                    ipc_core::env::IPC_ENDPOINT
                ),
            )
        }
        ControlChannel::Node => (
            SOCKET_FD,
            format!(
                "exec 5<&3 3<&4 4<&5 5<&-; {}={CHANNEL_FD}; export {};",
                ipc_node::NODE_CHANNEL_FD,
                ipc_node::NODE_CHANNEL_FD
            ),
        ),
    };
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(format!(
            "{swap} LISTEN_PID=$$; export LISTEN_PID; exec \"$@\""
        ))
        .arg("ipcm-exec")
        .args(cmd);
    ipc_core::spawn::inherit_fds(&mut command, &[(socket, place)]);
    command
}

/// Keep fds 3 to 9 of this process taken (by `/dev/null`, close-on-exec) for as
/// long as the returned files live; see the [module docs](self).
pub(crate) fn reserve_low_fds() -> Vec<std::fs::File> {
    let mut kept = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        if file.as_raw_fd() > 9 {
            break;
        }
        kept.push(file);
    }
    kept
}
