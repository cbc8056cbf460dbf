//! [`Endpoint`]: where a channel lives, parsed once from a string and passed as a type.
//!
//! | form | transport | meaning |
//! |---|---|---|
//! | `tcp://127.0.0.1:7000` | tcp | a TCP address (IPv6: `tcp://[::1]:7000`) |
//! | `unix:/run/app.sock` | uds | a Unix socket file |
//! | `unix:@name` | uds | a Linux abstract socket name |
//! | `uds:fd=3` | uds | an inherited connected Unix socket |
//! | `fifo:/tmp/dir` | fifo | a directory holding the FIFO pair `c2s`, `s2c` |
//! | `pipe:fd=3,4` | pipe | inherited pipes: read fd, write fd |
//! | `stdio:` | stdio | this process's stdin/stdout |
//! | `signal:pid=1234` | signal | real-time signals to and from a process |
//! | `node:fd=3` | node | Node.js's `fork()` channel (JSON lines on an inherited socket) |
//! | `shm:/run/app.sock` | shm | a shared-memory listener's rendezvous socket file |
//! | `shm:fd=3` | shm | an inherited socket on which the parent offers a shared-memory segment |
//!
//! `Display` prints the same form, so `endpoint.to_string().parse()` gives it back.
//!
//! ```
//! use ipc_core::Endpoint;
//! let ep: Endpoint = "unix:@my-app".parse().unwrap();
//! assert_eq!(ep, Endpoint::UnixAbstract("my-app".into()));
//! assert_eq!(ep.to_string(), "unix:@my-app");
//! assert_eq!(ep.scheme(), "unix");
//! assert!("carrier-pigeon://x".parse::<Endpoint>().is_err());
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::Error;

/// The endpoint forms, for error messages.
pub const KNOWN_FORMS: &str = "tcp://HOST:PORT, unix:/PATH, unix:@NAME, uds:fd=N, \
     fifo:/DIR, pipe:fd=R,W, stdio:, signal:pid=N, node:fd=N, shm:/PATH, shm:fd=N";

/// A parsed endpoint. See the [module docs](self) for the forms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `tcp://ADDR:PORT`
    Tcp(SocketAddr),
    /// `unix:/path`
    UnixPath(PathBuf),
    /// `unix:@name` (Linux abstract namespace)
    UnixAbstract(String),
    /// `uds:fd=N`: an inherited, already connected Unix socket.
    UdsFd(RawFd),
    /// `fifo:/dir`: a FIFO pair in a directory.
    Fifo(PathBuf),
    /// `pipe:fd=R,W`: inherited pipe ends.
    Pipe {
        /// The fd this process reads from.
        read: RawFd,
        /// The fd this process writes to.
        write: RawFd,
    },
    /// `stdio:`: this process's stdin and stdout.
    Stdio,
    /// `signal:pid=N`: signals exchanged with process `N`.
    Signal {
        /// The peer's process id.
        pid: u32,
    },
    /// `node:fd=N`: the inherited socket of a Node.js `fork()` channel (`NODE_CHANNEL_FD`).
    Node(RawFd),
    /// `shm:/path`: the rendezvous socket of a shared-memory listener.
    ShmPath(PathBuf),
    /// `shm:fd=N`: an inherited socket on which the parent offers a shared-memory
    /// segment.
    ShmFd(RawFd),
}

impl Endpoint {
    /// The URL scheme (`tcp`, `unix`, `uds`, `fifo`, `pipe`, `stdio`, `signal`, `node`,
    /// `shm`).
    pub fn scheme(&self) -> &'static str {
        match self {
            Endpoint::Tcp(_) => "tcp",
            Endpoint::UnixPath(_) | Endpoint::UnixAbstract(_) => "unix",
            Endpoint::UdsFd(_) => "uds",
            Endpoint::Fifo(_) => "fifo",
            Endpoint::Pipe { .. } => "pipe",
            Endpoint::Stdio => "stdio",
            Endpoint::Signal { .. } => "signal",
            Endpoint::Node(_) => "node",
            Endpoint::ShmPath(_) | Endpoint::ShmFd(_) => "shm",
        }
    }
}

fn bad(input: &str, reason: impl Into<String>) -> Error {
    Error::BadEndpoint {
        input: input.to_string(),
        reason: reason.into(),
    }
}

