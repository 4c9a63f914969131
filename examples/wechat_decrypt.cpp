// wechat-decrypt: "why does my decrypt fail?" in one line.
//
//   wechat-decrypt --appid A --session-key K --iv IV --data ENCRYPTED
//                  [--raw-data R --signature S] [--max-age SECONDS]
//
// Paste the four values from your logs. On success prints the verified plaintext JSON and
// exits 0. On failure prints one line naming the input that is wrong, what is wrong with
// it and what usually causes it, and exits 1. A bad command line: one line on stderr, exit
// 2 (as mock_wechat). Never prints the session_key, nor any argument that could be a value:
// only the names of its own options are repeated; anything else where an option belongs
// is named by its position.
#include <wechat/decrypt.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace {

constexpr const char* usage =
    "usage: wechat-decrypt --appid A --session-key K --iv IV --data ENCRYPTED\n"
    "                      [--raw-data R --signature S] [--max-age SECONDS]\n"
    "Decrypts and verifies what a mini program sent (wx.getUserInfo, getPhoneNumber...).\n"
    "Prints the verified JSON and exits 0, or one line naming the failure and exits 1.\n"
    "A bad command line exits 2. --max-age must be positive: leave it out for no age check.\n";

int fail(const std::string& line) {
  std::cout << "wechat-decrypt: " << line << '\n';
  return 1;
}

// A bad command line: one line on stderr, exit 2.
int usage_error(const std::string& line) {
  std::cerr << "wechat-decrypt: " << line << " (see --help)\n";
  return 2;
}

constexpr const char* known_options[] = {"--appid",    "--session-key", "--iv",     "--data",
                                         "--raw-data", "--signature",   "--max-age"};

bool is_known(const std::string& a) {
  for (const char* k : known_options)
    if (a == k) return true;
  return false;
}

// Edit distance (Levenshtein) of two short strings.
std::size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Argument `position` is not one of our options. It is never shown: an argument where an
// option belongs may be a value that slid over (`--iv --session-key K` leaves K there),
// and these messages get pasted into support threads. A near miss of an option's name
// is answered with the name it resembles.
std::string not_an_option(int position, const std::string& a) {
  std::string line = "argument " + std::to_string(position) + " is not an option";
  const char* nearest = nullptr;
  std::size_t best = 4;  // at most 3 edits away
  if (a.size() <= 32 && a.rfind('-', 0) == 0)
    for (const char* k : known_options)
      if (const std::size_t d = distance(a, k); d < best) {
        best = d;
        nearest = k;
      }
  if (nearest != nullptr)
    line += std::string(" (did you mean ") + nearest + "?)";
  else
    line += ": a value without its option, or an option before it missing its value?";
  return line + " (not shown: it may be a secret)";
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
    if (!is_known(a)) return usage_error(not_an_option(i, a));
    if (i + 1 >= argc || is_known(argv[i + 1]))
      return usage_error("option " + a + " needs a value");
    args[a] = argv[++i];
  }
  for (const char* required : {"--appid", "--session-key", "--iv", "--data"}) {
    if (args.find(required) == args.end()) return usage_error(std::string("missing ") + required);
  }
  if (args.count("--raw-data") != args.count("--signature"))
    return usage_error("--raw-data and --signature go together: give both or neither");

  wechat::verify_options options;
  options.appid = args["--appid"];
  if (auto it = args.find("--max-age"); it != args.end()) {
    char* end = nullptr;
    const long long v = std::strtoll(it->second.c_str(), &end, 10);
    if (end == it->second.c_str() || *end != '\0' || v <= 0)
      return usage_error("--max-age must be a positive whole number of seconds (0 would turn "
                         "the age check off: leave --max-age out for that)");
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
