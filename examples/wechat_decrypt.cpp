// wechat-decrypt: "why does my decrypt fail?" in one line.
//
//   wechat-decrypt --appid A --session-key K --iv IV --data ENCRYPTED
//                  [--raw-data R --signature S] [--max-age SECONDS]
//
// Paste the four values from your logs. On success prints the verified plaintext JSON and
// exits 0. On failure prints one line naming the input that is wrong, what is wrong with
// it and what usually causes it, and exits 1. Never prints the session_key.
#include <wechat/decrypt.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

namespace {

constexpr const char* usage =
    "usage: wechat-decrypt --appid A --session-key K --iv IV --data ENCRYPTED\n"
    "                      [--raw-data R --signature S] [--max-age SECONDS]\n"
    "Decrypts and verifies what a mini program sent (wx.getUserInfo, getPhoneNumber...).\n"
    "Prints the verified JSON and exits 0, or one line naming the failure and exits 1.\n";

int fail(const std::string& line) {
  std::cout << "wechat-decrypt: " << line << '\n';
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << usage;
      return 0;
    }
    static const char* known[] = {"--appid",    "--session-key", "--iv",     "--data",
                                  "--raw-data", "--signature",   "--max-age"};
    bool ok = false;
    for (const char* k : known)
      ok = ok || a == k;
    if (!ok) return fail("unknown option '" + a + "' (see --help)");
    if (i + 1 >= argc) return fail("option " + a + " needs a value (see --help)");
    args[a] = argv[++i];
  }
  for (const char* required : {"--appid", "--session-key", "--iv", "--data"}) {
    if (args.find(required) == args.end())
      return fail(std::string("missing ") + required + " (see --help)");
  }
  if (args.count("--raw-data") != args.count("--signature"))
    return fail("--raw-data and --signature go together: give both or neither");

  wechat::verify_options options;
  options.appid = args["--appid"];
  if (auto it = args.find("--max-age"); it != args.end()) {
    char* end = nullptr;
    const long long v = std::strtoll(it->second.c_str(), &end, 10);
    if (end == it->second.c_str() || *end != '\0' || v < 0)
      return fail("--max-age must be a whole number of seconds, got '" + it->second + "'");
    options.max_age = std::chrono::seconds(v);
  }

  wechat::device_data data;
  data.encrypted_data = args["--data"];
  data.iv = args["--iv"];
  if (args.count("--raw-data")) {
    data.raw_data = args["--raw-data"];
    data.signature = args["--signature"];
  }

  std::error_code ec;
  const nlohmann::json plain = wechat::decrypt_json(args["--session-key"], data, options, ec);
  if (ec) {
    std::string line = wechat::error_name(ec) + ": " + ec.message();
    if (ec == wechat::decrypt_errc::data_not_base64 &&
        data.encrypted_data.find('%') != std::string_view::npos)
      line += " (it contains %-escapes: it is still URL-encoded; decode it once)";
    if (ec == wechat::decrypt_errc::appid_mismatch ||
        ec == wechat::decrypt_errc::watermark_too_old) {
      // Say what the watermark holds: appids and times are not secrets.
      std::error_code ignored;
      const auto raw = nlohmann::json::parse(
          wechat::decrypt_unverified(args["--session-key"], data.encrypted_data, data.iv, ignored),
          nullptr, false);
      const auto& wm = raw.is_object() ? raw.value("watermark", nlohmann::json::object())
                                       : nlohmann::json::object();
      if (ec == wechat::decrypt_errc::appid_mismatch &&
          wm.value("appid", nlohmann::json()).is_string())
        line += " [watermark appid " + wm["appid"].get<std::string>() + ", --appid " +
                std::string(options.appid) + "]";
      if (ec == wechat::decrypt_errc::watermark_too_old &&
          wm.value("timestamp", nlohmann::json()).is_number_integer())
        line += " [watermark timestamp " + std::to_string(wm["timestamp"].get<long long>()) +
                ", --max-age " + std::to_string(options.max_age.count()) + "]";
    }
    return fail(line);
  }
  std::cout << plain.dump(2) << '\n';
  return 0;
}
