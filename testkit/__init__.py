"""What the tests and the benchmarks share that is not part of the product: a real S3 server
(SeaweedFS) to run against. Not in the wheel."""
