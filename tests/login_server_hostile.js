// What a hostile client does to examples/login_server, over real sockets (node, no packages).
//   node login_server_hostile.js slowloris PORT N   N connections trickle header lines every
//        300 ms for 13 s; meanwhile an honest POST /logout is answered (within 3 s, on a
//        loaded machine), again and again; every trickler must be closed by the server at its
//        10 s whole-request deadline (between 9 and 13 s after its first byte: not refused at
//        once, not left open). Prints "honest A/B closed C/N"; exits 1 when not all held.
//   node login_server_hostile.js cap PORT N   N idle connections (the server's
//        --max-connections); one more is closed by the server without an answer (not left
//        hanging); once they go, a request is answered. Exits 1 when the cap did not hold.
'use strict';
const net = require('net');
const [mode, portText, nText] = process.argv.slice(2);
const port = Number(portText), n = Number(nText);

// Resolves with {status: the status line or '', closed: the server closed (not our timeout)}.
function honest() {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '', timedOut = false;
    const body = '{"token":"none"}';
    s.on('connect', () => s.write('POST /logout HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
                                  'Connection: close\r\nContent-Length: ' + body.length + '\r\n\r\n' + body));
    s.on('data', (d) => { got += d; });
    s.on('error', () => {});
    s.on('close', () => resolve({status: got.split('\r\n')[0] || '', closed: !timedOut}));
    s.setTimeout(5000, () => { timedOut = true; s.destroy(); });
  });
}

async function slowloris() {
  const crowd = [];
  let closed = 0;
  const began = Date.now();
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.on('close', () => {  // by the server, at the deadline: not at once, not never
      const at = Date.now() - began;
      if (at >= 9000 && at <= 13000) closed++;
    });
    s.write('POST /login HTTP/1.1\r\nHost: x\r\n');
    crowd.push(s);
  }
  let line = 0, ok = 0, asked = 0;
  const trickle = setInterval(() => {
    line++;
    for (const s of crowd) if (!s.destroyed) s.write('X-Slow-' + line + ': 1\r\n');
  }, 300);
  const start = Date.now();
  while (Date.now() - start < 13000) {
    asked++;
    const t0 = Date.now();
    const {status} = await honest();
    if (status.startsWith('HTTP/1.1 200') && Date.now() - t0 < 3000) ok++;
    await new Promise((r) => setTimeout(r, 700));
  }
  clearInterval(trickle);
  await new Promise((r) => setTimeout(r, 500));
  console.log(`honest ${ok}/${asked} closed ${closed}/${n}`);
  for (const s of crowd) s.destroy();
  process.exit(ok === asked && closed === n ? 0 : 1);
}

async function cap() {
  const held = [];
  for (let i = 0; i < n; i++) {
    await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', resolve);
      s.on('error', () => {});
      held.push(s);
    });
  }
  await new Promise((r) => setTimeout(r, 300));  // the server has accepted them all
  const over = await honest();
  for (const s of held) s.destroy();
  await new Promise((r) => setTimeout(r, 300));
  const after = await honest();
  console.log(`over the cap: '${over.status}' closed by the server: ${over.closed}; after: '${after.status}'`);
  process.exit(over.status === '' && over.closed && after.status.startsWith('HTTP/1.1 200') ? 0 : 1);
}

(mode === 'slowloris' ? slowloris : cap)();
