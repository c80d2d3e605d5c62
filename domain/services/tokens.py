"""JWT issue, refresh and verification: the one place tokens are made and checked.

Access tokens are short-lived and stateless; refresh tokens are recorded so that each can be
used once (rotation) and a replayed one revokes its whole family.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone

from domain.errors import AuthenticationFailed, ErrorCode, PermissionDenied
from domain.models import Approval, RefreshToken, User

ACCESS = "access"
REFRESH = "refresh"
_REQUIRED_CLAIMS = ["sub", "role", "exp", "iat", "jti", "type"]


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: str
    refresh: str
    access_expires_in: int
    refresh_expires_in: int


@dataclass(frozen=True, slots=True)
class AuthenticatedToken:
    user: User
    expires_at: datetime


def _encode(*, user: User, token_type: str, lifetime: timedelta, jti: str) -> str:
    now = timezone.now()
    claims = {
        "sub": str(user.pk),
        "role": user.role,
        "hospital": user.hospital.hpid if user.hospital else None,
        "type": token_type,
        "iat": now,
        "exp": now + lifetime,
        "jti": jti,
    }
    return jwt.encode(claims, settings.JWT_SIGNING_KEY, algorithm=settings.JWT_ALGORITHM)


# The largest primary key MariaDB's BIGINT holds: a larger ``sub`` names nobody.
_MAX_USER_ID = 2**63 - 1


def _invalid(message: str = "The token is invalid.") -> AuthenticationFailed:
    return AuthenticationFailed(message, code=ErrorCode.INVALID_TOKEN)


def _decode(token: str, *, token_type: str) -> dict[str, Any]:
    """The claims of a token we signed, each of the type ``_encode`` gives it.

    Anything else is ``AuthenticationFailed``, whatever the token holds: a signature is no
    proof that the claims are sane (the key may have signed a mistake, or leaked), and a claim
    of the wrong type must not reach the database or the clock as a 500. ``sub`` is a user id
    in decimal digits, ``exp`` an integer time a ``datetime`` can hold, ``type`` and ``jti``
    strings; PyJWT itself refuses a missing claim, another algorithm (``none`` included), a
    payload that is not a JSON object, a non-string ``sub``, and an ``exp``, ``nbf`` or ``iat``
    that is not a number or not yet or no longer valid.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.JWT_SIGNING_KEY,
            algorithms=[settings.JWT_ALGORITHM],
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationFailed("The token has expired.", code=ErrorCode.TOKEN_EXPIRED) from exc
    except (jwt.InvalidTokenError, ValueError, TypeError, OverflowError) as exc:
        raise _invalid() from exc
    sub, exp = claims["sub"], claims["exp"]
    if not (isinstance(sub, str) and sub.isascii() and sub.isdecimal()):
        raise _invalid()
    if not 0 < int(sub) <= _MAX_USER_ID:
        raise _invalid()
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise _invalid()
    try:
        claims["exp_at"] = datetime.fromtimestamp(exp, tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:  # past year 9999, or beyond the C clock
        raise _invalid() from exc
    if not all(isinstance(claims[name], str) for name in ("type", "jti")):
        raise _invalid()
    if claims["type"] != token_type:
        raise _invalid(f"This is not an {token_type} token.")
    return claims


def _ensure_may_sign_in(user: User) -> None:
    if user.may_sign_in:
        return
    if user.approval == Approval.PENDING:
        raise PermissionDenied("The account is awaiting approval.", code=ErrorCode.ACCOUNT_PENDING)
    if user.approval == Approval.REJECTED:
        raise PermissionDenied("The account was rejected.", code=ErrorCode.ACCOUNT_REJECTED)
    raise PermissionDenied("The account is disabled.", code=ErrorCode.ACCOUNT_DISABLED)


def access_token_issue(*, user: User, lifetime: timedelta | None = None) -> str:
    """A signed access token for ``user`` (no refresh token; for operators' load tests)."""
    return _encode(
        user=user,
        token_type=ACCESS,
        lifetime=lifetime or settings.ACCESS_TOKEN_LIFETIME,
        jti=uuid.uuid4().hex,
    )


def token_pair_issue(*, user: User, family: str | None = None) -> TokenPair:
    """A fresh access + refresh pair; the refresh token is recorded in ``family``."""
    _ensure_may_sign_in(user)
    refresh_jti = uuid.uuid4().hex
    now = timezone.now()
    RefreshToken.objects.create(
        jti=refresh_jti,
        user=user,
        family=family or uuid.uuid4().hex,
        issued_at=now,
        expires_at=now + settings.REFRESH_TOKEN_LIFETIME,
    )
    return TokenPair(
        access=access_token_issue(user=user),
        refresh=_encode(
            user=user,
            token_type=REFRESH,
            lifetime=settings.REFRESH_TOKEN_LIFETIME,
            jti=refresh_jti,
        ),
        access_expires_in=int(settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
        refresh_expires_in=int(settings.REFRESH_TOKEN_LIFETIME.total_seconds()),
    )


def token_pair_for_credentials(*, username: str, password: str) -> TokenPair:
    """Log in. Raises ``AuthenticationFailed`` for bad credentials and ``PermissionDenied``
    (``account_pending`` / ``account_rejected``) for a right password on an inactive account."""
    user = authenticate(username=username, password=password)
    if user is None:
        raise AuthenticationFailed(
            "Wrong username or password.", code=ErrorCode.INVALID_CREDENTIALS
        )
    return token_pair_issue(user=User.objects.select_related("hospital").get(pk=user.pk))


def token_pair_refresh(*, refresh_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair. Each refresh token works once; a reused one
    revokes every token of its family and fails."""
    claims = _decode(refresh_token, token_type=REFRESH)
    now = timezone.now()
    with transaction.atomic():
        record = (
            RefreshToken.objects.select_for_update()
            .select_related("user__hospital")
            .filter(jti=claims["jti"])
            .first()
        )
        if record is None:
            raise _invalid()
        replayed = record.used_at is not None or record.revoked_at is not None
        if replayed:
            RefreshToken.objects.filter(family=record.family, revoked_at__isnull=True).update(
                revoked_at=now
            )
        else:
            record.used_at = now
            record.save(update_fields=["used_at"])
            return token_pair_issue(user=record.user, family=record.family)
    raise AuthenticationFailed("The refresh token was already used.", code=ErrorCode.TOKEN_REUSED)


def refresh_tokens_revoke(*, user: User) -> None:
    """Revoke every outstanding refresh token of ``user`` (on rejection or disabling)."""
    RefreshToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def access_token_authenticate(*, token: str) -> AuthenticatedToken:
    """Verify an access token and load its user; serves HTTP and websockets alike.

    Raises ``AuthenticationFailed`` (missing user, bad signature, expired, wrong type) or
    ``PermissionDenied`` (the user is no longer active).
    """
    claims = _decode(token, token_type=ACCESS)
    user = User.objects.select_related("hospital").filter(pk=int(claims["sub"])).first()
    if user is None:
        raise _invalid()
    _ensure_may_sign_in(user)
    return AuthenticatedToken(user=user, expires_at=claims["exp_at"])
