# ward — build, test, install.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
MANDIR = $(DESTDIR)$(PREFIX)/share/man/man1
CARGO ?= cargo
TARGET ?= $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')

.PHONY: all test lint install install-pm2-link uninstall static clean bench bench-quick fuzz soak

all:
	$(CARGO) build --release

# What CI runs: unit tests, integration tests against the real binary, lints.
test:
	$(CARGO) test --all-targets
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) fmt --check

lint:
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) fmt --check

# ward side by side with pm2 (PM2_BIN, or pm2 on PATH; ward alone without it). Not part
# of `make test`: timings belong to a quiet machine, not to CI. ARGS=--json for JSON.
bench:
	$(CARGO) build --release
	$(CARGO) run --release --example bench -- $(ARGS)

bench-quick:
	$(CARGO) build --release
	$(CARGO) run --release --example bench -- --quick $(ARGS)

# cargo-fuzz targets for the parsers (fuzz/): FUZZ_SECONDS each (default 600), FUZZ_PARALLEL
# at a time (default 2), at nice 19. Needs `cargo install cargo-fuzz`; stable works with
# RUSTC_BOOTSTRAP=1 (set by fuzz/run.sh). TARGETS="cron yaml…" runs only those.
fuzz:
	fuzz/run.sh $(TARGETS)

# Random start/stop/restart/delete/scale/crash traffic against a model (tests/soak.rs):
# SOAK_SECONDS (default 1800) on SOAK_APPS apps (default 200). `make test` runs it for 60 s
# on 20 apps. WARD_SOAK_SEED=N replays a run.
SOAK_SECONDS ?= 1800
SOAK_APPS ?= 200
soak:
	WARD_SOAK_SECS=$(SOAK_SECONDS) WARD_SOAK_APPS=$(SOAK_APPS) $(CARGO) test --test soak -- --nocapture

install: all
	install -d $(BINDIR) $(MANDIR)
	install -m 0755 target/release/ward $(BINDIR)/ward
	install -m 0644 man/ward.1 $(MANDIR)/ward.1

# `pm2` as a link to ward: pm2's home (~/.pm2), file names and output, for a drop-in swap.
install-pm2-link: install
	ln -sf ward $(BINDIR)/pm2

uninstall:
	rm -f $(BINDIR)/ward $(MANDIR)/ward.1
	if [ -L $(BINDIR)/pm2 ]; then rm -f $(BINDIR)/pm2; fi

# A statically linked binary, for minimal containers.
static:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --target $(TARGET)
	@echo "built target/$(TARGET)/release/ward"

clean:
	$(CARGO) clean
