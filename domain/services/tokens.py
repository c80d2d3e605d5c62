"""JWT issue, refresh and verification: the one place tokens are made and checked.

Access tokens are short-lived and carry the login ("family") they belong to and the account's
token generation; refresh tokens are recorded so that each can be used once (rotation) and a
replayed one revokes its whole family. An access token is admitted (``access_admits``) while
its account may sign in, its generation is the account's (a password change starts a new
one) and its family was not revoked (log-out, a replayed refresh token, a disabled account).
Every such change is also published on the ``accounts`` stream, so servers close the sockets
opened with tokens that no longer qualify (docs/security.md).
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from domain.errors import AuthenticationFailed, ErrorCode, PermissionDenied, ValidationFailed
from domain.events import AccountClose
from domain.models import Approval, RefreshToken, User
from domain.services.account_status import UserStatus, account_change_publish, user_status_of
from domain.services.rate_limits import (
    Limit,
    account_key,
    address_key,
    rate_limit_check,
    rate_limit_hit,
    rate_limit_record,
)

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


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What an access token says, once its signature, expiry and shape are checked."""

    user_id: int
    expires_at: datetime
    family: str | None  # the login it came from; None for tokens issued outside one
    generation: int


def _encode(
    *, user: User, token_type: str, lifetime: timedelta, jti: str, family: str | None = None
) -> str:
    now = timezone.now()
    claims = {
        "sub": str(user.pk),
        "role": user.role,
        "hospital": user.hospital.hpid if user.hospital else None,
        "type": token_type,
        "iat": now,
        "exp": now + lifetime,
        "jti": jti,
        "fam": family,
        "gen": user.token_generation,
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


def _ensure_may_sign_in(user: "User | UserStatus") -> None:
    if user.is_active and user.approval == Approval.ACTIVE:
        return
    if user.approval == Approval.PENDING:
        raise PermissionDenied("The account is awaiting approval.", code=ErrorCode.ACCOUNT_PENDING)
    if user.approval == Approval.REJECTED:
        raise PermissionDenied("The account was rejected.", code=ErrorCode.ACCOUNT_REJECTED)
    raise PermissionDenied("The account is disabled.", code=ErrorCode.ACCOUNT_DISABLED)


def access_token_issue(
    *, user: User, lifetime: timedelta | None = None, family: str | None = None
) -> str:
    """A signed access token for ``user``: of the login ``family``, or of none (operators'
    load tests and tools issue such tokens directly)."""
    return _encode(
        user=user,
        token_type=ACCESS,
        lifetime=lifetime or settings.ACCESS_TOKEN_LIFETIME,
        jti=uuid.uuid4().hex,
        family=family,
    )


def token_pair_issue(*, user: User, family: str | None = None) -> TokenPair:
    """A fresh access + refresh pair; the refresh token is recorded in ``family``."""
    _ensure_may_sign_in(user)
    refresh_jti = uuid.uuid4().hex
    family = family or uuid.uuid4().hex
    now = timezone.now()
    RefreshToken.objects.create(
        jti=refresh_jti,
        user=user,
        family=family,
        issued_at=now,
        expires_at=now + settings.REFRESH_TOKEN_LIFETIME,
    )
    return TokenPair(
        access=access_token_issue(user=user, family=family),
        refresh=_encode(
            user=user,
            token_type=REFRESH,
            lifetime=settings.REFRESH_TOKEN_LIFETIME,
            jti=refresh_jti,
        ),
        access_expires_in=int(settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
        refresh_expires_in=int(settings.REFRESH_TOKEN_LIFETIME.total_seconds()),
    )


def token_pair_for_credentials(
    *, username: str, password: str, address: str | None = None
) -> TokenPair:
    """Log in from client ``address``. Raises ``AuthenticationFailed`` for bad credentials,
    ``PermissionDenied`` (``account_pending`` / ``account_rejected``) for a right password on
    an inactive account, and ``RateLimited`` over ``LIMIT_LOGIN_PER_ADDRESS`` (attempts) or
    ``LIMIT_LOGIN_PER_ACCOUNT`` (failures, counted for any username, known or not, so the
    limits tell nobody which exist). Both are checked before the password is: a refused
    attempt costs no hashing and no database query."""
    if address is not None:
        rate_limit_hit(Limit.LOGIN_PER_ADDRESS, address_key(address))
    account = account_key(username)
    rate_limit_check(Limit.LOGIN_PER_ACCOUNT, account)
    user = authenticate(username=username, password=password)
    if user is None:
        rate_limit_record(Limit.LOGIN_PER_ACCOUNT, account)
        raise AuthenticationFailed(
            "Wrong username or password.", code=ErrorCode.INVALID_CREDENTIALS
        )
    return token_pair_issue(user=User.objects.select_related("hospital").get(pk=user.pk))


def token_pair_refresh(*, refresh_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair. Each refresh token works once; a reused one
    revokes every token of its family and fails. ``RateLimited`` over
    ``LIMIT_REFRESH_PER_USER``, checked before the database."""
    claims = _decode(refresh_token, token_type=REFRESH)
    rate_limit_hit(Limit.REFRESH_PER_USER, str(claims["sub"]))  # signed: the user is known
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


def access_claims(token: str) -> AccessClaims:
    """Check an access token's signature, expiry and claims, without the database.

    Raises ``AuthenticationFailed`` (bad signature, expired, wrong type, odd claims)."""
    claims = _decode(token, token_type=ACCESS)
    family, generation = claims.get("fam"), claims.get("gen", 0)
    if not isinstance(family, str | None) or not (
        isinstance(generation, int) and not isinstance(generation, bool) and generation >= 0
    ):
        raise _invalid()
    return AccessClaims(
        user_id=int(claims["sub"]),
        expires_at=claims["exp_at"],
        family=family,
        generation=generation,
    )


def access_admits(status: UserStatus | None, claims: AccessClaims) -> None:
    """Whether an access token with ``claims`` is admitted for the user whose ``status`` this
    is (None: no such user). Raises ``AuthenticationFailed`` (no user; ``token_revoked``: a
    revoked login or an older generation) or ``PermissionDenied`` (not active)."""
    if status is None:
        raise AuthenticationFailed("The token is invalid.", code=ErrorCode.INVALID_TOKEN)
    _ensure_may_sign_in(status)
    if claims.generation != status.generation or (
        claims.family is not None and claims.family in status.revoked_families
    ):
        raise AuthenticationFailed(
            "The token was revoked (logged out, or the password changed): log in again.",
            code=ErrorCode.TOKEN_REVOKED,
        )


def access_token_authenticate(*, token: str) -> AuthenticatedToken:
    """Verify an access token and load its user (HTTP; sockets use ``access_claims`` and a
    cached ``UserStatus``). Raises as ``access_claims`` and ``access_admits`` do."""
    claims = access_claims(token)
    user = User.objects.select_related("hospital").filter(pk=claims.user_id).first()
    access_admits(None if user is None else user_status_of(user), claims)
    assert user is not None  # noqa: S101 - access_admits refused a missing user
    return AuthenticatedToken(user=user, expires_at=claims.expires_at)


def user_log_out(*, refresh_token: str) -> None:
    """End the login ``refresh_token`` belongs to: its refresh tokens stop working and the
    sockets opened with its access tokens close (4401). Raises ``AuthenticationFailed`` for
    a token that is not a valid refresh token."""
    claims = _decode(refresh_token, token_type=REFRESH)
    with transaction.atomic():
        record = RefreshToken.objects.filter(jti=claims["jti"]).first()
        if record is None:
            raise AuthenticationFailed("The token is invalid.", code=ErrorCode.INVALID_TOKEN)
        RefreshToken.objects.filter(family=record.family).update(revoked_at=timezone.now())
        account_change_publish(
            user_id=record.user_id, close=AccountClose.REVOKED, family=record.family
        )


def user_password_change(*, user: User, current_password: str, new_password: str) -> TokenPair:
    """Set a new password: every token issued before stops working, the user's sockets close
    (4401), and a fresh pair is returned. Raises ``ValidationFailed`` for a wrong current
    password or a new one the password rules refuse."""
    if not user.check_password(current_password):
        raise ValidationFailed(
            "The current password is wrong.",
            code=ErrorCode.WRONG_PASSWORD,
            fields={"current_password": ["Wrong password."]},
        )
    try:
        validate_password(new_password, user=user)
    except ValidationError as exc:
        raise ValidationFailed(
            "The new password is not acceptable.", fields={"new_password": exc.messages}
        ) from exc
    with transaction.atomic():
        locked = User.objects.select_for_update().select_related("hospital").get(pk=user.pk)
        locked.set_password(new_password)
        locked.token_generation += 1
        locked.save(update_fields=["password", "token_generation"])
        refresh_tokens_revoke(user=locked)
        account_change_publish(user_id=locked.pk, close=AccountClose.REVOKED)
        return token_pair_issue(user=locked)
