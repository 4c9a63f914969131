// node-easywechat 3.6.2, installed from the npm registry and used unchanged, pointed at a
// standalone mock_wechat through its `http.baseURL` setting: code2session, an access
// token (classic and stable), a token-carrying call, and decrypting user_info.
// Usage: node easywechat_mock.js MOCK_WECHAT_BINARY SDK_DIR
'use strict';
const { spawn } = require('child_process');
const assert = require('assert');
const path = require('path');

const [mockBinary, sdkDir] = process.argv.slice(2);
const { MiniApp } = require(path.join(sdkDir, 'node_modules', 'node-easywechat'));
const crypto = require('crypto');

function startMock() {
  return new Promise((resolve, reject) => {
    const child = spawn(mockBinary, ['--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('mock did not start')), 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^mock_wechat listening on (http:\/\/\S+)\n/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    });
    child.on('exit', (code) => reject(new Error(`mock exited ${code}`)));
  });
}

async function admin(url, call, body) {
  const r = await fetch(`${url}/__mock/${call}`, { method: 'POST', body: JSON.stringify(body) });
  const j = await r.json();
  assert.strictEqual(r.status, 200, `${call}: ${JSON.stringify(j)}`);
  return j;
}

(async () => {
  const { child, url } = await startMock();
  let checks = 0;
  const check = (cond, what) => { assert.ok(cond, what); checks++; };
  try {
    // The SDK caches tokens on disk by (appid, secret): a fresh secret per run keeps a
    // token minted by an earlier mock process (40014 here) out of this run.
    const appid = 'wx1000000000000001', secret = 'sdk-secret-' + crypto.randomBytes(8).toString('hex');
    await admin(url, 'apps', { appid, secret, type: 'miniprogram', open_account: 'acct-1' });
    await admin(url, 'apps', { appid: 'wx2000000000000002', secret: 'oa', type: 'official_account', open_account: 'acct-1' });
    await admin(url, 'follow', { user: 'alice', appid: 'wx2000000000000002' });
    const ctx = await admin(url, 'wxcontext', { appid, user: 'alice' });

    const app = new MiniApp({ app_id: appid, secret, http: { baseURL: url + '/' } });
    const utils = app.getUtils();

    // code2session
    const { code } = await admin(url, 'login', { appid, user: 'alice' });
    const session = await utils.codeToSession(code);
    check(session.openid === ctx.OPENID, 'codeToSession: openid');
    check(session.unionid === ctx.UNIONID && ctx.UNIONID,
          'codeToSession: unionid (a bound mini program: every user since 2021-02-23)');
    check(Buffer.from(session.session_key, 'base64').length === 16, 'codeToSession: session_key');
    await assert.rejects(utils.codeToSession(code), /40163/, 'a used code is refused with 40163');
    checks++;

    // access token, classic and stable
    const token = await app.getAccessToken().getToken();
    check(typeof token === 'string' && token.length >= 100, 'getToken: a 100+ character token');
    const stableApp = new MiniApp({ app_id: appid, secret, use_stable_access_token: true, http: { baseURL: url + '/' } });
    const stable = await stableApp.getAccessToken().getToken();
    check(stable.length >= 100 && stable !== token, 'stable token: its own token');

    // a call through the SDK's token-carrying client
    const signature = crypto.createHmac('sha256', session.session_key).update('').digest('hex');
    const r = await app.getClient().get('/wxa/checksession', {
      params: { openid: session.openid, signature, sig_method: 'hmac_sha256' },
    });
    check(r.toObject().errcode === 0, 'checksession through the SDK client: ' + JSON.stringify(r.toObject()));

    // decrypting user_info with the session_key from code2session
    const info = await admin(url, 'user_info', { appid, user: 'alice' });
    const plain = utils.decryptSession(session.session_key, info.iv, info.encryptedData);
    check(plain.openId === ctx.OPENID, 'decryptSession: openId');
    check(plain.nickName === '微信用户', 'decryptSession: the anonymous nickName (since 2021-04-28)');
    check(plain.unionId === ctx.UNIONID, 'decryptSession: unionId');
    check(plain.watermark.appid === appid, 'decryptSession: watermark');
    check(crypto.createHash('sha1').update(info.rawData + session.session_key).digest('hex') === info.signature,
          'rawData signature as the SDKs compute it');
    // wx.getUserProfile data: the same decryption, no ids inside
    const prof = await admin(url, 'user_profile', { appid, user: 'alice' });
    const p2 = utils.decryptSession(session.session_key, prof.iv, prof.encryptedData);
    check(p2.openId === undefined && p2.unionId === undefined, 'getUserProfile data: no ids');
    check(p2.nickName === '微信用户' && p2.watermark.appid === appid, 'getUserProfile data: profile, watermark');
    console.log(`easywechat_mock: ${checks} checks passed (node-easywechat 3.6.2 against ${url})`);
  } finally {
    child.kill('SIGTERM');
  }
})().catch((e) => { console.error(e); process.exit(1); });
