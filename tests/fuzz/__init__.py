"""Our own fuzz suite: mutated Kafka events through the real ``Archiver`` (docs/dead-letter.md, "Fuzzing").

``python -m tests.fuzz`` (``make fuzz``) runs 100,000 events and prints the counts; ``test_fuzz.py`` runs a fast
seeded subset in ``make test``.
"""
