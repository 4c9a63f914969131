#!/usr/bin/env bash
# Makes a throwaway test CA and a server certificate it signed, for serving the mock over
# HTTPS under WeChat's own host names (so a client can point at it unchanged, with the
# test CA as its trust root):
#   scripts/make-test-ca.sh OUTDIR
# writes OUTDIR/ca.pem (trust this), OUTDIR/server.pem and OUTDIR/server.key (give these
# to mock_wechat --tls-cert/--tls-key). The certificate names api.weixin.qq.com,
# api2.weixin.qq.com, localhost and 127.0.0.1. Test use only: the keys are not protected.
set -euo pipefail
out=${1:?usage: make-test-ca.sh OUTDIR}
mkdir -p "$out"
cd "$out"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=mock_wechat test CA" \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=api.weixin.qq.com" \
  -keyout server.key -out server.csr 2>/dev/null
cat > server.ext <<EXT
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:api.weixin.qq.com,DNS:api2.weixin.qq.com,DNS:localhost,IP:127.0.0.1
EXT
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
echo "make-test-ca: wrote $out/ca.pem, $out/server.pem, $out/server.key"
