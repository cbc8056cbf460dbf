//! The cluster with real processes and real sockets: this test binary re-executed as
//! workers (and as a primary) in a [`Role`]. Requests are one line on a fresh TCP
//! connection; the answer is the serving worker's pid.

mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ipc_cluster::{
    Cluster, ClusterConfig, ClusterEvent, Config, Error, ExitCause, Mode, Worker, WorkerInfo,
};
use ipc_core::testkit::{child_command, role};
use nix::sys::signal::Signal;
use support::{all_gone, next_event, shut_down, worker_pids, GUARD};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

ipc_core::child_roles! {
    /// What a re-executed copy of this test binary does.
    enum Role {
        /// Serve requests until told to drain; finish the open ones; exit 0.
        Serve,
        /// Serve like `Serve`; once told to drain, report a fatal error, then exit 0.
        FatalWhenDrained,
        /// Wait until the unix socket at `GATE` sends a byte, then serve like `Serve`.
        ServeAfterGate,
        /// In a network namespace of its own with `net.ipv4.tcp_migrate_req` = 1, run a
        /// reuseport reload under load; exit 77 if the namespace cannot be had.
        ReuseportReloadIsolated,
        /// In a network namespace of its own with `net.ipv4.tcp_migrate_req` = 1, kill
        /// a reuseport worker under load; exit 77 if the namespace cannot be had.
        ReuseportKillIsolated,
        /// Connect, never say ready.
        NeverReady,
        /// Exit 1 at once, before saying ready.
        CrashAtStart,
        /// Take the listener, say ready, drop the listener (so every connection the
        /// primary hands over is refused), and wait to be told to stop.
        RefuseAll,
        /// Speak the control protocol by hand: acknowledge `listen`, say ready, and
        /// die (SIGKILL) on the first `conn`, before acknowledging it.
        DieOnConn,
        /// Speak the control protocol by hand: refuse the first connection handed to
        /// it, take and serve (like `Serve`) every later one.
        RefuseFirst,
        /// In a process of its own (its fds are its own): run an rr cluster whose
        /// worker 1 dies while a connection is handed to it, and check that the
        /// client is served and no fd is left behind.
        HandoffDeath,
        /// Start a cluster of `Serve` workers (mode in `MODE`), print the pids, wait.
        Primary,
    }
}

/// The unix socket a [`Role::ServeAfterGate`] worker waits at.
const GATE: &str = "GATE";

/// The children's entry point: does nothing in the parent's test run.
#[test]
fn child() {
    if let Some(role) = role::<Role>() {
        support::exit_with(run_child(role));
    }
}

async fn run_child(role: Role) -> i32 {
    match role {
        Role::Serve => serve(AfterDrain::Exit).await,
        Role::FatalWhenDrained => serve(AfterDrain::ReportFatal).await,
        Role::ReuseportReloadIsolated => {
            if let Err(why) = isolate_with_migration() {
                println!("{ISOLATION_FAILED}{why}");
                return NO_ISOLATION;
            }
            reload_under_load_drops_nothing(Mode::ReusePort).await;
            0
        }
        Role::ReuseportKillIsolated => {
            if let Err(why) = isolate_with_migration() {
                println!("{ISOLATION_FAILED}{why}");
                return NO_ISOLATION;
            }
            killed_worker_is_replaced(Mode::ReusePort).await;
            0
        }
        Role::ServeAfterGate => {
            let gate = std::env::var_os(GATE).expect("GATE is set");
            let mut gate = tokio::net::UnixStream::connect(gate)
                .await
                .expect("connect to the gate");
            let mut byte = [0u8; 1];
            tokio::io::AsyncReadExt::read_exact(&mut gate, &mut byte)
                .await
                .expect("the gate opens");
            serve(AfterDrain::Exit).await
        }
        Role::NeverReady => {
            let _worker = Worker::connect().await.expect("connect");
            std::future::pending::<i32>().await
        }
        Role::CrashAtStart => 1,
        Role::DieOnConn => die_on_conn().await,
        Role::RefuseFirst => refuse_first().await,
        Role::HandoffDeath => {
            a_worker_dying_mid_handoff().await;
            0
        }
        Role::RefuseAll => {
            let worker = Worker::connect().await.expect("connect");
            let listener = worker.listener().await.expect("listener");
            worker.ready().await.expect("ready");
            drop(listener);
            worker.stopping().await;
            let _ = worker.close().await;
            0
        }
        Role::Primary => {
            let mode: Mode = std::env::var("MODE")
                .ok()
                .and_then(|m| m.parse().ok())
                .unwrap_or_default();
            let drain = std::env::var("DRAIN_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map_or(Duration::from_secs(10), Duration::from_millis);
            let config = ClusterConfig::builder()
                .workers(2)
                .mode(mode)
                .drain_timeout(drain)
                .build();
            let cluster = Cluster::start(config, |_| child_command(Role::Serve))
                .await
                .expect("start");
            let pids: Vec<String> = cluster
                .workers()
                .await
                .expect("workers")
                .iter()
                .map(|w| w.pid.to_string())
                .collect();
            // Catch SIGINT and SIGTERM from now on (tokio's handlers stay once
            // installed), so a signal sent as soon as this line is read is not a kill.
            use tokio::signal::unix::{signal, SignalKind};
            let _int = signal(SignalKind::interrupt()).expect("catch SIGINT");
            let _term = signal(SignalKind::terminate()).expect("catch SIGTERM");
            println!("addr {} pids {}", cluster.local_addr(), pids.join(","));
            cluster.run_until_signal().await.expect("run");
            0
        }
    }
}

/// What a [`serve`] worker does once its listener ended (it was told to drain).
#[derive(Clone, Copy, PartialEq)]
enum AfterDrain {
    /// Finish the open connections and exit.
    Exit,
    /// Report a fatal error first (a worker failing while it drains).
    ReportFatal,
}

/// A worker: each connection reads lines; `hi` is answered with the pid; `hold`
/// answers `held`, then waits for `go` before answering the pid; `fatal` answers
/// the pid, then reports a fatal error (the worker leaves once replaced).
async fn serve(after_drain: AfterDrain) -> i32 {
    let worker = Arc::new(Worker::connect().await.expect("connect"));
    let mut listener = worker.listener().await.expect("listener");
    // SIGUSR1: report a fatal error (the worker leaves once replaced).
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .expect("catch SIGUSR1");
    let fatal_on_usr1 = worker.clone();
    tokio::spawn(async move {
        if usr1.recv().await.is_some() {
            let _ = fatal_on_usr1.fatal("SIGUSR1").await;
        }
    });
    worker.ready().await.expect("ready");
    let mut open = tokio::task::JoinSet::new();
    while let Some(stream) = listener.accept().await {
        let Ok(stream) = stream else { continue };
        let worker = worker.clone();
        open.spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let pid = std::process::id();
            while let Ok(Some(line)) = lines.next_line().await {
                match line.as_str() {
                    "hold" => {
                        let _ = write.write_all(b"held\n").await;
                    }
                    "index" => {
                        // What tells a worker which one it is: the API and both variables.
                        let env = |name: &str| std::env::var(name).unwrap_or_default();
                        let answer = format!(
                            "{} {} {}\n",
                            worker.index(),
                            env("IPC_WORKER_INDEX"),
                            env("NODE_APP_INSTANCE")
                        );
                        let _ = write.write_all(answer.as_bytes()).await;
                    }
                    "fatal" => {
                        let _ = write.write_all(format!("{pid}\n").as_bytes()).await;
                        let _ = worker.fatal("asked to fail").await;
                        return;
                    }
                    _ => {
                        let _ = write.write_all(format!("{pid}\n").as_bytes()).await;
                    }
                }
            }
        });
    }
    if after_drain == AfterDrain::ReportFatal {
        let _ = worker.fatal("failed while draining").await;
    }
    while open.join_next().await.is_some() {}
    if let Ok(worker) = Arc::try_unwrap(worker) {
        let _ = worker.close().await;
    }
    0
}

