"""Python client for the ML Portal's REST API v1.

    from portal_client import Client
    portal = Client()                      # PORTAL_URL and PORTAL_TOKEN from the environment

See `Client` for the resources and `portal_client.errors` for the exceptions.
"""

from .client import Client
from .errors import (
    AuthenticationFailed,
    Conflict,
    JobFailed,
    NotFound,
    PermissionDenied,
    PortalError,
    PreconditionFailed,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    TooLarge,
    ValidationFailed,
    WaitTimedOut,
)
from .types import Dataset, Job, Model, ModelVersion, OnlinePrediction, Usage

__version__ = "0.1.0"

__all__ = [
    "AuthenticationFailed", "Client", "Conflict", "Dataset", "Job", "JobFailed", "Model",
    "ModelVersion", "NotFound", "OnlinePrediction", "PermissionDenied", "PortalError", "PreconditionFailed",
    "QuotaExceeded", "RateLimited", "ServiceUnavailable", "TooLarge", "Usage", "ValidationFailed",
    "WaitTimedOut",
]
