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
# The libvirt binding loads libvirt.so.0 at run time (dlopen) and leaves out
# the LXC, QEMU and admin libraries nothing here calls: the binaries link
# only glibc (libc, libpthread, libdl, libresolv) and load on any libvirt
# that has the calls they make (2.0.0 or newer; README, Requirements).
GOTAGS ?= $(shell scripts/gotags.sh)
# The cgo binaries (nchookd, kscloud) are linked against Debian 11's glibc
# 2.31 (libc6-dev unpacked into a sysroot by scripts/sysroot.sh, cached in
# /var/cache/kscloud-build): they reference no glibc symbol newer than
# GLIBC_2.17 and load on CentOS 7 and newer; scripts/test-compat.sh checks
# it. OLD_GLIBC= (empty) links them against the build machine's glibc.
OLD_GLIBC ?= 1
CGO_CC = $(if $(OLD_GLIBC),$$(scripts/sysroot.sh --cc),$(CC))
# Package version: the tag, else 0.0.0+git<commit date>.<commit> (sorts by date).
PKG_VERSION ?= $(shell scripts/pkgversion.sh)
PKG_ARCH ?= $(shell go env GOARCH)
# A packaged binary's --version is its package's version.
PKG_LDFLAGS = -X main.version=$(PKG_VERSION)

.PHONY: help demo build test e2e bench test-installer install packages test-packages test-systemd clean fmt

help: ## show this help
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/nchookd, bin/kscloud, the static Go hooks bin/nchookd-euca-hook, bin/nchookd-one-deploy and bin/nchookd-one-monitor, and the static nc-hooks dispatcher bin/nc-hook
	cc="$(CGO_CC)" && CC="$$cc" go build -tags '$(GOTAGS)' -ldflags '$(LDFLAGS)' -o bin/ ./cmd/nchookd ./cmd/kscloud
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS) -s -w' -o bin/nchookd-euca-hook ./hooks/eucalyptus
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS) -s -w' -o bin/nchookd-one-deploy ./hooks/opennebula
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS) -s -w' -o bin/nchookd-one-monitor ./hooks/opennebula/monitor
	$(CC) -static -s -O2 -Wall -Wextra -Werror -DNCHOOKD_HOOK='"$(LIBEXECDIR)/nchookd-euca-hook"' -o bin/nc-hook hooks/eucalyptus/dispatch/nc-hook.c

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

install: build ## install binaries, the Eucalyptus hook, the OpenNebula deploy wrapper (put in place on a frontend), systemd units and default config (DESTDIR honoured; packages are better: make packages)
	install -D -m 0755 bin/nchookd $(DESTDIR)$(PREFIX)/sbin/nchookd
	install -D -m 0755 bin/kscloud $(DESTDIR)$(PREFIX)/bin/kscloud
	install -D -m 0755 bin/nchookd-euca-hook $(DESTDIR)$(LIBEXECDIR)/nchookd-euca-hook
	install -D -m 0755 bin/nc-hook $(DESTDIR)/etc/eucalyptus/nc-hooks/nchookd
	install -D -m 0755 bin/nchookd-one-deploy $(DESTDIR)$(LIBEXECDIR)/nchookd-one-deploy
	install -d $(DESTDIR)$(PREFIX)/share/nchookd/opennebula
	sed 's|^HOOK=/usr/lib/nchookd/|HOOK=$(LIBEXECDIR)/|' hooks/opennebula/deploy >$(DESTDIR)$(PREFIX)/share/nchookd/opennebula/deploy
	chmod 0755 $(DESTDIR)$(PREFIX)/share/nchookd/opennebula/deploy
	install -D -m 0755 bin/nchookd-one-monitor $(DESTDIR)$(LIBEXECDIR)/nchookd-one-monitor
	sed 's|^PROBE=/usr/lib/nchookd/|PROBE=$(LIBEXECDIR)/|' hooks/opennebula/nchookd-probe >$(DESTDIR)$(PREFIX)/share/nchookd/opennebula/nchookd-probe
	chmod 0755 $(DESTDIR)$(PREFIX)/share/nchookd/opennebula/nchookd-probe
	sed -e 's|:-/usr/share/nchookd/opennebula/deploy}|:-$(PREFIX)/share/nchookd/opennebula/deploy}|' -e 's|:-/usr/share/nchookd/opennebula/nchookd-probe}|:-$(PREFIX)/share/nchookd/opennebula/nchookd-probe}|' hooks/opennebula/nchookd-one-setup >$(DESTDIR)$(LIBEXECDIR)/nchookd-one-setup
	chmod 0755 $(DESTDIR)$(LIBEXECDIR)/nchookd-one-setup
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's|/usr/sbin/|$(PREFIX)/sbin/|g' packaging/nchookd.service >$(DESTDIR)$(PREFIX)/lib/systemd/system/nchookd.service
	install -m 0644 packaging/nchookd.socket $(DESTDIR)$(PREFIX)/lib/systemd/system/nchookd.socket
	install -D -m 0644 packaging/nchookd.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/nchookd.conf
	install -D -m 0644 packaging/nchookd.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/nchookd.conf
	install -D -m 0644 packaging/man/kscloud.1 $(DESTDIR)$(PREFIX)/share/man/man1/kscloud.1
	install -D -m 0644 packaging/man/nchookd.8 $(DESTDIR)$(PREFIX)/share/man/man8/nchookd.8
	@if [ -e $(DESTDIR)/etc/nchookd/nchookd.toml ]; then \
		echo "keeping existing $(DESTDIR)/etc/nchookd/nchookd.toml"; \
	else \
		install -D -m 0644 packaging/nchookd.toml $(DESTDIR)/etc/nchookd/nchookd.toml; \
	fi
	@# An OpenNebula frontend (not a staged install): the deploy wrapper goes
	@# in place, OpenNebula's own script moves to deploy.one.
	@if [ -z "$(DESTDIR)" ] && [ -f /var/lib/one/remotes/vmm/kvm/deploy ]; then \
		$(LIBEXECDIR)/nchookd-one-setup enable; \
	fi

