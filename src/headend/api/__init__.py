"""The HTTP API: billing records, reads, on-demand jobs, reports and operations under /api/v1."""
