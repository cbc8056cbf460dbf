// parent.js: a Node.js parent for the Rust example `node_child` (examples/node_child.rs),
// over Node's own child_process IPC channel.
//
//   cargo build --example node_child
//   node examples/node/parent.js target/debug/examples/node_child           # fork() with execPath
//   node examples/node/parent.js --spawn target/debug/examples/node_child   # spawn() with 'ipc' stdio
//
// Without a path it looks for target/debug/examples/node_child next to this file's
// repository. It waits for the child's 'ready', does request/response round trips and
// a burst of 10 000 messages checked in order, disconnects, and exits 0 when the Rust
// child exits 0 (1 with a message on any mismatch).
'use strict';

const { fork, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const args = process.argv.slice(2);
const useSpawn = args[0] === '--spawn';
if (useSpawn) args.shift();
const bin = path.resolve(
  args[0] || path.join(__dirname, '..', '..', 'target', 'debug', 'examples', 'node_child'),
);
if (!fs.existsSync(bin)) {
  console.error(`parent.js: ${bin} does not exist; run \`cargo build --example node_child\` first`);
  process.exit(1);
}

// fork(): Node runs `execPath ...execArgv modulePath ...args`, so the Rust binary gets
// the "module path" as argv[1]; execArgv: [] keeps Node's own flags out of its argv.
// spawn() with an 'ipc' entry in stdio sets up the same channel (NODE_CHANNEL_FD=3).
const child = useSpawn
  ? spawn(bin, [], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] })
  : fork(bin, [], { execPath: bin, execArgv: [] });
const how = useSpawn ? "spawn(bin, [], { stdio: [.., 'ipc'] })" : 'fork(bin, [], { execPath: bin })';

function fail(why) {
  console.error(`parent.js: FAIL: ${why}`);
  child.kill();
  process.exit(1);
}
const timer = setTimeout(() => fail('no answer within 60 s'), 60000);
child.on('error', (e) => fail(`cannot start ${bin}: ${e.message}`));

// Messages are taken one at a time, in order, by `next()`.
const inbox = [];
let waiting = null;
child.on('message', (m) => {
  if (waiting) {
    const resolve = waiting;
    waiting = null;
    resolve(m);
  } else {
    inbox.push(m);
  }
});
const next = () =>
  new Promise((resolve) => (inbox.length ? resolve(inbox.shift()) : (waiting = resolve)));

async function main() {
  const ready = await next();
  if (ready !== 'ready') fail(`expected 'ready' first, got ${JSON.stringify(ready)}`);

  // Request/response: three requests in flight at once, answers matched by id.
  const requests = [[1, 2], [40, 2], [-5, 5]];
  requests.forEach(([a, b], i) => child.send({ id: i + 1, op: 'add', a, b }));
  for (let n = 0; n < requests.length; n++) {
    const reply = await next();
    const [a, b] = requests[reply.id - 1] || [];
    if (reply.result !== a + b) fail(`request ${reply.id}: got ${JSON.stringify(reply)}`);
  }

  // A burst of 10 000 messages, echoed back in order.
  const N = 10000;
  for (let seq = 0; seq < N; seq++) child.send({ seq, text: `message ${seq}` });
  for (let seq = 0; seq < N; seq++) {
    const m = await next();
    if (!m || m.seq !== seq || m.text !== `message ${seq}`) {
      fail(`burst: expected message ${seq}, got ${JSON.stringify(m)}`);
    }
  }

  child.on('exit', (code, signal) => {
    clearTimeout(timer);
    if (code !== 0) fail(`the Rust child exited with code ${code}, signal ${signal}`);
    console.log(
      `parent.js: ${how}: ${requests.length} requests answered, ${N} messages echoed in order, ` +
        'Rust child exited 0',
    );
  });
  child.disconnect(); // the Rust child's recv() returns None
}

main().catch((e) => fail(e.stack));
