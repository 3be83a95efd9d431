package speakerproc

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// goodBodies are attribute-rich valid UPDATEs (bodies, no header): the
// fuzzer's seeds beside the crasher.
func goodBodies() [][]byte {
	asPath := bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{65050, 4200000000})})
	msgs := []*bgp.BGPMessage{
		bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{
			bgp.NewPathAttributeOrigin(0), asPath, bgp.NewPathAttributeNextHop("127.0.0.2"),
			bgp.NewPathAttributeMultiExitDisc(10),
			bgp.NewPathAttributeCommunities([]uint32{65050<<16 | 100, 0xFFFFFF01}),
			bgp.NewPathAttributeLargeCommunities([]*bgp.LargeCommunity{bgp.NewLargeCommunity(65050, 1, 2)}),
			bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, 65050, 7, true)}),
			bgp.NewPathAttributeAtomicAggregate(),
			bgp.NewPathAttributeAggregator(uint32(65050), "127.0.0.2"),
		}, []*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(24, "10.77.1.0"), bgp.NewIPAddrPrefix(32, "10.77.2.1")}),
		bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{
			bgp.NewPathAttributeOrigin(2), asPath,
			bgp.NewPathAttributeMpReachNLRI("127.0.0.2", []bgp.AddrPrefixInterface{bgp.NewIPAddrPrefix(16, "10.78.0.0")}),
		}, nil),
		bgp.NewBGPUpdateMessage([]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(24, "10.77.1.0")}, nil, nil),
	}
	var out [][]byte
	for _, m := range msgs {
		b, err := m.Serialize()
		if err != nil {
			panic(err)
		}
		out = append(out, b[bgp.BGP_HEADER_LENGTH:])
	}
	return out
}

// fuzzH is the fuzz target's speaker, shared by its iterations in one
// process (a worker); TestMain stops it.
var (
	fuzzOnce sync.Once
	fuzzH    *harness
	fuzzS    *session
	fuzzErr  error
)

// FuzzSpeakerUpdate drives a real session with the node's speaker as the
// node runs it, in a supervised child process, with mutated UPDATE
// bodies. The property: this process (the node) survives whatever the
// speaker does; when the speaker dies, the loss is reported with its
// panic, a new child starts and the session re-establishes; after a
// session reset it re-establishes too. Crashes are counted and logged
// (docs/robustness.md records what the fuzzing found), not failures:
// GoBGP's decoder panics are what the child process is there for.
func FuzzSpeakerUpdate(f *testing.F) {
	f.Add(crasherBody)
	for _, b := range goodBodies() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > bgp.BGP_MAX_MESSAGE_LENGTH-bgp.BGP_HEADER_LENGTH {
			return
		}
		fuzzOnce.Do(func() {
			if fuzzH, fuzzErr = newHarness(); fuzzErr == nil {
				fuzzS, fuzzErr = fuzzH.dial(30e9)
			}
		})
		if fuzzErr != nil {
			t.Fatalf("setting up the speaker: %v", fuzzErr)
		}
		out, s, err := fuzzH.try(fuzzS, body)
		if err != nil {
			t.Fatalf("UPDATE %x: %v", body, err)
		}
		fuzzS = s
		if out == crashed {
			t.Logf("UPDATE %x crashed the speaker; it is back", body)
			noteCrash(body)
		}
	})
}

// noteCrash appends a crashing input to the file BF_FUZZ_CRASHES names,
// if any: in fuzzing mode t.Logf is not shown, and a crash of the child
// is no failure of the property, so this is how a run's finds are read.
func noteCrash(body []byte) {
	name := os.Getenv("BF_FUZZ_CRASHES")
	if name == "" {
		return
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%x\n", body)
}
