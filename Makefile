# wharf: make run serves ./public anonymously on port 2121; make test runs every test.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOLANGCI_LINT := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.13.1

.PHONY: all build run test fuzz lint fmt vet clean stress bench bench-quick image

# podman, or docker where that is what the machine has.
CONTAINER ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)
IMAGE     ?= localhost/wharf:latest

all: build

## build: write the static binary bin/wharf
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/wharf ./cmd/wharf

## run: serve ./public anonymously, read-only, on port 2121 (creates ./public with a README.txt)
run: build public/README.txt
	./bin/wharf

public/README.txt:
	@mkdir -p public
	@printf 'This is wharf, serving ./public read-only.\nPut files in ./public to publish them; see README.md to add accounts and TLS.\n' > $@

## test: the whole test suite with the race detector, then each Go benchmark once as a smoke test
## (needs curl, lftp, wget, rclone, python3, chromium, podman and a MinIO, which .ci/run installs and starts)
test:
	$(GO) test -race -count=1 -timeout 10m ./...
	$(GO) test -run '^$$' -bench . -benchtime=1x -count=1 ./...

## fuzz: run each fuzz target for a short while (their seed corpora already run in make test)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzParseSize$$' -fuzztime 30s ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzEnv$$' -fuzztime 30s ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzResolve$$' -fuzztime 30s ./vfs/
	$(GO) test -run '^$$' -fuzz '^FuzzCommandLine$$' -fuzztime 30s ./server/
	$(GO) test -run '^$$' -fuzz '^FuzzMatch$$' -fuzztime 30s ./server/
	$(GO) test -run '^$$' -fuzz '^FuzzHeader$$' -fuzztime 30s ./internal/proxyproto/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./sums/

## stress: the abuse scenarios against a real wharf on loopback, with figures and PASS/FAIL (not part of make test)
stress: build
	$(GO) run ./stress -wharf bin/wharf

## bench: wharf against vsftpd, pure-ftpd and ProFTPD (installed, or fetched once into ~/.cache/wharf-bench),
## 5 interleaved rounds, with the curves of how cost grows; writes bench/results/<date>/ (see bench/README.md)
bench: build
	$(GO) run ./bench -wharf bin/wharf -rounds 5

## bench-quick: one round of a subset of the benchmark, the curves' smaller points included (about 3 minutes)
bench-quick: build
	$(GO) run ./bench -wharf bin/wharf -quick

## image: build the container image localhost/wharf:latest (FROM scratch, static binary, non-root)
image: build
	rm -rf build/image
	mkdir -p build/image/usr/local/bin build/image/etc/wharf build/image/tmp
	mkdir -p build/image/srv/ftp/public build/image/srv/ftp/home
	cp bin/wharf build/image/usr/local/bin/wharf
	cp deploy/image-wharf.toml build/image/etc/wharf/wharf.toml
	printf 'Served by wharf. Mount your files at /srv/ftp: this folder is /srv/ftp/public.\n' > build/image/srv/ftp/public/README.txt
	test -n "$(CONTAINER)" || (echo "make image needs podman or docker" >&2 && false)
	$(CONTAINER) build $(if $(findstring podman,$(CONTAINER)),--format docker,) -t $(IMAGE) .

## lint: go vet, staticcheck and golangci-lint at pinned versions
lint: vet
	test -z "$$(gofmt -l .)" || (gofmt -l . && false)
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(GOLANGCI_LINT) run ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -w .

clean:
	rm -rf bin build
