"""Tenant schemas: datasets, jobs, models and predictions."""
