# kscloud / nchookd — run 'make help' for the targets.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
PREFIX ?= /usr
DESTDIR ?=
# The Go hook lives outside nc-hooks (the NC runs every executable there for
# every event); the static dispatcher installed into nc-hooks execs it.
LIBEXECDIR ?= $(PREFIX)/lib/nchookd
CC ?= cc

.PHONY: help demo build test e2e bench test-installer install clean fmt

help: ## show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/nchookd, bin/kscloud, the static Go hook bin/nchookd-euca-hook and its static nc-hooks dispatcher bin/nc-hook
	go build -ldflags '$(LDFLAGS)' -o bin/ ./cmd/nchookd ./cmd/kscloud
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS) -s -w' -o bin/nchookd-euca-hook ./hooks/eucalyptus
	$(CC) -static -s -O2 -Wall -Werror -DNCHOOKD_HOOK='"$(LIBEXECDIR)/nchookd-euca-hook"' -o bin/nc-hook hooks/eucalyptus/dispatch/nc-hook.c

demo: ## the main job on local libvirt (README's first command)
	scripts/demo.sh

test: ## everything CI runs: installs missing Debian packages, starts libvirtd as root, runs all tests
	scripts/test.sh

e2e: ## only the real-libvirt end-to-end tests (root)
	GOTESTFLAGS='-run E2E' scripts/test.sh

bench: ## benchmarks: hook latency, rewrite/parse cost, local and ec2 bake overhead, ec2 requests per bake, 10 GiB image conversion (BENCH=regexp)
	scripts/bench.sh

test-installer: ## build the small test installer into build/test-installer/
	test/installer/build.sh build/test-installer

install: build ## install binaries, the Eucalyptus hook, systemd units and default config (DESTDIR honoured)
	install -D -m 0755 bin/nchookd $(DESTDIR)$(PREFIX)/sbin/nchookd
	install -D -m 0755 bin/kscloud $(DESTDIR)$(PREFIX)/bin/kscloud
	install -D -m 0755 bin/nchookd-euca-hook $(DESTDIR)$(LIBEXECDIR)/nchookd-euca-hook
	install -D -m 0755 bin/nc-hook $(DESTDIR)/etc/eucalyptus/nc-hooks/nchookd
	install -D -m 0644 packaging/nchookd.service $(DESTDIR)/lib/systemd/system/nchookd.service
	install -D -m 0644 packaging/nchookd.socket $(DESTDIR)/lib/systemd/system/nchookd.socket
	install -D -m 0644 packaging/nchookd.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/nchookd.conf
	install -D -m 0644 packaging/man/kscloud.1 $(DESTDIR)$(PREFIX)/share/man/man1/kscloud.1
	install -D -m 0644 packaging/man/nchookd.8 $(DESTDIR)$(PREFIX)/share/man/man8/nchookd.8
	@if [ -e $(DESTDIR)/etc/nchookd/nchookd.toml ]; then \
		echo "keeping existing $(DESTDIR)/etc/nchookd/nchookd.toml"; \
	else \
		install -D -m 0644 packaging/nchookd.toml $(DESTDIR)/etc/nchookd/nchookd.toml; \
	fi

fmt: ## gofmt the tree
	gofmt -w cmd hooks internal

clean: ## remove build outputs
	rm -rf bin build
