# Thin wrapper: meson builds, scripts/ does the rest. Run as root.
.PHONY: all build test demo bench clean deps

all: build

deps:
	scripts/install-deps

build: deps
	[ -f build/build.ninja ] || meson setup build -Dwerror=true
	ninja -C build

test:
	scripts/run-tests

demo: build
	/usr/bin/python3 tests/lab/demo.py

bench: build
	bench/failover

clean:
	rm -rf build build-asan
