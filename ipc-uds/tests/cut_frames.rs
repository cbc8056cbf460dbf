//! A sending half dropped in the middle of a frame (its send cancelled while the peer
//! was not reading) while this process keeps the receiving half: the peer must see
//! the stream end inside that frame (`PeerLost`), never wait for the rest.

use std::future::Future;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::Options;
use ipc_core::RecvError;
use ipc_uds::{pair, SendFds};

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// Poll once with a waker that does nothing: true if the future is still pending.
fn pending<F: Future + ?Sized>(fut: Pin<&mut F>) -> bool {
    let waker = Waker::from(Arc::new(Noop));
    fut.poll(&mut Context::from_waker(&waker)).is_pending()
}

/// Read `b` until it fails; the failure must come within seconds and be `PeerLost`.
async fn read_to_the_cut(b: &mut ipc_uds::UdsChannel) {
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match b.recv().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the reader hung on a frame whose sender was dropped");
    assert!(matches!(end, Err(RecvError::PeerLost(_))), "{end:?}");
}

fn config() -> Options {
    Options::default().max_frame(16 << 20)
}

#[tokio::test]
async fn dropped_sender_with_a_cut_frame_ends_the_stream() {
    let (a, mut b) = pair(&config()).expect("pair");
    let (mut tx, rx) = a.into_split();
    let big = Bytes::from(vec![7u8; 8 << 20]);
    {
        let mut send = Box::pin(tx.send(big));
        assert!(pending(send.as_mut()), "8 MiB fit in the socket buffer");
    }
    drop(tx);
    read_to_the_cut(&mut b).await;
    drop(rx);
}

#[tokio::test]
async fn dropped_sender_with_a_cut_fd_frame_ends_the_stream() {
    let (a, mut b) = pair(&config()).expect("pair");
    let (mut tx, rx) = a.into_split();
    let file = std::fs::File::open("/dev/null").expect("/dev/null");
    let big = Bytes::from(vec![7u8; 8 << 20]);
    {
        let fds = [file.as_fd()];
        let mut send = Box::pin(tx.send_with_fds(big, &fds));
        assert!(pending(send.as_mut()), "8 MiB fit in the socket buffer");
    }
    drop(tx);
    read_to_the_cut(&mut b).await;
    drop(rx);
}