/// One request on a fresh connection: the serving worker's pid.
async fn request(addr: SocketAddr) -> std::io::Result<u32> {
    let stream = TcpStream::connect(addr).await?;
    let (read, mut write) = stream.into_split();
    write.write_all(b"hi\n").await?;
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    line.trim()
        .parse()
        .map_err(|_| std::io::Error::other(format!("bad answer {line:?}")))
}

fn fast_supervision() -> Config {
    Config::builder()
        .listen_timeout(Duration::from_secs(20))
        .kill_timeout(Duration::from_secs(5))
        .min_uptime(Duration::from_millis(1))
        .build()
}

/// A cluster of `workers` [`Role::Serve`] workers.
async fn start(mode: Mode, workers: usize) -> Cluster {
    start_with(mode, workers, |_| child_command(Role::Serve)).await
}

/// A cluster of `workers` workers made by `command`, with [`fast_supervision`].
async fn start_with(
    mode: Mode,
    workers: usize,
    command: impl Fn(usize) -> std::process::Command + Send + Sync + 'static,
) -> Cluster {
    let config = ClusterConfig::builder()
        .workers(workers)
        .mode(mode)
        .supervise(fast_supervision())
        .drain_timeout(Duration::from_secs(10))
        .build();
    tokio::time::timeout(GUARD, Cluster::start(config, command))
        .await
        .expect("the cluster started in time")
        .expect("the cluster started")
}

/// In a cluster of two, whether a start of worker `index` is the reload's
/// replacement of index 0 (the third start); `started` counts the starts.
fn replaces_index_0(started: &std::sync::atomic::AtomicUsize, index: usize) -> bool {
    started.fetch_add(1, Ordering::Relaxed) == 2 && index == 0
}

/// The connections the workers took so far, in total.
async fn connections(cluster: &Cluster) -> u64 {
    let workers = cluster.workers().await.expect("workers");
    workers.iter().map(|w| w.connections).sum()
}

/// Wait until the workers took `at_least` connections in total.
async fn wait_for_connections(cluster: &Cluster, at_least: u64) {
    while connections(cluster).await < at_least {
        tokio::task::yield_now().await;
    }
}

/// Check that exactly one ready worker serves each of the indexes 0 and 1.
async fn one_ready_worker_per_index(cluster: &Cluster, why: &str) -> Vec<WorkerInfo> {
    let workers = cluster.workers().await.expect("workers");
    let mut indexes: Vec<usize> = workers.iter().map(|w| w.index).collect();
    indexes.sort();
    assert_eq!(indexes, vec![0, 1], "{why}: {workers:?}");
    assert!(workers.iter().all(|w| w.ready), "{workers:?}");
    workers
}

async fn spread(mode: Mode) {
    let cluster = start(mode, 2).await;
    let addr = cluster.local_addr();
    let workers: HashSet<u32> = worker_pids(&cluster).await.into_iter().collect();
    assert_eq!(workers.len(), 2);
    let mut answered: HashMap<u32, u64> = HashMap::new();
    let mut sent = 0;
    // Eight clients at a time until every worker answered (bounded).
    while answered.len() < workers.len() && sent < 4000 {
        let batch: Vec<_> = (0..8).map(|_| tokio::spawn(request(addr))).collect();
        for r in batch {
            let pid = r.await.expect("join").expect("a request succeeds");
            assert!(workers.contains(&pid), "answered by a worker");
            *answered.entry(pid).or_default() += 1;
            sent += 1;
        }
    }
    assert_eq!(
        answered.keys().copied().collect::<HashSet<_>>(),
        workers,
        "{mode}: every worker served ({sent} requests)"
    );
    // The primary's count of each worker is the number of requests it answered (one
    // connection each), once the last reports are in.
    wait_for_connections(&cluster, sent).await;
    let counts: HashMap<u32, u64> = cluster
        .workers()
        .await
        .expect("workers")
        .iter()
        .map(|w| (w.pid, w.connections))
        .collect();
    assert_eq!(
        counts, answered,
        "{mode}: the primary sees each worker's connection count"
    );
    shut_down(cluster).await;
}

#[tokio::test]
async fn requests_spread_across_workers_shared() {
    spread(Mode::Shared).await;
}

#[tokio::test]
async fn requests_spread_across_workers_round_robin() {
    spread(Mode::RoundRobin).await;
}

#[tokio::test]
async fn requests_spread_across_workers_reuseport() {
    spread(Mode::ReusePort).await;
}

/// Requests one after another until `stop`; counts successes and failures.
fn load(addr: SocketAddr, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let (mut ok, mut failed) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            match request(addr).await {
                Ok(_) => ok += 1,
                Err(_) => failed += 1,
            }
        }
        (ok, failed)
    })
}

/// Kill -9 one of two workers under the load of one client (one request at a time);
/// a replacement comes and serves. Returns the requests served and failed.
async fn kill_a_worker_under_load(mode: Mode) -> (u64, u64) {
    let mut cluster = start(mode, 2).await;
    while !matches!(next_event(&mut cluster).await, ClusterEvent::Ready { .. })
        || cluster.workers().await.expect("w").iter().any(|w| !w.ready)
    {}
    let victim = cluster.workers().await.expect("workers")[0].pid;
    let stop = Arc::new(AtomicBool::new(false));
    let client = load(cluster.local_addr(), stop.clone());
    // Let the load reach the victim, then SIGKILL it.
    while cluster
        .workers()
        .await
        .expect("w")
        .iter()
        .all(|w| w.connections < 3)
    {
        tokio::task::yield_now().await;
    }
    support::signal(victim, Signal::SIGKILL);
    let mut replaced = false;
    while !replaced {
        match next_event(&mut cluster).await {
            ClusterEvent::Exited { pid, cause, .. } => {
                assert_eq!(pid, victim);
                assert_eq!(cause, ExitCause::Crashed);
            }
            ClusterEvent::Ready { pid, .. } => replaced = pid != victim,
            _ => {}
        }
    }
    // Some requests served by the new worker too.
    let before = connections(&cluster).await;
    wait_for_connections(&cluster, before + 20).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = client.await.expect("client");
    assert!(ok > 20, "{mode}: {ok} requests served");
    let pids: Vec<u32> = worker_pids(&cluster).await.into_iter().collect();
    assert_eq!(pids.len(), 2, "back to two workers");
    assert!(!pids.contains(&victim));
    shut_down(cluster).await;
    (ok, failed)
}

