"""Workbay: a self-hosted compute cloud for AI teams."""

__version__ = "0.1.0"
API_VERSION = "v7.20230615"
