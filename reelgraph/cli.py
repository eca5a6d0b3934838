"""The `reelgraph` command."""

from __future__ import annotations

import asyncio
import importlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from reelgraph.services import SERVICES, SUPERGRAPH, service_names, up_processes
from subgraphs.kernel.settings import Settings


def _factory(spec: str) -> Callable[[Settings], Any]:
    module, _, attr = spec.partition(":")
    factory: Callable[[Settings], Any] = getattr(importlib.import_module(module), attr)
    return factory


def _settings() -> Settings:
    """The settings of a process about to start; a bad variable stops it with one line per
    mistake, naming the variable, instead of a traceback."""
    try:
        return Settings()
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            name = "REELGRAPH_" + "_".join(str(part) for part in problem["loc"]).upper()
            message = str(problem["msg"]).removeprefix("Value error, ")
            # Our own validators already name the variable.
            lines.append(message if message.startswith(name) else f"{name}: {message}")
        raise click.ClickException("invalid configuration\n" + "\n".join(lines)) from None


# The supergraph the router serves and `plan` plans against.
supergraph_option = click.option(
    "--supergraph",
    "supergraph_path",
    type=click.Path(exists=True, dir_okay=False),
    default=str(SUPERGRAPH),
    show_default=True,
    help="Supergraph SDL file.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Reelgraph: a video platform behind one federated GraphQL API.

    Configuration comes from REELGRAPH_* environment variables; see docs/configuration.md.
    """


@main.command()
def up() -> None:
    """Run every service as its own supervised process, in the foreground (Ctrl-C stops all)."""
    import os

    from reelgraph.supervisor import Supervisor
    from supergraph.config import env_name

    settings = _settings()
    for name in SERVICES:
        # The router finds our services where this configuration puts them.
        key = f"REELGRAPH_SUBGRAPH_{env_name(name)}_URL"
        os.environ.setdefault(key, f"{settings.service_url(name)}/graphql")
    # Our router verifies tokens against our auth service at the edge.
    os.environ.setdefault("REELGRAPH_ROUTER_JWKS_URL", settings.resolved_jwks_url())
    # Uploads and media are the video service's, served on the router's origin.
    os.environ.setdefault("REELGRAPH_ROUTER_ROUTES", "/uploads=video,/media=video")
    children = [(name, [sys.executable, "-m", "reelgraph", *args]) for name, args in up_processes()]
    sys.exit(asyncio.run(Supervisor(children).run()))


@main.command()
@click.argument("service", type=click.Choice(service_names()))
@click.option("--host", default=None, help="Interface to bind (default REELGRAPH_HOST).")
@click.option("--port", type=int, default=None, help="Port (default REELGRAPH_<SERVICE>_PORT).")
def serve(service: str, host: str | None, port: int | None) -> None:
    """Run one service in the foreground."""
    import uvicorn

    from subgraphs.kernel.logging import configure_logging

    settings = _settings()
    configure_logging(service, settings.log_level)
    spec = SERVICES[service]
    assert spec.app_factory is not None
    app = _factory(spec.app_factory)(settings)
    # Uvicorn shuts down gracefully on these, then re-raises them to whatever handler was
    # installed before it; exiting 0 there tells a supervisor the stop was clean.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port(service),
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


@main.command("media-worker")
def media_worker() -> None:
    """Run the media worker: transcode jobs from the bus to HLS in storage (Ctrl-C stops it)."""
    from media_worker.worker import main as run_worker

    run_worker()


@main.command()
@click.argument("services", nargs=-1, type=click.Choice(service_names()))
def migrate(services: tuple[str, ...]) -> None:
    """Apply database migrations (every service's, or only those named)."""
    from subgraphs.kernel.migrations import upgrade

    settings = Settings()

    async def run() -> None:
        for name in services or tuple(n for n, s in SERVICES.items() if s.has_database):
            await upgrade(name, settings.database_url_for(name))
            click.echo(f"{name}: up to date")

    asyncio.run(run())


@main.command("make-migration")
@click.argument("service", type=click.Choice(service_names()))
@click.argument("message")
def make_migration(service: str, message: str) -> None:
    """Write a new migration from the difference between models and database (developers)."""
    from alembic import command

    from subgraphs.kernel.migrations import alembic_config, upgrade

    settings = Settings()
    url = settings.database_url_for(service)
    asyncio.run(upgrade(service, url))
    command.revision(alembic_config(service, url), message=message, autogenerate=True)


@main.command()
@supergraph_option
@click.option("--host", default=None, help="Interface to bind (default REELGRAPH_HOST).")
@click.option("--port", type=int, default=None, help="Port (default REELGRAPH_ROUTER_PORT, 4000).")
@click.option(
    "--dev", is_flag=True, help="Developer mode: answer x-reelgraph-query-plan: true with the plan."
)
@click.option(
    "--no-dedupe", is_flag=True, help="Turn off in-flight deduplication of subgraph fetches."
)
@click.option(
    "--no-introspection",
    is_flag=True,
    help="Refuse introspection queries (or REELGRAPH_ROUTER_INTROSPECTION=false).",
)
@click.option(
    "--route",
    "routes",
    multiple=True,
    metavar="PREFIX=TARGET",
    help="Pass HTTP under PREFIX through to TARGET, a subgraph name or an http(s) URL "
    "(repeatable; replaces REELGRAPH_ROUTER_ROUTES).",
)
def router(
    supergraph_path: str,
    host: str | None,
    port: int | None,
    dev: bool,
    no_dedupe: bool,
    no_introspection: bool,
    routes: tuple[str, ...],
) -> None:
    """Run the federation router over any Federation 2 supergraph.

    Subgraph URLs come from the supergraph; REELGRAPH_SUBGRAPH_<NAME>_URL overrides one.
    """
    import uvicorn

    from subgraphs.kernel.logging import configure_logging
    from supergraph.passthrough import RouteConfigError
    from supergraph.server import create_router_app

    settings = _settings()
    configure_logging("router", settings.log_level)
    with open(supergraph_path) as fh:
        try:
            app = create_router_app(
                fh.read(),
                dev=dev,
                dedupe=not no_dedupe,
                supergraph_path=supergraph_path,
                introspection=False if no_introspection else None,
                routes=routes,
            )
        except RouteConfigError as error:
            raise click.ClickException(str(error)) from None
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.router_port,
        log_config=None,
        access_log=False,
        server_header=False,
        # The router reads forwarding headers itself, trusting REELGRAPH_TRUSTED_PROXIES only
        # (uvicorn's own rewriting trusts another list and hides the real peer).
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


@main.command()
@supergraph_option
@click.option("--operation-name", default=None, help="Which operation of the document to plan.")
@click.argument("query")
def plan(supergraph_path: str, operation_name: str | None, query: str) -> None:
    """Print the query plan for an operation (QUERY is the text, or @FILE)."""
    from graphql import GraphQLError, parse, validate

    from supergraph.model import build_api_schema, load_supergraph
    from supergraph.plan import PlanningError, plan_operation, print_plan

    if query.startswith("@"):
        with open(query[1:]) as fh:
            query = fh.read()
    with open(supergraph_path) as fh:
        sdl = fh.read()
    try:
        document = parse(query)
    except GraphQLError as error:
        raise click.ClickException(error.message) from None
    errors = validate(build_api_schema(sdl), document)
    if errors:
        raise click.ClickException("\n".join(e.message for e in errors))
    try:
        click.echo(print_plan(plan_operation(load_supergraph(sdl), document, operation_name)))
    except PlanningError as error:
        raise click.ClickException(str(error)) from None


@main.group()
def auth() -> None:
    """Manage the auth service's keys and accounts."""


@auth.command("rotate-key")
def rotate_key() -> None:
    """Make a new signing key current; tokens signed with the old key stay valid until expiry."""
    from subgraphs.auth.app import key_store

    store = key_store(Settings())
    store.ensure()
    click.echo(f"new signing key: {store.rotate()}")


@auth.command("set-role")
@click.argument("handle")
@click.argument("role", type=click.Choice(["VIEWER", "CREATOR", "ADMIN"]))
def set_role(handle: str, role: str) -> None:
    """Give an account a role, e.g. make the first ADMIN (takes effect at its next token)."""
    from subgraphs.auth.admin import set_role_by_handle

    settings = Settings()
    if not asyncio.run(set_role_by_handle(settings, handle, role)):
        raise click.ClickException(f"no user with handle {handle!r}")
    click.echo(f"{handle} is now {role}")


def _subgraph_names() -> list[str]:
    """The services that are subgraphs: their app lives in `subgraphs.<name>`."""
    return [
        name
        for name, spec in SERVICES.items()
        if spec.app_factory is not None and spec.app_factory.startswith(f"subgraphs.{name}.")
    ]


def _in_process_sdl(name: str) -> str:
    from supergraph.compose.fetch import SERVICE_SDL_QUERY, sdl_from_result

    schema = importlib.import_module(f"subgraphs.{name}.schema").schema
    result = schema.execute_sync(SERVICE_SDL_QUERY)
    errors = [error.message for error in result.errors or ()]
    return sdl_from_result(name, {"data": result.data, "errors": errors or None})


@main.command("compose")
@click.option(
    "--from-urls",
    is_flag=True,
    help="Fetch each subgraph's SDL from its running service instead of importing it.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("schema"),
    show_default=True,
    help="Where <subgraph>.graphql and supergraph.graphql live.",
)
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 if the files in --out are stale (CI)."
)
def compose_command(from_urls: bool, out: Path, check: bool) -> None:
    """Compose the subgraphs into a Federation 2 supergraph: schema/supergraph.graphql."""
    from supergraph.compose import CompositionError, SubgraphSource, compose
    from supergraph.compose.fetch import FetchError, fetch_sdl

    settings = Settings()
    sources: list[SubgraphSource] = []
    for name in _subgraph_names():
        url = f"{settings.service_url(name)}/graphql"
        try:
            sdl = fetch_sdl(url) if from_urls else _in_process_sdl(name)
        except FetchError as error:
            raise click.ClickException(str(error)) from error
        sources.append(SubgraphSource(name, url, sdl))
    try:
        supergraph = compose(sources)
    except CompositionError as error:
        for issue in error.issues:
            click.echo(f"error: {issue}", err=True)
        raise click.ClickException(
            f"composition failed with {len(error.issues)} issue(s)"
        ) from None
    files = {f"{source.name}.graphql": source.sdl for source in sources}
    files["supergraph.graphql"] = supergraph
    if check:
        stale = [
            out / name
            for name, text in files.items()
            if not (out / name).is_file() or (out / name).read_text() != text + "\n"
        ]
        for path in stale:
            click.echo(f"{path} is stale: run `reelgraph compose`", err=True)
        if stale:
            sys.exit(1)
        click.echo(f"{out}: up to date")
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text + "\n")
        click.echo(f"wrote {out / name}")


@main.group()
def persisted() -> None:
    """Build the persisted query manifests the router safelists (docs/persisted-queries.md)."""


@persisted.command("extract")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    default="-",
    show_default=True,
    help="Manifest file to write; - for standard output.",
)
@click.option(
    "--supergraph",
    "supergraph_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Validate every operation against this supergraph's API schema.",
)
def persisted_extract(sources: tuple[Path, ...], output: str, supergraph_path: Path | None) -> None:
    """Write an Apollo persisted query manifest from the .graphql files under SOURCES.

    One entry per named operation, with the fragments it uses; id = SHA-256 of the body.
    """
    from supergraph.edge.persisted_manifest import ManifestError, extract_manifest
    from supergraph.model import build_api_schema

    api_schema = build_api_schema(supergraph_path.read_text()) if supergraph_path else None
    try:
        manifest = extract_manifest(sources, api_schema)
    except ManifestError as error:
        raise click.ClickException(str(error)) from None
    if output == "-":
        click.echo(manifest.to_json(), nl=False)
        return
    Path(output).write_text(manifest.to_json())
    click.echo(f"wrote {output} ({len(manifest)} operations)")
