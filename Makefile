# ward — build, test, install, package.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
SHAREDIR = $(DESTDIR)$(PREFIX)/share
MANDIR = $(SHAREDIR)/man/man1
BASHCOMPDIR = $(SHAREDIR)/bash-completion/completions
ZSHCOMPDIR = $(SHAREDIR)/zsh/site-functions
FISHCOMPDIR = $(SHAREDIR)/fish/vendor_completions.d
DOCDIR = $(SHAREDIR)/doc/ward
CARGO ?= cargo
# A ward binary already built (tests, packagers): install it instead of building one.
WARD_BIN ?=
BIN = $(or $(WARD_BIN),target/release/ward)
VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
DEB_ARCH = $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
# Where `make deb` stages the tree and writes ward_VERSION_ARCH.deb.
DEB_DIR ?= target/deb

.PHONY: all test lint install install-pm2-link uninstall static static-check deb clean bench bench-quick fuzz soak

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
bench: static
	$(CARGO) build --release
	WARD_STATIC_BIN=$(STATIC_BIN) $(CARGO) run --release --example bench -- $(ARGS)

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

# The binary, its man page, completions for bash, zsh and fish where those shells look,
# and the licence. bin/ward-runtime (a link to ward) once ward has the container runtime.
install: $(if $(WARD_BIN),,all)
	install -d $(BINDIR) $(MANDIR) $(BASHCOMPDIR) $(ZSHCOMPDIR) $(FISHCOMPDIR) $(DOCDIR)
	install -m 0755 $(BIN) $(BINDIR)/ward
	install -m 0644 man/ward.1 $(MANDIR)/ward.1
	$(BIN) completion bash > $(BASHCOMPDIR)/ward
	$(BIN) completion zsh > $(ZSHCOMPDIR)/_ward
	$(BIN) completion fish > $(FISHCOMPDIR)/ward.fish
	chmod 0644 $(BASHCOMPDIR)/ward $(ZSHCOMPDIR)/_ward $(FISHCOMPDIR)/ward.fish
	install -m 0644 LICENSE $(DOCDIR)/LICENSE
	@if $(BIN) help runtime >/dev/null 2>&1; then \
	  if [ ! -e $(BINDIR)/ward-runtime ] && [ ! -L $(BINDIR)/ward-runtime ]; then \
	    ln -s ward $(BINDIR)/ward-runtime; \
	    ln -sf ward.1 $(MANDIR)/ward-runtime.1; \
	  elif [ "$$(readlink $(BINDIR)/ward-runtime)" != ward ]; then \
	    echo "$(BINDIR)/ward-runtime exists and is not a link to ward: left as it is" >&2; \
	  fi; \
	fi

# `pm2` as a link to ward: pm2's home (~/.pm2), file names and output, for a drop-in swap.
# A pm2 that is not ours (npm's) is never replaced.
install-pm2-link: install
	@if [ ! -e $(BINDIR)/pm2 ] && [ ! -L $(BINDIR)/pm2 ]; then \
	  ln -s ward $(BINDIR)/pm2 && echo "linked $(BINDIR)/pm2 -> ward"; \
	elif [ "$$(readlink $(BINDIR)/pm2)" = ward ]; then \
	  echo "$(BINDIR)/pm2 already links to ward"; \
	else \
	  echo "$(BINDIR)/pm2 exists and is not ward ($$(readlink $(BINDIR)/pm2 || echo 'a file')): not replaced; remove it first (npm uninstall -g pm2) to link pm2 to ward" >&2; \
	  exit 1; \
	fi

# Removes what install put there; links named pm2 or ward-runtime only when they point
# at ward.
uninstall:
	if [ "$$(readlink $(MANDIR)/ward-runtime.1)" = ward.1 ]; then rm -f $(MANDIR)/ward-runtime.1; fi
	rm -f $(BINDIR)/ward $(MANDIR)/ward.1 $(BASHCOMPDIR)/ward $(ZSHCOMPDIR)/_ward \
	  $(FISHCOMPDIR)/ward.fish $(DOCDIR)/LICENSE
	-rmdir $(DOCDIR) 2>/dev/null
	@for l in pm2 ward-runtime; do \
	  if [ "$$(readlink $(BINDIR)/$$l)" = ward ]; then \
	    rm -f $(BINDIR)/$$l; \
	  elif [ -e $(BINDIR)/$$l ] || [ -L $(BINDIR)/$$l ]; then \
	    echo "$(BINDIR)/$$l is not ward's: left as it is"; \
	  fi; \
	done

