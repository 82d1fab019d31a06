"""A connection profile that travels to worker processes and Spark executors without its secrets.

The settings (contact points, driver options, TLS file paths, bundle path) are plain JSON text,
so a work unit can be pickled, logged and shown in a Spark UI. Each secret (password, token)
travels apart, as an environment variable of the worker (`secret_env`): the local engine sets it
in the spawned process, the Spark engine in the executors' Python workers. Variable names contain
PASSWORD or TOKEN, which Spark's default `spark.redaction.regex` hides wherever it lists them.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from astrachaos.errors import EnvironmentProblem

if TYPE_CHECKING:
    from astrachaos.config.settings import Profile

_SECRETS = ("password", "token")


@dataclass(frozen=True)
class PortableProfile:
    """A profile's name and every setting but its secrets; `secret_fields` names those it has."""

    name: str
    settings_json: str
    secret_fields: tuple[str, ...] = ()

    @classmethod
    def of(cls, profile: Profile) -> PortableProfile:
        """The portable form of `profile` (its secrets left behind)."""
        settings = profile.model_dump(mode="json", exclude=set(_SECRETS))
        present = tuple(f for f in _SECRETS if getattr(profile, f) is not None)
        return cls(profile.name, json.dumps(settings, sort_keys=True), present)

    def env_name(self, secret: str) -> str:
        """The worker's environment variable that carries `secret` of this profile."""
        slug = re.sub(r"[^A-Z0-9]", "_", self.name.upper())
        return f"ASTRACHAOS_RECONCILE_{slug}_{secret.upper()}"

    def secret_env(self, profile: Profile) -> dict[str, str]:
        """Variable name → secret value, for the driver side to hand to its workers."""
        env = {}
        for secret in self.secret_fields:
            value = getattr(profile, secret)
            if value is not None:
                env[self.env_name(secret)] = value.get_secret_value()
        return env

    def load(self) -> Profile:
        """The full profile on a worker: settings from this object, secrets from the environment."""
        from astrachaos.config.settings import Profile

        data = json.loads(self.settings_json)
        for secret in self.secret_fields:
            name = self.env_name(secret)
            if name not in os.environ:
                raise EnvironmentProblem(
                    f"profile {self.name}: the worker has no {name} (the profile's {secret})",
                    hint="astrachaos sets it for its own workers; with spark-submit, see docs/scale.md",
                )
            data[secret] = os.environ[name]
        return Profile.model_validate(data)
