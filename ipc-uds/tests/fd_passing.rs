//! SCM_RIGHTS fd passing: every fd must arrive on the frame it was sent with, among
//! many plain frames of all sizes, with full and tiny socket buffers.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::Options;
use ipc_core::{Error, SendError};
use ipc_uds::{pair, RecvFds, SendFds, UdsChannel};
use nix::sys::socket::{setsockopt, sockopt};

/// Payload sizes cycled through: empty, tiny, around the 64 KiB read buffer, large.
const SIZES: &[usize] = &[
    8, 0, 1, 3, 4, 100, 4096, 65_531, 65_532, 65_536, 65_537, 70_000, 200_000, 12, 5, 1_000_000, 9,
];

fn config() -> Options {
    Options::default().max_frame(2 << 20)
}

/// A connected pair; with `tiny_buffers` the kernel buffers are as small as allowed, so
/// big frames go out in many partial writes and arrive in many reads.
fn channels(tiny_buffers: bool) -> (UdsChannel, UdsChannel) {
    let (a, b) = tokio::net::UnixStream::pair().expect("socketpair");
    if tiny_buffers {
        for s in [&a, &b] {
            setsockopt(s, sockopt::SndBuf, &4096).expect("SO_SNDBUF");
            setsockopt(s, sockopt::RcvBuf, &4096).expect("SO_RCVBUF");
        }
    }
    (
        ipc_uds::from_stream(a, &config()).expect("a"),
        ipc_uds::from_stream(b, &config()).expect("b"),
    )
}

/// How many fds frame `i` carries: runs of consecutive fd frames, single ones, several
/// fds at once, and long stretches without.
fn fds_for(i: usize) -> usize {
    match i % 23 {
        0..=2 => 1,
        7 => 3,
        11 if i % 2 == 0 => 1,
        16 => 2,
        _ => 0,
    }
}

fn payload(i: usize) -> Bytes {
    let len = SIZES[i % SIZES.len()];
    let mut v = vec![(i % 251) as u8; len];
    let tag = (i as u64).to_be_bytes();
    let n = len.min(8);
    v[..n].copy_from_slice(&tag[..n]);
    Bytes::from(v)
}

fn file_with(text: &str) -> File {
    let mut file = tempfile::tempfile().expect("tempfile");
    file.write_all(text.as_bytes()).expect("write");
    file
}

fn read_back(fd: OwnedFd) -> String {
    let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFD).expect("F_GETFD");
    assert!(
        flags & libc::FD_CLOEXEC != 0,
        "received fds are close-on-exec"
    );
    let mut file = File::from(fd);
    file.seek(SeekFrom::Start(0)).expect("seek");
    let mut text = String::new();
    file.read_to_string(&mut text).expect("read");
    text
}