/// [`kill_a_worker_under_load`], and no request failed beyond the one the killed
/// worker held.
async fn killed_worker_is_replaced(mode: Mode) {
    let (_, failed) = kill_a_worker_under_load(mode).await;
    assert!(
        failed <= 1,
        "{mode}: {failed} failed requests; only the one the killed worker held may fail"
    );
}

#[tokio::test]
async fn a_killed_worker_is_replaced_shared() {
    killed_worker_is_replaced(Mode::Shared).await;
}

#[tokio::test]
async fn a_killed_worker_is_replaced_round_robin() {
    killed_worker_is_replaced(Mode::RoundRobin).await;
}

#[tokio::test]
async fn a_killed_worker_is_replaced_reuseport() {
    // What the killed worker's socket had queued moves to the other worker's only
    // with net.ipv4.tcp_migrate_req = 1 (per network namespace): the strict check
    // runs in a child process with a namespace of its own where it is 1.
    let child = tokio::process::Command::from(child_command(Role::ReuseportKillIsolated))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(GUARD * 4, child)
        .await
        .expect("the isolated kill finished in time")
        .expect("run the isolated kill");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => {}
        Some(NO_ISOLATION) => {
            // Here, with migration as the machine has it: a replacement comes and
            // requests continue; failures beyond the killed worker's one in flight
            // (its accept queue, reset without migration) are reported, not asserted.
            let why = stdout
                .split_once(ISOLATION_FAILED)
                .map_or("(no reason printed)", |(_, why)| {
                    why.lines().next().unwrap_or("")
                });
            let migration = migration_here();
            let (ok, failed) = kill_a_worker_under_load(Mode::ReusePort).await;
            eprintln!(
                "no network namespace of its own ({why}); reuseport kill -9 with \
                 {TCP_MIGRATE_REQ} = {migration:?}: {failed} of {} requests failed",
                ok + failed
            );
            if migration.as_deref() == Some("1") {
                assert!(
                    failed <= 1,
                    "with migration on, only the one in flight fails"
                );
            }
        }
        _ => panic!(
            "the reuseport kill in its own network namespace failed ({}):\n{stdout}\n{stderr}",
            output.status
        ),
    }
}

#[tokio::test]
async fn a_connection_a_worker_refuses_goes_to_another_round_robin() {
    // Worker 1 refuses every connection handed to it (it dropped its listener); it
    // stays in the rotation, so it is offered more than one, and worker 0 serves each
    // of them: no client sees a failure.
    let cluster = start_with(Mode::RoundRobin, 2, |index| {
        if index == 1 {
            child_command(Role::RefuseAll)
        } else {
            child_command(Role::Serve)
        }
    })
    .await;
    let addr = cluster.local_addr();
    let workers = cluster.workers().await.expect("w");
    let (server, refuser) = (workers[0].pid, workers[1].pid);
    for n in 0..10 {
        let pid = request(addr)
            .await
            .unwrap_or_else(|e| panic!("request {n} failed: {e}"));
        assert_eq!(
            pid, server,
            "request {n} served by the worker that takes them"
        );
    }
    wait_for_connections(&cluster, 10).await;
    let workers = cluster.workers().await.expect("w");
    let refused = workers.iter().find(|w| w.pid == refuser).expect("refuser");
    assert_eq!(refused.connections, 0, "{workers:?}");
    assert!(
        refused.refused > 1,
        "a worker that refused is offered connections again: {workers:?}"
    );
    let served = workers.iter().find(|w| w.pid == server).expect("server");
    assert_eq!((served.connections, served.refused), (10, 0), "{workers:?}");
    shut_down(cluster).await;
}

#[tokio::test]
async fn a_worker_that_refused_once_is_offered_connections_again_round_robin() {
    // Worker 1 refuses the first connection it is offered and takes the later ones
    // (Node puts a refusing worker back in the rotation).
    let cluster = start_with(Mode::RoundRobin, 2, |index| {
        if index == 1 {
            child_command(Role::RefuseFirst)
        } else {
            child_command(Role::Serve)
        }
    })
    .await;
    let addr = cluster.local_addr();
    let refuser = cluster.workers().await.expect("w")[1].pid;
    let mut served_by_refuser = 0;
    for n in 0..40 {
        let pid = request(addr)
            .await
            .unwrap_or_else(|e| panic!("request {n} failed: {e}"));
        if pid == refuser {
            served_by_refuser += 1;
        }
    }
    wait_for_connections(&cluster, 40).await;
    let workers = cluster.workers().await.expect("w");
    let refuser_info = workers.iter().find(|w| w.pid == refuser).expect("refuser");
    assert_eq!(refuser_info.refused, 1, "{workers:?}");
    assert!(
        served_by_refuser > 0 && refuser_info.connections == served_by_refuser,
        "the worker that refused once served later connections \
         ({served_by_refuser} of 40): {workers:?}"
    );
    shut_down(cluster).await;
}

#[tokio::test]
async fn a_connection_every_worker_refuses_is_closed_not_kept_waiting_round_robin() {
    // Both workers refuse everything: the connection is offered to each once, then
    // closed; the client sees its end instead of waiting forever.
    let cluster = start_with(Mode::RoundRobin, 2, |_| child_command(Role::RefuseAll)).await;
    let outcome = tokio::time::timeout(GUARD, request(cluster.local_addr()))
        .await
        .expect("a connection every worker refuses does not wait forever");
    assert!(outcome.is_err(), "nobody served it: {outcome:?}");
    let workers = cluster.workers().await.expect("w");
    assert_eq!(
        workers.iter().map(|w| w.refused).collect::<Vec<_>>(),
        vec![1, 1],
        "offered once to each worker: {workers:?}"
    );
    shut_down(cluster).await;
}

/// [`Role::RefuseFirst`]: refuse the first connection, serve the later ones.
async fn refuse_first() -> i32 {
    use ipc_core::prelude::*;
    use ipc_uds::RecvFds;
    let endpoint = ipc_core::env::endpoint_from_env().expect("IPC_ENDPOINT");
    let mut channel = ipc_uds::connect(&endpoint, &ipc_core::Options::from_env())
        .await
        .expect("connect");
    let mut refused_one = false;
    while let Ok(Some((frame, mut fds))) = channel.recv_with_fds().await {
        if &frame[..] == b"shutdown" {
            return 0;
        }
        let msg: serde_json::Value = serde_json::from_slice(&frame).unwrap_or_default();
        let ack = |taken: bool| {
            let ack = serde_json::json!({"ipc_cluster": "ack", "seq": msg["seq"], "taken": taken});
            bytes::Bytes::from(ack.to_string())
        };
        match msg["ipc_cluster"].as_str() {
            Some("listen") => {
                channel.send(ack(true)).await.expect("ack");
                ipc_cluster::worker::ready(&mut channel)
                    .await
                    .expect("ready");
            }
            Some("conn") if !refused_one => {
                refused_one = true;
                channel.send(ack(false)).await.expect("refuse");
            }
            Some("conn") => {
                let fd = fds.pop().expect("a connection");
                channel.send(ack(true)).await.expect("ack");
                let stream = std::net::TcpStream::from(fd);
                stream.set_nonblocking(true).expect("nonblocking");
                let stream = TcpStream::from_std(stream).expect("tokio stream");
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(_)) = lines.next_line().await {
                        let pid = std::process::id();
                        let _ = write.write_all(format!("{pid}\n").as_bytes()).await;
                    }
                });
            }
            Some("drain" | "shutdown") => return 0,
            _ => {}
        }
    }
    0
}

