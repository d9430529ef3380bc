"""One exception tree for the whole project.

Every error Shipyard raises derives from :class:`ShipyardError`. Each class carries the HTTP status the
server answers with and the exit code the CLI leaves with, so errors are mapped to responses and exit
codes in exactly one place (the ASGI app's edge and the CLI's ``main``)::

    ShipyardError                  500 / exit 1
    ├── UsageError                 400 an input or a setting is wrong; nothing was done (exit 2)
    │   └── SettingsError          400 an environment variable or option has a value that cannot work
    ├── BundleError                    a bundle cannot be written, read or loaded (exit 2)
    ├── RequestError               400 the request is wrong
    │   ├── SchemaMismatch         400 it does not match the bundle's schema
    │   ├── UnsupportedMediaType   415 no codec for its Content-Type
    │   ├── NotAcceptable          406 no codec for its Accept
    │   ├── PayloadTooLarge        413 over SAGEMAKER_MAX_PAYLOAD_IN_MB
    │   ├── ModelNotFound          404 multi-model: no model of that name (or its url names nothing)
    │   └── ModelExists            409 multi-model: that name is already registered
    ├── ModelError                 500 the model (or the user's handler) raised
    ├── Overloaded                 503 the queue is full (Retry-After)
    ├── ModelNotReady              503 still loading
    ├── InsufficientMemory         507 multi-model: the model alone does not fit the budget
    ├── InferenceTimeout           504 over SAGEMAKER_MODEL_SERVER_TIMEOUT
    ├── InvokeError                    the client got an error answer (exit 4)
    │   └── StillRunning               an asynchronous inference has no answer yet (exit 75, "try again")
    ├── MonitorError                   monitoring input or baseline is unusable (exit 2)
    ├── SpecError                      deploy options are wrong; nothing was created (exit 2)
    ├── DeployError                    a deployment could not be made, changed, found or removed (exit 3)
    │   ├── DeployFailed               the endpoint ended Failed (carries FailureReason and the log tail)
    │   └── NotDeployed                no deployment under that name
    ├── CloudError                     AWS refused a call (carries the AWS error code; exit 5)
    │   ├── CredentialsError           no credentials, or they were refused
    │   ├── AccessDenied               the identity lacks a permission
    │   └── AwsUnreachable             no connection to AWS (network, proxy, --region, AWS_ENDPOINT_URL)
    └── ImageError                     an image cannot be built, pushed or run (exit 6)
        ├── EngineNotFound             neither docker nor podman is usable
        └── VerifyFailed               ``shipyard verify``: a contract check failed (exit 7)
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "NEEDS_BOTO3",
    "AccessDenied",
    "AwsUnreachable",
    "BundleError",
    "CloudError",
    "CredentialsError",
    "DeployError",
    "DeployFailed",
    "EngineNotFound",
    "ImageError",
    "InferenceTimeout",
    "InsufficientMemory",
    "InvokeError",
    "ModelCrashed",
    "ModelError",
    "ModelExists",
    "ModelNotFound",
    "ModelNotReady",
    "MonitorError",
    "NotAcceptable",
    "NotApproved",
    "NotDeployed",
    "Overloaded",
    "PayloadTooLarge",
    "RegistryError",
    "RequestError",
    "SchemaMismatch",
    "SettingsError",
    "ShipyardError",
    "SpecError",
    "StillRunning",
    "TrainError",
    "TrainFailed",
    "TrainStopped",
    "UnsupportedMediaType",
    "UsageError",
    "VerifyFailed",
]


class ShipyardError(Exception):
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    code: ClassVar[str] = "InternalError"


class UsageError(ShipyardError):
    """What was asked cannot work as given (an option, a setting, an argument); nothing was done."""

    http_status = 400
    exit_code = 2
    code = "UsageError"


class SettingsError(UsageError):
    """A setting (an environment variable, or the option that stands for it) has a value that cannot work.

    ``setting`` names it (``SHIPYARD_MAX_QUEUE``, ...) so the CLI can point at the option that sets it.
    """

    code = "InvalidSetting"

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class BundleError(ShipyardError):
    exit_code = 2
    code = "BundleError"


class RequestError(ShipyardError):
    http_status = 400
    code = "BadRequest"


class SchemaMismatch(RequestError):
    code = "SchemaMismatch"


class UnsupportedMediaType(RequestError):
    http_status = 415
    code = "UnsupportedMediaType"


class NotAcceptable(RequestError):
    http_status = 406
    code = "NotAcceptable"


class PayloadTooLarge(RequestError):
    http_status = 413
    code = "PayloadTooLarge"


class ModelError(ShipyardError):
    code = "ModelError"


class ModelCrashed(ModelError):
    """The model's process died while computing the request (out of memory, a crash in native code)."""

    code = "ModelCrashed"


class Overloaded(ShipyardError):
    http_status = 503
    code = "Overloaded"


