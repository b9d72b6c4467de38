# Two commands for a fresh clone (see README.md):
#   make book   install everything into .venv and build the website into _build/html
#   make test   install everything into .venv and run the whole test suite
# Both create the virtual environment .venv themselves; nothing needs to be installed first
# except Python 3.9+ with venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch (small, enough for every chapter). Override, e.g.
#   make book TORCH_SPEC="torch" TORCH_INDEX=""   for your platform's default build.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
STAMP := $(VENV)/.installed

export FROMSCRATCH_PROGRESS := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test install workspace notebooks benchmark portability clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || \
	  $(BIN)/pip install --quiet --retries 0 --timeout 20 "$(TORCH_SPEC)" \
	    $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -r requirements.txt -e ".[dev]"
	@touch $(STAMP)

book: install
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo
	@echo "Website built: open _build/html/index.html in a browser."
	@echo "To run the notebooks yourself: make workspace, then $(BIN)/jupyter lab workspace/"

# A learner's working copy: the chapters and exercises copied into workspace/ (git ignores
# it, so a later git pull does not conflict with JupyterLab's autosave). Running it again
# adds new chapters and never overwrites a file you changed.
workspace: install
	$(BIN)/python -m fromscratch.workspace

# The linter; the unit, exercise and grading tests; the notebook tests (nbval executes each
# chapter once with the reference solutions in place and compares every cell with its
# committed outputs by the course's rules: tests/nbval_course.py); then the website and its
# browser tests. NBVAL_WORKERS notebooks run at once (one PyTorch thread each).
NBVAL_WORKERS ?= 2
# Each step prints its wall time ("[time] ..."), for the README's table of where CI's time goes.
START = s=$$(date +%s);
DONE = && echo "[time] $(1): $$(( $$(date +%s) - s )) s"
test: install
	@$(START) $(BIN)/ruff check src tests tools _ext chapters conftest.py $(call DONE,lint)
	@$(START) $(BIN)/pytest tests --ignore=tests/browser -p no:cacheprovider -n 2 --dist loadfile \
	  $(call DONE,unit exercise and grading tests)
	@$(START) $(BIN)/pytest --nbval chapters/ -p no:cacheprovider -v -n $(NBVAL_WORKERS) \
	  --dist loadfile $(call DONE,notebook tests (nbval))
	@$(START) $(BIN)/jupyter-book build . -W -n --keep-going $(call DONE,book build)
	@if ls tests/browser/test_*.py >/dev/null 2>&1; then \
	  $(START) $(BIN)/pytest tests/browser $(call DONE,browser tests); fi

# Re-execute the chapter notebooks from their sources (after changing a chapter or src/).
notebooks: install
	$(BIN)/python tools/build_notebooks.py
	$(BIN)/python tools/build_overview.py

# Run every chapter notebook and print run time, peak memory and quality figure.
benchmark: install
	$(BIN)/python tools/benchmark.py

# The notebook tests as on other machines: PyTorch's portable kernels (as on an older or
# another CPU), AVX2 kernels, and with two busy processes beside them.
NBVAL := $(BIN)/pytest --nbval chapters/ -q -p no:cacheprovider -n $(NBVAL_WORKERS) --dist loadfile
portability: install
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 $(NBVAL)
	ATEN_CPU_CAPABILITY=avx2 $(NBVAL)
	$(BIN)/python tools/with_load.py 2 -- $(NBVAL)

clean:
	rm -rf _build
