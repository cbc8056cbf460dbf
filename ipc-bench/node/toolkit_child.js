'use strict';
// ipc-bench's Node.js child of a Rust parent (the `rust-parent-node-child` row): the
// Rust bench starts `node toolkit_child.js` through the toolkit's `node` transport and
// measures it over its `Channel`. It serves the same job as the bench's Rust child
// role, read from IPC_BENCH_JOB:
//   echo            send every message back
//   sink:W,N,...    count W messages, send "ok", count N, send "ok", ...
// Exits when the parent closes the channel ('disconnect').

const job = process.env.IPC_BENCH_JOB || '';

if (job === 'echo') {
  process.on('message', (msg) => process.send(msg));
} else if (job.startsWith('sink:')) {
  const phases = job.slice('sink:'.length).split(',').map(Number);
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
} else {
  process.stderr.write(`toolkit_child.js: IPC_BENCH_JOB=${JSON.stringify(job)}: expected echo or sink:N,...\n`);
  process.exit(2);
}
process.on('disconnect', () => process.exit(0));
