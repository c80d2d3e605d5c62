"""schemathesis over the whole OpenAPI schema, against a real server process on the test
database and Redis: every operation, with valid and invalid input, as each role, as nobody and
with an odd token. No answer is a 5xx, and every answer is JSON; every error answer in the
standard shape.

Bounded and repeatable: a fixed number of examples per operation, drawn deterministically
(``derandomize``), never shrunk (a failure is reported as it was sent, with the others found).
"""

import json
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import requests
import schemathesis
from django.conf import settings
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as examples
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode, Response
from schemathesis.core.result import Ok

from domain.models import Role
from domain.services.tokens import access_token_issue
from tests.conftest import DaphneServer
from tests.factories import ERStatusFactory, HospitalFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES_PER_OPERATION = 10
# "odd token": correctly signed, its sub no user id (a token oddity must be a 401 everywhere).
ROLES = ["anonymous", "odd token", Role.AMBULANCE, Role.HOSPITAL, Role.ADMIN]


@dataclass(frozen=True)
class Finding:
    operation: str
    status: int
    problem: str
    request: str
    answer: str


@pytest.fixture(scope="module")
def api_schema(daphne_server: DaphneServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{daphne_server.http_url}/api/openapi.json", timeout=10)


@pytest.fixture
def role_headers() -> dict[str, dict[str, str]]:
    """An ``Authorization`` header per role (none for anonymous), over a few real rows."""
    hospital = HospitalFactory()
    ERStatusFactory(hospital=hospital)
    users = {
        Role.AMBULANCE: UserFactory(role=Role.AMBULANCE),
        Role.HOSPITAL: UserFactory(role=Role.HOSPITAL, hospital=hospital),
        Role.ADMIN: UserFactory(role=Role.ADMIN),
    }
    odd = jwt.encode(
        {"sub": "abc", "type": "access", "role": "admin", "iat": 0, "exp": 2**40, "jti": "x"},
        settings.JWT_SIGNING_KEY,
        algorithm=settings.JWT_ALGORITHM,
    )
    headers: dict[str, dict[str, str]] = {
        "anonymous": {},
        "odd token": {"Authorization": f"Bearer {odd}"},
    }
    for role, user in users.items():
        headers[role] = {"Authorization": f"Bearer {access_token_issue(user=user)}"}
    return headers


def _problem(response: Response) -> str | None:
    """What breaks the contract in ``response``, or None."""
    if response.status_code >= 500:
        return "5xx"
    content_type = ";".join(response.headers.get("content-type", []))
    if not content_type.startswith("application/json"):
        return f"not JSON: {content_type}"
    try:
        body = response.json()
    except json.JSONDecodeError:
        return "not parseable JSON"
    if response.status_code >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        if not (isinstance(error, dict) and {"code", "message", "fields"} <= set(error)):
            return "error not in the standard shape"
    return None


def _fuzz(
    operation: APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    server: DaphneServer,
    headers: dict[str, str],
    findings: list[Finding],
) -> None:
    session = requests.Session()

    @examples(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case[Any]) -> None:
        if case.headers:
            case.headers.pop("Authorization", None)  # the role's, or none for anonymous
        response = case.call(base_url=server.http_url, session=session, headers=headers, timeout=10)
        problem = _problem(response)
        if problem is not None:
            findings.append(
                Finding(
                    f"{operation.method.upper()} {operation.path}",
                    response.status_code,
                    problem,
                    case.as_curl_command(headers=headers),
                    response.text[:300],
                )
            )

    try:
        run()
    except Unsatisfiable:
        # No input of this operation can be invalid (it takes none): nothing to send.
        assert mode == GenerationMode.NEGATIVE, operation.label
    finally:
        session.close()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("role", ROLES)
def test_no_operation_answers_5xx_or_anything_but_json(
    api_schema: schemathesis.BaseSchema,
    daphne_server: DaphneServer,
    role_headers: dict[str, dict[str, str]],
    role: str,
    mode: GenerationMode,
) -> None:
    """Every operation of the schema, fuzzed as ``role``: no 5xx, JSON only, errors in shape."""
    findings: list[Finding] = []
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) > 10, [op.label for op in operations]
    for operation in operations:
        _fuzz(operation, mode, daphne_server, role_headers[role], findings)
    assert not findings, "\n\n".join(
        f"{f.operation} → {f.status} ({f.problem})\n{f.request}\n{f.answer}" for f in findings[:15]
    )
