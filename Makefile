# spineaug: every target that runs code depends on `install`, so `make test` alone works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast mutants mutation benchmark bench-quick asv-compare study study-status report fidelity phantom-figure asv auglab-env preview clean

# AugLab (GPL-3.0, the paper's toolbox) needs kornia <= 0.8.2, .venv has kornia 0.9: it gets its own small env.
# Only auglab and kornia are installed there (--no-deps); a .pth file appends .venv's site-packages, so torch & co.
# are shared instead of installed twice (~6 GB). The env's own kornia comes first on sys.path and wins.
AUGLAB_VENV := .venv-auglab
AUGLAB_STAMP := $(AUGLAB_VENV)/.installed
# The paper's AugLab code (commit 1ee096a, GPL-3.0) when ../shared is present, else the older PyPI wheel; the env's
# auglab-source.txt says which one was installed (spineaug.baselines.auglab.installed_source reads it).
AUGLAB_SNAPSHOT := ../shared/third_party/auglab-1ee096a.tar.gz

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[all,dev]'
	touch $(STAMP)

# The AugLab environment lets the suite compare `xdomain` with the paper's toolbox (tests/test_fidelity.py) and check
# the AugLab baseline; if it cannot be built, those tests skip with the reason.
# About 15 min on 2 CPU cores, the AugLab environment's build included (`make test-fast` skips the slow tests).
test: install
	-$(MAKE) auglab-env || echo "NOTE: could not build $(AUGLAB_VENV); the AugLab comparisons skip"
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

# Re-injects known engine bugs one at a time into a temporary copy and checks a fast test catches each (5-15 min on 2 cores).
mutants: install
	$(BIN)/python tools/mutants.py

# mutmut over the modules that compute reported numbers and the integrations (tools/mutation.py lists the scopes),
# one scratch copy per module, each time-boxed; not part of `make test`. One module: make mutation MODULES=spineaug/x.py
MUTATION_MINUTES ?= 10
mutation: install
	$(BIN)/python tools/mutation.py $(MODULES) --minutes $(MUTATION_MINUTES)

# A failed AugLab build does not stop the benchmark: `spineaug bench` then skips AugLab with a visible note.
# The last full run (pipeline benchmark, training benchmark, report) took 29 min on this 2-core machine.
benchmark: install
	-$(MAKE) auglab-env || echo "NOTE: could not build $(AUGLAB_VENV); the benchmark skips AugLab"
	$(BIN)/spineaug bench --out results/bench
	$(BIN)/spineaug bench --training --out results/bench
	$(BIN)/spineaug report --results results --out reports

# A reduced run (about 2 min). `make report` afterwards writes its page to reports/reduced/ (git-ignored), never over
# the full run's reports/benchmark.md.
bench-quick: install
	$(BIN)/spineaug bench --quick --out results/bench

# The cross-domain study (studies/default.yaml: 46 cells, about five hours on 2 CPU cores, two cells at a time with
# one thread each). Resumable: run it again after an interruption. Compact results are exported to
# reports/data/study/ (committed) and rendered into reports/study.md; when that export exists, its finished cells
# that still match the code are restored first (--resume-from), so a fresh checkout goes on where a run stopped.
STUDY ?= studies/default.yaml
STUDY_WORKERS ?= 2
STUDY_EXPORT := reports/data/study/$(basename $(notdir $(STUDY)))/cells.json

study: install
	$(BIN)/spineaug study $(STUDY) --executor local --workers $(STUDY_WORKERS) --export reports/data/study \
	  $(if $(wildcard $(STUDY_EXPORT)),--resume-from reports/data/study)
	$(BIN)/spineaug report --results results --out reports

study-status: install
	$(BIN)/spineaug study $(STUDY) --status

report: install
	$(BIN)/spineaug report --results results --out reports

# Fidelity of the presets to their references (nnunet vs nnU-Net v2; xdomain vs AugLab when .venv-auglab exists):
# measured into result files (reports/fidelity/, committed; a few minutes), then rendered by `spineaug report`.
fidelity: install
	-$(MAKE) auglab-env || echo "NOTE: could not build $(AUGLAB_VENV); the AugLab comparison is left out"
	$(BIN)/spineaug fidelity --out reports/fidelity
	$(BIN)/spineaug report --results results --out reports

