"""Health-history reports: periods, content gathered from rollups, server-side SVG charts, HTML/CSV/PDF
rendering, the immutable archive, schedules and email delivery. See docs/reports.md."""
