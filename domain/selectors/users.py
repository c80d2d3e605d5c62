"""Reads of accounts for administrators."""

from django.db.models import QuerySet

from domain.errors import PermissionDenied, ValidationFailed
from domain.models import Approval, Role, User


def user_list(*, by: User, approval: str | None = None, role: str | None = None) -> QuerySet[User]:
    """Accounts, oldest first, optionally filtered. Only administrators may list accounts."""
    if by.role != Role.ADMIN:
        raise PermissionDenied("Only administrators list accounts.")
    problems: dict[str, list[str]] = {}
    if approval is not None and approval not in Approval.values:
        problems["approval"] = [f"Must be one of: {', '.join(Approval.values)}."]
    if role is not None and role not in Role.values:
        problems["role"] = [f"Must be one of: {', '.join(Role.values)}."]
    if problems:
        raise ValidationFailed("The filter is invalid.", fields=problems)
    users = User.objects.select_related("hospital").order_by("date_joined", "id")
    if approval is not None:
        users = users.filter(approval=approval)
    if role is not None:
        users = users.filter(role=role)
    return users
