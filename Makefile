# The two set-up commands of the README are `make demo` and `make test`.
PY ?= python3
PIP = $(PY) -m pip
# libstdc++ is preloaded too: without it torch's own C++ exceptions abort under ASan.
ASAN_ENV = LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so) $$(gcc -print-file-name=libstdc++.so)" \
           ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: install install-test toolchain demo test test-sanitize test-wheel bench

install:
	$(PIP) install -q torch==2.13.0   # the CPU wheel; pinned so no CUDA build is pulled
	$(PIP) install -q -e .

# the tests' oracles too: ptflops, TensorFlow (to convert) and the TFLite Micro interpreter
install-test:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[test,oracle]"
	$(PIP) install -q --no-deps tf-keras==2.21.0   # Keras 2, for the fused LSTM; its metadata asks for full tensorflow

# Cortex-M33 cross toolchain + QEMU for firmware and validation (minimal set, no recommends), if missing.
toolchain:
	@if ! command -v arm-none-eabi-g++ >/dev/null || ! command -v qemu-system-arm >/dev/null; then \
	  SUDO=$$(command -v sudo >/dev/null && [ "$$(id -u)" != 0 ] && echo sudo || true); \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends \
	    gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev qemu-system-arm; \
	fi

# the main job on the built-in data: search, fine-tune, int8, firmware, report in runs/demo (a few minutes)
demo: install toolchain
	harcore search --out runs/demo

# everything but the wheel tests (`make test-wheel`, which CI runs on its own)
test: install-test toolchain
	$(PY) -m pytest -q -m "not wheel"

# The C++-facing tests once more against a build with AddressSanitizer + UBSan.
# Installs a sanitized, non-editable build; `make install` (or `make test`) restores the normal one.
test-sanitize:
	$(PIP) install -q torch==2.13.0 scikit-build-core pybind11 pytest hypothesis ptflops==0.7.5 \
		tensorflow-cpu==2.21.0 tflite-micro==0.dev20261023182759
	$(PIP) install -q --no-deps tf-keras==2.21.0
	$(PIP) install -q --no-build-isolation . -Cbuild-dir=build/asan -Ccmake.define.HARCORE_SANITIZE=ON
	cd /tmp && $(ASAN_ENV) $(PY) -m pytest -q -m sanitize -p no:cacheprovider --rootdir=$(CURDIR) $(CURDIR)/tests

# The wheel as users get it: built from this checkout, installed alone into a fresh venv (the dependencies come
# from this interpreter's site-packages), then `harcore search` (quick path), `deploy` and `validate` run from a
# temporary folder with no HARCORE_FIRMWARE_DIR (tests/test_wheel.py; a few minutes, most of it the C++ build).
test-wheel: toolchain
	$(PIP) install -q scikit-build-core pybind11 pytest
	cd /tmp && env -u HARCORE_FIRMWARE_DIR $(PY) -m pytest -q -m wheel -p no:cacheprovider --rootdir=$(CURDIR) \
		$(CURDIR)/tests/test_wheel.py

bench:
	$(PIP) install -q -e ".[bench]"
	$(PY) benchmarks/bench_cost.py
