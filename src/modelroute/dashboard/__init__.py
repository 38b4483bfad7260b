"""The dashboard's data: what each page shows, read from the record store's rollups, the
records, outcomes and stored analysis snapshots. Never on the request path; the server's /ui
renders these values."""

from modelroute.dashboard.reader import Dashboard

__all__ = ["Dashboard"]
