"""`make bench`: production-size data in a fresh database, then the measurements of issue 9."""
