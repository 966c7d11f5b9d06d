# spin_bench: `make demo` and `make test` each bootstrap .venv from scratch on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= test,ray
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test latex clean gpu-kit gpu-check

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the CPU wheel first, so nothing else can pull a multi-GB CUDA build (override TORCH_SPEC for GPUs)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	# setuptools says "Editable installation ... be careful with folders in your working directory
	# with the same name as your package": it installs this checkout through an import finder
	# (setup.cfg maps baselines/ and gin/ into the package), and the folder of that name here,
	# spin_bench/, is the package itself, so the notice does not apply and is silenced.
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m spin_bench.demo

# two pytest processes (the 2-core machines this is made on; TEST_WORKERS=0 runs it in one),
# each test file in one process so module fixtures are built once; the files are handed out in
# collection order, which tests/conftest.py makes slowest first (xdist would otherwise reorder
# them by their number of tests, leaving slow few-test files such as test_install.py for last)
TEST_WORKERS ?= 2

test: $(STAMP) latex
	$(PY) -m ruff check spin_bench baselines tests
	SPIN_BENCH_REQUIRE_LATEX=1 $(PY) -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) tests

# pdflatex and booktabs, for the test that compiles every LaTeX table the report writes
# (tests/test_report_paper_ready.py): nothing to do when they are there, otherwise the two
# Debian/Ubuntu packages that hold them (about 100 MB; as root, or through sudo).
LATEX_PACKAGES ?= texlive-latex-base texlive-latex-recommended
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

latex:
	@if command -v pdflatex >/dev/null 2>&1 && kpsewhich booktabs.sty >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "make: installing pdflatex and booktabs ($(LATEX_PACKAGES))"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			--no-install-recommends $(LATEX_PACKAGES) >/dev/null; \
	else echo "make: the LaTeX test needs pdflatex with booktabs.sty; install a TeX distribution" >&2; exit 1; fi

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

# The CUDA check (docs/gpu.md). `make gpu-kit` prepares here, with the simulator, what travels
# to a bare GPU machine in gpu_kit/ (gin-config's wheel, a small cheetah-run dataset, the
# commit); `make gpu-check` runs the kit there with that machine's own python3 (no .venv):
# results in $(GPU_OUT). CI runs `make gpu-check GPU_CHECK_FLAGS=--dry_run KIT_PYTHON=.venv/bin/python`.
KIT_PYTHON ?= python3
GPU_OUT ?= $(if $(OUT),$(OUT),gpu_check_out)
GPU_CHECK_FLAGS ?=
KIT_TRANSITIONS ?= 20000
KIT_DATA := gpu_kit/data/cheetah-run-medium-expert-n$(KIT_TRANSITIONS).hdf5

gpu-kit: $(STAMP)
	mkdir -p gpu_kit/wheels gpu_kit/data
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 -d gpu_kit/wheels gin-config==0.5.0
	test -f $(KIT_DATA) || $(PY) -m spin_bench.datagen generate --task=cheetah-run --level=medium-expert \
		--num_transitions=$(KIT_TRANSITIONS) --out=$(KIT_DATA)
	git rev-parse HEAD > gpu_kit/COMMIT
	du -sh gpu_kit

gpu-check:
	PYTHONUNBUFFERED=1 $(KIT_PYTHON) -m spin_bench.gpu --out=$(GPU_OUT) $(GPU_CHECK_FLAGS)
