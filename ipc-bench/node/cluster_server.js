// The Node.js side of `ipc-bench --cluster`: Node's `cluster` running the same
// hello-world HTTP server as the Rust workers.
// usage: node cluster_server.js WORKERS PORT rr|shared
// Prints "listening PORT" once every worker listens; SIGTERM stops it.
'use strict';
const workers = parseInt(process.argv[2], 10);
const port = parseInt(process.argv[3], 10);
const mode = process.argv[4];
// Must be set before the cluster module is loaded for the policy to apply.
process.env.NODE_CLUSTER_SCHED_POLICY = mode === 'shared' ? 'none' : 'rr';
const cluster = require('node:cluster');
const http = require('node:http');

if (cluster.isPrimary) {
  let listening = 0;
  cluster.on('listening', () => {
    if (++listening === workers) console.log(`listening ${port}`);
  });
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const id in cluster.workers) cluster.workers[id].process.kill('SIGKILL');
    process.exit(0);
  });
} else {
  http
    .createServer((req, res) => res.end('hello world\n'))
    .listen(port, '127.0.0.1');
}
