//! A uds listener's channels share one budget for partly received frames: a client past
//! it is dropped with a clear error, the others finish their frames unharmed.

use std::os::linux::net::SocketAddrExt;
use std::time::Duration;

use ipc_core::prelude::*;
use ipc_core::Options;
use ipc_core::{Error, RecvError};
use ipc_uds::UdsListener;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

const GUARD: Duration = Duration::from_secs(20);
const FRAME: usize = 4 << 20;

fn connect_raw(name: &str) -> tokio::net::UnixStream {
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).expect("name");
    let s = std::os::unix::net::UnixStream::connect_addr(&addr).expect("connect");
    s.set_nonblocking(true).expect("nonblocking");
    tokio::net::UnixStream::from_std(s).expect("register")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_past_the_listener_budget_is_dropped_the_others_are_served() {
    let name = format!("ipc-uds-budget-{}", std::process::id());
    let endpoint = format!("unix:@{name}").parse().expect("endpoint");
    let cfg = Options::default().listener_budget(8 << 20);
    let mut listener = UdsListener::bind(&endpoint, &cfg).expect("bind");

    let (report, mut reports) = mpsc::unbounded_channel();
    let mut clients = Vec::new();
    for i in 0..3 {
        let client = connect_raw(&name);
        let mut server = tokio::time::timeout(GUARD, listener.accept())
            .await
            .expect("prompt")
            .expect("accept");
        let report = report.clone();
        tokio::spawn(async move {
            let got = server.recv().await;
            drop(server);
            let _ = report.send((i, got));
        });
        clients.push(client);
    }
    // Each client sends all but the last byte of a 4 MiB frame; two fit in 8 MiB.
    let mut writers = Vec::new();
    for mut client in clients {
        writers.push(tokio::spawn(async move {
            let mut wire = (FRAME as u32).to_be_bytes().to_vec();
            wire.extend_from_slice(&vec![0x5a; FRAME - 1]);
            let written = client.write_all(&wire).await;
            (client, written)
        }));
    }

    let (dropped, got) = tokio::time::timeout(GUARD, reports.recv())
        .await
        .expect("the client past the budget is dropped")
        .expect("report");
    match got {
        Err(e @ RecvError::BudgetExceeded(Error::BudgetExceeded { .. })) => {
            assert!(e.to_string().contains("listener_budget("), "{e}");
        }
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
    assert_eq!(listener.frame_budget().in_use(), 8 << 20);

    for (i, writer) in writers.into_iter().enumerate() {
        let (mut client, written) = writer.await.expect("writer");
        if i == dropped {
            continue;
        }
        written.expect("a kept client's bytes were all taken");
        client.write_all(&[0x5a]).await.expect("last byte");
        let (_, got) = tokio::time::timeout(GUARD, reports.recv())
            .await
            .expect("the kept frame arrives")
            .expect("report");
        let frame = got.expect("recv").expect("a frame");
        assert_eq!(frame.len(), FRAME);
        assert!(frame.iter().all(|&b| b == 0x5a));
    }
    assert_eq!(listener.frame_budget().in_use(), 0);
}