class ModelNotReady(ShipyardError):
    http_status = 503
    code = "ModelNotReady"


class ModelNotFound(RequestError):
    """Multi-model: no model of that name is registered (or its url names nothing)."""

    http_status = 404
    code = "ModelNotFound"


class ModelExists(RequestError):
    """Multi-model: POST /models with a name already registered."""

    http_status = 409
    code = "ModelExists"


class InsufficientMemory(ShipyardError):
    """Multi-model: the model alone does not fit in the memory budget (SageMaker reads 507 as "no room")."""

    http_status = 507
    code = "InsufficientMemory"


class InferenceTimeout(ShipyardError):
    http_status = 504
    code = "Timeout"


class MonitorError(ShipyardError):
    """``shipyard monitor``: the data, the capture or the baseline cannot be used (the message says why)."""

    exit_code = 2
    code = "MonitorError"


class StreamAborted(ShipyardError):
    """A streamed answer failed after its status was sent: its error record is written, and raising this out of
    the ASGI application breaks the connection, so that the answer is never taken for a whole one."""


class InvokeError(ShipyardError):
    exit_code = 4
    code = "ClientError"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class StillRunning(InvokeError):
    """``shipyard results``: the asynchronous inference's answer is not there yet (sysexits' EX_TEMPFAIL)."""

    exit_code = 75
    code = "StillRunning"


class SpecError(ShipyardError):
    """Deploy options that cannot work (checked before anything is created).

    ``option`` names the option at fault as the Python API spells it (``serverless``, ``instance_count``);
    the message starts with that name, and the CLI shows the flag that sets it instead (``--instance-count``).
    """

    exit_code = 2
    code = "InvalidSpec"

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class DeployError(ShipyardError):
    exit_code = 3
    code = "DeployError"


class DeployFailed(DeployError):
    """The endpoint ended ``Failed``: the target's reason and the container's last log lines travel with it;
    ``alarm``: the CloudWatch alarm whose firing made SageMaker roll a guarded update back, when one did."""

    code = "DeployFailed"

    def __init__(
        self, message: str, *, reason: str | None = None, log_tail: tuple[str, ...] = (), alarm: str | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.log_tail = log_tail
        self.alarm = alarm


class NotDeployed(DeployError):
    code = "NotDeployed"


class TrainError(ShipyardError):
    """A training run could not be started or recorded (the image, the data, the job's resources)."""

    exit_code = 3
    code = "TrainError"


class TrainFailed(TrainError):
    """The run ended ``Failed``: the reason (``/opt/ml/output/failure``, SageMaker's ``FailureReason``, or the exit
    status) and the last lines of its log travel with it."""

    code = "TrainFailed"

    def __init__(self, message: str, *, reason: str | None = None, log_tail: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reason = reason
        self.log_tail = log_tail


class TrainStopped(TrainError):
    """The run was stopped (Ctrl-C, or ``StopTrainingJob``) before it finished; it is recorded as ``Stopped``."""

    exit_code = 130
    code = "TrainStopped"


class RegistryError(ShipyardError):
    """The model registry cannot do what was asked (no such group or version, a bad transition)."""

    exit_code = 2
    code = "RegistryError"


class NotApproved(RegistryError):
    """A model version that is not ``Approved`` was asked to deploy without ``--allow-unapproved``."""

    code = "NotApproved"


class CloudError(ShipyardError):
    """AWS refused a call; ``aws_code`` is AWS's error code (``AccessDeniedException``, ...)."""

    exit_code = 5
    code = "CloudError"

    def __init__(
        self, message: str, *, aws_code: str | None = None, operation: str | None = None, option: str | None = None
    ) -> None:
        super().__init__(message)
        self.aws_code = aws_code
        self.operation = operation
        self.option = option  # the deploy option that would fix it (``region``, ``role_arn``), as SpecError's


# What a CloudError says where boto3 (the ``aws`` extra) is missing: the base install deploys locally only.
NEEDS_BOTO3 = "the AWS features need boto3: pip install 'shipyard[aws]'"


class CredentialsError(CloudError):
    code = "NoCredentials"


class AccessDenied(CloudError):
    code = "AccessDenied"


class AwsUnreachable(CloudError):
    """No connection to AWS at all: nothing was asked, so nothing is known (a dry run goes on without it)."""

    code = "AwsUnreachable"


class ImageError(ShipyardError):
    """A container image cannot be built, pushed, inspected or run (the engine's own message is included)."""

    exit_code = 6
    code = "ImageError"


class EngineNotFound(ImageError):
    """Neither docker (with a reachable daemon) nor podman is installed."""

    code = "EngineNotFound"


class VerifyFailed(ImageError):
    """``shipyard verify``: the image breaks at least one check of the SageMaker container contract."""

    exit_code = 7
    code = "VerifyFailed"