fn parse_fd(input: &str, s: &str) -> Result<RawFd, Error> {
    s.trim()
        .parse::<RawFd>()
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| bad(input, format!("{s:?} is not a file descriptor number")))
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let (scheme, rest) = input
            .split_once(':')
            .ok_or_else(|| bad(input, "missing scheme (expected SCHEME:ADDRESS)"))?;
        match scheme {
            "tcp" => {
                let addr = rest
                    .strip_prefix("//")
                    .ok_or_else(|| bad(input, "tcp endpoints look like tcp://127.0.0.1:7000"))?;
                addr.parse::<SocketAddr>()
                    .map(Endpoint::Tcp)
                    .map_err(|e| bad(input, format!("{addr:?} is not an IP:PORT address ({e})")))
            }
            "unix" => {
                if let Some(name) = rest.strip_prefix('@') {
                    if name.is_empty() {
                        return Err(bad(input, "abstract socket name is empty"));
                    }
                    Ok(Endpoint::UnixAbstract(name.to_string()))
                } else if rest.is_empty() {
                    Err(bad(input, "socket path is empty"))
                } else {
                    Ok(Endpoint::UnixPath(PathBuf::from(rest)))
                }
            }
            "uds" => {
                let fd = rest
                    .strip_prefix("fd=")
                    .ok_or_else(|| bad(input, "uds endpoints look like uds:fd=3"))?;
                Ok(Endpoint::UdsFd(parse_fd(input, fd)?))
            }
            "fifo" => {
                if rest.is_empty() {
                    Err(bad(input, "fifo endpoints name a directory: fifo:/tmp/dir"))
                } else {
                    Ok(Endpoint::Fifo(PathBuf::from(rest)))
                }
            }
            "pipe" => {
                let fds = rest
                    .strip_prefix("fd=")
                    .ok_or_else(|| bad(input, "pipe endpoints look like pipe:fd=3,4"))?;
                let (r, w) = fds
                    .split_once(',')
                    .ok_or_else(|| bad(input, "pipe endpoints need two fds: pipe:fd=READ,WRITE"))?;
                Ok(Endpoint::Pipe {
                    read: parse_fd(input, r)?,
                    write: parse_fd(input, w)?,
                })
            }
            "stdio" => {
                if rest.is_empty() {
                    Ok(Endpoint::Stdio)
                } else {
                    Err(bad(input, "stdio takes no address: write stdio:"))
                }
            }
            "signal" => {
                let pid = rest
                    .strip_prefix("pid=")
                    .and_then(|p| p.parse::<u32>().ok())
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad(input, "signal endpoints look like signal:pid=1234"))?;
                Ok(Endpoint::Signal { pid })
            }
            "node" => {
                let fd = rest
                    .strip_prefix("fd=")
                    .ok_or_else(|| bad(input, "node endpoints look like node:fd=3"))?;
                Ok(Endpoint::Node(parse_fd(input, fd)?))
            }
            "shm" => {
                if let Some(fd) = rest.strip_prefix("fd=") {
                    Ok(Endpoint::ShmFd(parse_fd(input, fd)?))
                } else if rest.is_empty() {
                    Err(bad(
                        input,
                        "shm endpoints look like shm:/run/app.sock or shm:fd=3",
                    ))
                } else {
                    Ok(Endpoint::ShmPath(PathBuf::from(rest)))
                }
            }
            other => Err(bad(input, format!("unknown scheme {other:?}"))),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
            Endpoint::UnixPath(p) => write!(f, "unix:{}", p.display()),
            Endpoint::UnixAbstract(name) => write!(f, "unix:@{name}"),
            Endpoint::UdsFd(fd) => write!(f, "uds:fd={fd}"),
            Endpoint::Fifo(dir) => write!(f, "fifo:{}", dir.display()),
            Endpoint::Pipe { read, write } => write!(f, "pipe:fd={read},{write}"),
            Endpoint::Stdio => write!(f, "stdio:"),
            Endpoint::Signal { pid } => write!(f, "signal:pid={pid}"),
            Endpoint::Node(fd) => write!(f, "node:fd={fd}"),
            Endpoint::ShmPath(p) => write!(f, "shm:{}", p.display()),
            Endpoint::ShmFd(fd) => write!(f, "shm:fd={fd}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_round_trips() {
        for s in [
            "tcp://127.0.0.1:7000",
            "tcp://[::1]:9",
            "unix:/run/app.sock",
            "unix:@name",
            "uds:fd=3",
            "fifo:/tmp/x",
            "pipe:fd=3,4",
            "stdio:",
            "signal:pid=1234",
            "node:fd=3",
            "shm:/tmp/x.sock",
            "shm:fd=3",
        ] {
            let ep: Endpoint = s.parse().expect(s);
            assert_eq!(ep.to_string(), s);
            assert_eq!(ep.to_string().parse::<Endpoint>().expect(s), ep);
        }
    }

    #[test]
    fn bad_strings_say_what_exists() {
        for s in [
            "",
            "tcp:127.0.0.1:1",
            "tcp://nohost",
            "unix:",
            "unix:@",
            "uds:3",
            "uds:fd=-1",
            "pipe:fd=3",
            "pipe:fd=a,b",
            "stdio:x",
            "signal:pid=0",
            "http://x",
            "fifo:",
            "shm:",
            "shm:fd=x",
        ] {
            let err = s.parse::<Endpoint>().expect_err(s);
            let msg = err.to_string();
            assert!(msg.contains("Known forms"), "{msg}");
            assert!(matches!(err, Error::BadEndpoint { .. }));
        }
    }
}
