# The two commands of the README: `make demo` and `make test`. Each installs what is
# missing (scripts/install-deps.sh), configures, builds, then runs.
BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all deps configure build demo test test-httplib-latest package sanitize tsan tidy fuzz bench bench-load bench-loadtest bench-async clean format

# cmake --build runs make again below: no "Entering directory" lines from it.
MAKEFLAGS += --no-print-directory
empty :=
space := $(empty) $(empty)

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

configure: deps $(BUILD_DIR)/CMakeCache.txt

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Only what the demo needs (the library, the mock, examples/demo.cpp): about 30 s on 2
# cores from a fresh clone, where the whole tree takes several.
demo: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target demo
	$(BUILD_DIR)/examples/demo

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# The client's and the mock's tests built against the latest upstream cpp-httplib (a
# single header; CI has it in ../shared/vendor/cpp-httplib-VERSION) instead of Debian's
# 0.11.4, found as users of vcpkg, Conan or an upstream install find it: through
# find_package(httplib CONFIG) (tests/httplib-latest/httplibConfig.cmake stands in for
# upstream's). HTTPLIB_LATEST_DIR=/path/to/folder/with/httplib.h picks another copy.
HTTPLIB_LATEST_DIR ?= $(lastword $(sort $(wildcard $(CURDIR)/../shared/vendor/cpp-httplib-*)))
HTTPLIB_LATEST_VERSION = $(patsubst cpp-httplib-%,%,$(notdir $(HTTPLIB_LATEST_DIR)))
HTTPLIB_LATEST_TARGETS = httplib_version client_test client_logic_test unionid_test fault_table_test \
  mock_endpoints_test mock_unionid_test mock_faults_test mock_admin_test mock_bounds_test \
  mock_hostile_test mock_standalone_test engine_diff_test http1_test net_test tls_client_test \
  mock_command_line_test mock_wechat
HTTPLIB_LATEST_TESTS = ^(httplib_version|(client_test|client_logic_test|unionid_test|fault_table_test|mock_[a-z_]+_test|engine_diff_test|http1_test|net_test|tls_client_test):)
# (Without Boost: the Beast transport has nothing to do with which cpp-httplib is used,
# and its files are the slowest to compile.)
test-httplib-latest: deps
	@test -f "$(HTTPLIB_LATEST_DIR)/httplib.h" || { echo "test-httplib-latest: no httplib.h in '$(HTTPLIB_LATEST_DIR)' (set HTTPLIB_LATEST_DIR)"; exit 1; }
	cmake -S . -B build-httplib-latest -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -Dhttplib_DIR=$(CURDIR)/tests/httplib-latest -DHTTPLIB_LATEST_DIR=$(HTTPLIB_LATEST_DIR) \
	  -DWECHAT_EXPECT_HTTPLIB=$(HTTPLIB_LATEST_VERSION) -DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON \
	  -DWECHAT_TARGET_SET="$(subst $(space),;,$(strip $(HTTPLIB_LATEST_TARGETS)))"
	cmake --build build-httplib-latest -j $(JOBS) --target wechat_target_set
	ctest --test-dir build-httplib-latest --output-on-failure -j $(JOBS) -R '$(HTTPLIB_LATEST_TESTS)'

# A Debian package of what `cmake --install` gives (headers, CMake package, mock_wechat,
# wechat-decrypt): $(BUILD_DIR)/libwechat-dev_VERSION_ARCH.deb, for `apt install ./...`.
# Without the tests: make package BUILD_DIR=build-package CMAKE_ARGS=-DWECHAT_BUILD_TESTS=OFF
package: build
	cmake --build $(BUILD_DIR) --target package

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (CMakePresets.json),
# but the README's snippets (label readme) and the packaging tests (label package: the
# consumer projects and the .deb): they build their own trees, without them. The
# Boost.Beast transport is in (beast_transport_test, async_mock_test, and beast.hpp in
# headers_self_contained); the Beast half of tls_client_test, the Asio coroutine test and
# the benchmarks the tests do not run are not (tests/ and benchmarks/CMakeLists.txt: each
# Beast file costs minutes under ASan on 2 cores).
sanitize: deps
	cmake --preset asan
	cmake --build build-asan -j $(JOBS)
	ctest --test-dir build-asan --output-on-failure -j $(JOBS) -LE 'readme|package'

