"""One deployment's view of AWS: its names, its tags and a gateway per service, created on first use."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from shipyard.cloud.apigateway import ApiGatewayGateway
from shipyard.cloud.autoscaling import AutoscalingGateway
from shipyard.cloud.budgets import BudgetsGateway
from shipyard.cloud.cloudwatch import CloudWatchGateway
from shipyard.cloud.ecr import EcrGateway
from shipyard.cloud.events import EventsGateway
from shipyard.cloud.iam import IamGateway
from shipyard.cloud.logs import LogsGateway
from shipyard.cloud.pricelist import PriceListGateway
from shipyard.cloud.s3 import S3Gateway
from shipyard.cloud.sagemaker import SageMakerGateway
from shipyard.cloud.scheduler import SchedulerGateway
from shipyard.cloud.secrets import SecretsGateway
from shipyard.cloud.session import Aws, tag_list
from shipyard.cloud.sns import SnsGateway
from shipyard.cloud.stepfunctions import StepFunctionsGateway
from shipyard.cloud.tagging import TaggingGateway
from shipyard.deploy.sagemaker.names import Names

__all__ = ["Context"]


@dataclass
class Context:
    aws: Aws
    names: Names
    tags: dict[str, str] = field(default_factory=dict)  # cloud.session.deployment_tags: made once per deployment

    @property
    def tag_list(self) -> list[dict[str, str]]:
        """:attr:`tags` in the list shape most AWS APIs take."""
        return tag_list(self.tags)

    @functools.cached_property
    def iam(self) -> IamGateway:
        return IamGateway(self.aws)

    @functools.cached_property
    def ecr(self) -> EcrGateway:
        return EcrGateway(self.aws)

    @functools.cached_property
    def s3(self) -> S3Gateway:
        return S3Gateway(self.aws)

    @functools.cached_property
    def sagemaker(self) -> SageMakerGateway:
        return SageMakerGateway(self.aws)

    @functools.cached_property
    def logs(self) -> LogsGateway:
        return LogsGateway(self.aws)

    @functools.cached_property
    def scaling(self) -> AutoscalingGateway:
        return AutoscalingGateway(self.aws)

    @functools.cached_property
    def secrets(self) -> SecretsGateway:
        return SecretsGateway(self.aws)

    @functools.cached_property
    def apigateway(self) -> ApiGatewayGateway:
        return ApiGatewayGateway(self.aws)

    @functools.cached_property
    def cloudwatch(self) -> CloudWatchGateway:
        return CloudWatchGateway(self.aws)

    @functools.cached_property
    def sns(self) -> SnsGateway:
        return SnsGateway(self.aws)

    # -- the spend guards (deploy/sagemaker/guards.py): the TTL schedule, the idle rule and its state machine --
    @functools.cached_property
    def scheduler(self) -> SchedulerGateway:
        return SchedulerGateway(self.aws)

    @functools.cached_property
    def events(self) -> EventsGateway:
        return EventsGateway(self.aws)

    @functools.cached_property
    def stepfunctions(self) -> StepFunctionsGateway:
        return StepFunctionsGateway(self.aws)

    # -- cost: budgets, current prices, what still bills (deploy/cost.py) ----------------------------------
    @functools.cached_property
    def budgets(self) -> BudgetsGateway:
        return BudgetsGateway(self.aws)

    @functools.cached_property
    def pricelist(self) -> PriceListGateway:
        return PriceListGateway(self.aws)

    @functools.cached_property
    def tagging(self) -> TaggingGateway:
        return TaggingGateway(self.aws)
