# kscloud / nchookd — run 'make help' for the targets.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
PREFIX ?= /usr
DESTDIR ?=

.PHONY: help build test e2e bench test-installer install clean fmt

help: ## show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/nchookd, bin/kscloud and the static Eucalyptus hook bin/nchookd-euca-hook
	go build -ldflags '$(LDFLAGS)' -o bin/ ./cmd/nchookd ./cmd/kscloud
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS) -s -w' -o bin/nchookd-euca-hook ./hooks/eucalyptus

test: ## everything CI runs: installs missing Debian packages, starts libvirtd as root, runs all tests
	scripts/test.sh

e2e: ## only the real-libvirt end-to-end tests (root)
	GOTESTFLAGS='-run E2E' scripts/test.sh

bench: build ## benchmarks: hook latency, rewrite cost (see README)
	go test -run '^$$' -bench . -benchmem ./...

test-installer: ## build the small test installer into build/test-installer/
	test/installer/build.sh build/test-installer

fmt: ## gofmt the tree
	gofmt -w cmd hooks internal

clean: ## remove build outputs
	rm -rf bin build
