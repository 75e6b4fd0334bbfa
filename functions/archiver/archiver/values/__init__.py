"""Typed archives: decode each topic's values by its configured format and archive them as typed Avro records.

* ``config``       ``VALUE_FORMATS`` JSON -> ``TopicFormat`` per typed topic (validated inside ``Settings``)
* ``base``         ``ValueDecoder`` (the abstract base) and ``ValueSchema`` (one writer schema; encodes objects)
* ``json_schema``  ``json``: JSON text checked against a shipped ``.avsc``
* ``confluent``    ``avro-confluent``: Confluent wire format; ``confluent_registry`` fetches schemas over HTTP
* ``glue``         ``avro-glue``: Glue Schema Registry wire format; ``glue_registry`` fetches via the Glue API
* ``registry_avro`` what both registry formats share, including the ESM schema-registry event shapes
* ``factory``      format -> decoder, importing a format's modules only when a topic uses it
* ``stage``        the pipeline's hook: decode a batch's typed values, split groups into one-schema runs

``raw`` topics never reach this package: they take the envelope path unchanged. Nothing is imported here, so
``archiver.settings`` can import ``archiver.values.config`` without a cycle.
"""