/// [`Role::DieOnConn`]: a worker that dies with a connection's fd in flight to it.
async fn die_on_conn() -> i32 {
    use ipc_core::prelude::*;
    use ipc_uds::RecvFds;
    let endpoint = ipc_core::env::endpoint_from_env().expect("IPC_ENDPOINT");
    let mut channel = ipc_uds::connect(&endpoint, &ipc_core::Options::from_env())
        .await
        .expect("connect");
    while let Ok(Some((frame, _fds))) = channel.recv_with_fds().await {
        let msg: serde_json::Value = serde_json::from_slice(&frame).unwrap_or_default();
        match msg["ipc_cluster"].as_str() {
            Some("listen") => {
                let ack =
                    serde_json::json!({"ipc_cluster": "ack", "seq": msg["seq"], "taken": true});
                channel
                    .send(bytes::Bytes::from(ack.to_string()))
                    .await
                    .expect("ack");
                ipc_cluster::worker::ready(&mut channel)
                    .await
                    .expect("ready");
            }
            Some("conn") => {
                nix::sys::signal::raise(Signal::SIGKILL).expect("SIGKILL myself");
            }
            _ => {}
        }
    }
    0
}

/// This process's open fds.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// [`Role::HandoffDeath`]'s scenario.
async fn a_worker_dying_mid_handoff() {
    let died_once = Arc::new(AtomicBool::new(false));
    let mut cluster = start_with(Mode::RoundRobin, 2, move |index| {
        if index == 1 && !died_once.swap(true, Ordering::Relaxed) {
            child_command(Role::DieOnConn)
        } else {
            child_command(Role::Serve)
        }
    })
    .await;
    let addr = cluster.local_addr();
    let workers = cluster.workers().await.expect("w");
    let (server, dying) = (workers[0].pid, workers[1].pid);
    let before = open_fds();
    // Both are ready: the round-robin hands one of the first two connections to the
    // dying worker; it comes back and worker 0 serves it.
    for n in 0..2 {
        let pid = request(addr)
            .await
            .unwrap_or_else(|e| panic!("request {n} failed: {e}"));
        assert_eq!(pid, server, "request {n}");
    }
    let mut replacement = None;
    let mut died = false;
    while replacement.is_none() || !died {
        match next_event(&mut cluster).await {
            ClusterEvent::Exited { pid, cause, .. } => {
                assert_eq!((pid, cause), (dying, ExitCause::Crashed));
                died = true;
            }
            ClusterEvent::Ready { index: 1, pid } if pid != dying => replacement = Some(pid),
            _ => {}
        }
    }
    // The replacement takes connections again.
    let mut served = HashSet::new();
    while served.len() < 2 {
        served.insert(request(addr).await.expect("a request succeeds"));
    }
    assert!(served.contains(&server) && served.contains(&replacement.expect("ready")));
    // The dead worker's channel, its tasks and the connection's fd are all closed
    // (some of them a moment after the events): back to as many fds as before.
    let settled = tokio::time::timeout(GUARD, async {
        while open_fds() != before {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "fds leaked: {before} open before the worker died, {} now",
        open_fds()
    );
    shut_down(cluster).await;
}

#[tokio::test]
async fn a_worker_dying_mid_handoff_is_an_error_not_a_crash_or_a_leaked_fd() {
    // In a child process: the fds of this test binary's other tests are not counted.
    let child = tokio::process::Command::from(child_command(Role::HandoffDeath))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(GUARD * 2, child)
        .await
        .expect("finished in time")
        .expect("run the scenario");
    assert!(
        output.status.success(),
        "{}:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_fatal_worker_leaves_only_after_its_replacement_is_ready() {
    let mut cluster = start(Mode::RoundRobin, 1).await;
    let old = cluster.workers().await.expect("w")[0].pid;
    let stream = TcpStream::connect(cluster.local_addr())
        .await
        .expect("connect");
    let (read, mut write) = stream.into_split();
    write.write_all(b"fatal\n").await.expect("send");
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .await
        .expect("answer");
    assert_eq!(line.trim(), old.to_string());
    let mut new_ready = None;
    loop {
        match next_event(&mut cluster).await {
            ClusterEvent::Ready { pid, .. } if pid != old => new_ready = Some(pid),
            ClusterEvent::Exited { pid, cause, .. } if pid == old => {
                assert!(
                    new_ready.is_some(),
                    "the old worker exited before its replacement was ready"
                );
                assert_eq!(cause, ExitCause::Announced);
                break;
            }
            ClusterEvent::Exited { pid, .. } => panic!("worker {pid} exited"),
            _ => {}
        }
    }
    let answer = request(cluster.local_addr()).await.expect("served");
    assert_eq!(Some(answer), new_ready);
    shut_down(cluster).await;
}

#[tokio::test]
async fn a_worker_not_ready_in_time_fails_the_start() {
    let config = ClusterConfig::builder()
        .workers(1)
        .supervise(
            Config::builder()
                .listen_timeout(Duration::from_millis(300))
                .kill_timeout(Duration::from_millis(300))
                .build(),
        )
        .build();
    let started = tokio::time::timeout(
        GUARD,
        Cluster::start(config, |_| child_command(Role::NeverReady)),
    )
    .await
    .expect("start gives up in time");
    assert!(
        matches!(started, Err(Error::NotReady { .. })),
        "{started:?}"
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let cluster = start(Mode::Shared, 1).await;
    let pid = cluster.workers().await.expect("w")[0].pid;
    let stream = TcpStream::connect(cluster.local_addr())
        .await
        .expect("connect");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"hold\n").await.expect("send");
    assert_eq!(
        lines.next_line().await.expect("read").as_deref(),
        Some("held")
    );
    let shutdown = tokio::spawn(cluster.shutdown());
    // The worker is draining: the request in flight still gets its answer.
    write.write_all(b"hi\n").await.expect("send");
    assert_eq!(
        lines.next_line().await.expect("read"),
        Some(pid.to_string())
    );
    drop(write);
    drop(lines);
    tokio::time::timeout(GUARD, shutdown)
        .await
        .expect("shutdown in time")
        .expect("join");
    all_gone(&[pid]).await.expect("the worker is gone");
}

#[tokio::test]
async fn nothing_outlives_a_sigkilled_primary() {
    let (mut primary, line) = start_primary(&[]).await;
    let (_, pids) = addr_and_pids(&line);
    assert_eq!(pids.len(), 2);
    primary.start_kill().expect("SIGKILL the primary");
    primary.wait().await.expect("reap");
    all_gone(&pids).await.expect("no worker left behind");
}

/// Start this binary as a [`Role::Primary`] and return it with its "addr .. pids .." line.
async fn start_primary(envs: &[(&str, &str)]) -> (tokio::process::Child, String) {
    let mut command = tokio::process::Command::from(child_command(Role::Primary));
    command
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut primary = command.spawn().expect("start the primary");
    let line = addr_line(&mut primary).await;
    (primary, line)
}

/// What a [`Role::Primary`] prints after "addr " once its workers run: "ADDR pids P,Q".
async fn addr_line(primary: &mut tokio::process::Child) -> String {
    let stdout = primary.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    tokio::time::timeout(GUARD, async {
        loop {
            let line = lines.next_line().await.expect("read").expect("a line");
            // libtest prints "test child ... " on the same line first.
            if let Some((_, rest)) = line.split_once("addr ") {
                return rest.to_string();
            }
        }
    })
    .await
    .expect("the primary printed its address once its workers ran")
}

/// A [`Role::Primary`]'s address and its workers' pids, from its "addr .. pids .." line.
fn addr_and_pids(line: &str) -> (SocketAddr, Vec<u32>) {
    let addr = line
        .split_whitespace()
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("an address in {line:?}"));
    let pids = line
        .split_once("pids ")
        .expect("pids")
        .1
        .split(',')
        .map(|p| p.trim().parse().expect("pid"))
        .collect();
    (addr, pids)
}

/// A request in flight: a connection whose worker answered `held` and waits for the
/// rest of the request.
async fn request_in_flight(
    addr: SocketAddr,
) -> (
    tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"hold\n").await.expect("send");
    assert_eq!(
        lines.next_line().await.expect("read").as_deref(),
        Some("held")
    );
    (lines, write)
}

/// SIGINT or SIGTERM to a primary process while a request is in flight: it stops
/// accepting (new connections are refused), the request in flight completes, the
/// workers stop and the primary exits 0.
async fn a_signal_drains_the_cluster_and_exits_0(mode: Mode, signal: Signal) {
    let (mut primary, line) = start_primary(&[("MODE", &mode.to_string())]).await;
    let (addr, pids) = addr_and_pids(&line);
    let (mut lines, mut write) = request_in_flight(addr).await;
    support::signal(primary.id().expect("pid"), signal);
    let refused = tokio::time::timeout(GUARD, async {
        loop {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                // Accepted before the stop took effect (or reset): try again.
                _ => tokio::task::yield_now().await,
            }
        }
    })
    .await;
    assert!(
        refused.is_ok(),
        "{mode}: new connections are still accepted {GUARD:?} after {signal}"
    );
    write.write_all(b"hi\n").await.expect("send");
    let answer = lines.next_line().await.expect("read").expect("an answer");
    let pid: u32 = answer.parse().expect("a pid");
    assert!(
        pids.contains(&pid),
        "{mode}: the request in flight completed"
    );
    drop((lines, write));
    let status = tokio::time::timeout(GUARD, primary.wait())
        .await
        .expect("exits in time")
        .expect("status");
    assert!(status.success(), "{mode}: {signal}: {status}");
    all_gone(&pids).await.expect("every worker stopped");
}

