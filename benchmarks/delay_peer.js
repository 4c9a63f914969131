// The Node.js peer for delayed answers (benchmarks/delay_load): any request is answered
// after setTimeout(DELAY_MS) with a jscode2session-like JSON body, keep-alive on. Prints
// "delay_peer listening on http://127.0.0.1:PORT" once listening (PORT 0: any free port).
//   node delay_peer.js PORT DELAY_MS
'use strict';
const http = require('http');
const [port, delay] = process.argv.slice(2).map(Number);
const body = JSON.stringify({
  session_key: 'tiihtNczf5v6AKRyjwEUhQ==',
  openid: 'oGZUI0egBJY1zhBYw2KhdUfwVJJE',
  unionid: 'oGZUI0egBJY1zhBYw2KhdUfwVJJE',
});
const server = http.createServer((req, res) => {
  req.resume();  // read (and drop) any body
  req.on('end', () => setTimeout(() => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }, delay));
});
server.keepAliveTimeout = 60000;  // wrk keeps its connections for the whole run
server.listen(port, '127.0.0.1', () => console.log(`delay_peer listening on http://127.0.0.1:${server.address().port}`));
for (const s of ['SIGINT', 'SIGTERM'])
  process.on(s, () => { server.close(() => process.exit(0)); server.closeAllConnections(); });
