"""The medcite web app (FastAPI + Jinja2): articles, the medical review workflow and a JSON API.

An adapter like ``cli``: it may import everything above it, and nothing imports it.
"""

from medcite.web.app import create_app

__all__ = ["create_app"]
