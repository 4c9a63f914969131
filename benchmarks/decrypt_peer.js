// The Node.js peer: what a Node backend does with the same payload (Node's crypto +
// JSON.parse + the watermark check, as node-easywechat's decrypt does it). Prints one JSON
// line: {"name":"node_decrypt","ops_per_sec":N,"runs":[...]}.
//   node decrypt_peer.js FIXTURE.json [seconds-per-run] [runs]
'use strict';
const crypto = require('crypto');
const fs = require('fs');

const f = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const seconds = Number(process.argv[3] || 2);
const runs = Number(process.argv[4] || 3);

function decrypt() {
  const d = crypto.createDecipheriv('aes-128-cbc', Buffer.from(f.session_key, 'base64'), Buffer.from(f.iv, 'base64'));
  const plain = Buffer.concat([d.update(Buffer.from(f.encrypted_data, 'base64')), d.final()]).toString('utf8');
  const u = JSON.parse(plain);
  if (u.watermark.appid !== f.appid) throw new Error('watermark');
  return u;
}

function measure(sec) {
  const end = process.hrtime.bigint() + BigInt(Math.round(sec * 1e9));
  const start = process.hrtime.bigint();
  let n = 0, sink = 0;
  while ((n & 1023) !== 0 || process.hrtime.bigint() < end) {
    sink += decrypt().gender;
    n++;
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  if (sink < 0) console.log(sink);
  return n / elapsed;
}

measure(1); // warm-up: let the JIT settle
const results = [];
for (let i = 0; i < runs; i++) results.push(measure(seconds));
results.sort((a, b) => a - b);
console.log(JSON.stringify({ name: 'node_decrypt', ops_per_sec: results[Math.floor(results.length / 2)], runs: results, node: process.version }));
