// A misbehaving HTTP/1.1 target for wechat-loadtest (tests/loadtest_hostile.sh), over raw
// sockets (node's net module, no packages) so that it can answer wrongly.
//   node loadtest_hostile_target.js MODE PORT_FILE [ARG]
// Listens on 127.0.0.1, port 0, and writes the port to PORT_FILE (written whole, then renamed).
// Each request (its head, and a Content-Length body) is answered per MODE:
//   ok              200 with Content-Length
//   slow SECONDS    the 200, SECONDS late
//   never           read, never answer
//   close           the 200 with Connection: close, then close
//   eof             a 200 with no length: the close ends its body
//   midclose        a head promising 100 bytes, 5 of them, then close
//   garbage         bytes that are not HTTP (the connection stays open)
//   early           a 103 Early Hints interim answer, then the 200
//   extra           two answers to each request
//   chinese         a 500 whose JSON error body is Chinese text (well over 200 bytes)
//   chunked         a chunked 200, over several writes a few ms apart
//   uniqueerror     a 500 whose JSON error names a new request id each time
//   closeidle MS    the 200; a keep-alive connection then idle for MS is closed
'use strict';
const net = require('net');
const fs = require('fs');

const [mode, portFile, arg] = process.argv.slice(2);
const modes = ['ok', 'slow', 'never', 'close', 'eof', 'midclose', 'garbage', 'early', 'extra', 'chinese',
               'chunked', 'closeidle', 'uniqueerror'];
if (!modes.includes(mode) || !portFile) {
  console.error('usage: node loadtest_hostile_target.js MODE PORT_FILE [ARG]; MODE: ' + modes.join(' '));
  process.exit(2);
}

let uniqueId = 0;
const OK = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}';
const chineseBody = Buffer.from(JSON.stringify({error: '服务器内部错误，请稍后再试。'.repeat(6)}), 'utf8');
const CHINESE = Buffer.concat([
  Buffer.from('HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json; charset=utf-8\r\n' +
              'Content-Length: ' + chineseBody.length + '\r\n\r\n', 'latin1'),
  chineseBody]);

function later(ms, f) { return setTimeout(f, ms); }

// Answers one request on socket s; calls done() when the connection may read the next one.
function answer(s, done) {
  switch (mode) {
    case 'ok':
      s.write(OK);
      return done();
    case 'slow':
      later(Number(arg || 1) * 1000, () => { if (!s.destroyed) s.write(OK); done(); });
      return;
    case 'never':
      return;  // and no later request is read either: this one is never done
    case 'close':
      s.end('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}');
      return;
    case 'eof':
      s.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}');
      return;
    case 'midclose':
      s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"a":');
      return;
    case 'garbage':
      s.write(Buffer.from([0xff, 0xfe, 0x20, 0x67, 0x61, 0x72, 0x62, 0x61, 0x67, 0x65, 0x0d, 0x0a, 0x0d, 0x0a]));
      return done();
    case 'early':
      s.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n' + OK);
      return done();
    case 'extra':
      s.write(OK + OK);
      return done();
    case 'chinese':
      s.write(CHINESE);
      return done();
    case 'uniqueerror': {
      const body = JSON.stringify({error: 'failed, request id ' + (++uniqueId)});
      s.write('HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: ' +
              Buffer.byteLength(body) + '\r\n\r\n' + body);
      return done();
    }
    case 'chunked': {
      const parts = ['HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
                     '5\r\n{"o', 'k"\r\n6\r', '\n:true}\r\n0\r\n', '\r\n'];
      let i = 0;
      const next = () => {
        if (s.destroyed) return;
        s.write(parts[i++]);
        if (i < parts.length) later(3, next);
        else done();
      };
      return next();
    }
    case 'closeidle':
      s.write(OK);
      return done();
  }
}

const server = net.createServer((s) => {
  let buf = Buffer.alloc(0);
  let busy = false;
  let idle = null;
  s.on('error', () => {});
  const armIdle = () => {
    if (mode !== 'closeidle') return;
    clearTimeout(idle);
    idle = later(Number(arg || 100), () => s.end());
  };
  const pump = () => {
    while (!busy && !s.destroyed) {
      const at = buf.indexOf('\r\n\r\n');
      if (at < 0) return;
      const head = buf.subarray(0, at).toString('latin1');
      let length = 0;
      for (const line of head.split('\r\n').slice(1)) {
        const m = /^content-length\s*:\s*(\d+)\s*$/i.exec(line);
        if (m) length = Number(m[1]);
      }
      if (buf.length < at + 4 + length) return;
      buf = buf.subarray(at + 4 + length);
      clearTimeout(idle);
      busy = true;
      answer(s, () => {
        busy = false;
        armIdle();
        setImmediate(pump);
      });
    }
  };
  s.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    pump();
  });
  s.on('close', () => clearTimeout(idle));
});
server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(portFile + '.tmp', String(server.address().port) + '\n');
  fs.renameSync(portFile + '.tmp', portFile);
});
process.on('SIGTERM', () => process.exit(0));
