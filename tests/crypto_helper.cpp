// A command-line face of the library's crypto, for cross-checks by independent
// implementations (tests/node/crosscheck.js):
//   crypto_helper encrypt KEY IV PLAINTEXT   -> encryptedData
//   crypto_helper sign RAW_DATA KEY          -> rawData signature
//   crypto_helper checksession KEY           -> checksession signature
//   crypto_helper decrypt KEY IV DATA        -> plaintext (unverified)
#include <wechat/decrypt.hpp>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  std::error_code ec;
  std::string out;
  if (cmd == "encrypt" && argc == 5)
    out = wechat::encrypt_data(argv[2], argv[4], argv[3], ec);
  else if (cmd == "sign" && argc == 4)
    out = wechat::raw_data_signature(argv[2], argv[3]);
  else if (cmd == "checksession" && argc == 3)
    out = wechat::session_key_signature(argv[2]);
  else if (cmd == "decrypt" && argc == 5)
    out = wechat::decrypt_unverified(argv[2], argv[4], argv[3], ec);
  else {
    std::cerr << "usage: crypto_helper encrypt|sign|checksession|decrypt ...\n";
    return 2;
  }
  if (ec) {
    std::cerr << wechat::error_name(ec) << '\n';
    return 1;
  }
  std::cout << out;
  return 0;
}
