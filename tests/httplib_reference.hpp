// cpp-httplib 0.11.4 reading a request from memory, as a reference for the mock's own
// reader (mock_wechat/detail/wire.hpp): tests/wire_test.cpp and fuzz/fuzz_mock.cpp compare them.
#pragma once

#include <httplib.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace httplib_reference {

// httplib reading from memory: the parts of the request it hands to its handler.
class memory_stream final : public httplib::Stream {
public:
  explicit memory_stream(std::string in) : in_(std::move(in)) {}
  bool is_readable() const override { return pos_ < in_.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* p, size_t n) override {
    n = std::min(n, in_.size() - pos_);
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* p, size_t n) override {
    out.append(p, n);
    return static_cast<ssize_t>(n);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 1;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 2;
  }
  socket_t socket() const override { return -1; }
  std::size_t consumed() const { return pos_; }
  std::string out;

private:
  std::string in_;
  std::size_t pos_ = 0;
};

struct httplib_view {
  bool handled = false;  // httplib called the handler (it read a valid request)
  std::string method, path, target, body, out;
  bool closed = false;
  std::size_t consumed = 0;
};

class reference_server : public httplib::Server {
public:
  int status = 200;
  reference_server() {
    auto h = [this](const httplib::Request& req, httplib::Response& res) {
      seen_.handled = true;
      seen_.method = req.method;
      seen_.path = req.path;
      seen_.target = req.target;
      seen_.body = req.body;
      res.status = status;
      res.set_content("{}", "text/plain");
    };
    Get(".*", h);
    Post(".*", h);
    set_keep_alive_max_count(100000);
  }
  httplib_view read(const std::string& bytes) {
    seen_ = {};
    memory_stream m(bytes);
    bool closed = false;
    process_request(m, false, closed, nullptr);
    seen_.closed = closed;
    seen_.out = m.out;
    seen_.consumed = m.consumed();
    return seen_;
  }

private:
  httplib_view seen_;
};

}  // namespace httplib_reference
