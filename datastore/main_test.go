package datastore_test

import (
	"flag"
	"os"
	"testing"
)

// testParallel is how many parallel tests run at once when -parallel is
// not given. The tests spend their time waiting for etcd's timers (lease
// TTLs, keep-alives, restarts), not on CPU, so the default of GOMAXPROCS
// (2 on the CI machine) would run them nearly one after the other. Not
// under the race detector (raceEnabled), where etcd is CPU-bound.
const testParallel = "8"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set && !raceEnabled {
		if err := flag.Set("test.parallel", testParallel); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
