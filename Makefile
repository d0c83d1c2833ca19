# devbox — see README.md. `make test` is the test command CI runs.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -s -w -X github.com/devbox-dev/devbox/cmd/root.Version=$(VERSION) -X github.com/devbox-dev/devbox/cmd/root.Commit=$(COMMIT)

.PHONY: build install test test-vm bench-vm unit lint bench fuzz clean try completions man release-check

# The box init and the network helper (cmd/devbox-init, cmd/devbox-net) are
# built first and embedded in the full CLI (cmd/devbox-cli), which is
# embedded in devbox, the small front users run (cmd/devbox; internal/libexec,
# docs/architecture.md "Front"). BIN=path builds elsewhere (test/, bench/ use it).
BIN       ?= bin/devbox
GOARCH    ?= $(shell $(GO) env GOARCH)
build:
	GO=$(GO) DEVBOX_CLI_LDFLAGS='$(LDFLAGS)' ./internal/libexec/build.sh $(GOARCH)
	CGO_ENABLED=0 GOARCH=$(GOARCH) $(GO) build -trimpath -tags devbox_embedcli -ldflags '-s -w' -o $(BIN) ./cmd/devbox

install: build
	install -D -m 0755 bin/devbox $(or $(DESTDIR),$(HOME)/.local)/bin/devbox

# As root: provisions the machine (packages, test user, registry, images)
# and runs every test as the unprivileged test user. As a normal user: runs
# what it can and prints SKIP with the reason for the rest.
test:
	./test/run.sh

# As root: boots a Debian kernel under QEMU (TCG) on pure cgroup v2 and
# proves devbox's resource limits there (test/vm/rig.sh, docs/cgroups.md).
test-vm:
	./test/vm/rig.sh

# As root: the start-up benchmark (bench/suite-desktop.sh) in the VM rig's
# systemd guest, beside bwrap and crun (slow under TCG; CI does not run it).
# The same suite on this machine: bench/run.sh desktop.
bench-vm:
	DEVBOX_VM_INITRAMFS=0 DEVBOX_VM_BENCH=1 DEVBOX_VM_TIMEOUT=$${DEVBOX_VM_TIMEOUT:-1800} ./test/vm/rig.sh

# The main job on a fresh machine of this kind (offline: a local mirror).
try:
	./test/try.sh

unit:
	$(GO) test -race ./...

lint:
	test -z "$$(gofmt -l . | tee /dev/stderr)"
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) vet -tags vm ./test/vm/

FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzApply -fuzztime=60s ./image/unpack/
	$(GO) test -run='^$$' -fuzz='^FuzzParsePlatform$$' -fuzztime=$(FUZZTIME) ./image/
	$(GO) test -run='^$$' -fuzz='^FuzzResolve$$' -fuzztime=$(FUZZTIME) ./image/
	$(GO) test -run='^$$' -fuzz='^FuzzEnvFlag$$' -fuzztime=$(FUZZTIME) ./runtime/
	$(GO) test -run='^$$' -fuzz='^FuzzParsePort$$' -fuzztime=$(FUZZTIME) ./network/
	$(GO) test -run='^$$' -fuzz='^FuzzArgKinds$$' -fuzztime=$(FUZZTIME) ./cmd/cmdutil/
	$(GO) test -run='^$$' -fuzz='^FuzzHostFiles$$' -fuzztime=$(FUZZTIME) ./doctor/
	$(GO) test -run='^$$' -fuzz='^FuzzParseFileCaps$$' -fuzztime=$(FUZZTIME) ./doctor/

# Shell completions are committed (completions_test.go checks them); man
# pages are generated at release time into man/ (not committed).
completions:
	./completions/generate.sh

man:
	$(GO) run ./cmd/devbox/gendocs -out man -version $(VERSION)

# goreleaser check + a snapshot build of every release artifact (test/run.sh
# runs it as root).
release-check:
	bash test/release-check.sh

bench: build
	./bench/run.sh

clean:
	rm -rf bin
