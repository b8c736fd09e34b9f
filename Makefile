# Thin wrapper over CMake. `make train` and `make test` install what they need.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local

.PHONY: all build test train sanitize install clean

all: build

build:
	@scripts/deps.sh build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

test:
	@scripts/deps.sh test
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure

# --overwrite: a second `make train` replaces the finished run in models/ (the
# quick start is meant to be run again); an unfinished one is never replaced.
train: build
	@scripts/deps.sh train
	$(BUILD)/fmnist train --overwrite $(TRAIN_ARGS)

# Unit tests under AddressSanitizer and UndefinedBehaviorSanitizer.
sanitize:
	@scripts/deps.sh build
	cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Debug -DFM_SANITIZE=ON
	cmake --build build-san -j $(JOBS)
	cd build-san && ctest --output-on-failure -L unit

# The CLI, the libraries, the header, fmnist.pc and the CMake package under
# PREFIX (DESTDIR=... stages them elsewhere, as for a package).
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) build-san
