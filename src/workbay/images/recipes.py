"""Kernel image recipes (``images/<name>/<tag>/``), their content hashes, and image names.

Pure code: no engine, no network. See images/README.md for the recipe format.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# Every Workbay-built image lives under this registry prefix: the engine's local storage, no
# registry server. The catalog shows the full name (``localhost/workbay/python:3.11``); short names
# (``python:3.11``) resolve to it through resolve_image_name().
REGISTRY_PREFIX = "localhost/workbay"
ROOTFS_REPO = f"{REGISTRY_PREFIX}/rootfs"

# Bump when the builder changes what it produces from the same recipe (it is part of every hash).
BUILDER_VERSION = "1"

LABEL_RECIPE_HASH = "org.workbay.recipe-hash"
LABEL_IMAGE = "org.workbay.image"
LABEL_DISPLAY_NAME = "org.workbay.display-name"
LABEL_VERSION = "org.workbay.version"
LABEL_KERNELSPEC = "ai.backend.kernelspec"

REQUIRED_LABELS = (
    "ai.backend.kernelspec",
    "ai.backend.features",
    "ai.backend.base-distro",
    "ai.backend.resource.min.cpu",
    "ai.backend.resource.min.mem",
    "ai.backend.runtime-type",
    "ai.backend.runtime-path",
    "ai.backend.service-ports",
)

_TOP_KEYS = {"display_name", "version", "base", "rootfs", "labels"}
_ROOTFS_KEYS = {"suite", "variant", "sources", "packages"}
_NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SERVICE_PORT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*:(http|tcp|pty|preopen):\d{1,5}$")


class RecipeError(Exception):
    """A recipe is missing, malformed or inconsistent."""


def default_recipes_dir() -> Path:
    """``$WORKBAY_IMAGES_DIR``, else ``images/`` at the root of this source tree."""
    env = os.environ.get("WORKBAY_IMAGES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "images"


def resolve_image_name(name: str) -> str:
    """The full reference of an image name as the engine and the catalog know it.

    ``python:3.11``, ``workbay/python:3.11`` and ``localhost/workbay/python:3.11`` all give
    ``localhost/workbay/python:3.11``. A name whose first component is a registry (has a dot or a
    port, or is ``localhost``) is returned unchanged; a missing tag becomes ``latest``.
    """
    ref = name.strip()
    if not ref or any(c.isspace() for c in ref):
        raise ValueError(f"invalid image name {name!r}")
    digest = ""
    if ref.endswith((":", "@", "/")):
        raise ValueError(f"invalid image name {name!r}")
    if "@" in ref:
        ref, digest = ref.split("@", 1)
        digest = "@" + digest
    first, _, rest = ref.partition("/")
    has_registry = bool(rest) and ("." in first or ":" in first or first == "localhost")
    if not has_registry:
        ref = ref[len("workbay/"):] if ref.startswith("workbay/") else ref
        ref = f"{REGISTRY_PREFIX}/{ref}"
    repo, tag = _split_tag(ref)
    if not tag and not digest:
        tag = "latest"
    path = repo.split("/", 1)[1] if "/" in repo else repo
    if not path or not all(_NAME_RE.match(part) for part in path.split("/")):
        raise ValueError(f"invalid image name {name!r}")
    if tag and not _TAG_RE.match(tag):
        raise ValueError(f"invalid tag in image name {name!r}")
    return repo + (f":{tag}" if tag else "") + digest


def short_image_name(ref: str) -> str:
    """``localhost/workbay/python:3.11`` → ``python:3.11``; other references are unchanged."""
    prefix = REGISTRY_PREFIX + "/"
    return ref[len(prefix):] if ref.startswith(prefix) else ref


def _split_tag(ref: str) -> tuple[str, str]:
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, ""


@dataclass(frozen=True)
class Rootfs:
    suite: str
    variant: str
    sources: tuple[str, ...]
    packages: tuple[str, ...]


@dataclass(frozen=True)
class Recipe:
    """One recipe directory, ``<recipes_dir>/<name>/<tag>/`` with recipe.toml and Containerfile."""

    name: str                      # "python"
    tag: str                       # "3.11"
    path: Path
    display_name: str
    version: str
    labels: dict[str, str] = field(hash=False)
    rootfs: Rootfs | None = None   # exactly one of rootfs and base is set
    base: str | None = None        # short name of another recipe ("python:3.11")

    @property
    def short_name(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def ref(self) -> str:
        return f"{REGISTRY_PREFIX}/{self.name}:{self.tag}"

    def files(self) -> list[Path]:
        """Every file of the recipe directory (the build context), sorted."""
        return sorted(p for p in self.path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def load_recipe(path: Path, name: str, tag: str) -> Recipe:
    toml_path = path / "recipe.toml"
    try:
        data = tomllib.loads(toml_path.read_text())
    except FileNotFoundError:
        raise RecipeError(f"{toml_path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{toml_path}: {e}") from None
    where = f"{toml_path}"
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise RecipeError(f"{where}: unknown keys {sorted(unknown)}")
    if not (path / "Containerfile").is_file():
        raise RecipeError(f"{path / 'Containerfile'} does not exist")
    for key in ("display_name", "version"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise RecipeError(f"{where}: {key} must be a non-empty string")
    if ("rootfs" in data) == ("base" in data):
        raise RecipeError(f"{where}: set exactly one of [rootfs] (a Debian rootfs) and base (another recipe)")
    rootfs = None
    base = None
    if "rootfs" in data:
        r = data["rootfs"]
        unknown = set(r) - _ROOTFS_KEYS
        if unknown:
            raise RecipeError(f"{where}: unknown keys in [rootfs]: {sorted(unknown)}")
        if not isinstance(r.get("suite"), str) or not r["suite"]:
            raise RecipeError(f"{where}: rootfs.suite must be a Debian suite name")
        for key in ("sources", "packages"):
            v = r.get(key)
            if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
                raise RecipeError(f"{where}: rootfs.{key} must be a non-empty list of strings")
        rootfs = Rootfs(suite=r["suite"], variant=str(r.get("variant", "minbase")),
                        sources=tuple(r["sources"]), packages=tuple(r["packages"]))
    else:
        if not isinstance(data["base"], str):
            raise RecipeError(f"{where}: base must be a recipe name like 'python:3.11'")
        base = short_image_name(resolve_image_name(data["base"]))
    labels = data.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise RecipeError(f"{where}: [labels] must map names to strings")
    if rootfs is not None:  # derived images inherit their base's labels
        missing = [k for k in REQUIRED_LABELS if k not in labels]
        if missing:
            raise RecipeError(f"{where}: missing labels {missing}")
    if "ai.backend.service-ports" in labels:
        for item in labels["ai.backend.service-ports"].split(","):
            if not _SERVICE_PORT_RE.match(item):
                raise RecipeError(f"{where}: bad ai.backend.service-ports entry {item!r} "
                                  "(want name:http|tcp|pty|preopen:port)")
    return Recipe(name=name, tag=tag, path=path, display_name=data["display_name"],
                  version=data["version"], labels=dict(labels), rootfs=rootfs, base=base)


def load_recipes(recipes_dir: Path | None = None) -> dict[str, Recipe]:
    """Every recipe under ``recipes_dir`` (default: default_recipes_dir()), by short name."""
    root = Path(recipes_dir) if recipes_dir is not None else default_recipes_dir()
    if not root.is_dir():
        raise RecipeError(f"no image recipes at {root} (set WORKBAY_IMAGES_DIR to the images/ folder)")
    recipes: dict[str, Recipe] = {}
    for toml_path in sorted(root.glob("*/*/recipe.toml")):
        tag_dir = toml_path.parent
        recipe = load_recipe(tag_dir, tag_dir.parent.name, tag_dir.name)
        recipes[recipe.short_name] = recipe
    for recipe in recipes.values():
        if recipe.base is not None and recipe.base not in recipes:
            raise RecipeError(f"{recipe.path / 'recipe.toml'}: base {recipe.base!r} is not a recipe")
    for recipe in recipes.values():
        build_order(recipes, recipe.short_name)  # raises on cycles
    return recipes


def find_recipe(recipes: dict[str, Recipe], name: str) -> Recipe:
    """The recipe an image name refers to (short or full name)."""
    try:
        short = short_image_name(resolve_image_name(name))
    except ValueError as e:
        raise RecipeError(str(e)) from None
    if short not in recipes:
        known = ", ".join(sorted(recipes)) or "none"
        raise RecipeError(f"no recipe for image {name!r} (known: {known})")
    return recipes[short]


def build_order(recipes: dict[str, Recipe], name: str) -> list[Recipe]:
    """The recipe and its bases, bases first."""
    chain: list[Recipe] = []
    seen: set[str] = set()
    current: str | None = name
    while current is not None:
        if current in seen:
            raise RecipeError(f"recipes {sorted(seen)} form a cycle of bases")
        seen.add(current)
        recipe = recipes[current]
        chain.append(recipe)
        current = recipe.base
    return list(reversed(chain))


def all_build_order(recipes: dict[str, Recipe]) -> list[Recipe]:
    """Every recipe once, each after its base."""
    ordered: list[Recipe] = []
    for name in sorted(recipes):
        for recipe in build_order(recipes, name):
            if recipe not in ordered:
                ordered.append(recipe)
    return ordered


def rootfs_hash(recipe: Recipe) -> str:
    """What identifies the imported rootfs: the [rootfs] table and the builder version."""
    if recipe.rootfs is None:
        raise RecipeError(f"{recipe.short_name} has no [rootfs]")
    r = recipe.rootfs
    payload = {"builder": BUILDER_VERSION, "suite": r.suite, "variant": r.variant,
               "sources": list(r.sources), "packages": list(r.packages)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def recipe_hash(recipes: dict[str, Recipe], name: str) -> str:
    """The content hash of a recipe: every file of its directory, its base's hash, the builder.

    An image whose ``org.workbay.recipe-hash`` label equals it is up to date.
    """
    recipe = recipes[name]
    h = hashlib.sha256()
    h.update(f"workbay-image-builder {BUILDER_VERSION}\n".encode())
    h.update(f"image {recipe.short_name}\n".encode())
    if recipe.base is not None:
        h.update(f"base {recipe_hash(recipes, recipe.base)}\n".encode())
    for path in recipe.files():
        rel = path.relative_to(recipe.path).as_posix()
        mode = "x" if os.access(path, os.X_OK) else "-"
        h.update(f"file {rel} {mode} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def image_labels(recipes: dict[str, Recipe], name: str) -> dict[str, str]:
    """The labels the builder puts on the image (the recipe's, plus Workbay's own)."""
    recipe = recipes[name]
    return {
        **recipe.labels,
        LABEL_DISPLAY_NAME: recipe.display_name,
        LABEL_VERSION: recipe.version,
        LABEL_IMAGE: recipe.short_name,
        LABEL_RECIPE_HASH: recipe_hash(recipes, name),
    }