# The tests that run threads under ThreadSanitizer (CMakePresets.json): code2session's
# single flight, the token provider and its Redis lock, the fleet, the mock's server under
# concurrent clients, the hostile clients, the load generator, the ticket pusher, the
# component and WeCom clients, wechat-loadtest (its workers and minter) against login_server,
# the Boost.Beast async transport (its loop thread, strand, cancels from other threads) and
# the async client on it, called from other threads (async_mock_test).
# Any report fails the test.
TSAN_TARGETS = client_logic_test client_test unionid_test fault_table_test \
  mock_endpoints_test mock_unionid_test mock_faults_test mock_admin_test \
  mock_standalone_test mock_hostile_test mock_bounds_test engine_diff_test redis_test fleet_worker \
  mock_wechat loadgen msg_crypt_test mock_component_test component_client_test wecom_client_test \
  wechat-loadtest login_server beast_transport_test async_client_test async_mock_test
TSAN_TESTS = ^(client_logic_test|client_test|unionid_test|fault_table_test|mock_[a-z_]+_test|engine_diff_test|redis_test|msg_crypt_test|component_client_test|wecom_client_test|beast_transport_test|async_client_test|async_mock_test):|^load_smoke$$|^loadtest_smoke$$
tsan: deps
	cmake --preset tsan -DWECHAT_TARGET_SET="$(subst $(space),;,$(strip $(TSAN_TARGETS)))"
	cmake --build build-tsan -j $(JOBS) --target wechat_target_set
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp $(TSAN_OPTIONS)" \
	  ctest --test-dir build-tsan --output-on-failure -j $(JOBS) -R '$(TSAN_TESTS)'

# clang-tidy over the headers, examples and mock_wechat (.clang-tidy; any finding fails).
tidy:
	@bash scripts/install-deps.sh --check
	bash scripts/tidy.sh build-tidy

# libFuzzer targets, built with clang, each run FUZZ_SECONDS over its corpus (fuzz/run.sh).
FUZZ_SECONDS ?= 60
fuzz:
	@bash scripts/install-deps.sh --check
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DWECHAT_BUILD_FUZZERS=ON -DWECHAT_BUILD_TESTS=OFF -DWECHAT_BUILD_EXAMPLES=OFF -DWECHAT_INSTALL=OFF
	cmake --build build-fuzz -j $(JOBS)
	bash fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

# Benchmarks with their peers (Node.js, OpenSSL floor); see benchmarks/RESULTS.md.
bench:
	@bash scripts/install-deps.sh --bench
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DWECHAT_BUILD_BENCHMARKS=ON -DWECHAT_BUILD_TESTS=OFF
	cmake --build build-bench -j $(JOBS)
	bash benchmarks/run_decrypt.sh build-bench

# The mock under load beside nginx (benchmarks/mock_load; about 2 minutes).
bench-load:
	@bash scripts/install-deps.sh --bench
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DWECHAT_BUILD_BENCHMARKS=ON -DWECHAT_BUILD_TESTS=OFF
	cmake --build build-bench -j $(JOBS)
	bash benchmarks/mock_load --build build-bench

# wechat-loadtest beside wrk on a no-op nginx, and against examples/login_server with the
# mock (benchmarks/loadtest_capacity; about 2 minutes).
bench-loadtest:
	@bash scripts/install-deps.sh --bench
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DWECHAT_BUILD_BENCHMARKS=ON -DWECHAT_BUILD_TESTS=OFF -DWECHAT_BUILD_EXAMPLES=ON
	cmake --build build-bench -j $(JOBS) --target wechat-loadtest login_server mock_wechat
	bash benchmarks/loadtest_capacity --build build-bench

# The async client on one loop thread beside the sync client on a thread per call, N
# logins in flight against mock_wechat --latency fixed:50 (benchmarks/run_async.sh, issue
# 21; about 2 minutes).
bench-async:
	@bash scripts/install-deps.sh --bench
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DWECHAT_BUILD_BENCHMARKS=ON -DWECHAT_BUILD_TESTS=OFF -DWECHAT_BUILD_EXAMPLES=OFF
	cmake --build build-bench -j $(JOBS) --target async_login mock_wechat
	bash benchmarks/run_async.sh --build build-bench

format:
	clang-format -i $$(git ls-files '*.hpp' '*.cpp')

clean:
	rm -rf $(BUILD_DIR) build-bench build-asan build-ubsan build-tsan build-release build-fuzz build-tidy build-package
