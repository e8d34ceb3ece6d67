# Two commands: `make run` and `make test`. Both bootstrap .venv from pyproject.toml on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEV := $(BIN)/python -m hospital.devserver
PYTEST_ARGS ?=

.PHONY: run test venv lint typecheck bench clean messages

# `make run PORT=8001` (or HOST=0.0.0.0) to listen elsewhere than 127.0.0.1:8000; the payment sandbox's return
# and notify addresses follow the port. Sessions survive a restart: signed-in demo users stay signed in.
run: $(STAMP)
	$(DEV) run $(if $(PORT),--port $(PORT)) $(if $(HOST),--host $(HOST))

# -rs: every skipped test prints its reason (on SQLite, without Redis or chromium some suites skip; see README).
test: $(STAMP)
	$(DEV) exec -- $(BIN)/python -m pytest -rs $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(DEV) exec -- $(BIN)/mypy .

# Benchmarks print their figures; the desk and surge benches need PostgreSQL and Redis (DATABASE_URL/REDIS_URL or
# the local servers); the screening bench needs a CJK font (fonts-noto-cjk) for its generated reports.
bench: $(STAMP)
	$(DEV) exec -- $(BIN)/python bench/dosing.py
	$(DEV) exec -- $(BIN)/python bench/medcard_tokens.py
	$(DEV) exec -- $(BIN)/python bench/medcard_desk.py
	$(DEV) exec -- $(BIN)/python bench/booking_surge.py
	$(DEV) exec -- $(BIN)/python bench/screening.py

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf var/test var/broker var/results var/cache

# Re-extract the strings to translate, then compile (polib, so no system gettext is needed to compile).
messages: $(STAMP)
	$(DEV) exec -- $(BIN)/python manage.py makemessages -l zh_Hans --no-location --ignore=.venv --ignore=var --ignore='dosing/engine/*'
	$(BIN)/python -c "import polib; polib.pofile('locale/zh_Hans/LC_MESSAGES/django.po').save_as_mofile('locale/zh_Hans/LC_MESSAGES/django.mo')"
