"""The Flask application: `app.create_app()` assembles it; `auth` signs people in (sessions,
API tokens, throttling); `error_handler` renders the one error shape; `api/` is the JSON API
(one module per resource); `web/` is the business users' pages.
"""
