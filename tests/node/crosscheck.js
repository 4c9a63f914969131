// Cross-checks the library's crypto against Node.js's own (OpenSSL underneath, but a
// different codebase for base64, padding, JSON and the WeChat conventions), both ways:
//   Node encrypts -> wechat-decrypt decrypts and verifies
//   the library encrypts -> Node decrypts
//   rawData signature and checksession signature computed by both
// Usage: node crosscheck.js CRYPTO_HELPER WECHAT_DECRYPT
'use strict';
const crypto = require('crypto');
const { execFileSync, spawnSync } = require('child_process');
const assert = require('assert');

const [helper, tool] = process.argv.slice(2);
let checks = 0;
const check = (cond, what) => { assert.ok(cond, what); checks++; };

const appid = 'wx4f4bc4dec97d474b';
function nodeEncrypt(keyB64, ivB64, plaintext) {
  const c = crypto.createCipheriv('aes-128-cbc', Buffer.from(keyB64, 'base64'), Buffer.from(ivB64, 'base64'));
  return Buffer.concat([c.update(plaintext, 'utf8'), c.final()]).toString('base64');
}
function nodeDecrypt(keyB64, ivB64, dataB64) {
  const d = crypto.createDecipheriv('aes-128-cbc', Buffer.from(keyB64, 'base64'), Buffer.from(ivB64, 'base64'));
  return Buffer.concat([d.update(Buffer.from(dataB64, 'base64')), d.final()]).toString('utf8');
}

// WeChat's published sample, through Node first: the fixture itself is sound.
const sample = {
  key: 'tiihtNczf5v6AKRyjwEUhQ==', iv: 'r7BXXKkLb8qrSNn05n0qiA==',
  data: 'CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==',
};
check(JSON.parse(nodeDecrypt(sample.key, sample.iv, sample.data)).openId === 'oGZUI0egBJY1zhBYw2KhdUfwVJJE', 'node decrypts the sample');
check(execFileSync(helper, ['decrypt', sample.key, sample.iv, sample.data]).toString() === nodeDecrypt(sample.key, sample.iv, sample.data), 'both decrypt the sample alike');

for (let i = 0; i < 50; i++) {
  const key = crypto.randomBytes(16).toString('base64');
  const iv = crypto.randomBytes(16).toString('base64');
  const user = {
    openId: 'o' + crypto.randomBytes(20).toString('base64url').slice(0, 27),
    nickName: ['微信用户', 'Zoë 😀', 'a"b\\c', 'plain'][i % 4] + i,
    gender: i % 3, language: 'zh_CN', city: '广州', province: 'Guangdong', country: 'CN',
    avatarUrl: 'https://thirdwx.qlogo.cn/mmopen/' + i,
    watermark: { timestamp: 1700000000 + i, appid },
  };
  if (i % 2) user.unionId = 'o' + crypto.randomBytes(20).toString('base64url').slice(0, 27);
  const plaintext = JSON.stringify(user);
  const rawData = JSON.stringify({ nickName: user.nickName, gender: user.gender, city: user.city });
  const signature = crypto.createHash('sha1').update(rawData + key).digest('hex');

  // Node encrypts, our tool decrypts and verifies (watermark and signature).
  const enc = nodeEncrypt(key, iv, plaintext);
  const r = spawnSync(tool, ['--appid', appid, '--session-key', key, '--iv', iv, '--data', enc,
                             '--raw-data', rawData, '--signature', signature]);
  check(r.status === 0, `wechat-decrypt accepts Node's ciphertext (${r.stdout})`);
  assert.deepStrictEqual(JSON.parse(r.stdout.toString()), user);
  check(!r.stdout.toString().includes(key), 'the key is not printed');

  // The library encrypts, Node decrypts.
  const ours = execFileSync(helper, ['encrypt', key, iv, plaintext]).toString();
  check(ours === enc, 'same ciphertext for the same key, iv and plaintext');
  check(nodeDecrypt(key, iv, ours) === plaintext, 'Node decrypts our ciphertext');

  // Signatures.
  check(execFileSync(helper, ['sign', rawData, key]).toString() === signature, 'rawData signature');
  const hmac = crypto.createHmac('sha256', key).update('').digest('hex');
  check(execFileSync(helper, ['checksession', key]).toString() === hmac, 'checksession signature');

  // A stale key (another login's) is rejected by both.
  const stale = crypto.randomBytes(16).toString('base64');
  const bad = spawnSync(tool, ['--appid', appid, '--session-key', stale, '--iv', iv, '--data', enc]);
  check(bad.status === 1 && bad.stdout.toString().split('\n').filter(Boolean).length === 1, 'stale key: one line, exit 1');
}
console.log(`node_crosscheck: ${checks} checks passed (node ${process.version})`);
