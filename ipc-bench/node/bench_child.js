'use strict';
// ipc-bench's Node.js child (forked by bench_parent.js): with no phases, send every
// message back; with phases [W, N], count W messages, send "ok", count N, send "ok".
// Exits when the parent disconnects.

const { phases } = JSON.parse(process.argv[2]);

if (phases === null) {
  process.on('message', (msg) => process.send(msg));
} else {
  let phase = 0;
  let seen = 0;
  const ackIfDone = () => {
    while (phase < phases.length && seen === phases[phase]) {
      process.send('ok');
      phase += 1;
      seen = 0;
    }
  };
  process.on('message', () => {
    seen += 1;
    ackIfDone();
  });
  ackIfDone();
}
process.on('disconnect', () => process.exit(0));
