// A Node.js rpc peer for tests/node.rs: speaks the toolkit's JSON rpc envelope
// (docs/PROTOCOL.md, section 6) over Node's fork() channel.
//
//   node rpc_peer.js serve   answer {op:'add',a,b} with a+b, anything else with an error
//   node rpc_peer.js call    call the parent: {op:'mul',a:6,b:7} must give 42 and
//                            {op:'nope'} an error; exit 0 if so, 1 otherwise
'use strict';

const mode = process.argv[2];

function reply(id, kind, body) {
  process.send({ $rpc: { id, kind }, body });
}

if (mode === 'serve') {
  process.on('message', (m) => {
    const rpc = m && m.$rpc;
    if (!rpc || rpc.kind !== 'request') return;
    const req = m.body;
    if (req && req.op === 'add') reply(rpc.id, 'response', req.a + req.b);
    else reply(rpc.id, 'error', `unknown op ${JSON.stringify(req && req.op)}`);
  });
} else if (mode === 'call') {
  const pending = new Map();
  let next = 1;
  const call = (body) =>
    new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      process.send({ $rpc: { id, kind: 'request' }, body });
    });
  process.on('message', (m) => {
    const rpc = m && m.$rpc;
    const waiter = rpc && pending.get(rpc.id);
    if (!waiter) return;
    pending.delete(rpc.id);
    if (rpc.kind === 'response') waiter.resolve(m.body);
    else waiter.reject(new Error(m.body));
  });
  (async () => {
    const product = await call({ op: 'mul', a: 6, b: 7 });
    if (product !== 42) throw new Error(`mul gave ${JSON.stringify(product)}`);
    let refused = null;
    try {
      await call({ op: 'nope' });
    } catch (e) {
      refused = e.message;
    }
    if (!refused || !refused.includes('unknown op')) throw new Error(`nope gave ${refused}`);
    process.disconnect();
  })().catch((e) => {
    console.error(`rpc_peer: ${e.message}`);
    process.exitCode = 1;
    process.disconnect();
  });
} else {
  console.error('usage: rpc_peer.js serve|call');
  process.exit(2);
}
