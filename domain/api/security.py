from django.http import HttpRequest
from ninja.security import HttpBearer

from domain.log_context import USER_ID
from domain.models import User
from domain.services.tokens import access_token_authenticate


class AccessTokenAuth(HttpBearer):
    """``Authorization: Bearer <access JWT>``; failures raise our errors (401 / 403)."""

    def authenticate(self, request: HttpRequest, token: str) -> User:
        user = access_token_authenticate(token=token).user
        USER_ID.set(user.id)  # on this request's log lines
        return user


access_token_auth = AccessTokenAuth()
