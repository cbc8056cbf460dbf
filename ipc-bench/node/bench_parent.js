'use strict';
// ipc-bench's Node.js side: the parent forks bench_child.js with child_process.fork()
// and measures one cell over Node's IPC channel, then prints one JSON line on stdout:
//   {"node":"v20.x","samples_ns":[...]}        for mode "rtt" (one per timed round trip)
//   {"node":"v20.x","batches_ns":[...]}        for mode "stream" (one per timed batch)
//   {"error":"..."}                            on failure (exit status 1)
//
// usage: node bench_parent.js '{"mode":"rtt","size":64,"warmup":100,"count":1000,"serialization":"json"}'
//        node bench_parent.js '{"mode":"stream","size":64,"phases":[100,200,200],"serialization":"json"}'
// Streaming sends phases[0] warm-up messages, then each later phase as a timed batch;
// the child acknowledges the end of every phase.
//
// With "rust_child": {"exe": PATH, "env": {...}} in the config (the
// `node-parent-rust-child` row), the child is that Rust executable instead, spawned
// with an 'ipc' stdio entry (what fork() does; NODE_CHANNEL_FD=3) and the given
// environment added to this process's, with 'json' serialization; it serves the same
// protocol (echo, or acknowledge every phase) and exits when the channel closes.
//
// The payload is a string of size-2 'x's, i.e. exactly `size` bytes as a JSON string,
// the same bytes the Rust runners send. Streaming keeps at most WINDOW messages whose
// send callback has not fired yet, so a fast parent cannot queue without bound.

const { fork, spawn } = require('child_process');
const path = require('path');

const WINDOW = 1024;

function main() {
  const cfg = JSON.parse(process.argv[2]);
  const payload = 'x'.repeat(Math.max(cfg.size - 2, 0));
  const phases = cfg.mode === 'stream' ? cfg.phases : null;
  const child = cfg.rust_child ? spawnRust(cfg.rust_child) : forkNode(cfg, phases);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.on('error', fail);
  const run = cfg.mode === 'rtt' ? roundTrips(child, payload, cfg) : stream(child, payload, cfg);
  run
    .then(async (result) => {
      child.disconnect();
      const { code, signal } = await exited;
      if (code !== 0) throw new Error(`the node child exited with ${code ?? signal}`);
      process.stdout.write(JSON.stringify({ node: process.version, ...result }) + '\n');
    })
    .catch(fail);
}

// The Node child: bench_child.js, forked with the configured serialization.
function forkNode(cfg, phases) {
  return fork(path.join(__dirname, 'bench_child.js'), [JSON.stringify({ phases })], {
    serialization: cfg.serialization,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
}

// The Rust child: the bench binary in its child role, over Node's channel on fd 3.
function spawnRust(rust) {
  const env = { ...process.env, ...rust.env };
  delete env.IPC_ENDPOINT;
  return spawn(rust.exe, [], {
    env,
    serialization: 'json',
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
}

function fail(err) {
  process.stdout.write(JSON.stringify({ error: String(err && err.stack ? err.stack : err) }) + '\n');
  process.exit(1);
}

function roundTrips(child, payload, cfg) {
  const total = cfg.warmup + cfg.count;
  const samples = new Array(cfg.count);
  return new Promise((resolve) => {
    let i = 0;
    let t0 = 0n;
    child.on('message', (msg) => {
      const t = process.hrtime.bigint();
      if (msg.length !== payload.length) fail(new Error('the node child answered with other bytes'));
      if (i >= cfg.warmup) samples[i - cfg.warmup] = Number(t - t0);
      i += 1;
      if (i === total) {
        child.removeAllListeners('message');
        resolve({ samples_ns: samples });
        return;
      }
      t0 = process.hrtime.bigint();
      child.send(payload);
    });
    t0 = process.hrtime.bigint();
    child.send(payload);
  });
}

// Send n messages with at most WINDOW unconfirmed, resolve on the child's ack.
function phase(child, payload, n) {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let confirmed = 0;
    child.once('message', () => resolve());
    const onSent = (err) => {
      if (err) {
        reject(err);
        return;
      }
      confirmed += 1;
      pump();
    };
    function pump() {
      while (sent < n && sent - confirmed < WINDOW) {
        sent += 1;
        child.send(payload, onSent);
      }
    }
    pump();
  });
}

async function stream(child, payload, cfg) {
  await phase(child, payload, cfg.phases[0]);
  const batches = [];
  for (const n of cfg.phases.slice(1)) {
    const t0 = process.hrtime.bigint();
    await phase(child, payload, n);
    batches.push(Number(process.hrtime.bigint() - t0));
  }
  return { batches_ns: batches };
}

main();
