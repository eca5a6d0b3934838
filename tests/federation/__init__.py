"""Federation test bed, Hive Gateway harness and operation corpus for the router's tests."""
