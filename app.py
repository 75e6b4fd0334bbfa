#!/usr/bin/env python3
"""CDK entry point: config file (``-c config=<path>``) -> validated AppConfig -> ArchiverStack.

Context keys (``cdk synth -c key=value`` or cdk.json):
  config            path of the deployment's JSON config (required), e.g. config/msk.example.json
  withEventSource   "false" leaves out the Kafka event source mapping(s) (LocalStack); default "true"
  nag               "false" skips the cdk-nag AwsSolutions checks at synth; default "true"
"""

from __future__ import annotations

import os
import sys

from infra.toolchain import node_env

# The jsii kernel behind aws_cdk runs on the pinned Node 24 (package.json) however the CLI was started.
os.environ["PATH"] = node_env()["PATH"]

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.app import context_flag, stack_env
from infra.config import ConfigError, load_config
from infra.stack import ArchiverStack


def main() -> None:
    app = cdk.App()
    path = app.node.try_get_context("config")
    if not path:
        sys.exit(
            "no deployment config: pass -c config=<file>, e.g. config/msk.example.json, "
            "config/self-managed.example.json or config/local.json (see docs/configuration.md)"
        )
    try:
        config = load_config(str(path))
        with_event_source = context_flag(app.node.try_get_context("withEventSource"), default=True)
        nag = context_flag(app.node.try_get_context("nag"), default=True)
    except (ConfigError, ValueError) as e:
        sys.exit(str(e))
    ArchiverStack(
        app,
        config.stack_name,
        config=config,
        with_event_source=with_event_source,
        env=stack_env(config, os.environ),
        description="Kafka topics archived to S3 as Avro by AWS Lambda (kafka-s3-archiver)",
    )
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    app.synth()


if __name__ == "__main__":
    main()
