//! The master/agent/worker messenger with real processes: this test binary
//! re-executed as the agent and the workers. Each process reports what it receives to
//! the primary; a `sync` broadcast after each case tells when everything before it
//! has arrived (each process's messages stay in order).

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ipc_cluster::messenger::{Envelope, To};
use ipc_cluster::{Cluster, ClusterConfig, ClusterEvent, Config, Error, Worker};
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
        /// A worker: reports what it gets; `ask-agent` makes it call the agent;
        /// `exit-now` makes it send 100 messages and exit at once.
        Member,
        /// An agent that crashes at start.
        CrashingAgent,
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
    let me = Arc::new(Worker::connect().await.expect("connect"));
    me.ready().await.expect("ready");
    if role == Role::Agent {
        let watcher = me.clone();
        tokio::spawn(async move {
            loop {
                let members = watcher.members_changed().await;
                let _ = watcher
                    .send(To::Primary, "members", json!(members.workers))
                    .await;
            }
        });
    }
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
            "exit-now" => {
                for n in 0..100 {
                    me.send(To::Primary, "last-words", json!(n))
                        .await
                        .expect("send");
                }
                if let Ok(me) = Arc::try_unwrap(me) {
                    let _ = me.close().await;
                }
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

#[tokio::test]
async fn membership_changes_reach_the_agent_and_a_dead_agent_is_restarted() {
    let mut cluster = start().await;
    let victim = cluster.workers().await.expect("w")[0].pid;
    support::signal(victim, Signal::SIGKILL);
    // The agent hears the worker leave, then its replacement join.
    let (mut left, mut rejoined) = (false, false);
    while !(left && rejoined) {
        let msg = next_message(&mut cluster).await;
        if msg.action == "members" {
            let pids: Vec<u32> = serde_json::from_value(msg.data).expect("pids");
            if !pids.contains(&victim) {
                left = true;
                rejoined = left && pids.len() == 2;
            }
        }
    }
    let agent = cluster.agent().await.expect("agent").expect("an agent");
    support::signal(agent, Signal::SIGKILL);
    let mut restarting = None;
    loop {
        match next_event(&mut cluster).await {
            ClusterEvent::AgentRestarting { delay } => restarting = Some(delay),
            ClusterEvent::AgentReady { pid } => {
                assert_ne!(pid, agent);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(restarting, Some(Duration::from_millis(50)));
    shut_down(cluster).await;
}

#[tokio::test]
async fn an_agent_failing_at_start_up_fails_the_cluster_fast() {
    let started = tokio::time::timeout(
        GUARD,
        Cluster::start_with_agent(
            ClusterConfig::builder().workers(1).build(),
            || child_command(Role::CrashingAgent),
            |_| child_command(Role::Member),
        ),
    )
    .await
    .expect("fails in time");
    match started {
        Err(Error::AgentFailed(why)) => assert!(why.contains("exit code 3"), "{why}"),
        other => panic!("expected AgentFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn messages_sent_just_before_a_worker_exits_still_arrive() {
    let mut cluster = start().await;
    let worker = cluster.workers().await.expect("w")[0].pid;
    cluster
        .send(To::Pid(worker), "exit-now", json!(null))
        .expect("send");
    let mut next = 0;
    while next < 100 {
        let msg = next_message(&mut cluster).await;
        if msg.action == "last-words" {
            assert_eq!(msg.from, worker);
            assert_eq!(msg.data, json!(next), "in order, none lost");
            next += 1;
        }
    }
    shut_down(cluster).await;
}
