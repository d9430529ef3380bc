"""API Gateway (REST APIs): the public API in front of an endpoint (``shipyard expose``): the API, its POST
method and SageMaker runtime integration, the stage, the usage plan and its API key."""

from __future__ import annotations

from shipyard.cloud.session import Aws

__all__ = ["ApiGatewayGateway"]


class ApiGatewayGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("apigateway")
