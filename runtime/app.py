"""The WSGI entry point: `gunicorn "runtime.app:create_app()"` (the app lives in `runtime.http.app`)."""

from runtime.http.app import create_app

__all__ = ["create_app"]