#[tokio::test]
async fn sigint_drains_the_cluster_and_exits_0_shared() {
    a_signal_drains_the_cluster_and_exits_0(Mode::Shared, Signal::SIGINT).await;
}

#[tokio::test]
async fn sigterm_drains_the_cluster_and_exits_0_round_robin() {
    a_signal_drains_the_cluster_and_exits_0(Mode::RoundRobin, Signal::SIGTERM).await;
}

#[tokio::test]
async fn sigterm_drains_the_cluster_and_exits_0_reuseport() {
    a_signal_drains_the_cluster_and_exits_0(Mode::ReusePort, Signal::SIGTERM).await;
}

#[tokio::test]
async fn a_request_that_never_finishes_delays_a_signalled_shutdown_only_for_the_drain_timeout() {
    let (mut primary, line) = start_primary(&[("MODE", "rr"), ("DRAIN_MS", "300")]).await;
    let (addr, pids) = addr_and_pids(&line);
    let (mut lines, _write) = request_in_flight(addr).await;
    support::signal(primary.id().expect("pid"), Signal::SIGTERM);
    let status = tokio::time::timeout(GUARD, primary.wait())
        .await
        .expect("exits in time although the request never finishes")
        .expect("status");
    assert!(status.success(), "{status}");
    all_gone(&pids).await.expect("every worker stopped");
    // The worker holding it was killed: the connection ended without an answer.
    assert!(!matches!(lines.next_line().await, Ok(Some(_))));
}

/// A rolling reload of two workers under the load of four clients; every worker is
/// replaced. Returns the requests served and failed.
async fn reload_under_load(mode: Mode) -> (u64, u64) {
    let cluster = start(mode, 2).await;
    let addr = cluster.local_addr();
    let old: HashSet<u32> = worker_pids(&cluster).await.into_iter().collect();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4).map(|_| load(addr, stop.clone())).collect();
    // Some load before, during and after the reload.
    wait_for_connections(&cluster, 20).await;
    tokio::time::timeout(GUARD, cluster.reload())
        .await
        .expect("reload in time")
        .expect("reload succeeds");
    wait_for_connections(&cluster, 20).await;
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for client in clients {
        let (o, f) = client.await.expect("client");
        ok += o;
        failed += f;
    }
    let new: HashSet<u32> = worker_pids(&cluster).await.into_iter().collect();
    assert_eq!(new.len(), 2);
    assert!(new.is_disjoint(&old), "{mode}: every worker was replaced");
    shut_down(cluster).await;
    (ok, failed)
}

/// [`reload_under_load`], and no request failed or was refused.
async fn reload_under_load_drops_nothing(mode: Mode) {
    let (ok, failed) = reload_under_load(mode).await;
    assert_eq!(
        failed, 0,
        "{mode}: no request failed or was refused ({ok} served)"
    );
}

#[tokio::test]
async fn rolling_reload_under_load_drops_nothing_shared() {
    reload_under_load_drops_nothing(Mode::Shared).await;
}

#[tokio::test]
async fn rolling_reload_under_load_drops_nothing_round_robin() {
    reload_under_load_drops_nothing(Mode::RoundRobin).await;
}

/// Scale a cluster of two up to three: the third worker is ready when `scale`
/// returns, and all three serve.
async fn scale_up(mode: Mode) {
    let cluster = start(mode, 2).await;
    tokio::time::timeout(GUARD, cluster.scale(3))
        .await
        .expect("scaled in time")
        .expect("scaled up");
    let workers = cluster.workers().await.expect("workers");
    let indexes: Vec<usize> = workers.iter().map(|w| w.index).collect();
    assert_eq!(indexes, vec![0, 1, 2], "{workers:?}");
    assert!(workers.iter().all(|w| w.ready), "{workers:?}");
    let pids: HashSet<u32> = workers.iter().map(|w| w.pid).collect();
    let mut answered = HashSet::new();
    let mut sent = 0;
    while answered.len() < 3 && sent < 4000 {
        let batch: Vec<_> = (0..8)
            .map(|_| tokio::spawn(request(cluster.local_addr())))
            .collect();
        for r in batch {
            let pid = r.await.expect("join").expect("a request succeeds");
            assert!(pids.contains(&pid), "answered by a worker");
            answered.insert(pid);
            sent += 1;
        }
    }
    assert_eq!(
        answered, pids,
        "{mode}: all three workers served ({sent} requests)"
    );
    shut_down(cluster).await;
}

