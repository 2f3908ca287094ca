package s3

// Helpers for the end-to-end tests in package s3_test.
var (
	TestBucket = testBucket
	Put        = put
	Keys       = keys
	Object     = object
	Incomplete = incomplete
)
