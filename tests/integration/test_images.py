"""Kernel images.

The first part needs no engine: recipe loading, content hashing, image names. The second builds
localhost/workbay/python:3.11 on the real engine (Podman's Docker-compatible socket, started with
tools/podman_service.sh when nothing answers; cached: a few seconds when the image is current)
and checks it through the Docker Engine API: labels, and a container running its tools.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import aiodocker
import pytest
from click.testing import CliRunner

from workbay.client.cli_image import image as image_cli
from workbay.images import (
    BuildError,
    RecipeError,
    build_image,
    connect,
    container_ulimits,
    load_recipes,
    ping,
    recipe_hash,
    resolve_image_name,
    short_image_name,
)
from workbay.images.recipes import REQUIRED_LABELS, build_order, find_recipe, image_labels, rootfs_hash

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "images"

# ---------------------------------------------------------------------------------------------
# No engine needed


@pytest.mark.parametrize(("name", "expected"), [
    ("python:3.11", "localhost/workbay/python:3.11"),
    ("workbay/python:3.11", "localhost/workbay/python:3.11"),
    ("localhost/workbay/python:3.11", "localhost/workbay/python:3.11"),
    ("  pytorch:1.13-cpu ", "localhost/workbay/pytorch:1.13-cpu"),
    ("python", "localhost/workbay/python:latest"),
    ("cr.backend.ai/stable/python:3.9-ubuntu20.04", "cr.backend.ai/stable/python:3.9-ubuntu20.04"),
    ("localhost:5000/team/img", "localhost:5000/team/img:latest"),
    ("localhost/other/img:1", "localhost/other/img:1"),
    ("python@sha256:" + "a" * 64, "localhost/workbay/python@sha256:" + "a" * 64),
])
def test_resolve_image_name(name, expected):
    assert resolve_image_name(name) == expected
    assert resolve_image_name(expected) == expected  # idempotent


@pytest.mark.parametrize("bad", ["", "   ", "Python:3.11", "py thon:3.11", "python:", "python:-x", "a//b:1"])
def test_resolve_image_name_rejects_bad_names(bad):
    with pytest.raises(ValueError):
        resolve_image_name(bad)


def test_short_image_name():
    assert short_image_name("localhost/workbay/python:3.11") == "python:3.11"
    assert short_image_name("docker.io/library/python:3.11") == "docker.io/library/python:3.11"


def test_shipped_recipes():
    recipes = load_recipes(IMAGES)
    assert {"python:3.11", "python:3.9", "pytorch:1.13-cpu"} <= set(recipes)
    assert recipes["pytorch:1.13-cpu"].base == "python:3.11"
    assert [r.short_name for r in build_order(recipes, "pytorch:1.13-cpu")] == ["python:3.11", "pytorch:1.13-cpu"]
    assert recipes["python:3.11"].rootfs.suite == "bookworm"
    assert recipes["python:3.9"].rootfs.suite == "bullseye"
    for name in recipes:
        labels = image_labels(recipes, name)
        if recipes[name].rootfs is not None:
            assert set(REQUIRED_LABELS) <= set(labels)
        assert labels["org.workbay.image"] == name
        assert labels["org.workbay.recipe-hash"] == recipe_hash(recipes, name)
        assert labels["org.workbay.display-name"] and labels["org.workbay.version"]
    ports = dict(p.split(":", 1) for p in image_labels(recipes, "python:3.11")["ai.backend.service-ports"].split(","))
    assert {"jupyter", "jupyterlab", "ttyd", "sshd"} <= set(ports)
    ports = dict(p.split(":", 1) for p in image_labels(recipes, "pytorch:1.13-cpu")["ai.backend.service-ports"].split(","))
    assert {"jupyter", "jupyterlab", "ttyd", "sshd", "tensorboard", "mlflow-ui"} <= set(ports)
    assert image_labels(recipes, "python:3.9")["ai.backend.base-distro"] == "debian11"
    with pytest.raises(RecipeError, match="known: .*python:3.11"):
        find_recipe(recipes, "nosuch:1")
    assert find_recipe(recipes, "localhost/workbay/python:3.11") is recipes["python:3.11"]


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    shutil.copytree(IMAGES / "python" / "3.11", root / "python" / "3.11")
    derived = root / "derived" / "1"
    derived.mkdir(parents=True)
    (derived / "recipe.toml").write_text('display_name = "D"\nversion = "1"\nbase = "python:3.11"\n')
    (derived / "Containerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    return root


def test_recipe_hash_follows_content(tmp_path):
    root = _tree(tmp_path)

    def hashes():
        recipes = load_recipes(root)
        return recipe_hash(recipes, "python:3.11"), recipe_hash(recipes, "derived:1"), rootfs_hash(recipes["python:3.11"])

    base, derived, rootfs = hashes()
    assert hashes() == (base, derived, rootfs)  # stable
    # the copy hashes like the original: same name, same files
    assert base == recipe_hash(load_recipes(IMAGES), "python:3.11")

    (root / "derived" / "1" / "Containerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN true\n")
    b2, d2, r2 = hashes()
    assert (b2, r2) == (base, rootfs) and d2 != derived      # a derived edit leaves the base alone

    cf = root / "python" / "3.11" / "Containerfile"
    cf.write_text(cf.read_text() + "\n# comment\n")
    b3, d3, r3 = hashes()
    assert b3 != b2 and d3 != d2 and r3 == r2                # the base's hash feeds the derived one; rootfs reused

    (root / "python" / "3.11" / "service-defs" / "extra.json").write_text("{}")
    b4, _, _ = hashes()
    assert b4 != b3                                          # a new file counts

    os.chmod(root / "python" / "3.11" / "service-defs" / "extra.json", 0o755)
    b5, _, _ = hashes()
    assert b5 != b4                                          # so does the executable bit

    toml = root / "python" / "3.11" / "recipe.toml"
    toml.write_text(toml.read_text().replace('"netbase",', '"netbase", "jq",'))
    b6, _, r6 = hashes()
    assert b6 != b5 and r6 != r3                             # package list: new rootfs


@pytest.mark.parametrize(("toml", "files", "message"), [
    ('display_name = "X"\nversion = "1"\nbase = "python:3.11"\nflavour = "x"\n', ["Containerfile"], "unknown keys"),
    ('display_name = "X"\nversion = "1"\n', ["Containerfile"], "exactly one of"),
    ('display_name = "X"\nversion = "1"\nbase = "python:3.11"\n', [], "Containerfile does not exist"),
    ('display_name = "X"\nversion = "1"\nbase = "nosuch:1"\n', ["Containerfile"], "is not a recipe"),
    ('display_name = "X"\nversion = "1"\nbase = "bad:1"\n', ["Containerfile"], "cycle"),
    ('version = "1"\nbase = "python:3.11"\n', ["Containerfile"], "display_name"),
    ('display_name = "X"\nversion = "1"\n[rootfs]\nsuite = "bookworm"\nsources = ["deb x y z"]\npackages = ["python3"]\n',
     ["Containerfile"], "missing labels"),
    ('display_name = "X"\nversion = "1"\nbase = "python:3.11"\n[labels]\n"ai.backend.service-ports" = "jupyter:8090"\n',
     ["Containerfile"], "service-ports"),
    ('display_name = "X"\nversion = "1"\nbase = "python:3.11"\n[labels\n', ["Containerfile"], "recipe.toml"),
])
def test_bad_recipes_fail_loudly(tmp_path, toml, files, message):
    root = _tree(tmp_path)
    bad = root / "bad" / "1"
    bad.mkdir(parents=True)
    (bad / "recipe.toml").write_text(toml)
    for f in files:
        (bad / f).write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    with pytest.raises(RecipeError, match=message):
        load_recipes(root)


async def test_build_without_an_engine_says_how_to_start_one(tmp_path):
    with pytest.raises(BuildError, match="cannot reach the container engine at unix://.*podman_service.sh"):
        await build_image("python:3.11", docker_url=f"unix://{tmp_path}/nothing.sock")


def test_cli_build_unknown_image_fails_clearly():
    result = CliRunner().invoke(image_cli, ["build", "nosuch:1"])
    assert result.exit_code == 1
    assert "no recipe for image 'nosuch:1' (known: python:3.11, python:3.9, pytorch:1.13-cpu)" in result.output


# ---------------------------------------------------------------------------------------------
# The real engine


async def _answers(url: str) -> bool:
    try:
        docker = connect(url)
    except Exception:
        return False
    try:
        await ping(docker)
        return True
    except Exception:
        return False
    finally:
        await docker.close()


@pytest.fixture(scope="session")
async def engine_url() -> str:
    """$DOCKER_HOST or Podman's socket; started with tools/podman_service.sh when silent."""
    url = os.environ.get("DOCKER_HOST") or "unix:///run/podman/podman.sock"
    if not await _answers(url):
        out = subprocess.run(["bash", str(ROOT / "tools" / "podman_service.sh")], check=True,
                             capture_output=True, text=True, timeout=120)
        url = "unix://" + out.stdout.strip().splitlines()[-1]
        assert await _answers(url), out.stderr
    return url


