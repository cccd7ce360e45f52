"""``tagwise serve``: the web app (label queue, review queue, model page) and the HTTP API.

``app.create_app(project_path, ...)`` builds the FastAPI app; ``batcher.Predictor`` micro-batches
predict requests; pages are Jinja2 templates (``templates/``, autoescaped, rendered by ``pages``) with one
small script (``static/app.js``); ``people.request_user`` is the one place a request's user is learned.
"""
