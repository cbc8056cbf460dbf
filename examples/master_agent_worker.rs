//! master_agent_worker: egg-cluster's three roles. The master starts an agent, then
//! two workers; messages go through the master: a broadcast, one to the agent, one to
//! a single worker, and a request from a worker to the agent with its response.
//!
//! ```text
//! cargo run --example master_agent_worker
//! ```

use std::sync::Arc;

use ipc::cluster::messenger::To;
use ipc::cluster::{Cluster, ClusterConfig, ClusterEvent, Worker};
use serde_json::json;

#[tokio::main]
async fn main() -> ipc::cluster::Result<()> {
    if ipc::role() == ipc::Role::Child {
        return member().await;
    }
    let exe = std::env::current_exe()?;
    let agent_exe = exe.clone();
    let config = ClusterConfig::builder().workers(2).build();
    let mut cluster = Cluster::start_with_agent(
        config,
        move || std::process::Command::new(&agent_exe),
        move |_| std::process::Command::new(&exe),
    )
    .await?;
    let agent = cluster.agent().await?.unwrap_or(0);
    let workers: Vec<u32> = cluster.workers().await?.iter().map(|w| w.pid).collect();
    println!(
        "master {}: agent {agent}, workers {workers:?}",
        std::process::id()
    );

    cluster.send(To::Broadcast, "hello-everyone", json!("from the master"))?;
    cluster.send(To::Agent, "agent-only", json!(1))?;
    cluster.send(To::Pid(workers[0]), "worker-only", json!(2))?;
    cluster.send(To::Pid(workers[1]), "ask-agent", json!(null))?;
    // 3 broadcast reports + 1 agent + 1 worker + 1 answer.
    let mut expected = 6;
    while expected > 0 {
        match cluster.next_event().await {
            Some(ClusterEvent::Message(msg)) => {
                println!(
                    "master got {:?} from {}: {}",
                    msg.action, msg.from, msg.data
                );
                expected -= 1;
            }
            Some(_) => {}
            None => break,
        }
    }
    cluster.shutdown().await;
    println!("done");
    Ok(())
}

/// The agent and the workers: report what arrives; a worker asked to call the agent
/// does, and reports the answer; the agent answers requests.
async fn member() -> ipc::cluster::Result<()> {
    let me = Arc::new(Worker::connect().await?);
    me.ready().await?;
    let role = if ipc::cluster::worker::is_agent() {
        "agent"
    } else {
        "worker"
    };
    loop {
        let msg = tokio::select! {
            msg = me.recv() => msg,
            _ = me.stopping() => None,
        };
        let Some(msg) = msg else { break };
        if msg.request.is_some() {
            me.respond(
                &msg,
                json!(format!("{role} {} answers", std::process::id())),
            )
            .await?;
        } else if msg.action == "ask-agent" {
            let answer = me.request(To::Agent, "what-time", json!(null)).await?;
            me.send(To::Primary, "agent-answered", answer).await?;
        } else {
            let report = format!("{role} {} got {}", std::process::id(), msg.action);
            me.send(To::Primary, "report", json!(report)).await?;
        }
    }
    if let Ok(me) = Arc::try_unwrap(me) {
        me.close().await?;
    }
    Ok(())
}
