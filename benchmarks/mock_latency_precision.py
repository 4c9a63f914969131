#!/usr/bin/env python3
"""How closely the standalone mock keeps a --latency: N sequential requests over one
keep-alive connection (TCP_NODELAY), each timed from the send to the whole answer; prints
the percentiles in ms. The times include this client's own work (about 0.1 ms here).
    mock_wechat --port 0 --journal 0 --latency fixed:0.5 &     (note its port)
    python3 benchmarks/mock_latency_precision.py PORT [N]      (default N = 500)
Used for the figures in docs/mock.md ("Latency specs") and benchmarks/RESULTS.md."""
import socket
import sys
import time


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    port = int(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # A WeChat endpoint (the latency applies to those, not to the admin API): 40014.
    req = b"GET /sns/auth?access_token=x&openid=y HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    times = []
    for _ in range(n):
        t = time.perf_counter()
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("the mock closed the connection")
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += s.recv(65536)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print("n=%d p1=%.3f p50=%.3f p99=%.3f max=%.3f (ms)"
          % (n, times[n // 100], times[n // 2], times[n * 99 // 100], times[-1]))


if __name__ == "__main__":
    main()
