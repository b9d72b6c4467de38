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

.PHONY: book test install notebooks benchmark portability clean

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
	@echo "To run the notebooks yourself: $(BIN)/jupyter lab chapters/"

# The unit, exercise and grading tests, then the notebook tests (tests/test_chapters.py:
# each chapter executed once with the reference solutions in place and compared with its
# committed outputs), then the website and its browser tests.
test: install
	$(BIN)/ruff check src tests tools _ext chapters
	$(BIN)/pytest tests --ignore=tests/browser -p no:cacheprovider
	$(BIN)/jupyter-book build . -W -n --keep-going
	@if ls tests/browser/test_*.py >/dev/null 2>&1; then $(BIN)/pytest tests/browser; fi

# Re-execute the chapter notebooks from their sources (after changing a chapter or src/).
notebooks: install
	$(BIN)/python tools/build_notebooks.py
	$(BIN)/python tools/build_overview.py

# Run every chapter notebook and print run time, peak memory and quality figure.
benchmark: install
	$(BIN)/python tools/benchmark.py

# The notebook tests as on other machines: PyTorch's portable kernels (as on an older or
# another CPU), AVX2 kernels, and with two busy processes beside them.
portability: install
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 $(BIN)/pytest tests/test_chapters.py -q -p no:cacheprovider
	ATEN_CPU_CAPABILITY=avx2 $(BIN)/pytest tests/test_chapters.py -q -p no:cacheprovider
	$(BIN)/python tools/with_load.py 2 -- $(BIN)/pytest tests/test_chapters.py -q -p no:cacheprovider

clean:
	rm -rf _build
