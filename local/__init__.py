"""kafka-s3-archiver local tooling: broker + LocalStack control, event-source-mapping emulator, archive tools."""
