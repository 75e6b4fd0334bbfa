"""boto3 clients for the local tools, pointed at LocalStack (or wherever ``Endpoints`` say) with dummy credentials."""

from __future__ import annotations

from typing import Any

from local.config import Endpoints


def client(service: str, endpoints: Endpoints, **config: Any) -> Any:
    """A boto3 client for ``service`` at ``endpoints.aws_endpoint``; ``config`` goes to botocore's ``Config``."""
    import boto3
    from botocore.config import Config

    aws = endpoints.aws_env()
    return boto3.client(
        service,
        endpoint_url=endpoints.aws_endpoint,
        region_name=endpoints.region,
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        config=Config(**config) if config else None,
    )