# One phantom anatomy in every domain (reports/phantom.png + phantom.json, committed; under a minute).
phantom-figure: install
	$(BIN)/spineaug preview --phantom --out reports/phantom.png

auglab-env: $(AUGLAB_STAMP)

$(AUGLAB_STAMP): $(STAMP) $(wildcard $(AUGLAB_SNAPSHOT))
	rm -rf $(AUGLAB_VENV)
	$(BIN)/python -m venv $(AUGLAB_VENV)
	if [ -f $(AUGLAB_SNAPSHOT) ]; then \
	  $(AUGLAB_VENV)/bin/pip install --no-deps $(AUGLAB_SNAPSHOT) 'kornia==0.8.2' && \
	  echo "snapshot 1ee096a" > $(AUGLAB_VENV)/auglab-source.txt; \
	else \
	  $(AUGLAB_VENV)/bin/pip install --no-deps 'auglab==20260109' 'kornia==0.8.2' && \
	  echo "wheel 20260109" > $(AUGLAB_VENV)/auglab-source.txt; \
	fi
	sp=$$($(AUGLAB_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	base=$$(cd $(BIN)/.. && pwd)/lib/python$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')/site-packages && \
	echo "import site; site.addsitedir('$$base')" > $$sp/zz_spineaug_base_venv.pth
	$(AUGLAB_VENV)/bin/python -P -W ignore -c "import kornia, auglab.transforms.gpu.transforms; print('AugLab env OK, kornia', kornia.__version__)"
	@echo "AugLab source: $$(cat $(AUGLAB_VENV)/auglab-source.txt)"
	touch $(AUGLAB_STAMP)

# asv: full statistics for the checked-out commit in .venv (environment_type "existing"), recorded under the commit's
# hash for machine ASV_MACHINE in benchmarks/results/ (committed), then the HTML in .asv/html. asv drops PYTHONPATH;
# ASV_PYTHONPATH makes its benchmark processes import this checkout's spineaug. ASV_ARGS: more `asv run` options
# (e.g. --bench TrainingIteration). Past commits: benchmarks/asv-history.sh (README, "Tracking speed with asv").
ASV_MACHINE ?= $(shell hostname -s)
ASV_ARGS ?=

asv: install
	$(BIN)/asv machine --machine $(ASV_MACHINE) --yes
	ASV_PYTHONPATH=$(CURDIR) $(BIN)/asv run --python=same --machine $(ASV_MACHINE) \
	  --set-commit-hash $$(git rev-parse HEAD) --show-stderr $(ASV_ARGS)
	$(BIN)/asv publish

# asv's comparison of the two most recent commits recorded for ASV_MACHINE (or ASV_BASE against the newest), written
# to reports/asv-compare.md, which the benchmark report links.
ASV_BASE ?=
asv-compare: install
	ASV=$(BIN)/asv ASV_MACHINE=$(ASV_MACHINE) benchmarks/asv-compare.sh $(ASV_BASE)

# The committed pictures that need the engine or the phantom to run (about a minute): each transform forced on,
# random draws of whole presets on the study's 48^3 training patch, and the phantom in every domain.
GALLERY_PRESETS ?= nnunet,xdomain,xdomain-plus,gin-ipa,progressive-randconv,synthseg,slaug

preview: install phantom-figure
	$(BIN)/spineaug preview --preset xdomain --out reports/gallery.png
	$(BIN)/spineaug preview --preset gin-ipa --out reports/gallery-gin-ipa.png
	$(BIN)/spineaug preview --preset progressive-randconv --out reports/gallery-progressive-randconv.png
	$(BIN)/spineaug preview --draws 6 --patch 48,48,48 --presets $(GALLERY_PRESETS) --out reports/gallery-draws.png

clean:
	rm -rf $(VENV) $(AUGLAB_VENV) .pytest_cache .hypothesis results .asv
