//! handle_passing: the master binds a TCP listener, sends it to two children over a
//! Unix socket (`SCM_RIGHTS`), and closes its own; both children serve on it, and each
//! reply names the pid that served it (Node's `child.send('server', server)` demo).
//!
//! ```text
//! cargo run --example handle_passing                  # until both children answered
//! cargo run --example handle_passing -- --requests 100
//! ```

use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;

use clap::Parser;
use ipc::prelude::*;
use ipc::uds::{RecvFds, SendFds};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Hand a listening socket to two children.
#[derive(Parser, Debug)]
struct Args {
    /// Most requests to send while waiting for both children to answer.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
}

#[tokio::main]
async fn main() -> ipc::Result<()> {
    if ipc::role() == ipc::Role::Child {
        return child().await;
    }
    let args = Args::parse();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for _ in 0..2 {
        let (child, mut ch) = ipc::uds::spawn(Command::new(&exe), &ipc::Options::default()).await?;
        ch.send_with_fds("server".into(), &[listener.as_fd()])
            .await?;
        // The child says it serves once it has the socket.
        let ok = ch.recv().await?;
        println!(
            "child {} took the server: {:?}",
            child.pid(),
            ok.as_deref().map(String::from_utf8_lossy)
        );
        children.push((child, ch));
    }
    drop(listener); // the master's own copy is closed: only the children serve
    println!("master closed its listener; the children serve http-less on {addr}");
    // Clients eight at a time, until both children answered (the OS picks who
    // accepts each connection) or `--requests` were sent.
    let mut replies: std::collections::BTreeMap<String, usize> = Default::default();
    let mut sent = 0;
    while replies.len() < 2 && sent < args.requests {
        let batch: Vec<_> = (0..8).map(|_| tokio::spawn(ask(addr))).collect();
        for reply in batch {
            let reply = reply.await.map_err(std::io::Error::other)??;
            *replies.entry(reply).or_default() += 1;
            sent += 1;
        }
    }
    for (reply, count) in &replies {
        println!("{count} x {}", reply.trim());
    }
    println!(
        "{} different children answered {sent} requests",
        replies.len()
    );
    for (mut child, mut ch) in children {
        ch.close().await?; // the child stops serving and exits
        let status = child.wait().await?;
        println!("child {} exited: {status}", child.pid());
    }
    Ok(())
}

/// One request: the reply names the pid that served it.
async fn ask(addr: std::net::SocketAddr) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(b"who?\n").await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    Ok(reply)
}

/// A child: take the server socket, serve until the master closes the channel.
async fn child() -> ipc::Result<()> {
    let endpoint = ipc::env::endpoint_from_env()?;
    let mut master = ipc::uds::connect(&endpoint, &ipc::Options::from_env()).await?;
    let Some((_, mut fds)) = master.recv_with_fds().await? else {
        return Ok(());
    };
    let fd: OwnedFd = fds
        .pop()
        .ok_or_else(|| std::io::Error::other("the master sent no socket"))?;
    let std_listener = std::net::TcpListener::from(fd);
    std_listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    master.send("serving".into()).await?;
    let pid = std::process::id();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (mut stream, _) = accepted?;
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    let _ = stream.read(&mut buf).await;
                    let _ = stream.write_all(format!("served by pid {pid}\n").as_bytes()).await;
                });
            }
            end = master.recv() => {
                if end?.is_none() { break; }
            }
        }
    }
    Ok(master.close().await?)
}
