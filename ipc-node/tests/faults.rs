//! Faults on the node transport, in-process (`ipc_node::pair`) and against real Node
//! children: a sending half dropped mid-frame, a send blocked when the peer is
//! SIGKILLed, a receive that is always ready.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use bytes::Bytes;
use common::within;
use ipc_core::prelude::*;
use ipc_core::{Error, FrameConfig};

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// Poll once with a waker that does nothing: true if the future is still pending.
fn pending<F: Future + ?Sized>(fut: Pin<&mut F>) -> bool {
    let waker = Waker::from(Arc::new(Noop));
    fut.poll(&mut Context::from_waker(&waker)).is_pending()
}

/// One JSON string of about `len` bytes.
fn json_string(len: usize) -> Bytes {
    let mut v = Vec::with_capacity(len + 2);
    v.push(b'"');
    v.resize(len + 1, b'x');
    v.push(b'"');
    Bytes::from(v)
}

#[tokio::test]
async fn dropped_sender_with_a_cut_frame_ends_the_stream() {
    let config = FrameConfig::builder().max_frame(16 << 20).build();
    let (mut a, mut b) = ipc_node::pair(config).expect("pair");
    // One message through first: the reactor then knows the socket is writable, so
    // the big send below writes what fits before it waits.
    a.send("1".into()).await.expect("send");
    assert_eq!(b.recv().await.expect("recv").as_deref(), Some(&b"1"[..]));
    let (mut tx, rx) = a.into_split();
    {
        let mut send = Box::pin(tx.send(json_string(8 << 20)));
        assert!(pending(send.as_mut()), "8 MiB fit in the socket buffer");
    }
    drop(tx);
    let end = within(10, "reading a stream cut mid-frame", async {
        loop {
            match b.recv().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await;
    assert!(matches!(end, Err(Error::PeerLost(_))), "{end:?}");
    drop(rx);
}

#[tokio::test]
async fn an_always_ready_recv_lets_other_tasks_run() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    const FRAMES: u64 = 10_000;
    let (mut raw, theirs) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    // Every message is already there before the first receive.
    let lines: String = (0..FRAMES).map(|i| format!("{i}\n")).collect();
    let writer = std::thread::spawn(move || {
        raw.write_all(lines.as_bytes()).expect("write");
        raw
    });
    theirs.set_nonblocking(true).expect("nonblocking");
    let stream = tokio::net::UnixStream::from_std(theirs).expect("tokio stream");
    let mut ch = ipc_node::from_stream(stream, FrameConfig::default());
    let raw = writer.join().expect("writer thread");

    let ran = Arc::new(AtomicBool::new(false));
    let spawn_task = |ran: &Arc<AtomicBool>| {
        let ran = ran.clone();
        tokio::spawn(async move { ran.store(true, Ordering::SeqCst) });
    };
    spawn_task(&ran);
    let (mut run, mut longest) = (0u64, 0u64);
    for i in 0..FRAMES {
        let frame = ch.recv().await.expect("recv").expect("a message");
        assert_eq!(frame, i.to_string());
        if ran.swap(false, Ordering::SeqCst) {
            run = 0;
            spawn_task(&ran);
        }
        run += 1;
        longest = longest.max(run);
    }
    // tokio's cooperative budget is 128 operations per task poll.
    assert!(
        longest <= 200,
        "{longest} messages received in a row without letting another task run"
    );
    drop(raw);
}

/// Says ready, then blocks its event loop for good: it reads nothing more.
const STALL: &str = r#"
process.send('ready', () => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
});
"#;

#[tokio::test]
async fn a_send_blocked_when_node_is_killed_is_peer_lost() {
    common::require_node();
    let mut command = std::process::Command::new("node");
    command.arg("-e").arg(STALL);
    let (mut child, mut ch) = ipc_node::spawn(command, FrameConfig::default())
        .await
        .expect("spawn node");
    let ready = within(30, "node's ready", ch.recv()).await.expect("recv");
    assert_eq!(ready.as_deref(), Some(&b"\"ready\""[..]));
    let frame = json_string(64 * 1024);
    let mut sent = 0;
    let mut blocked = loop {
        let mut send = Box::pin(ch.send(frame.clone()));
        if pending(send.as_mut()) {
            tokio::task::yield_now().await; // the reactor's first look at the socket
            if pending(send.as_mut()) {
                break send;
            }
        }
        drop(send);
        sent += 1;
        assert!(
            sent < 4096,
            "256 MiB went to a Node child that reads nothing"
        );
    };
    child.kill().expect("SIGKILL");
    let got = within(10, "the blocked send", blocked.as_mut()).await;
    assert!(matches!(got, Err(Error::PeerLost(_))), "{got:?}");
    drop(blocked);
    child.wait().await.expect("wait");
}

#[tokio::test]
async fn a_send_after_the_peer_closed_is_closed() {
    let (mut a, mut b) = ipc_node::pair(FrameConfig::default()).expect("pair");
    b.close().await.expect("close");
    assert_eq!(a.recv().await.expect("the end"), None);
    drop(b);
    // The socket can live on for a moment in a child another test is spawning (forked,
    // not yet exec'd): send until the send fails.
    let got = within(10, "a send to a closed peer to fail", async {
        loop {
            if let Err(e) = a.send("1".into()).await {
                return e;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(matches!(got, Error::Closed), "{got:?}");
    a.close().await.expect("close");
    let got = a.send("1".into()).await;
    assert!(matches!(got, Err(Error::Closed)), "{got:?}");
}
