// wechat/version.hpp - the library's version.
#pragma once

#define WECHAT_VERSION_MAJOR 0
#define WECHAT_VERSION_MINOR 2
#define WECHAT_VERSION_PATCH 0

namespace wechat {
/// The library's version as "major.minor.patch".
inline constexpr const char* version = "0.2.0";
}  // namespace wechat
