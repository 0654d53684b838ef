"""The query API (FastAPI) and the dashboard it serves; see `journeylens.api.app.create_app`."""