@pytest.fixture(scope="session")
async def python_image(engine_url):
    """localhost/workbay/python:3.11, built when missing or outdated (minutes), else seconds."""
    results = await build_image("python:3.11", docker_url=engine_url)
    assert results[-1].image == "localhost/workbay/python:3.11"
    return results[-1]


@pytest.fixture
async def docker(engine_url):
    client = connect(engine_url)
    yield client
    await client.close()


async def _run(docker: aiodocker.Docker, image: str, script: str, user: str = "") -> tuple[int, str]:
    container = await docker.containers.create({
        "Image": image,
        "Cmd": ["/bin/sh", "-c", script],
        "User": user,
        "HostConfig": {"Ulimits": container_ulimits()},
    })
    try:
        await container.start()
        status = await container.wait(timeout=120)
        logs = "".join(await container.log(stdout=True, stderr=True))
        return status["StatusCode"], logs
    finally:
        await container.delete(force=True)


@pytest.mark.timeout(1800)
async def test_python_image_labels(python_image, docker):
    info = await docker.images.inspect("localhost/workbay/python:3.11")
    labels = info["Config"]["Labels"]
    recipes = load_recipes(IMAGES)
    assert labels["org.workbay.recipe-hash"] == recipe_hash(recipes, "python:3.11") == python_image.recipe_hash
    for key, value in image_labels(recipes, "python:3.11").items():
        assert labels[key] == value, key
    assert labels["ai.backend.kernelspec"] == "1"
    assert labels["ai.backend.runtime-path"] == "/usr/bin/python3"
    assert labels["ai.backend.base-distro"] == "debian12"
    assert labels["ai.backend.resource.min.mem"] == "256m"
    assert "jupyterlab:http:" in labels["ai.backend.service-ports"]
    assert labels["org.workbay.display-name"] and labels["org.workbay.version"] == "3.11"