#[tokio::test]
async fn scale_up_2_to_3_all_serve_round_robin() {
    scale_up(Mode::RoundRobin).await;
}

#[tokio::test]
async fn scale_up_2_to_3_all_serve_shared() {
    scale_up(Mode::Shared).await;
}

/// Scale a cluster of three down to one under the load of four clients: no request
/// fails, and worker 0 is the one left.
async fn scale_down_under_load(mode: Mode) {
    let mut cluster = start(mode, 3).await;
    let addr = cluster.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4).map(|_| load(addr, stop.clone())).collect();
    wait_for_connections(&cluster, 20).await;
    // The start's events are not the scale's.
    let _ = queued_events(&mut cluster).await;
    tokio::time::timeout(GUARD, cluster.scale(1))
        .await
        .expect("scaled in time")
        .expect("scaled down");
    let before = connections(&cluster).await;
    wait_for_connections(&cluster, before + 20).await;
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for client in clients {
        let (o, f) = client.await.expect("client");
        ok += o;
        failed += f;
    }
    assert_eq!(failed, 0, "{mode}: no request failed ({ok} served)");
    let workers = cluster.workers().await.expect("workers");
    assert_eq!(
        workers.iter().map(|w| w.index).collect::<Vec<_>>(),
        vec![0],
        "{workers:?}"
    );
    // The retired workers left as asked (drained), and nobody restarted them.
    for event in queued_events(&mut cluster).await {
        match event {
            ClusterEvent::Exited { index, cause, .. } => {
                assert!(index > 0, "{event:?}");
                assert_eq!(cause, ExitCause::Stopped, "{event:?}");
            }
            ClusterEvent::Restarting { .. } | ClusterEvent::Starting { .. } => {
                panic!("{mode}: nothing restarts after a scale down: {event:?}")
            }
            _ => {}
        }
    }
    shut_down(cluster).await;
}

#[tokio::test]
async fn scale_down_3_to_1_under_load_fails_nothing_round_robin() {
    scale_down_under_load(Mode::RoundRobin).await;
}

#[tokio::test]
async fn scale_down_3_to_1_under_load_fails_nothing_shared() {
    scale_down_under_load(Mode::Shared).await;
}

#[tokio::test]
async fn scale_to_0_is_refused() {
    let cluster = start(Mode::RoundRobin, 1).await;
    let refused = cluster.scale(0).await;
    assert!(matches!(refused, Err(Error::State(_))), "{refused:?}");
    assert_eq!(cluster.workers().await.expect("workers").len(), 1);
    shut_down(cluster).await;
}

/// The sysctl that makes the kernel move the connections queued on a closing
/// `SO_REUSEPORT` socket to another socket of its group (per network namespace).
const TCP_MIGRATE_REQ: &str = "/proc/sys/net/ipv4/tcp_migrate_req";

/// What [`Role::ReuseportReloadIsolated`] prints before it exits with
/// [`NO_ISOLATION`] when it cannot get a network namespace with migration on.
const ISOLATION_FAILED: &str = "isolation failed: ";
const NO_ISOLATION: i32 = 77;

/// Move this thread (which runs the current-thread runtime and starts every process
/// of the test) into a network namespace of its own, bring its loopback up and turn
/// `net.ipv4.tcp_migrate_req` on there. The machine's own namespace is not touched.
fn isolate_with_migration() -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("unshare(CLONE_NEWNET): {e} (needs CAP_SYS_ADMIN)"))?;
    let up = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .map_err(|e| format!("`ip link set lo up`: {e} (iproute2 is not installed?)"))?;
    if !up.success() {
        return Err(format!("`ip link set lo up`: {up}"));
    }
    std::fs::write(TCP_MIGRATE_REQ, "1")
        .map_err(|e| format!("writing 1 to {TCP_MIGRATE_REQ}: {e} (Linux 5.14 or later)"))
}

/// `net.ipv4.tcp_migrate_req` in this process's network namespace (`None`: no such
/// sysctl, Linux before 5.14).
fn migration_here() -> Option<String> {
    let value = std::fs::read_to_string(TCP_MIGRATE_REQ).ok()?;
    Some(value.trim().to_string())
}

#[tokio::test]
async fn rolling_reload_under_load_drops_nothing_reuseport() {
    // tcp_migrate_req is per network namespace: the reload runs in a child process
    // with a namespace of its own where it is 1.
    let child = tokio::process::Command::from(child_command(Role::ReuseportReloadIsolated))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(GUARD * 4, child)
        .await
        .expect("the isolated reload finished in time")
        .expect("run the isolated reload");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => {}
        Some(NO_ISOLATION) => {
            let why = stdout
                .split_once(ISOLATION_FAILED)
                .map_or("(no reason printed)", |(_, why)| {
                    why.lines().next().unwrap_or("")
                });
            let here = migration_here();
            if here.as_deref() == Some("1") {
                reload_under_load_drops_nothing(Mode::ReusePort).await;
            } else {
                eprintln!(
                    "SKIPPED: no network namespace of its own ({why}) and {TCP_MIGRATE_REQ} \
                     here is {here:?}, not 1: without migration a connection that reaches a \
                     retired worker's socket just before it closes is reset (the documented \
                     limit of reuseport reloads); nothing was tested"
                );
            }
        }
        _ => panic!(
            "the reuseport reload in its own network namespace failed ({}):\n{stdout}\n{stderr}",
            output.status
        ),
    }
}

#[tokio::test]
async fn a_reuseport_reload_without_migration_replaces_every_worker() {
    // In this namespace (migration as the machine has it): the reload works; what a
    // retired worker's socket holds after it took its queue may be reset when
    // migration is off, which is reported, not asserted.
    let migration = migration_here();
    let (ok, failed) = reload_under_load(Mode::ReusePort).await;
    eprintln!(
        "reuseport reload with {TCP_MIGRATE_REQ} = {:?}: {failed} of {} requests failed",
        migration,
        ok + failed
    );
    if migration.as_deref() == Some("1") {
        assert_eq!(failed, 0, "with migration on, nothing is dropped");
    }
}

