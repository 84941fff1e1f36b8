# hpcneuro: 'make demo' and 'make test' install whatever is missing first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
NP     ?= 2

.PHONY: install demo test bench reproduce clean help

help:
	@echo "make install   system MPI + parallel HDF5 (if missing), .venv, package, mechanisms"
	@echo "make demo      install, then the paper's story in small (< 3 min): runs/story/SUMMARY.txt"
	@echo "make test      install, then the whole test suite"
	@echo "make reproduce the paper's three findings (SCALE=small|paper, DIR=runs/reproduce): FINDINGS.md"
	@echo "make bench     install, then the benchmark scripts (prints figures, JSON last line)"

install:
	@bash scripts/install.sh

demo: install
	$(VENV)/bin/hpcneuro reproduce -o runs/story --scale demo --np $(NP)

SCALE ?= small
DIR   ?= runs/reproduce

reproduce: install
	$(VENV)/bin/hpcneuro reproduce -o $(DIR) --scale $(SCALE) --np $(NP)

test: install
	$(PY) -m pytest tests -q -ra

bench: install
	@set -e; for s in scripts/bench_*.py; do echo "== $$s"; $(PY) $$s; done

clean:
	rm -rf runs .pytest_cache