@pytest.mark.timeout(1800)
async def test_python_image_runs_its_tools(python_image, docker):
    code, out = await _run(docker, python_image.image, r"""
set -e
python3 -c 'import sys, ssl, sqlite3, venv; print("python", sys.version.split()[0])'
echo "hostkeys $(ls /etc/ssh/ssh_host_* 2>/dev/null | wc -l)"
tmux -V
ssh-keygen -q -t ed25519 -N '' -f /tmp/hostkey && /usr/sbin/sshd -t -h /tmp/hostkey && echo "sshd ok"
echo "jupyterlab $(jupyter lab --version)"
echo "notebook $(jupyter notebook --version)"
git --version
curl --version | head -n1
sudo --version | head -n1
locale -a | grep -qx en_US.utf8 && echo "locale ok"
python3 -m venv /tmp/venv && /tmp/venv/bin/python -c 'print("venv ok")'
for app in jupyter jupyterlab; do python3 -c "import json; json.load(open('/etc/backend.ai/service-defs/$app.json'))"; done
echo "service-defs ok"
""")
    assert code == 0, out
    lines = out.splitlines()
    assert "python 3.11" in out
    assert "hostkeys 0" in lines          # host keys are made per session, not baked in
    assert any(line.startswith("tmux 3.") for line in lines)
    assert "sshd ok" in lines
    assert any(line.startswith("jupyterlab 4.") for line in lines)
    assert any(line.startswith("notebook 7.") for line in lines)
    assert any(line.startswith("git version") for line in lines)
    assert any(line.startswith("curl ") for line in lines)
    assert any(line.startswith("Sudo version") for line in lines)
    for marker in ("locale ok", "venv ok", "service-defs ok"):
        assert marker in lines, out


@pytest.mark.timeout(1800)
async def test_python_image_works_for_any_uid(python_image, docker):
    code, out = await _run(docker, python_image.image, "python3 -c 'print(6 * 7)' && jupyter lab --version",
                           user="1000:1000")
    assert code == 0, out
    assert out.splitlines()[0] == "42"


@pytest.mark.timeout(1800)
def test_cli_build_is_idempotent_and_list_shows_labels(python_image, engine_url, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", engine_url)
    runner = CliRunner()
    result = runner.invoke(image_cli, ["build", "python:3.11"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    assert "localhost/workbay/python:3.11" in result.output

    result = runner.invoke(image_cli, ["list", "--json"])
    assert result.exit_code == 0, result.output
    items = {item["image"]: item for item in json.loads(result.stdout)}
    item = items["localhost/workbay/python:3.11"]
    assert item["name"] == "python:3.11" and item["status"] == "current"
    assert item["labels"]["ai.backend.kernelspec"] == "1"

    result = runner.invoke(image_cli, ["list"])
    assert result.exit_code == 0 and "python:3.11" in result.output


@pytest.mark.timeout(1800)
async def test_failed_build_says_where_and_leaves_nothing(python_image, engine_url, docker, tmp_path):
    root = _tree(tmp_path)  # python:3.11 (same hash: reused) and a derived recipe that fails
    broken = root / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "recipe.toml").write_text('display_name = "Broken"\nversion = "1"\nbase = "python:3.11"\n')
    (broken / "Containerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about to fail && exit 3\n")
    before = sorted(p.name for p in Path(tempfile.gettempdir()).glob("workbay-*"))
    events = []
    with pytest.raises(BuildError) as err:
        await build_image("broken:1", events.append, docker_url=engine_url, recipes_dir=root)
    message = str(err.value)
    assert "building broken:1 at 'STEP" in message and "RUN echo about to fail" in message
    assert "about to fail" in err.value.tail
    assert [e.kind for e in events if e.image == "python:3.11"] == ["skip"]
    with pytest.raises(aiodocker.DockerError):
        await docker.images.inspect("localhost/workbay/broken:1")
    assert sorted(p.name for p in Path(tempfile.gettempdir()).glob("workbay-*")) == before