#[tokio::test]
async fn a_reload_whose_replacement_never_gets_ready_keeps_the_old_worker() {
    let broken = Arc::new(AtomicBool::new(false));
    let factory_broken = broken.clone();
    let config = ClusterConfig::builder()
        .workers(1)
        .mode(Mode::RoundRobin)
        .supervise(
            Config::builder()
                .listen_timeout(Duration::from_secs(2))
                .kill_timeout(Duration::from_millis(200))
                .build(),
        )
        .build();
    let cluster = tokio::time::timeout(
        GUARD,
        Cluster::start(config, move |_| {
            if factory_broken.load(Ordering::Relaxed) {
                child_command(Role::NeverReady)
            } else {
                child_command(Role::Serve)
            }
        }),
    )
    .await
    .expect("start in time")
    .expect("start");
    let old = cluster.workers().await.expect("w")[0].pid;
    broken.store(true, Ordering::Relaxed);
    let (first, second) = tokio::join!(cluster.reload(), async {
        tokio::task::yield_now().await;
        cluster.reload().await
    });
    assert!(
        matches!(&first, Err(Error::ReloadAborted(why)) if why.contains("failed")),
        "{first:?}"
    );
    assert!(
        matches!(&second, Err(Error::ReloadAborted(why)) if why.contains("one at a time")),
        "{second:?}"
    );
    let workers = cluster.workers().await.expect("w");
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert_eq!(workers[0].pid, old, "the old worker still serves");
    assert_eq!(request(cluster.local_addr()).await.expect("served"), old);
    shut_down(cluster).await;
}

#[tokio::test]
async fn socket_activation_and_ready_notification() {
    use std::os::fd::OwnedFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fd = OwnedFd::from(listener);
    let mut notify = ipc_cluster::notify::NotifySocket::new().expect("notify socket");
    let inner = child_command(Role::Primary);
    // systemd sets LISTEN_PID to the service's pid: a shell that execs keeps its pid.
    let mut command = std::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(r#"LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http exec "$0" "$@""#)
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env(ipc_cluster::notify::NOTIFY_SOCKET, notify.path())
        .stdout(std::process::Stdio::piped());
    ipc_core::spawn::inherit_fds(&mut command, &[(&fd, 3)]);
    let mut primary = tokio::process::Command::from(command)
        .kill_on_drop(true)
        .spawn()
        .expect("start the primary");
    drop(fd);
    tokio::time::timeout(GUARD, notify.ready())
        .await
        .expect("READY=1 in time")
        .expect("READY=1");
    let line = addr_line(&mut primary).await;
    assert!(line.starts_with(&addr.to_string()), "{line} serves {addr}");
    let pid = request(addr).await.expect("served on the activated socket");
    assert!(line.contains(&pid.to_string()), "{pid} is one of {line}");
    support::signal(primary.id().expect("pid"), Signal::SIGTERM);
    let status = tokio::time::timeout(GUARD, primary.wait())
        .await
        .expect("exits in time")
        .expect("status");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn dropping_the_cluster_kills_its_workers() {
    let cluster = start(Mode::Shared, 2).await;
    let pids: Vec<u32> = worker_pids(&cluster).await.into_iter().collect();
    drop(cluster);
    all_gone(&pids)
        .await
        .expect("no worker outlives its Cluster");
}

#[tokio::test]
async fn a_process_not_started_by_a_cluster_gets_a_connect_error() {
    // This test process was started by cargo, not by a cluster: no IPC_ENDPOINT.
    assert!(std::env::var_os(ipc_core::env::IPC_ENDPOINT).is_none());
    let connected = tokio::time::timeout(GUARD, Worker::connect())
        .await
        .expect("connect gives up at once");
    match connected {
        Err(Error::Connect(ipc_core::ConnectError::NotAChild(why))) => {
            assert!(why.contains("IPC_ENDPOINT"), "{why}");
        }
        other => panic!("expected Error::Connect(NotAChild), got {other:?}"),
    }
}

/// Reload a cluster of two whose old worker `victim` is SIGKILLed from the worker
/// factory when the reload starts the replacement of index 0; after everything has
/// settled, exactly one worker per index must be left.
async fn crash_during_reload(victim: usize) {
    let kill_on_reload: Arc<std::sync::Mutex<Option<u32>>> = Arc::default();
    let factory_kill = kill_on_reload.clone();
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut cluster = start_with(Mode::Shared, 2, move |index| {
        // The third start is the reload's replacement of index 0.
        if replaces_index_0(&started, index) {
            if let Some(pid) = factory_kill.lock().expect("lock").take() {
                support::signal(pid, Signal::SIGKILL);
            }
        }
        child_command(Role::Serve)
    })
    .await;
    let before = cluster.workers().await.expect("w");
    let victim_pid = before
        .iter()
        .find(|w| w.index == victim)
        .expect("the victim")
        .pid;
    *kill_on_reload.lock().expect("lock") = Some(victim_pid);
    tokio::time::timeout(GUARD, cluster.reload())
        .await
        .expect("reload in time")
        .expect("reload succeeds");
    // Settle: the victim's exit seen, every restart started, every start ready
    // (the events from the cluster's start on are all still queued).
    let (mut victim_gone, mut restarted) = (false, false);
    let (mut starting, mut restarts_due) = (0i64, 0i64);
    while !victim_gone || starting != 0 || restarts_due != 0 || (victim == 1 && !restarted) {
        match next_event(&mut cluster).await {
            ClusterEvent::Starting { .. } => {
                starting += 1;
                restarts_due = (restarts_due - 1).max(0);
            }
            ClusterEvent::Ready { .. } => starting -= 1,
            ClusterEvent::Restarting { index, .. } => {
                restarted |= index == victim;
                restarts_due += 1;
            }
            ClusterEvent::Exited { pid, cause, .. } if pid == victim_pid => {
                assert_eq!(cause, ExitCause::Crashed);
                victim_gone = true;
            }
            _ => {}
        }
    }
    let workers =
        one_ready_worker_per_index(&cluster, "one worker per index after the reload").await;
    assert!(!workers.iter().any(|w| w.pid == victim_pid));
    shut_down(cluster).await;
}

#[tokio::test]
async fn a_worker_crashing_before_the_reload_reaches_it_is_not_started_twice() {
    crash_during_reload(1).await;
}

#[tokio::test]
async fn a_worker_crashing_while_its_replacement_starts_is_not_started_twice() {
    crash_during_reload(0).await;
}

/// The events already queued, without waiting for more.
async fn queued_events(cluster: &mut Cluster) -> Vec<ClusterEvent> {
    let mut events = Vec::new();
    // A zero timeout polls once: it takes an event that is there, never waits.
    while let Ok(Some(event)) = tokio::time::timeout(Duration::ZERO, cluster.next_event()).await {
        events.push(event);
    }
    events
}

#[tokio::test]
async fn a_reload_replacement_crashing_before_ready_keeps_the_old_worker_and_is_not_restarted() {
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut cluster = start_with(Mode::Shared, 2, move |index| {
        // The third start is the reload's replacement of index 0: it crashes.
        if replaces_index_0(&started, index) {
            child_command(Role::CrashAtStart)
        } else {
            child_command(Role::Serve)
        }
    })
    .await;
    let before = cluster.workers().await.expect("w");
    match tokio::time::timeout(GUARD, cluster.reload())
        .await
        .expect("reload in time")
    {
        Err(Error::ReloadAborted(_)) => {}
        other => panic!("expected Error::ReloadAborted, got {other:?}"),
    }
    // This round trip through the cluster's task comes after the replacement's exit
    // was handled, so any restart it caused is announced in the events queued now.
    let workers = cluster.workers().await.expect("w");
    let events = queued_events(&mut cluster).await;
    let crashed: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            ClusterEvent::Exited { index: 0, pid, .. } => Some(*pid),
            _ => None,
        })
        .collect();
    assert_eq!(crashed.len(), 1, "the replacement exited once: {events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClusterEvent::Restarting { index: 0, .. })),
        "the aborted reload keeps the old worker: no restart of index 0: {events:?}"
    );
    assert_eq!(workers, before, "the old workers keep serving");
    shut_down(cluster).await;
}

