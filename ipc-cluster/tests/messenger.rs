//! The master/agent/worker messenger with real processes: this test binary
//! re-executed as the agent and the workers. Each process reports what it receives to
//! the primary; a `sync` broadcast after each case tells when everything before it
//! has arrived (each process's messages stay in order).

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ipc_cluster::messenger::{Envelope, To};
use ipc_cluster::{
    Cluster, ClusterConfig, ClusterEvent, Config, Error, ExitCause, ExitStatus, Worker,
};
use ipc_core::testkit::{child_command, role};
use nix::sys::signal::Signal;
use serde_json::json;
use support::{next_event, shut_down, worker_pids, GUARD};

ipc_core::child_roles! {
    /// What a re-executed copy of this test binary does.
    enum Role {
        /// The agent: answers `ping` requests, reports everything else and every
        /// membership change to the primary.
        Agent,
        /// A worker: reports what it gets and every membership change; `ask-agent`
        /// makes it call the agent; `exit-now` makes it send 100 messages and exit.
        Member,
        /// An agent that crashes at start.
        CrashingAgent,
        /// An agent that connects and never says ready.
        SilentAgent,
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The children's entry point: does nothing in the parent's test run.
#[test]
fn child() {
    if let Some(role) = role::<Role>() {
        support::exit_with(run_child(role));
    }
}

async fn run_child(role: Role) -> i32 {
    if role == Role::CrashingAgent {
        return 3;
    }
    if role == Role::SilentAgent {
        let _me = Worker::connect().await.expect("connect");
        return std::future::pending::<i32>().await;
    }
    let me = Arc::new(Worker::connect().await.expect("connect"));
    me.ready().await.expect("ready");
    // Every process reports each membership change it learns of.
    let watcher = me.clone();
    let watcher_task = AbortOnDrop(tokio::spawn(async move {
        loop {
            let members = watcher.members_changed().await;
            let report = json!({"workers": members.workers, "agent": members.agent});
            if watcher.send(To::Primary, "members", report).await.is_err() {
                return;
            }
        }
    }));
    let whoami = if role == Role::Agent {
        "agent"
    } else {
        "worker"
    };
    loop {
        // Serve messages until the primary asks this process to stop.
        let msg = tokio::select! {
            msg = me.recv() => msg,
            _ = me.stopping() => None,
        };
        let Some(msg) = msg else { break };
        match msg.action.as_str() {
            "ping" if msg.request.is_some() => {
                me.respond(&msg, json!({"pong": std::process::id()}))
                    .await
                    .expect("respond");
            }
            "ask-agent" => {
                let answer = me
                    .request(To::Agent, "ping", json!(null))
                    .await
                    .expect("request");
                me.send(To::Primary, "answer", answer).await.expect("send");
            }
            "exit-now" | "exit-abruptly" => {
                for n in 0..100 {
                    me.send(To::Primary, "last-words", json!(n))
                        .await
                        .expect("send");
                }
                if msg.action == "exit-abruptly" {
                    // No goodbye on the channel: the process just ends.
                    std::process::exit(0);
                }
                // The watcher holds a handle too: stop it, then close the channel.
                let mut watcher_task = watcher_task;
                watcher_task.0.abort();
                let _ = (&mut watcher_task.0).await;
                let me = Arc::try_unwrap(me).expect("the only handle left");
                me.close().await.expect("close");
                return 0;
            }
            action => {
                let report = json!({"who": whoami, "action": action, "from": msg.from});
                me.send(To::Primary, "got", report).await.expect("send");
            }
        }
    }
    0
}

async fn start() -> Cluster {
    let config = ClusterConfig::builder()
        .workers(2)
        .agent_restart_delay(Duration::from_millis(50))
        .supervise(
            Config::builder()
                .listen_timeout(Duration::from_secs(20))
                .build(),
        )
        .build();
    tokio::time::timeout(
        GUARD,
        Cluster::start_with_agent(
            config,
            || child_command(Role::Agent),
            |_| child_command(Role::Member),
        ),
    )
    .await
    .expect("start in time")
    .expect("start")
}

async fn next_message(cluster: &mut Cluster) -> Envelope {
    loop {
        if let ClusterEvent::Message(msg) = next_event(cluster).await {
            return msg;
        }
    }
}

/// Send `to`/`action` from the primary, then a `sync` to everyone; return who got
/// the action (pid -> count) once the three syncs are back.
async fn deliveries(cluster: &mut Cluster, to: To, action: &str) -> HashMap<u32, usize> {
    cluster.send(to, action, json!(null)).expect("send");
    cluster
        .send(To::Broadcast, "sync", json!(null))
        .expect("send");
    let mut got = HashMap::new();
    let mut syncs = 0;
    while syncs < 3 {
        let msg = next_message(cluster).await;
        if msg.action != "got" {
            continue;
        }
        match msg.data["action"].as_str() {
            Some("sync") => syncs += 1,
            Some(a) if a == action => *got.entry(msg.from).or_default() += 1,
            _ => {}
        }
    }
    got
}

#[tokio::test]
async fn each_kind_of_message_reaches_exactly_the_right_processes() {
    let mut cluster = start().await;
    assert!(
        matches!(
            next_event(&mut cluster).await,
            ClusterEvent::AgentReady { .. }
        ),
        "the agent is ready before any worker starts"
    );
    let agent = cluster.agent().await.expect("agent").expect("an agent");
    let workers: Vec<u32> = worker_pids(&cluster).await;
    let one = |pid: u32| HashMap::from([(pid, 1usize)]);
    let each = |pids: &[u32]| pids.iter().map(|p| (*p, 1usize)).collect::<HashMap<_, _>>();

    assert_eq!(
        deliveries(&mut cluster, To::Workers, "w").await,
        each(&workers)
    );
    assert_eq!(deliveries(&mut cluster, To::Agent, "a").await, one(agent));
    assert_eq!(
        deliveries(&mut cluster, To::Pid(workers[1]), "p").await,
        one(workers[1])
    );
    let mut all = workers.clone();
    all.push(agent);
    assert_eq!(
        deliveries(&mut cluster, To::Broadcast, "b").await,
        each(&all)
    );
    let random = deliveries(&mut cluster, To::RandomWorker, "r").await;
    assert_eq!(random.values().sum::<usize>(), 1, "{random:?}");
    assert!(workers.contains(random.keys().next().expect("one")));

    // Request/response across processes: a worker asks the agent, through the primary.
    cluster
        .send(To::Pid(workers[0]), "ask-agent", json!(null))
        .expect("send");
    loop {
        let msg = next_message(&mut cluster).await;
        if msg.action == "answer" {
            assert_eq!(msg.from, workers[0]);
            assert_eq!(msg.data["pong"], json!(agent));
            break;
        }
    }
    shut_down(cluster).await;
}

/// A `members` report's worker pids, as a set, and its agent.
fn reported(data: &serde_json::Value) -> (HashSet<u32>, Option<u32>) {
    let workers: Vec<u32> = serde_json::from_value(data["workers"].clone()).expect("pids");
    let agent = serde_json::from_value(data["agent"].clone()).expect("agent");
    (workers.into_iter().collect(), agent)
}

/// Record a `members` report in `last` (sender -> its last report), checking that
/// the sender was woken by a change: no report repeats its sender's previous one.
fn record_members(last: &mut HashMap<u32, serde_json::Value>, msg: Envelope) {
    let previous = last.insert(msg.from, msg.data.clone());
    assert_ne!(
        previous.as_ref(),
        Some(&msg.data),
        "process {} was told of a membership change that changed nothing",
        msg.from
    );
}

#[tokio::test]
async fn every_process_learns_when_membership_changes() {
    let mut cluster = start().await;
    let agent = cluster.agent().await.expect("agent").expect("an agent");
    let workers = worker_pids(&cluster).await;
    let (victim, survivor) = (workers[0], workers[1]);
    support::signal(victim, Signal::SIGKILL);
    // The agent, the surviving worker and the replacement all end up knowing the
    // workers are the survivor and the replacement.
    let mut last = HashMap::new();
    let mut replacement = None;
    let everyone_knows = |last: &HashMap<u32, serde_json::Value>, new: Option<u32>| {
        let Some(new) = new else { return false };
        let now = (HashSet::from([survivor, new]), Some(agent));
        [agent, survivor, new]
            .iter()
            .all(|p| last.get(p).map(reported).as_ref() == Some(&now))
    };
    while !everyone_knows(&last, replacement) {
        match next_event(&mut cluster).await {
            ClusterEvent::Ready { pid, .. } if pid != victim && pid != survivor => {
                replacement = Some(pid)
            }
            ClusterEvent::Message(msg) if msg.action == "members" => record_members(&mut last, msg),
            _ => {}
        }
    }
    shut_down(cluster).await;
}

#[tokio::test]
async fn a_dead_agent_is_restarted_after_the_delay_and_everyone_learns_its_pid() {
    assert_eq!(
        ClusterConfig::default().agent_restart_delay,
        Duration::from_secs(1),
        "egg-cluster's delay by default"
    );
    let mut cluster = start().await;
    let agent = cluster.agent().await.expect("agent").expect("an agent");
    let workers = worker_pids(&cluster).await;
    support::signal(agent, Signal::SIGKILL);
    let mut agent_events = Vec::new();
    let mut last = HashMap::new();
    let new_agent = loop {
        match next_event(&mut cluster).await {
            ClusterEvent::Message(msg) if msg.action == "members" => record_members(&mut last, msg),
            // The first agent's, from the start.
            ClusterEvent::AgentReady { pid } if pid == agent => {}
            event @ (ClusterEvent::AgentExited { .. }
            | ClusterEvent::AgentRestarting { .. }
            | ClusterEvent::AgentReady { .. }) => {
                let ready = match event {
                    ClusterEvent::AgentReady { pid } => Some(pid),
                    _ => None,
                };
                agent_events.push(event);
                if let Some(pid) = ready {
                    break pid;
                }
            }
            _ => {}
        }
    };
    assert_eq!(
        agent_events,
        [
            ClusterEvent::AgentExited {
                pid: agent,
                status: ExitStatus::Signal(9),
                cause: ExitCause::Crashed
            },
            ClusterEvent::AgentRestarting {
                delay: Duration::from_millis(50)
            },
            ClusterEvent::AgentReady { pid: new_agent },
        ],
        "the agent's exit, its restart after the configured delay, then the new one"
    );
    assert_ne!(new_agent, agent);
    // Every worker learns the new agent's pid, and messages to the agent reach it.
    let knows = |last: &HashMap<u32, serde_json::Value>| {
        workers
            .iter()
            .all(|w| last.get(w).map(|d| reported(d).1) == Some(Some(new_agent)))
    };
    while !knows(&last) {
        if let ClusterEvent::Message(msg) = next_event(&mut cluster).await {
            if msg.action == "members" {
                record_members(&mut last, msg);
            }
        }
    }
    assert_eq!(
        deliveries(&mut cluster, To::Agent, "a").await,
        HashMap::from([(new_agent, 1)])
    );
    shut_down(cluster).await;
}

/// Start a cluster whose agent `agent` makes; counts the workers started.
async fn start_with_failing_agent(
    agent: Role,
    config: ClusterConfig,
) -> (ipc_cluster::Result<Cluster>, usize) {
    let workers_started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = workers_started.clone();
    let started = tokio::time::timeout(
        GUARD,
        Cluster::start_with_agent(
            config,
            move || child_command(agent),
            move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                child_command(Role::Member)
            },
        ),
    )
    .await
    .expect("fails in time");
    let workers = workers_started.load(std::sync::atomic::Ordering::Relaxed);
    (started, workers)
}

#[tokio::test]
async fn an_agent_failing_at_start_up_fails_the_cluster_fast() {
    let config = ClusterConfig::builder().workers(1).build();
    let (started, workers) = start_with_failing_agent(Role::CrashingAgent, config).await;
    match started {
        Err(e @ Error::AgentFailed(_)) => {
            let text = e.to_string();
            assert!(
                text.contains("agent failed during start-up")
                    && text.contains("exited before it was ready (exit code 3)")
                    && text.contains("the cluster did not start"),
                "a clear error: {text}"
            );
        }
        other => panic!("expected AgentFailed, got {other:?}"),
    }
    assert_eq!(workers, 0, "no worker is started after the agent failed");
}

#[tokio::test]
async fn an_agent_never_ready_at_start_up_fails_the_cluster_after_listen_timeout() {
    let config = ClusterConfig::builder()
        .workers(1)
        .supervise(
            Config::builder()
                .listen_timeout(Duration::from_millis(200))
                .kill_timeout(Duration::from_millis(200))
                .build(),
        )
        .build();
    let (started, workers) = start_with_failing_agent(Role::SilentAgent, config).await;
    match started {
        Err(e @ Error::AgentFailed(_)) => {
            let text = e.to_string();
            assert!(
                text.contains("did not report ready") && text.contains("listen_timeout"),
                "a clear error: {text}"
            );
        }
        other => panic!("expected AgentFailed, got {other:?}"),
    }
    assert_eq!(workers, 0, "no worker is started after the agent failed");
}

/// A worker sends 100 messages to the primary and exits at once (`how`: after
/// closing its channel, or abruptly): all arrive, in order, before its exit is reported.
async fn last_words_arrive_before_the_exit(how: &str) {
    let mut cluster = start().await;
    let worker = cluster.workers().await.expect("w")[0].pid;
    cluster
        .send(To::Pid(worker), how, json!(null))
        .expect("send");
    let mut next = 0;
    loop {
        match next_event(&mut cluster).await {
            ClusterEvent::Message(msg) if msg.action == "last-words" => {
                assert_eq!(msg.from, worker);
                assert_eq!(msg.data, json!(next), "{how}: in order, none lost");
                next += 1;
            }
            ClusterEvent::Exited { pid, status, .. } if pid == worker => {
                assert_eq!(
                    status,
                    ExitStatus::Code(0),
                    "{how}: the worker exits cleanly"
                );
                break;
            }
            _ => {}
        }
    }
    assert_eq!(next, 100, "{how}: every message arrived before the exit");
    shut_down(cluster).await;
}

#[tokio::test]
async fn messages_sent_just_before_a_worker_exits_still_arrive() {
    last_words_arrive_before_the_exit("exit-now").await;
}

#[tokio::test]
async fn messages_sent_just_before_a_worker_exits_abruptly_still_arrive() {
    last_words_arrive_before_the_exit("exit-abruptly").await;
}
