"""SimPy-facing compute tiers: local GPU replicas, async batch API, real-time API."""
