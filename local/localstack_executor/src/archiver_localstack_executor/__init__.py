"""A LocalStack Lambda runtime executor that runs Python functions as host processes instead of Docker containers.

LocalStack's free edition ships only the Docker executor. This plugin (entry point ``local`` in the namespace
``localstack.lambda.runtime_executor``, selected with ``LAMBDA_RUNTIME_EXECUTOR=local``) starts one host process per
execution environment from the function's deployed, unzipped code, with the environment LocalStack gives it.
"""
