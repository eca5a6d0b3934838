"""The scaled-out deployment file is valid Compose, checked by the real Compose v2 binary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import compose

from reelgraph.services import service_names
from subgraphs.kernel.proxies import parse_trusted_proxies
from subgraphs.kernel.settings import DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_BINARY = Path(compose.__file__).parent / "docker-compose"


def _compose(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    docker = shutil.which("docker")
    env = {**os.environ}
    if docker:
        # As an operator runs it: the binary installed as a Docker CLI plugin.
        plugins = tmp_path / "docker-config" / "cli-plugins"
        plugins.mkdir(parents=True)
        (plugins / "docker-compose").symlink_to(COMPOSE_BINARY)
        env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
        argv = [docker, "compose", *args]
    else:
        argv = [str(COMPOSE_BINARY), *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_compose_file_is_valid(tmp_path: Path) -> None:
    result = _compose(tmp_path, "-f", "compose.yaml", "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_runs_services_on_postgres_redis_and_s3(tmp_path: Path) -> None:
    result = _compose(tmp_path, "-f", "compose.yaml", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    services = config["services"]
    assert {"postgres", "redis", "minio", "router", "media-worker"} <= set(services)
    for name in [*service_names(), "media-worker"]:
        environment = services[name]["environment"]
        assert environment["REELGRAPH_BUS"] == "redis", name
        assert environment["REELGRAPH_STORAGE"] == "s3", name
        assert environment["REELGRAPH_DATABASE_URL"].startswith("postgresql://"), name
        assert services[name]["deploy"]["replicas"] >= 2, name
        command = services[name]["command"]
        assert command[:2] == (
            ["reelgraph", "media-worker"]
            if name == "media-worker"
            else [
                "reelgraph",
                "serve",
            ]
        ), name


def test_the_router_fronts_every_subgraph_uploads_and_media(tmp_path: Path) -> None:
    result = _compose(tmp_path, "-f", "compose.yaml", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    router = json.loads(result.stdout)["services"]["router"]
    environment = router["environment"]
    for name in service_names():
        assert environment[f"REELGRAPH_SUBGRAPH_{name.upper()}_URL"] == (
            f"http://{name}:{DEFAULT_PORTS[name]}/graphql"
        )
        assert name in router["depends_on"]
    assert environment["REELGRAPH_ROUTER_ROUTES"] == "/uploads=video,/media=video"
    assert environment["REELGRAPH_PUBLIC_URL"] == "http://localhost:4000"
    assert [p["published"] for p in router["ports"]] == ["4000"]


def test_subgraphs_trust_the_compose_network_and_the_router_trusts_none_of_it(
    tmp_path: Path,
) -> None:
    result = _compose(tmp_path, "-f", "compose.yaml", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    # Wherever Docker puts the compose network, the router's container is in a trusted range.
    for name in service_names():
        trusted = parse_trusted_proxies(services[name]["environment"]["REELGRAPH_TRUSTED_PROXIES"])
        for router_address in (
            "127.0.0.1",
            "172.18.0.7",
            "172.31.255.2",
            "192.168.16.3",
            "10.9.0.4",
        ):
            assert router_address in trusted, (name, router_address)
        assert "203.0.113.9" not in trusted, name
    # The router is the edge: a client showing up from the network's gateway is not a proxy.
    router = parse_trusted_proxies(services["router"]["environment"]["REELGRAPH_TRUSTED_PROXIES"])
    assert "127.0.0.1" in router
    assert "172.18.0.1" not in router and "192.168.16.1" not in router and "10.0.0.1" not in router


def test_a_broken_compose_file_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("services:\n  web:\n    image: x\n    ports: 12\n")
    result = _compose(tmp_path, "-f", str(broken), "config", "-q")
    assert result.returncode != 0
