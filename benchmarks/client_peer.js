// The Node.js peer: node-easywechat 3.6.2's codeToSession, CONCURRENCY requests in
// flight, every code exchanged once. Prints {"logins_per_sec":..,"errors":..}.
//   node client_peer.js BASE_URL APPID SECRET CODES_FILE CONCURRENCY
'use strict';
const fs = require('fs');
const path = require('path');
const http = require('http');
const [base, appid, secret, codesFile, concurrency] = process.argv.slice(2);
const { MiniApp } = require(path.join(__dirname, 'node_modules', 'node-easywechat'));
const codes = fs.readFileSync(codesFile, 'utf8').split('\n').filter(Boolean);
// keep-alive, as a production Node backend would configure it
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
const app = new MiniApp({ app_id: appid, secret, http: { baseURL: base + '/', httpAgent: agent } });
const utils = app.getUtils();
let next = 0, errors = 0;
async function worker() {
  while (next < codes.length) {
    const code = codes[next++];
    try {
      const s = await utils.codeToSession(code);
      if (!s.openid) errors++;
    } catch (e) { errors++; }
  }
}
(async () => {
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Number(concurrency) }, worker));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(JSON.stringify({ logins_per_sec: codes.length / secs, errors, seconds: secs, logins: codes.length }));
  agent.destroy();
})();
