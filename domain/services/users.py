"""Accounts: sign-up creates a pending user; an admin approves or rejects it, and may disable
and enable it again. Every change that takes access away also closes the user's open sockets
(published on the ``accounts`` stream with the change)."""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from domain.errors import Conflict, ErrorCode, NotFound, PermissionDenied, ValidationFailed
from domain.events import AccountClose
from domain.models import Approval, Hospital, Role, User
from domain.services.account_status import account_change_publish
from domain.services.rate_limits import Limit, address_key, rate_limit_hit
from domain.services.tokens import refresh_tokens_revoke

SELF_SERVICE_ROLES = (Role.AMBULANCE, Role.HOSPITAL)


def user_sign_up(
    *,
    username: str,
    password: str,
    role: str,
    hospital_hpid: str | None = None,
    agency: str = "",
    crew_name: str = "",
    phone: str = "",
    address: str | None = None,
) -> User:
    """Create a pending ambulance or hospital user. Admins are never self-service.

    Raises ``ValidationFailed`` with field errors, ``Conflict`` if the username is taken, or
    ``RateLimited`` when client ``address`` made too many sign-ups (``LIMIT_SIGNUP_PER_ADDRESS``;
    every attempt counts, valid or not).
    """
    if address is not None:
        rate_limit_hit(Limit.SIGNUP_PER_ADDRESS, address_key(address))
    problems: dict[str, list[str]] = {}
    if role not in SELF_SERVICE_ROLES:
        problems["role"] = [f"Must be one of: {', '.join(SELF_SERVICE_ROLES)}."]
    hospital, hospital_problems = _sign_up_hospital(role=role, hospital_hpid=hospital_hpid)
    if hospital_problems:
        problems["hospital"] = hospital_problems
    candidate = User(username=username, role=role, agency=agency, crew_name=crew_name, phone=phone)
    try:
        candidate.clean_fields(exclude=["password", "role", "hospital"])
    except DjangoValidationError as exc:
        problems.update(exc.message_dict)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        problems["password"] = list(exc.messages)
    if problems:
        raise ValidationFailed("The sign-up is invalid.", fields=problems)

    candidate.hospital = hospital
    candidate.approval = Approval.PENDING
    candidate.set_password(password)
    if User.objects.filter(username__iexact=username).exists():
        raise _username_taken()
    try:
        with transaction.atomic():
            candidate.save()
    except IntegrityError as exc:  # a concurrent sign-up took it first
        raise _username_taken() from exc
    return candidate


def _sign_up_hospital(*, role: str, hospital_hpid: str | None) -> tuple[Hospital | None, list[str]]:
    """The hospital a new user names, and what is wrong with naming it (nothing: ``[]``):
    hospital staff must name a known hospital, everyone else none."""
    if role != Role.HOSPITAL:
        return None, ["Only hospital staff belong to a hospital."] if hospital_hpid else []
    if not hospital_hpid:
        return None, ["Hospital staff must name their hospital (hpid)."]
    hospital = Hospital.objects.filter(hpid=hospital_hpid).first()
    if hospital is None:
        return None, [f"Unknown hospital {hospital_hpid!r}."]
    return hospital, []


def _username_taken() -> Conflict:
    return Conflict(
        "That username is taken.", code=ErrorCode.USERNAME_TAKEN, fields={"username": ["Taken."]}
    )


def _user_for_decision(*, user_id: int, by: User) -> User:
    if by.role != Role.ADMIN or not by.may_sign_in:
        raise PermissionDenied("Only administrators decide on accounts.")
    # The hospital comes in a second, unlocking query: the answer shows it (UserOut).
    user = User.objects.select_for_update().prefetch_related("hospital").filter(pk=user_id).first()
    if user is None:
        raise NotFound(f"No user {user_id}.")
    if user.pk == by.pk:
        raise PermissionDenied("Administrators cannot decide on their own account.")
    return user


@transaction.atomic
def user_approve(*, user_id: int, by: User) -> User:
    """Make a pending (or previously rejected) user active. Raises ``Conflict`` if already so."""
    user = _user_for_decision(user_id=user_id, by=by)
    if user.approval == Approval.ACTIVE:
        raise Conflict("The user is already active.", code=ErrorCode.ALREADY_ACTIVE)
    user.approval = Approval.ACTIVE
    user.approval_decided_at = timezone.now()
    user.approval_decided_by = by
    user.rejection_reason = ""
    user.save(
        update_fields=["approval", "approval_decided_at", "approval_decided_by", "rejection_reason"]
    )
    account_change_publish(user_id=user.pk)
    return user


