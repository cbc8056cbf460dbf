//! A send that waits for room must not need a new file descriptor: with the process at
//! its `RLIMIT_NOFILE`, a blocked send completes once the peer reads, and every frame
//! arrives.
//!
//! The only test in this binary: it lowers the limit of the whole process.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::Options;

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// Poll once with a waker that does nothing.
fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(Noop));
    fut.poll(&mut Context::from_waker(&waker))
}

/// `RLIMIT_NOFILE` lowered so that no new fd can be opened; put back on drop.
struct AtFdLimit {
    saved: libc::rlimit,
}

impl AtFdLimit {
    fn enter() -> AtFdLimit {
        // SAFETY: F_DUPFD on fd 0 (open in a test process) returns a new fd we close
        // right away; it is the lowest free fd number.
        let lowest_free = unsafe { libc::fcntl(0, libc::F_DUPFD, 0) };
        assert!(
            lowest_free >= 0,
            "F_DUPFD: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: closing the fd we just got.
        unsafe { libc::close(lowest_free) };
        let mut saved = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit read and write the structs we pass.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut saved), 0);
            let lowered = libc::rlimit {
                rlim_cur: lowest_free as libc::rlim_t,
                rlim_max: saved.rlim_max,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lowered), 0);
        }
        let err = std::fs::File::open("/dev/null").expect_err("the fd limit is reached");
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        AtFdLimit { saved }
    }
}

impl Drop for AtFdLimit {
    fn drop(&mut self) {
        // SAFETY: setrlimit reads the struct we pass.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.saved) };
    }
}

#[tokio::test]
async fn a_blocked_send_at_the_fd_limit_completes_and_every_frame_arrives() {
    let config = Options::default().max_frame(8 << 20);
    let (mut a, mut b) = ipc_uds::pair(&config).expect("pair");
    // One message through first, so the socket is known writable before the limit.
    a.send("hello".into()).await.expect("send");
    assert_eq!(
        b.recv().await.expect("recv").as_deref(),
        Some(&b"hello"[..])
    );
    let frames: Vec<Bytes> = (0..4u8).map(|i| Bytes::from(vec![i; 4 << 20])).collect();

    let limit = AtFdLimit::enter();
    let to_send = frames.clone();
    let mut sending = Box::pin(async move {
        for frame in to_send {
            a.send(frame).await?;
        }
        a.close().await
    });
    // The first 4 MiB do not fit: the send waits for room (the peer reads nothing yet).
    match poll_once(sending.as_mut()) {
        Poll::Pending => {}
        Poll::Ready(result) => panic!("the first send did not wait for room: {result:?}"),
    }
    let done = tokio::time::timeout(Duration::from_secs(20), async {
        let reading = async {
            for expected in &frames {
                let got = b.recv().await.expect("recv").expect("a frame");
                assert!(got == *expected, "frame {} is wrong", expected[0]);
            }
            assert_eq!(b.recv().await.expect("recv"), None);
        };
        let (sent, ()) = tokio::join!(sending, reading);
        sent.expect("sending at the fd limit");
    })
    .await;
    drop(limit);
    done.expect("hung at the fd limit");
}
