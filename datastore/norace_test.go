//go:build !race

package datastore_test

const raceEnabled = false
