// wechat/detail/tls.hpp - what the library asks of every TLS connection, whichever HTTP
// library makes it (cpp-httplib, Boost.Beast), and a TLS failure in words. OpenSSL only.
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <string>

#include "wechat/detail/net.hpp"  // inet_pton

namespace wechat::detail {

// What the library asks of every TLS connection, on top of the HTTP library's own checks:
// - TLS 1.2 at least (raised to it, never lowered: a system policy asking for 1.3 stands).
//   cpp-httplib 0.11.4 leaves the minimum to OpenSSL's configuration, which outside
//   Debian may still allow TLS 1.0.
// - The certificate must name the host in subjectAltName: OpenSSL checks the host during
//   the handshake's chain verification with X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, so a
//   certificate naming the host only in its subject CN is refused (cpp-httplib's own
//   host check falls back to the CN, as browsers stopped doing in 2017). An IP host must
//   be an IP subjectAltName.
// With verification off (disable_tls_verification_insecure) only the minimum version is
// set. False when OpenSSL refused a setting: the caller does not connect.
inline bool harden_tls(SSL_CTX* ctx, const std::string& host, bool verify) {
  if (ctx == nullptr) return false;
  // 0 means no minimum; TLS version numbers grow with the version
  if (SSL_CTX_get_min_proto_version(ctx) < TLS1_2_VERSION &&
      SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
    return false;
  if (!verify) return true;
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
  if (param == nullptr) return false;
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                                             X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  in6_addr ip{};
  const bool is_ip =
      inet_pton(AF_INET, host.c_str(), &ip) == 1 || inet_pton(AF_INET6, host.c_str(), &ip) == 1;
  return is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1
               : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) == 1;
}

// What is known of a failed TLS connection: the certificate's verification result (an
// X509_V_ERR_* value, 0 when none) and OpenSSL's error code of a failed handshake.
struct tls_failure {
  long verify_result = 0;
  unsigned long ssl_error = 0;
};

// A TLS failure in words: the certificate's verification error when there is one, else
// OpenSSL's reason for the failed handshake (or verification).
enum class tls_step { load_certs, handshake, verify };
inline std::string tls_failure_text(tls_step step, const tls_failure& tls, const std::string& host,
                                    const std::string& ca_file) {
  if (step == tls_step::load_certs)
    return "TLS: could not load the CA certificates " +
           (ca_file.empty() ? std::string("of the system") : "from " + ca_file);
  if (tls.verify_result == X509_V_ERR_HOSTNAME_MISMATCH ||
      tls.verify_result == X509_V_ERR_IP_ADDRESS_MISMATCH)
    return "TLS: certificate verify failed: " + host +
           " is not named in the certificate's subjectAltName";
  if (tls.verify_result != X509_V_OK)
    return std::string("TLS: certificate verify failed: ") +
           X509_verify_cert_error_string(tls.verify_result);
  std::string what =
      step == tls_step::verify ? "TLS: certificate verify failed" : "TLS handshake failed";
  if (tls.ssl_error != 0) {
    if (const char* reason = ERR_reason_error_string(tls.ssl_error)) return what + ": " + reason;
    char text[256];
    ERR_error_string_n(tls.ssl_error, text, sizeof text);
    return what + ": " + text;
  }
  return what;
}

}  // namespace wechat::detail
