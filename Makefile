# ward — build, test, install.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
MANDIR = $(DESTDIR)$(PREFIX)/share/man/man1
CARGO ?= cargo
TARGET ?= $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')

.PHONY: all test lint install install-pm2-link uninstall static clean

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
