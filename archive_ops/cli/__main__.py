from archive_ops.cli import entry_point

entry_point()
