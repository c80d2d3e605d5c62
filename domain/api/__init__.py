"""The JSON API at ``/api/``: OpenAPI schema at ``/api/openapi.json``, docs at ``/api/docs``."""

from ninja import NinjaAPI

from domain.api import accounts, auth, hospitals, reservations
from domain.api.errors import install_error_handlers

api = NinjaAPI(
    title="WeER API",
    version="1",
    description="Live ER bed availability and ambulance pre-notification.",
    urls_namespace="api",
)
install_error_handlers(api)
api.add_router("/auth", auth.router)
api.add_router("/", hospitals.router)
api.add_router("/admin", accounts.router)
api.add_router("/reservations", reservations.router)
