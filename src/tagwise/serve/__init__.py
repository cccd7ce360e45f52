"""``tagwise serve``: the web app (label queue, review queue, model page) and the HTTP API.

``app.create_app(project_path, ...)`` builds the FastAPI app; ``batcher.Predictor`` micro-batches
predict requests; pages are Jinja2 templates (``templates/``, autoescaped, rendered by ``pages``) with one
small script (``static/app.js``); ``auth.Guard`` checks every request, and ``auth.request_user`` is the one
place a route learns who asks.
"""
