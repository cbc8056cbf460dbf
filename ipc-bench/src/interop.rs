//! Rust <-> Node rows: the toolkit's `node` transport with a real Node.js process on
//! the other end, in both directions.
//!
//! - `rust-parent-node-child`: this process starts `node toolkit_child.js` through
//!   `ipc::node::NodeTransport` and measures through the toolkit `Channel`, exactly as
//!   the toolkit rows do ([`toolkit::drive`]); the script serves the job from
//!   `IPC_BENCH_JOB` like the Rust child role.
//! - `node-parent-rust-child`: `node bench_parent.js` spawns this binary in its
//!   toolkit child role over Node's channel (`NODE_CHANNEL_FD=3`, found by
//!   `ipc::connect_from_env()`) and reports its own timings, as for `node-json`.
//!
//! Both are compared with `raw-socketpair` (Node's channel is a socketpair) and are
//! skipped with the reason when `node` cannot be run.

use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::cli::Flavor;
use crate::node::{Node, TOOLKIT_CHILD};
use crate::pin::PinGuard;
use crate::roles::{child_env, job_for, Role, JOB_ENV};
use crate::stats::Measurement;
use crate::toolkit;
use crate::workload::Cell;

/// Which side is Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interop {
    /// The Rust bench parent, a Node child.
    RustParentNodeChild,
    /// A Node parent, the Rust bench binary as its child.
    NodeParentRustChild,
}

impl Interop {
    /// Both, in report order.
    pub(crate) const ALL: [Interop; 2] =
        [Interop::RustParentNodeChild, Interop::NodeParentRustChild];

    /// The runner name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Interop::RustParentNodeChild => "rust-parent-node-child",
            Interop::NodeParentRustChild => "node-parent-rust-child",
        }
    }

    /// The note shown with the results.
    pub(crate) fn note(self) -> &'static str {
        match self {
            Interop::RustParentNodeChild => {
                "ipc::node::NodeTransport to `node toolkit_child.js`; Node's channel is a \
                 socketpair: compared with raw-socketpair"
            }
            Interop::NodeParentRustChild => {
                "bench_parent.js spawns the Rust child role (ipc::connect_from_env); timed \
                 by Node; Node's channel is a socketpair: compared with raw-socketpair"
            }
        }
    }
}

/// The Rust parent: pin if the cell is pinned (the Node child inherits it), start
/// `node toolkit_child.js` over the `node` transport and drive it.
pub(crate) async fn rust_parent_node_child(
    node: &Node,
    cell: &Cell,
    cpu: usize,
) -> Result<Measurement> {
    let transport = ipc::registry().get("node")?;
    let _guard = cell
        .workload
        .pinned()
        .then_some(cpu)
        .map(PinGuard::new)
        .transpose()?;
    let mut cmd = Command::new(node.exe());
    cmd.arg(node.script(TOOLKIT_CHILD))
        .env(JOB_ENV, job_for(cell).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    toolkit::drive(transport.as_ref(), cmd, cell, "node (a Node child)").await
}

/// The Node parent: `bench_parent.js` spawns this binary as a toolkit child with the
/// `flavor` runtime; Node pins itself (and so the child) from the caller's affinity.
pub(crate) fn node_parent_rust_child(
    node: &Node,
    cell: &Cell,
    cpu: usize,
    flavor: Flavor,
) -> Result<Measurement> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let exe = exe
        .to_str()
        .context(format!("this executable's path {exe:?} is not UTF-8"))?
        .to_string();
    let pin = cell.workload.pinned().then_some(cpu);
    let env: serde_json::Map<String, serde_json::Value> =
        child_env(Role::Toolkit, &job_for(cell), pin, flavor)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
    let rust_child = serde_json::json!({ "exe": exe, "env": env });
    node.run_parent(cell, cpu, "json", Some(rust_child))
}
