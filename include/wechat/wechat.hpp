// wechat/wechat.hpp - the whole library in one include.
//
// Include the focused headers instead to pay only for what you use: a backend that only
// decrypts needs <wechat/decrypt.hpp> and links OpenSSL's libcrypto and nothing else.
#pragma once

#include "wechat/client.hpp"
#include "wechat/clock.hpp"
#include "wechat/component.hpp"
#include "wechat/crypto.hpp"
#include "wechat/decrypt.hpp"
#include "wechat/error.hpp"
#include "wechat/msg_crypt.hpp"
#include "wechat/store.hpp"
#include "wechat/token.hpp"
#include "wechat/transport.hpp"
#include "wechat/transport/httplib.hpp"
#include "wechat/unionid.hpp"
#include "wechat/version.hpp"
#include "wechat/wecom.hpp"
