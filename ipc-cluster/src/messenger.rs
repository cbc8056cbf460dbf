//! Messages between the processes of a cluster (egg-cluster's messenger): each is an
//! [`Envelope`] `{from, to, action, data}` that the primary routes: to the primary,
//! the agent, every worker, everyone but the sender (broadcast), one pid, or one
//! random worker. A request carries an id and its response comes back through the
//! primary to the requester ([`Worker::request`](crate::Worker::request),
//! [`Worker::respond`](crate::Worker::respond)). Every process learns when the
//! membership changes ([`Worker::members_changed`](crate::Worker::members_changed)).
//! The agent is optional ([`Cluster::start_with_agent`](crate::Cluster::start_with_agent)),
//! started before the workers, and started again 1 s after it dies once the cluster
//! runs; if it fails during start-up the cluster does not start.
//!
//! ```no_run
//! # async fn demo(worker: ipc_cluster::Worker) -> ipc_cluster::Result<()> {
//! use ipc_cluster::messenger::To;
//! use serde_json::json;
//! worker.send(To::Workers, "cache-cleared", json!({"key": "users"})).await?;
//! let config = worker.request(To::Agent, "get-config", json!(null)).await?;
//! while let Some(msg) = worker.recv().await {
//!     if msg.request.is_some() {
//!         worker.respond(&msg, json!("done")).await?;
//!     }
//! }
//! # let _ = config; Ok(()) }
//! ```

use serde::{Deserialize, Serialize};

/// Where a message goes.
///
/// ```
/// use ipc_cluster::messenger::To;
/// let to: To = serde_json::from_str(r#"{"pid":42}"#).unwrap();
/// assert_eq!(to, To::Pid(42));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum To {
    /// The primary itself.
    Primary,
    /// The agent.
    Agent,
    /// Every worker.
    Workers,
    /// Every process but the sender: the agent and every worker.
    Broadcast,
    /// One process, by pid.
    Pid(u32),
    /// One worker, picked at random.
    RandomWorker,
}

/// One message: who sent it, where it goes, what it is about, and its data.
///
/// ```
/// use ipc_cluster::messenger::{Envelope, To};
/// let msg = Envelope::new(To::Agent, "refresh", serde_json::json!({"key": "users"}));
/// assert_eq!(msg.action, "refresh");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender's pid (0 for the primary); filled in by the primary.
    #[serde(default)]
    pub from: u32,
    /// Where it goes.
    pub to: To,
    /// What it is about.
    pub action: String,
    /// Its data.
    #[serde(default)]
    pub data: serde_json::Value,
    /// Set on a request: the id its response will carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<u64>,
    /// Set on a response: the id of the request it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<u64>,
}

impl Envelope {
    /// A message to `to`.
    pub fn new(to: To, action: impl Into<String>, data: serde_json::Value) -> Self {
        Envelope {
            from: 0,
            to,
            action: action.into(),
            data,
            request: None,
            response: None,
        }
    }
}
