# Village Points. `make run` and `make test` do all the set-up on a fresh machine.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := wsgi.py
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 3

.PHONY: run test setup translations lint format extract

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

# Babel >= 2.18 parses zh_CN as zh_Hans_CN, and gettext then looks for zh_Hans_CN/ or zh/, never our
# zh_CN/ folders (the UI would stay English): each zh_CN catalog is also compiled into zh_Hans_CN/.
translations: $(STAMP)
	@for d in $$(find app -type d -name translations); do \
	  $(BIN)/pybabel -q compile -d $$d || exit 1; \
	  if [ -f $$d/zh_CN/LC_MESSAGES/messages.po ]; then \
	    mkdir -p $$d/zh_Hans_CN/LC_MESSAGES && \
	    $(BIN)/pybabel -q compile -i $$d/zh_CN/LC_MESSAGES/messages.po \
	      -o $$d/zh_Hans_CN/LC_MESSAGES/messages.mo -l zh_CN || exit 1; \
	  fi; \
	done

setup: $(STAMP) translations

run: setup
	$(BIN)/flask db upgrade
	$(BIN)/flask demo --if-empty
	# A 2,000-household import takes ~5-15 s; the default 30 s would cut a large one off.
	$(BIN)/gunicorn --workers $(WORKERS) --bind $(HOST):$(PORT) --timeout 120 wsgi:app

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Refresh the core catalog after adding strings; then translate the new msgids in the .po.
extract: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -o /tmp/core.pot app/*.py app/auth app/villages app/households app/ledger templates/base.html templates/_partials templates/errors templates/auth templates/villages templates/households templates/me
	$(BIN)/pybabel update -i /tmp/core.pot -d app/translations -l zh_CN --no-fuzzy-matching
