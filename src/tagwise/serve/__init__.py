"""``tagwise serve``: the web app (label queue, review queue, model page) and the HTTP API.

``app.create_app(project_path, ...)`` builds the FastAPI app; ``batcher.Predictor`` micro-batches
predict requests; pages are server-rendered HTML (``pages``) with one small script (``static/app.js``).
"""
