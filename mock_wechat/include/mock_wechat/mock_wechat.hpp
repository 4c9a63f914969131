// mock_wechat/mock_wechat.hpp - the whole mock in one include (target wechat::mock).
#pragma once

#include "mock_wechat/admin.hpp"
#include "mock_wechat/api.hpp"
#include "mock_wechat/clock.hpp"
#include "mock_wechat/core.hpp"
#include "mock_wechat/faults.hpp"
#include "mock_wechat/ids.hpp"
#include "mock_wechat/latency.hpp"
#include "mock_wechat/observe.hpp"
#include "mock_wechat/push.hpp"
#include "mock_wechat/rules.hpp"
#include "mock_wechat/scenario.hpp"
#include "mock_wechat/server.hpp"
#include "mock_wechat/world.hpp"