async fn stress(tiny_buffers: bool, frames: usize) {
    let (a, b) = channels(tiny_buffers);
    let (mut tx, _a_rx) = a.into_split();
    let (_b_tx, mut rx) = b.into_split();

    let sender = tokio::spawn(async move {
        for i in 0..frames {
            let n = fds_for(i);
            if n == 0 {
                tx.send(payload(i)).await.expect("send");
            } else {
                let files: Vec<File> = (0..n)
                    .map(|k| file_with(&format!("frame {i} fd {k}")))
                    .collect();
                let borrowed: Vec<_> = files.iter().map(|f| f.as_fd()).collect();
                tx.send_with_fds(payload(i), &borrowed)
                    .await
                    .expect("send_with_fds");
                // Our copies close here; the receiver's stay valid.
            }
        }
        tx.close().await.expect("close");
    });

    let mut i = 0;
    while let Some((frame, fds)) = rx.recv_with_fds().await.expect("recv_with_fds") {
        assert_eq!(frame, payload(i), "frame {i} payload");
        assert_eq!(fds.len(), fds_for(i), "frame {i} fd count");
        for (k, fd) in fds.into_iter().enumerate() {
            assert_eq!(
                read_back(fd),
                format!("frame {i} fd {k}"),
                "frame {i} fd {k}"
            );
        }
        i += 1;
        if i % 97 == 0 {
            // Let the sender run ahead and fill the socket buffer.
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(i, frames);
    sender.await.expect("sender");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fds_arrive_on_their_own_frames() {
    stress(false, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fds_arrive_on_their_own_frames_with_tiny_socket_buffers() {
    stress(true, 400).await;
}

#[tokio::test(flavor = "current_thread")]
async fn fds_arrive_on_their_own_frames_on_one_thread() {
    stress(true, 120).await;
}

/// Frames queued back to back before the receiver reads anything.
#[tokio::test]
async fn back_to_back_fd_frames_sent_before_any_read() {
    let (mut a, mut b) = pair(&config()).expect("pair");
    let files: Vec<File> = (0..6).map(|k| file_with(&format!("file {k}"))).collect();
    a.send_with_fds("zero".into(), &[files[0].as_fd()])
        .await
        .expect("send");
    a.send_with_fds("one".into(), &[files[1].as_fd(), files[2].as_fd()])
        .await
        .expect("send");
    a.send("plain".into()).await.expect("send");
    a.send_with_fds(Bytes::new(), &[files[3].as_fd()])
        .await
        .expect("send empty");
    a.send_with_fds("four".into(), &[files[4].as_fd()])
        .await
        .expect("send");
    a.send("x".into()).await.expect("send");
    a.send_with_fds("five".into(), &[files[5].as_fd()])
        .await
        .expect("send");

    let expect: &[(&str, &[usize])] = &[
        ("zero", &[0]),
        ("one", &[1, 2]),
        ("plain", &[]),
        ("", &[3]),
        ("four", &[4]),
        ("x", &[]),
        ("five", &[5]),
    ];
    for (text, ks) in expect {
        let (frame, fds) = b.recv_with_fds().await.expect("recv").expect("frame");
        assert_eq!(frame, *text);
        let got: Vec<String> = fds.into_iter().map(read_back).collect();
        let want: Vec<String> = ks.iter().map(|k| format!("file {k}")).collect();
        assert_eq!(got, want, "fds of {text:?}");
    }
}

/// Plain `recv` returns the frame and closes the fds it carried: the pipe's only other
/// write end is ours, so once we drop it the read end sees end-of-file.
#[tokio::test]
async fn plain_recv_closes_passed_fds() {
    let (mut a, mut b) = pair(&config()).expect("pair");
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    a.send_with_fds("with a pipe".into(), &[write_end.as_fd()])
        .await
        .expect("send");
    a.send("next".into()).await.expect("send");
    drop(write_end);

    assert_eq!(b.recv().await.expect("recv").expect("frame"), "with a pipe");
    let (frame, fds) = b.recv_with_fds().await.expect("recv").expect("frame");
    assert_eq!(frame, "next");
    assert!(
        fds.is_empty(),
        "the dropped fds do not move to the next frame"
    );

    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(read_end).expect("pipe");
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut pipe, &mut buf),
    )
    .await
    .expect("the pipe's write end was closed by recv (else this read would hang)");
    assert_eq!(read.expect("read"), 0, "EOF");
}

/// A pipe's write end passed over: what the receiver writes into it, we read.
#[tokio::test]
async fn a_passed_pipe_carries_data_back() {
    let (mut a, mut b) = pair(&config()).expect("pair");
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    a.send_with_fds("write here".into(), &[write_end.as_fd()])
        .await
        .expect("send");
    drop(write_end);
    let (_, mut fds) = b.recv_with_fds().await.expect("recv").expect("frame");
    let mut pipe = File::from(fds.pop().expect("one fd"));
    pipe.write_all(b"through the pipe").expect("write");
    drop(pipe);
    let mut text = String::new();
    File::from(read_end)
        .read_to_string(&mut text)
        .expect("read");
    assert_eq!(text, "through the pipe");
}

/// A listening TCP socket passed over keeps listening in the receiver's hands.
#[tokio::test]
async fn a_passed_tcp_listener_accepts() {
    let (a, b) = pair(&config()).expect("pair");
    let (mut a_tx, _a_rx) = a.into_split();
    let (_b_tx, mut b_rx) = b.into_split();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    a_tx.send_with_fds("a listener".into(), &[listener.as_fd()])
        .await
        .expect("send");
    drop(listener);

    let (frame, mut fds) = b_rx.recv_with_fds().await.expect("recv").expect("frame");
    assert_eq!(frame, "a listener");
    let received = std::net::TcpListener::from(fds.pop().expect("one fd"));
    assert_eq!(received.local_addr().expect("addr"), addr);

    let client = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.write_all(b"hi").expect("write");
    });
    let (mut conn, _) = received.accept().expect("accept on the passed listener");
    let mut buf = [0u8; 2];
    conn.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"hi");
    client.join().expect("client");
}

#[tokio::test]
async fn fd_limits_and_errors() {
    let (mut a, mut b) = pair(&ipc_core::Options::default().max_frame(16)).expect("pair");
    let file = file_with("x");

    let many = vec![file.as_fd(); ipc_uds::MAX_FDS_PER_FRAME + 1];
    let err = a
        .send_with_fds("too many".into(), &many)
        .await
        .expect_err("254 fds");
    assert!(err.to_string().contains("at most 253"), "{err}");

    let err = a
        .send_with_fds(Bytes::from(vec![0u8; 17]), &[file.as_fd()])
        .await
        .expect_err("oversize");
    assert!(
        matches!(err, Error::FrameTooLarge { len: 17, max: 16 }),
        "{err}"
    );

    let max = vec![file.as_fd(); ipc_uds::MAX_FDS_PER_FRAME];
    a.send_with_fds("253 fds".into(), &max)
        .await
        .expect("253 fds");
    let (frame, fds) = b.recv_with_fds().await.expect("recv").expect("frame");
    assert_eq!((frame, fds.len()), (Bytes::from("253 fds"), 253));

    a.close().await.expect("close");
    let err = a
        .send_with_fds("late".into(), &[file.as_fd()])
        .await
        .expect_err("closed");
    assert!(matches!(err, Error::Closed), "{err}");
    assert_eq!(b.recv_with_fds().await.expect("recv").map(|(f, _)| f), None);
}

/// The peer hung up: sending fds reports it instead of hanging.
#[tokio::test]
async fn sending_fds_to_a_gone_peer_fails() {
    let (mut a, b) = pair(&config()).expect("pair");
    drop(b);
    let file = file_with("x");
    let err = a
        .send_with_fds("anyone?".into(), &[file.as_fd()])
        .await
        .expect_err("gone");
    assert!(matches!(err, Error::Closed | Error::PeerLost(_)), "{err}");
    // A plain send reports it too.
    let err = a.send("still gone".into()).await.expect_err("gone");
    assert!(
        matches!(err, SendError::Closed | SendError::PeerLost(_)),
        "{err}"
    );
}
