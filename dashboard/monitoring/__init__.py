"""Health monitoring: probes, their recording, rollups and the reads the pages and reports make."""
