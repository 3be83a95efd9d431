//go:build race

package datastore_test

// raceEnabled: under the race detector every etcd costs several times the
// CPU, so the tests keep go test's default parallelism.
const raceEnabled = true
