"""What a tenant may use and what it used: plans and quotas, metering, usage, the per-request gate (rate limit, epochs, counters) and fair-share scheduling."""
