"""The one exception tree of metro-e2e.

Every error the library raises on purpose is a ``MetroE2EError``; each
subclass carries the process exit code the CLIs use for it::

    MetroE2EError (1)            anything else we detected
    +-- ConfigError (2)          a setting is malformed: names the setting and its source
    +-- InputError (3)           a file or dataset given to a step is unusable
    +-- EndpointUnreachable (4)  a service did not answer within its timeout
    +-- AuthError (5)            a service refused the credentials
    +-- StorageError (6)         S3 answered, but not as the workflow needs (missing bucket/key)
    +-- TrackingError (7)        MLflow tracking or registry refused or failed a call
    +-- PromotionError (8)       a version could not be promoted to ``latest/``
    +-- ServingError (9)         the model server answered non-2xx (status, error_code, message)
    +-- PipelineError (10)       a pipeline could not be compiled, checked or run (names the task)
    +-- StackError (11)          a local stack service did not start, become ready or stop
    +-- KfpError (12)            Kubeflow Pipelines answered, but not as the workflow needs
    +-- Interrupted (130)        a run was interrupted (SIGINT/SIGTERM) before it could write its report

Third-party exceptions are wrapped with ``raise ... from exc`` so the cause
survives for debugging while the user sees one sentence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for the annotation: the runner imports this module
    from metro_e2e.pipeline.local import RunResult


class MetroE2EError(Exception):
    """Base class: a failure metro-e2e detected and can explain in one sentence."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class ConfigError(MetroE2EError):
    """A setting is malformed; the message names the setting and where its value came from."""

    exit_code = 2

    def __init__(self, message: str, *, setting: str, source: str, hint: str | None = None) -> None:
        self.setting = setting
        self.source = source
        super().__init__(message, hint=hint)


class InputError(MetroE2EError):
    """A file or dataset handed to a step is missing, empty or lacks a required column."""

    exit_code = 3


class EndpointUnreachable(MetroE2EError):
    """A service did not answer (refused, DNS failure or timeout)."""

    exit_code = 4

    def __init__(self, message: str, *, url: str, hint: str | None = None) -> None:
        self.url = url
        super().__init__(message, hint=hint)


class AuthError(MetroE2EError):
    """A service answered but refused the credentials in use."""

    exit_code = 5


class StorageError(MetroE2EError):
    """S3 answered but the bucket or object the workflow needs is not as expected."""

    exit_code = 6


class TrackingError(MetroE2EError):
    """The MLflow tracking server or model registry failed or refused a call."""

    exit_code = 7


class PromotionError(MetroE2EError):
    """A registered version could not be promoted to ``latest/``."""

    exit_code = 8


class ServingError(MetroE2EError):
    """The model server answered with a non-2xx status."""

    exit_code = 9

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error_code: str | None = None,
        server_message: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.error_code = error_code
        self.server_message = server_message
        super().__init__(message, hint=hint)


class PipelineError(MetroE2EError):
    """A pipeline task failed, timed out, or the pipeline cannot be run as written.

    ``task`` names the task at fault, if one is; ``result`` is what the run got done before it stopped (the local
    runner's ``RunResult``, every task with its state), or None when no task ran.
    """

    exit_code = 10

    def __init__(
        self, message: str, *, task: str | None = None, result: RunResult | None = None, hint: str | None = None
    ) -> None:
        self.task = task
        self.result = result
        super().__init__(message, hint=hint)


class StackError(MetroE2EError):
    """A local stack service failed to start, become ready or stop (the message names its URL and log)."""

    exit_code = 11


class KfpError(MetroE2EError):
    """KFP answered, but not as the workflow needs."""

    exit_code = 12


class Interrupted(MetroE2EError):
    """A run was interrupted (SIGINT, or SIGTERM handled like it) before it could write its report."""

    exit_code = 130  # the shell's code for a process stopped by SIGINT
