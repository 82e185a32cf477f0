# veil — see README.md. Every target installs what it needs on a fresh Debian 12 (as root).
SHELL := /bin/bash
.DEFAULT_GOAL := build

VEIL := $(CURDIR)/.build/release/veil
SWIFT_RELEASE := swift build -c release --static-swift-stdlib --disable-local-rpath
DEBIAN_PACKAGES := containerd runc busybox-static umoci libseccomp-dev jq pkg-config python3 iproute2 util-linux procps \
	qemu-system-x86 cpio golang-github-containers-common runsc podman conmon debootstrap gcc libc6-dev containernetworking-plugins \
	docker-registry skopeo apache2-utils openssl libstdc++-12-dev
DEMO_DIR ?= /tmp/veil-demo

.PHONY: deps build rootfs demo test unit-test vm-test bench probes clean install protos

# apt-get only what is missing, so a warm machine spends no time here.
deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@# sd-bus's headers for the systemd cgroup driver, at the installed libsystemd0's version: the
	@# newest libsystemd-dev would upgrade systemd itself on the build machine.
	@dpkg -s libsystemd-dev >/dev/null 2>&1 || { version=$$(dpkg-query -W -f='$${Version}' libsystemd0); \
		echo "installing: libsystemd-dev=$$version"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libsystemd-dev=$$version || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libsystemd-dev=$$version; }; }

build: deps
	$(SWIFT_RELEASE)

demo: build
	rm -rf $(DEMO_DIR)
	VEIL=$(VEIL) scripts/make-bundle.sh $(DEMO_DIR) sh -c 'echo "hello from veil: hostname=$$(hostname) pid=$$$$ uid=$$(id -u)"; echo "mounts: $$(wc -l < /proc/self/mounts)"'
	jq '.linux.cgroupsPath = "/veil-demo/demo"' $(DEMO_DIR)/config.json > $(DEMO_DIR)/config.json.new && mv $(DEMO_DIR)/config.json.new $(DEMO_DIR)/config.json
	$(VEIL) --root /run/veil-demo run --bundle $(DEMO_DIR) veil-demo-$$$$

# The Debian rootfs of the workload tests (python3, nginx, redis), cached in /var/cache/veil/rootfs:
# about 100 s the first time, then a cache hit.
rootfs: deps
	scripts/debian-rootfs.sh

# Unit tests of every module plus the machine and end-to-end suites (real cgroups, real containers,
# real containerd), as root. Two passes: the ttrpc tests (the protocol's, and Go's ttrpc through
# containerd) are async and run on Swift's cooperative pool (as wide as the cores), which the
# end-to-end suites' blocking calls hold for minutes on a 2-core machine.
TEST_ENV = VEIL_BINARY=$(VEIL) VEIL_REQUIRED=1 VEIL_DEBIAN_ROOTFS=$$(scripts/debian-rootfs.sh)
ASYNC_TESTS := TTRPCTests|ContainerdInteropTests
test: build rootfs
	python3 scripts/check-module-deps.py
	swift build --build-tests
	$(TEST_ENV) swift test --skip-build --filter '$(ASYNC_TESTS)' 2>&1 | tee .build/test.log; status=$${PIPESTATUS[0]}; \
	$(TEST_ENV) swift test --skip-build --skip '$(ASYNC_TESTS)' 2>&1 | tee -a .build/test.log; s=$${PIPESTATUS[0]}; \
	[ $$status -ne 0 ] || status=$$s; exit $$status

# Package.swift's dependencies against the imports, then every test target but the two that need the
# machine (root, cgroups, containerd, the built binaries): hermetic, as any user, in seconds on a warm
# build. A new unit target is included without an edit here.
MACHINE_TESTS := VeilMachineTests|VeilRuntimeTests
unit-test:
	python3 scripts/check-module-deps.py
	swift test --skip '^($(MACHINE_TESTS))\.'

# The cgroup v2 checks in a qemu guest (also part of make test), then the systemd cgroup driver
# checks in a Debian guest with systemd as PID 1 (runc, then veil at both levels; VEIL_GUEST_RUNTIMES
# picks; its image is built once, 1-3 minutes, and cached in /var/cache/veil/vm).
vm-test: build
	tests/vm/run-guest.sh --veil $(VEIL)
	tests/vm/run-systemd-guest.sh --veil $(VEIL)

# runc, runsc and veil at both isolation levels side by side (about 8-10 minutes on the 2-core dev
# machine), start-up idle, under CPU contention and in bursts (issue 17, about 3 more minutes), then
# profiles pulled from a registry against a Localhost profile; every script always runs, the worse
# exit status wins. Results in bench/results/.
# BASELINE=REV adds veil built at REV (bench/baseline.sh, cached outside the clone) beside the
# others in the same rounds, and the verdicts compare the sandbox level with it (no regression: <= 1.05x).
bench: build
	@status=0; base=""; \
	if [ -n "$(BASELINE)" ]; then base="--baseline-veil $$(bench/baseline.sh $(BASELINE))" || exit 2; fi; \
	python3 bench/bench.py --veil $(VEIL) $$base || status=$$?; \
	python3 bench/syscalls.py --veil $(VEIL) --rss $$base || { s=$$?; [ $$s -gt $$status ] && status=$$s; }; \
	python3 bench/startup.py --veil $(VEIL) || { s=$$?; [ $$s -gt $$status ] && status=$$s; }; \
	python3 bench/seccomp_artifacts.py --veil $(VEIL) || { s=$$?; [ $$s -gt $$status ] && status=$$s; }; \
	bench/systemd-guest.sh $(VEIL) || { s=$$?; [ $$s -gt $$status ] && status=$$s; }; \
	bench/checkpoint-guest.sh $(VEIL) || { s=$$?; [ $$s -gt $$status ] && status=$$s; }; \
	exit $$status

# The escape-surface table (tests/security/probe.c) and the kernel-exploit entry points
# (tests/security/exploit-probe.c, default and privileged pods) under veil sandbox/native, runc and
# runsc; the second table is saved in bench/results/. Both always run; the worse exit status wins.
probes: build
	@status=0; \
	tests/security/run-probes --veil $(VEIL) || status=$$?; \
	tests/security/run-exploit-probes --veil $(VEIL) --save bench/results/$$(date -u +%Y%m%dT%H%M%SZ)-exploit-probes.md \
		|| { s=$$?; [ $$s -gt $$status ] && status=$$s; }; \
	exit $$status

install: build
	install -m 0755 $(VEIL) /usr/local/bin/veil
	install -m 0755 $(dir $(VEIL))containerd-shim-veil-v1 /usr/local/bin/containerd-shim-veil-v1
	install -m 0755 $(dir $(VEIL))veil-warden /usr/local/bin/veil-warden
	install -m 0755 $(dir $(VEIL))veil-verify /usr/local/bin/veil-verify
	install -m 0755 $(dir $(VEIL))veil-checkpoint /usr/local/bin/veil-checkpoint

clean:
	rm -rf .build

# Regenerates the committed Swift code of protos/ (protoc + protoc-gen-swift, built once and cached).
protos:
	scripts/gen-protos.sh
