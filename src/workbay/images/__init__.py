"""Workbay kernel images: recipes in images/, built into the local engine, no registry needed.

Images are named ``localhost/workbay/<name>:<tag>`` (the catalog shows that full name);
resolve_image_name() turns a short name such as ``python:3.11`` into it. build_image() builds
one image or ``all`` (see builder.py for which steps use the Docker Engine API and which run
``mmdebstrap`` on the host); list_images() lists the local ones with their labels.
"""

from .builder import (
    BuildError,
    BuildEvent,
    BuildResult,
    ProgressCallback,
    build_image,
    build_image_sync,
    list_images,
)
from .engine import connect, container_ulimits, engine_url, ping
from .recipes import (
    REGISTRY_PREFIX,
    Recipe,
    RecipeError,
    image_labels,
    load_recipes,
    recipe_hash,
    resolve_image_name,
    short_image_name,
)

__all__ = [
    "REGISTRY_PREFIX",
    "BuildError",
    "BuildEvent",
    "BuildResult",
    "ProgressCallback",
    "Recipe",
    "RecipeError",
    "build_image",
    "build_image_sync",
    "connect",
    "container_ulimits",
    "engine_url",
    "image_labels",
    "list_images",
    "load_recipes",
    "ping",
    "recipe_hash",
    "resolve_image_name",
    "short_image_name",
]
