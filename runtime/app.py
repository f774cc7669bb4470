"""The WSGI entry point: `gunicorn "runtime.app:create_app()"`.

The app itself is built in `runtime.http.app`; this name is kept for deployments.
"""

from runtime.http.app import create_app

__all__ = ["create_app"]