# A statically linked binary, for minimal containers: musl, opt-level s, non-PIE.
# - musl: a static glibc binary costs 0.7 MB before ward's first byte and starts slower
#   (0.34 against 0.12 ms of CPU for `ward --version`); musl's string functions and
#   allocator are slower on bulk work, which opt-level 3 would win back at 0.9 MB more.
# - opt-level s: 4% more instructions than 3 on `jlist` of 1,000 apps (callgrind), where
#   z takes 60% more; 2.0 MB against 2.9 MB.
# - relocation-model=static: nothing to relocate at each start.
# - with musl, --wrap=memcpy: short copies skip musl's rep movsq (src/os/memcpy.rs); and
#   ward_small_alloc: `ls`, `jlist` and the like allocate from a pool (src/os/pool.rs).
# The musl target is added with rustup when it is missing. STATIC_TARGET=…-gnu builds a
# static glibc binary instead; STATIC_OPT=3 the fastest, biggest one.
HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
STATIC_TARGET ?= $(subst -gnu,-musl,$(HOST))
STATIC_OPT ?= s
STATIC_BIN = target/$(STATIC_TARGET)/release/ward
comma := ,
STATIC_RUSTFLAGS = $(if $(findstring -musl,$(STATIC_TARGET)),--cfg ward_wrap_memcpy -C link-arg=-Wl$(comma)--wrap=memcpy --cfg ward_small_alloc)
# What `make static-check` (CI) allows: 2 MiB.
STATIC_MAX ?= 2097152
static:
	@sysroot=$$(rustc --print sysroot); \
	if [ ! -d "$$sysroot/lib/rustlib/$(STATIC_TARGET)/lib" ]; then \
	  if command -v rustup >/dev/null 2>&1; then rustup target add $(STATIC_TARGET); \
	  else echo "make static: Rust's standard library for $(STATIC_TARGET) is not installed" >&2; exit 1; fi; \
	fi
	CARGO_PROFILE_RELEASE_OPT_LEVEL=$(STATIC_OPT) \
	RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static $(STATIC_RUSTFLAGS)" \
		$(CARGO) build --release --target $(STATIC_TARGET)
	@if ldd $(STATIC_BIN) >/dev/null 2>&1; then \
		echo "$(STATIC_BIN) is not static" >&2; exit 1; fi
	@echo "built $(STATIC_BIN) ($$(stat -c %s $(STATIC_BIN)) bytes, static)"

# CI: the static binary is at most STATIC_MAX bytes, has no program interpreter, and
# passes the smoke, persistence, logs, garbage-input, fault and SIGKILL tests.
static-check: static
	@size=$$(stat -c %s $(STATIC_BIN)); \
	if [ $$size -gt $(STATIC_MAX) ]; then \
	  echo "$(STATIC_BIN): $$size bytes, more than $(STATIC_MAX)" >&2; exit 1; fi; \
	if LC_ALL=C readelf -l $(STATIC_BIN) | grep -q 'INTERP'; then \
	  echo "$(STATIC_BIN) asks for a dynamic loader" >&2; exit 1; fi; \
	echo "$(STATIC_BIN): $$size bytes (at most $(STATIC_MAX)), static"
	WARD_TEST_BIN=$(abspath $(STATIC_BIN)) $(CARGO) test --test smoke --test persist \
	  --test logs --test faults --test resilience --test sigkill

# A Debian package of the install tree (PREFIX=/usr): ward_VERSION_ARCH.deb in DEB_DIR,
# checked with lintian when it is installed.
DEB_ROOT = $(DEB_DIR)/ward_$(VERSION)_$(DEB_ARCH)
DEB_FILE = $(DEB_DIR)/ward_$(VERSION)_$(DEB_ARCH).deb
deb: $(if $(WARD_BIN),,all)
	rm -rf $(DEB_ROOT) $(DEB_FILE)
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr \
	  WARD_BIN=$(abspath $(BIN))
	strip --strip-unneeded --remove-section=.comment --remove-section=.note \
	  $(DEB_ROOT)/usr/bin/ward
	gzip -9n $(DEB_ROOT)/usr/share/man/man1/ward.1
	if [ -L $(DEB_ROOT)/usr/share/man/man1/ward-runtime.1 ]; then \
	  rm $(DEB_ROOT)/usr/share/man/man1/ward-runtime.1; \
	  ln -s ward.1.gz $(DEB_ROOT)/usr/share/man/man1/ward-runtime.1.gz; \
	fi
	# Debian keeps the licence in copyright, and a native package has a changelog.
	{ echo 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/'; \
	  echo 'Upstream-Name: ward'; echo; echo 'Files: *'; \
	  echo 'Copyright: 2026 the ward authors'; echo 'License: Expat'; \
	  sed -e 's/^$$/./' -e 's/^/ /' LICENSE; } > $(DEB_ROOT)/usr/share/doc/ward/copyright
	rm $(DEB_ROOT)/usr/share/doc/ward/LICENSE
	printf 'ward (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- ward authors <ward@example.org>  %s\n' \
	  '$(VERSION)' '$(VERSION)' "$$(date -R -u -d @$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || date +%s)})" \
	  | gzip -9n > $(DEB_ROOT)/usr/share/doc/ward/changelog.gz
	install -d -m 0755 $(DEB_ROOT)/DEBIAN
	{ echo 'Package: ward'; echo 'Version: $(VERSION)'; echo 'Architecture: $(DEB_ARCH)'; \
	  echo 'Maintainer: ward authors <ward@example.org>'; \
	  echo "Installed-Size: $$(du -sk $(DEB_ROOT)/usr | cut -f1)"; \
	  glibc=$$(objdump -T $(DEB_ROOT)/usr/bin/ward 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1); \
	  if [ -n "$$glibc" ]; then echo "Depends: libc6 (>= $$glibc)"; fi; \
	  echo 'Section: admin'; echo 'Priority: optional'; \
	  echo 'Description: process manager with pm2'"'"'s commands in one small binary'; \
	  echo ' ward keeps programs running: it starts them in the background, restarts'; \
	  echo ' them when they die, captures their output into log files and shows what'; \
	  echo ' they cost. Its commands, flags and output follow pm2'"'"'s, so scripts'; \
	  echo ' written for pm2 keep working; the daemon is a single thread.'; \
	} > $(DEB_ROOT)/DEBIAN/control
	cd $(DEB_ROOT) && find usr -type f -exec md5sum {} + > DEBIAN/md5sums
	dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB_FILE)
	dpkg-deb --info $(DEB_FILE)
	dpkg-deb --contents $(DEB_FILE)
	@if command -v lintian >/dev/null 2>&1; then \
	  echo "lintian $(DEB_FILE)"; lintian --fail-on error,warning $(DEB_FILE); \
	else echo "lintian not installed: package not linted"; fi

clean:
	$(CARGO) clean
