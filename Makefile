# skyfs build, test and run targets. A plain build needs only Go: the generated
# protobuf code is committed, and `make proto` regenerates it.

GO       ?= go
BIN      := bin
BINARIES := masterd mountd skyfs csi
PREFIX   ?= /usr/local
FUZZTIME ?= 15s

.PHONY: all build test unit fuzz bench posix proto run install clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

# The whole test suite: vet, unit and integration tests, and a short run of every fuzz
# target. Needs root and /dev/fuse for the mount tests, and `minio` on PATH for S3.
test: build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...
	$(MAKE) fuzz

# Every fuzz target of every package, one after the other (scripts/fuzz.sh).
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# pjdfstest, the POSIX conformance suite, on a mount of a local UFS directory
# and on a mount of a MinIO bucket, each of its own three-master cluster
# (integration/pjdfstest_test.go runs scripts/pjdfstest.sh on both, side by
# side). A test that fails must be listed in scripts/pjdfstest-known-*.txt
# with its reason. Needs root, /dev/fuse, `minio` on PATH, and autoconf,
# automake, libtool and perl to build the suite.
posix: build
	SKYFS_PJDFSTEST=1 SKYFS_REQUIRE_MINIO=1 $(GO) test -count=1 -timeout 40m -run '^TestPJDFSTest$$' -v ./integration

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

proto:
	protoc --proto_path=proto \
		--go_out=proto --go_opt=paths=source_relative \
		--go-grpc_out=proto --go-grpc_opt=paths=source_relative \
		$$(cd proto && find . -name '*.proto' | sed 's|^\./||')

# A local skyfs: three masters on loopback and, once built, a mount at ./mnt.
run: build
	@scripts/run.sh

install: build
	install -m 0755 $(BIN)/masterd $(BIN)/mountd $(BIN)/skyfs $(PREFIX)/bin/
	install -m 0755 $(BIN)/csi $(PREFIX)/bin/skyfs-csi
	install -m 0755 $(BIN)/mountd /sbin/mount.skyfs

clean:
	rm -rf $(BIN)
