from django.http import HttpRequest
from ninja import Router, Status

from domain.api.schemas import (
    CredentialsIn,
    ErrorOut,
    PasswordChangeIn,
    RefreshIn,
    SignUpIn,
    TokenPairOut,
    UserOut,
)
from domain.api.security import access_token_auth
from domain.models import User
from domain.services.tokens import (
    TokenPair,
    token_pair_for_credentials,
    token_pair_refresh,
    user_log_out,
    user_password_change,
)
from domain.services.users import user_sign_up

router = Router(tags=["auth"])


def _pair_out(pair: TokenPair) -> TokenPairOut:
    return TokenPairOut(
        access=pair.access,
        refresh=pair.refresh,
        expires_in=pair.access_expires_in,
        refresh_expires_in=pair.refresh_expires_in,
    )


def _address(request: HttpRequest) -> str | None:
    """The client's address as daphne gives it: the peer's, or with ``--proxy-headers`` the
    one the proxy names in ``X-Forwarded-For`` (README § Rate limits)."""
    return request.META.get("REMOTE_ADDR") or None


@router.post("/signup", response={201: UserOut, 400: ErrorOut, 409: ErrorOut, 429: ErrorOut})
def sign_up(request: HttpRequest, payload: SignUpIn) -> Status[User]:
    """Create an account awaiting an administrator's approval (no token until then)."""
    user = user_sign_up(
        username=payload.username,
        password=payload.password,
        role=payload.role,
        hospital_hpid=payload.hospital,
        agency=payload.agency,
        crew_name=payload.crew_name,
        phone=payload.phone,
        address=_address(request),
    )
    return Status(201, user)


_TOKEN_ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 429: ErrorOut}


@router.post("/token", response={200: TokenPairOut, **_TOKEN_ERRORS})
def token(request: HttpRequest, payload: CredentialsIn) -> TokenPairOut:
    """Log in: an access and a refresh token. Pending or rejected accounts get 403."""
    return _pair_out(
        token_pair_for_credentials(
            username=payload.username, password=payload.password, address=_address(request)
        )
    )


@router.post("/refresh", response={200: TokenPairOut, **_TOKEN_ERRORS})
def refresh(request: HttpRequest, payload: RefreshIn) -> TokenPairOut:
    """Exchange a refresh token for a new pair; the old refresh token stops working."""
    return _pair_out(token_pair_refresh(refresh_token=payload.refresh))


@router.get("/me", response={200: UserOut, 401: ErrorOut, 403: ErrorOut}, auth=access_token_auth)
def me(request: HttpRequest) -> User:
    """The account the access token belongs to."""
    user: User = request.auth  # type: ignore[attr-defined]
    return user


@router.post("/logout", response={204: None, 400: ErrorOut, 401: ErrorOut})
def log_out(request: HttpRequest, payload: RefreshIn) -> Status[None]:
    """End this login: its refresh token stops working and the sockets opened with its
    access tokens close (4401 ``token_revoked``)."""
    user_log_out(refresh_token=payload.refresh)
    return Status(204, None)


@router.post(
    "/password",
    response={200: TokenPairOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut},
    auth=access_token_auth,
)
def change_password(request: HttpRequest, payload: PasswordChangeIn) -> TokenPairOut:
    """Set a new password: every earlier token stops working and the account's open sockets
    close (4401 ``token_revoked``); the answer is a fresh pair for this client."""
    user: User = request.auth  # type: ignore[attr-defined]
    return _pair_out(
        user_password_change(
            user=user,
            current_password=payload.current_password,
            new_password=payload.new_password,
        )
    )
