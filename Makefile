# Reelgraph: `make up` runs everything on embedded defaults; `make test` runs every check.
SHELL := /bin/bash
PY ?= python3
UV := $(PY) -m uv
export UV_PYTHON_DOWNLOADS := never

.PHONY: install up test lint typecheck schema-check pytest graphiql clean

install: .venv/.installed

.venv/.installed: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PY) -m pip install --quiet uv==0.13.9
	$(UV) sync --frozen --python $(PY)
	@touch $@

up: install
	.venv/bin/reelgraph up

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: install
	.venv/bin/mypy reelgraph subgraphs supergraph media_worker

schema-check: install
	env -u REELGRAPH_HOST .venv/bin/reelgraph compose --check

pytest: install
	.venv/bin/pytest

test: lint typecheck schema-check pytest

graphiql:  ## rebuild the committed GraphiQL bundle from its lockfile (needs npm)
	cd supergraph/graphiql/src && npm ci && npm run build

clean:
	rm -rf .venv var .pytest_cache .mypy_cache .ruff_cache
