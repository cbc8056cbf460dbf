// child.js: a Node.js child for the Rust example `node_parent` (examples/node_parent.rs),
// which starts it with ipc::node::NodeTransport, as child_process.fork() would.
//
//   cargo run --example node_parent
//
// It says 'ready', answers {id, op: 'add', a, b} with {id, result}, echoes anything
// else, and exits when the Rust parent closes the channel ('disconnect').
'use strict';

if (!process.send) {
  console.error('child.js must be started with an IPC channel: cargo run --example node_parent');
  process.exit(2);
}

process.on('message', (m) => {
  if (m && m.op === 'add') {
    process.send({ id: m.id, result: m.a + m.b });
  } else {
    process.send(m);
  }
});

process.send('ready');