@transaction.atomic
def user_reject(*, user_id: int, by: User, reason: str = "") -> User:
    """Reject a pending user, or withdraw an active user's access (their refresh tokens are
    revoked; access tokens stop working at the next check). Raises ``Conflict`` if already so."""
    user = _user_for_decision(user_id=user_id, by=by)
    if user.approval == Approval.REJECTED:
        raise Conflict("The user is already rejected.", code=ErrorCode.ALREADY_REJECTED)
    user.approval = Approval.REJECTED
    user.approval_decided_at = timezone.now()
    user.approval_decided_by = by
    user.rejection_reason = reason
    user.save(
        update_fields=["approval", "approval_decided_at", "approval_decided_by", "rejection_reason"]
    )
    refresh_tokens_revoke(user=user)
    account_change_publish(user_id=user.pk, close=AccountClose.REJECTED)
    return user


@transaction.atomic
def user_disable(*, user_id: int, by: User) -> User:
    """Take an account's access away until it is enabled again: its refresh tokens are
    revoked, its sockets close (4403 ``account_disabled``) and its access tokens stop working.
    Raises ``Conflict`` if it is disabled already."""
    user = _user_for_decision(user_id=user_id, by=by)
    if not user.is_active:
        raise Conflict("The user is already disabled.", code=ErrorCode.ALREADY_DISABLED)
    user.is_active = False
    user.save(update_fields=["is_active"])
    refresh_tokens_revoke(user=user)
    account_change_publish(user_id=user.pk, close=AccountClose.DISABLED)
    return user


@transaction.atomic
def user_enable(*, user_id: int, by: User) -> User:
    """Give a disabled account its access back (it logs in again). Raises ``Conflict`` if it
    is not disabled."""
    user = _user_for_decision(user_id=user_id, by=by)
    if user.is_active:
        raise Conflict("The user is not disabled.", code=ErrorCode.NOT_DISABLED)
    user.is_active = True
    user.save(update_fields=["is_active"])
    account_change_publish(user_id=user.pk)
    return user


def synthetic_users_ensure(
    *, role: str, count: int, hospital_hpid: str | None = None
) -> list[User]:
    """``count`` active synthetic users of ``role`` for operators and load tests, named
    ``synthetic-<role>[-<hpid>]-NNNNN``; a second call reuses the same users. They have no
    usable password: they only ever hold tokens issued by ``issue_tokens``."""
    if role not in Role.values:
        raise ValidationFailed("Unknown role.", fields={"role": [f"One of {Role.values}."]})
    if count < 1:
        raise ValidationFailed("Count must be positive.", fields={"count": ["Must be ≥ 1."]})
    hospital = None
    if role == Role.HOSPITAL:
        hospital = Hospital.objects.filter(hpid=hospital_hpid or "").first()
        if hospital is None:
            raise ValidationFailed(
                "Hospital users need an existing hospital.",
                fields={"hospital": [f"Unknown hospital {hospital_hpid!r}."]},
            )
    elif hospital_hpid:
        raise ValidationFailed(
            "Only hospital users belong to a hospital.", fields={"hospital": ["Not allowed."]}
        )
    prefix = f"synthetic-{role}-{hospital.hpid}-" if hospital else f"synthetic-{role}-"
    usernames = [f"{prefix}{i:05d}" for i in range(1, count + 1)]
    existing = set(User.objects.filter(username__in=usernames).values_list("username", flat=True))
    now = timezone.now()
    with transaction.atomic():
        new_users = []
        for username in usernames:
            if username in existing:
                continue
            user = User(
                username=username,
                role=role,
                hospital=hospital,
                approval=Approval.ACTIVE,
                approval_decided_at=now,
                crew_name=username if role == Role.AMBULANCE else "",
            )
            user.set_unusable_password()
            new_users.append(user)
        User.objects.bulk_create(new_users, batch_size=1000)
        User.objects.filter(username__in=usernames).exclude(approval=Approval.ACTIVE).update(
            approval=Approval.ACTIVE, approval_decided_at=now
        )
    by_name = {
        u.username: u
        for u in User.objects.select_related("hospital").filter(username__in=usernames)
    }
    return [by_name[name] for name in usernames]
