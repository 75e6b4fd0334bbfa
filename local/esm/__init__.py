"""The Kafka event-source-mapping (ESM) emulator: ``python -m local.esm``.

``events`` builds AWS's payloads (pure), ``invokers`` calls the function (Lambda Invoke API or in-process),
``metrics`` turns the function's EMF log lines into CloudWatch metrics, ``emulator`` is the poller itself.
"""
