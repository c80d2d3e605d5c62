"""The settings django-stubs loads while mypy runs: ``project.settings`` with placeholder secrets.

mypy's Django plugin imports the settings module to learn the models and each setting's type.
``project.settings`` rightly refuses to load without SECRET_KEY and JWT_SIGNING_KEY when DEMO
is off, so this module fills in those two, and only those, when they are unset. It is the one
deliberate exception to "only project/settings.py touches the environment", and no process
runs with it: it is named only in pyproject.toml's [tool.django-stubs].
"""

import os

for _secret in ("SECRET_KEY", "JWT_SIGNING_KEY"):
    os.environ.setdefault(_secret, "type-checking-only-not-a-secret")

from project.settings import *  # noqa: E402, F403