packages: ## build/packages/: nchookd and kscloud as .deb and .rpm (nfpm, pinned in packaging/tools/go.mod)
	rm -rf build/pkg && mkdir -p build/pkg/bin build/packages
	cc="$(CGO_CC)" && CC="$$cc" go build -trimpath -tags '$(GOTAGS)' -ldflags '$(PKG_LDFLAGS) -s -w' -o build/pkg/bin/ ./cmd/nchookd ./cmd/kscloud
	CGO_ENABLED=0 go build -trimpath -ldflags '$(PKG_LDFLAGS) -s -w' -o build/pkg/bin/nchookd-euca-hook ./hooks/eucalyptus
	CGO_ENABLED=0 go build -trimpath -ldflags '$(PKG_LDFLAGS) -s -w' -o build/pkg/bin/nchookd-one-deploy ./hooks/opennebula
	CGO_ENABLED=0 go build -trimpath -ldflags '$(PKG_LDFLAGS) -s -w' -o build/pkg/bin/nchookd-one-monitor ./hooks/opennebula/monitor
	$(CC) -static -s -O2 -Wall -Wextra -Werror -DNCHOOKD_HOOK='"/usr/lib/nchookd/nchookd-euca-hook"' -o build/pkg/bin/nc-hook hooks/eucalyptus/dispatch/nc-hook.c
	gzip -9n <packaging/man/nchookd.8 >build/pkg/nchookd.8.gz
	gzip -9n <packaging/man/kscloud.1 >build/pkg/kscloud.1.gz
	build/pkg/bin/kscloud completion bash >build/pkg/kscloud.bash
	build/pkg/bin/kscloud completion zsh >build/pkg/_kscloud
	build/pkg/bin/kscloud completion fish >build/pkg/kscloud.fish
	go build -C packaging/tools -o ../../build/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm
	rm -f build/packages/*
	for p in nchookd kscloud; do for f in deb rpm; do \
		PKG_VERSION='$(PKG_VERSION)' PKG_ARCH='$(PKG_ARCH)' build/nfpm package --config packaging/nfpm/$$p.yaml --packager $$f --target build/packages/ || exit 1; \
	done; done
	@ls -l build/packages/

test-packages: packages ## install test: the .deb and .rpm into a debootstrapped Debian root; portability: glibc floor, static hooks, the binaries in a Debian 11 root (root; the roots cached in /var/cache/kscloud-test)
	scripts/test-packages.sh
	scripts/test-compat.sh

test-systemd: packages ## the packaged nchookd.service under a real systemd: the .deb in the Debian root booted with systemd-nspawn (root); systemd-analyze security, the hook served by the sandboxed daemon
	scripts/test-systemd.sh

fmt: ## gofmt the tree
	gofmt -w cmd hooks internal

clean: ## remove build outputs
	rm -rf bin build
