#!/usr/bin/env bash
# Installs the Debian 12 packages this project needs, and only those that are missing.
# Safe to run any number of times; prints what it installs, or that nothing was missing.
#
#   scripts/install-deps.sh            build, test and demo dependencies
#   scripts/install-deps.sh --bench    also the benchmark peers (wrk, nginx, gnuplot, hyperfine)
#   scripts/install-deps.sh --check    also clang, its fuzzer runtime and clang-tidy (make fuzz, make tidy)
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates openssl  # toolchain, test CA tooling
  curl jq                                                       # the shell tests' HTTP client and JSON reader
  libssl-dev nlohmann-json3-dev libcpp-httplib-dev              # the library
  libhiredis-dev redis-server                                   # the fleet store, its tests
  libboost-dev                                                  # the async transport (Boost.Beast, headers)
  catch2 libbenchmark-dev                                       # tests, benchmarks
  dpkg-dev file                                                 # make package (dpkg-shlibdeps)
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(wrk nginx-light gnuplot-nox hyperfine)
fi
if [[ "${1:-}" == "--check" ]]; then
  packages+=(clang libclang-rt-14-dev clang-tidy)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js runs the cross-checks against an independent implementation. Any node on PATH
# will do (the machine may carry a newer one than Debian's); otherwise Debian's nodejs.
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present, nothing to install"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists when they are missing or older than a day.
if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mtime -1 2>/dev/null | head -1)" ]]; then
  $sudo apt-get update -qq
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: installed ${missing[*]}"