#[tokio::test]
async fn a_worker_going_fatal_while_its_reload_replacement_starts_is_not_replaced_twice() {
    // The replacement says ready only once the test opens its gate, and the test opens
    // it only once the primary handled the old worker's fatal report: the report comes
    // while the replacement starts, whatever the machine's speed.
    let gate_dir = tempfile::tempdir().expect("tempdir");
    let gate_path = gate_dir.path().join("gate");
    let gate = tokio::net::UnixListener::bind(&gate_path).expect("bind the gate");
    let fatal_on_reload: Arc<std::sync::Mutex<Option<u32>>> = Arc::default();
    let factory_fatal = fatal_on_reload.clone();
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut cluster = start_with(Mode::Shared, 2, move |index| {
        // The third start is the reload's replacement of index 0: it waits at the
        // gate, and the old worker of index 0 reports a fatal error now.
        if replaces_index_0(&started, index) {
            if let Some(pid) = factory_fatal.lock().expect("lock").take() {
                support::signal(pid, Signal::SIGUSR1);
            }
            let mut command = child_command(Role::ServeAfterGate);
            command.env(GATE, &gate_path);
            return command;
        }
        child_command(Role::Serve)
    })
    .await;
    let before = cluster.workers().await.expect("w");
    let old_pid = before.iter().find(|w| w.index == 0).expect("index 0").pid;
    *fatal_on_reload.lock().expect("lock") = Some(old_pid);
    let open_the_gate = async {
        // A fatal worker is listed as not ready: the primary handled its report.
        loop {
            let workers = cluster.workers().await.expect("w");
            let old = workers
                .iter()
                .find(|w| w.pid == old_pid)
                .expect("the old worker stays until its replacement is ready");
            if !old.ready {
                break;
            }
            tokio::task::yield_now().await;
        }
        let (mut waiting, _) = gate.accept().await.expect("the replacement at the gate");
        waiting.write_all(b"go").await.expect("open the gate");
    };
    let (reloaded, ()) = tokio::time::timeout(GUARD, async {
        tokio::join!(cluster.reload(), open_the_gate)
    })
    .await
    .expect("reload in time");
    reloaded.expect("reload succeeds");
    // Settle: the fatal worker gone, every start ready or gone.
    let (mut old_gone, mut fatal_seen) = (false, false);
    let mut starting = HashSet::new();
    while !old_gone || !starting.is_empty() {
        match next_event(&mut cluster).await {
            ClusterEvent::Starting { pid, .. } => {
                starting.insert(pid);
            }
            ClusterEvent::Ready { pid, .. } => {
                starting.remove(&pid);
            }
            ClusterEvent::Fatal { pid, .. } => fatal_seen |= pid == old_pid,
            ClusterEvent::Exited { pid, .. } => {
                starting.remove(&pid);
                old_gone |= pid == old_pid;
            }
            _ => {}
        }
    }
    assert!(fatal_seen, "the fatal report is an event");
    one_ready_worker_per_index(&cluster, "one worker per index after the reload").await;
    shut_down(cluster).await;
}

#[tokio::test]
async fn an_old_worker_going_fatal_after_the_reload_retired_it_is_not_replaced() {
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut cluster = start_with(Mode::Shared, 2, move |_| {
        // The first two workers report a fatal error once the reload retired them
        // (their replacements are ready and counted); the replacements serve.
        if started.fetch_add(1, Ordering::Relaxed) < 2 {
            child_command(Role::FatalWhenDrained)
        } else {
            child_command(Role::Serve)
        }
    })
    .await;
    let before = cluster.workers().await.expect("w");
    tokio::time::timeout(GUARD, cluster.reload())
        .await
        .expect("reload in time")
        .expect("reload succeeds");
    // The reload returns once each old worker is gone: its fatal report was read
    // before its exit, and this round trip comes after both were handled.
    let workers = one_ready_worker_per_index(
        &cluster,
        "one worker per index, no extra replacement for a retired worker",
    )
    .await;
    let events = queued_events(&mut cluster).await;
    assert!(
        workers
            .iter()
            .all(|w| !before.iter().any(|b| b.pid == w.pid)),
        "{workers:?}"
    );
    let starts = events
        .iter()
        .filter(|e| matches!(e, ClusterEvent::Starting { .. }))
        .count();
    assert_eq!(starts, 4, "two starts, two reload replacements: {events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClusterEvent::Restarting { .. })),
        "{events:?}"
    );
    shut_down(cluster).await;
}

async fn shutdown_releases_the_port(mode: Mode) {
    let cluster = start(mode, 2).await;
    let addr = cluster.local_addr();
    assert!(request(addr).await.is_ok(), "the cluster serves");
    tokio::time::timeout(GUARD, cluster.shutdown())
        .await
        .expect("shutdown in time");
    // No connection arrives after the shutdown: the port is free all the same, as soon
    // as `shutdown` returns.
    if let Err(e) = std::net::TcpListener::bind(addr) {
        panic!("{addr} is still bound after the cluster was shut down: {e}");
    }
}

#[tokio::test]
async fn shutdown_releases_the_port_shared() {
    shutdown_releases_the_port(Mode::Shared).await;
}

#[tokio::test]
async fn shutdown_releases_the_port_round_robin() {
    shutdown_releases_the_port(Mode::RoundRobin).await;
}

#[tokio::test]
async fn shutdown_releases_the_port_reuseport() {
    shutdown_releases_the_port(Mode::ReusePort).await;
}

#[tokio::test]
async fn each_worker_knows_its_index_from_the_api_and_both_variables() {
    let cluster = start(Mode::RoundRobin, 2).await;
    let mut seen = HashSet::new();
    tokio::time::timeout(GUARD, async {
        while seen.len() < 2 {
            let stream = TcpStream::connect(cluster.local_addr())
                .await
                .expect("connect");
            let (read, mut write) = stream.into_split();
            write.write_all(b"index\n").await.expect("send");
            let line = BufReader::new(read)
                .lines()
                .next_line()
                .await
                .expect("read")
                .expect("an answer");
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 3, "{line:?}");
            assert!(
                fields.iter().all(|f| *f == fields[0]),
                "Worker::index(), IPC_WORKER_INDEX and NODE_APP_INSTANCE agree: {line:?}"
            );
            seen.insert(fields[0].parse::<usize>().expect("an index"));
        }
    })
    .await
    .expect("both workers answered");
    assert_eq!(seen, HashSet::from([0, 1]));
    cluster.shutdown().await;
}

#[test]
fn a_cluster_has_one_worker_per_cpu_by_default() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(ClusterConfig::default().workers, cpus);
}
