# The two set-up commands: `make run` and `make test` (see README.md).
BUILD      ?= build
BUILD_SAN  ?= build-san
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 15

.PHONY: run test bench build build-san deps deps-test unit fuzz fuzz-long clean

run: deps build
	./$(BUILD)/gomirror

test: deps-test build build-san
	cd $(BUILD) && ctest --output-on-failure -j2
	cd $(BUILD_SAN) && ctest --output-on-failure -j2
	$(MAKE) fuzz

deps:
	./deploy/install-deps.sh run

deps-test:
	./deploy/install-deps.sh test

build:
	cmake -S . -B $(BUILD) -DENABLE_WERROR=ON
	cmake --build $(BUILD) -j$(JOBS)

# The same code and suite under AddressSanitizer and UBSan.
build-san:
	cmake -S . -B $(BUILD_SAN) -DENABLE_WERROR=ON -DENABLE_ASAN=ON -DENABLE_UBSAN=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(BUILD_SAN) -j$(JOBS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -LE integration

# Short libFuzzer runs of every parser over its committed seed corpus.
fuzz:
	cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=clang -DBUILD_FUZZERS=ON -DBUILD_TESTING=OFF
	cmake --build $(BUILD_FUZZ) -j$(JOBS)
	./tests/fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

# The long run: 10 million executions per parser (FUZZ_RUNS), new coverage
# merged into the committed corpus. Not part of `make test` (~30 minutes).
FUZZ_RUNS ?= 10000000
fuzz-long:
	cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=clang -DBUILD_FUZZERS=ON -DBUILD_TESTING=OFF
	cmake --build $(BUILD_FUZZ) -j$(JOBS)
	./tests/fuzz/long.sh $(BUILD_FUZZ) $(FUZZ_RUNS)

# Benchmark scripts (they print numbers beside nginx and RGW; see
# BENCHMARKS.md). Not part of `make test`.
bench: build
	./deploy/install-deps.sh bench
	./tests/bench/run_all.sh --binary $(BUILD)/gomirror

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
