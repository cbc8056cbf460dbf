//! Binding the listening socket an app's instances get at fd 3 in the cluster modes.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;

use nix::sys::socket::{
    self, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage,
};

/// Bind and listen on `addr` (`HOST:PORT`), with `SO_REUSEPORT` when `reuseport`;
/// returns the socket (close-on-exec) and the address it got.
pub(crate) fn bind(addr: &str, reuseport: bool) -> io::Result<(OwnedFd, SocketAddr)> {
    let target = resolve(addr)?;
    let family = if target.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if reuseport {
        socket::setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(target),
    )
    .map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("could not bind {target}: {e} (is another program listening there?)"),
        )
    })?;
    socket::listen(&fd, Backlog::new(1024).unwrap_or(Backlog::MAXCONN))?;
    let listener = std::net::TcpListener::from(fd);
    let bound = listener.local_addr()?;
    Ok((OwnedFd::from(listener), bound))
}

/// The first address `addr` (`HOST:PORT`) resolves to.
pub(crate) fn resolve(addr: &str) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()
        .map_err(|e| io::Error::new(e.kind(), format!("{addr:?} is not HOST:PORT ({e})")))?
        .next()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{addr:?} resolves to nothing"),
            )
        })
}
