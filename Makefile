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

.PHONY: book test install notebooks benchmark lint clean

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

test: install
	$(BIN)/ruff check src tests tools
	$(BIN)/pytest tests --ignore=tests/browser
	$(BIN)/pytest --nbval chapters --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider
	$(BIN)/jupyter-book build . -W -n --keep-going
	@if ls tests/browser/test_*.py >/dev/null 2>&1; then $(BIN)/pytest tests/browser; fi

# Re-execute the chapter notebooks from their sources (after changing a chapter or src/).
notebooks: install
	$(BIN)/python tools/build_notebooks.py
	$(BIN)/python tools/build_overview.py

# Run every chapter notebook and print run time, peak memory and quality figure.
benchmark: install
	$(BIN)/python tools/benchmark.py

clean:
	rm -rf _build
