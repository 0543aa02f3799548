"""The web console (`dialer web`): an ASGI application (FastAPI on Starlette, served by
uvicorn, Jinja2 templates) reading the same database as the workers.

    app             the application: options, middleware (body limits, sessions, headers)
    security        roles, sessions' idle timeout, CSRF, the login rate limit (pure rules)
    deps            the user a request acts for, permission and CSRF checks, templates
    pages           log in / out, the wallboard and its events, the audit log, the API's docs
    campaign_pages  campaigns: figures, charts, attempts, actions, list upload and rejects
    api             /api/…: JSON for programs (tokens), documented by OpenAPI
    live            the wallboard's one reader fanned out to every browser (server-sent events)
    views           what each page shows, from the report library (no HTTP)
    charts          the charts, as SVG drawn on the server (pygal)
    imports         uploads and API contacts through the importer, with progress
    report          `dialer report html`: a campaign page as one self-contained file
    labels          the words: Chinese first, English beside
"""
