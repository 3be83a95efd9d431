package api

import "testing"

func TestBFDValidate(t *testing.T) {
	peer := func() *BGPPeer {
		return &BGPPeer{ObjectMeta: ObjectMeta{Name: "tor"}, Spec: BGPPeerSpec{PeerIP: "10.0.0.254", ASNumber: ptr(uint32(65100))}}
	}
	bfd := func(f func(*BFD)) func(*BGPPeer) {
		return func(p *BGPPeer) { p.Spec.BFD = &BFD{Enabled: ptr(true)}; f(p.Spec.BFD) }
	}
	runValidation(t, peer, []validationCase[*BGPPeer]{
		{"defaults", bfd(func(*BFD) {}), nil},
		{"all set", bfd(func(b *BFD) {
			b.MinTx, b.MinRx, b.Multiplier, b.Multihop, b.RequireUp = "100ms", "1s", ptr(255), ptr(true), ptr(true)
		}), nil},
		{"bounds", bfd(func(b *BFD) { b.MinTx, b.MinRx = "10ms", "60s" }), nil},
		{"too fast", bfd(func(b *BFD) { b.MinTx, b.MinRx = "9ms", "1ms" }), []string{"spec.bfd.minRx", "spec.bfd.minTx"}},
		{"too slow", bfd(func(b *BFD) { b.MinRx = "61s" }), []string{"spec.bfd.minRx"}},
		{"sub-millisecond", bfd(func(b *BFD) { b.MinTx = "100500us" }), []string{"spec.bfd.minTx"}},
		{"malformed", bfd(func(b *BFD) { b.MinTx = "fast" }), []string{"spec.bfd.minTx"}},
		{"multiplier 0", bfd(func(b *BFD) { b.Multiplier = ptr(0) }), []string{"spec.bfd.multiplier"}},
		{"multiplier 256", bfd(func(b *BFD) { b.Multiplier = ptr(256) }), []string{"spec.bfd.multiplier"}},
		{"dynamic neighbours", func(p *BGPPeer) {
			p.Spec.PeerIP, p.Spec.ASNumber, p.Spec.PeerPrefix = "", nil, "10.0.0.0/16"
			p.Spec.BFD = &BFD{Enabled: ptr(true)}
		}, []string{"spec.bfd.enabled"}},
		{"dynamic neighbours, disabled", func(p *BGPPeer) {
			p.Spec.PeerIP, p.Spec.ASNumber, p.Spec.PeerPrefix = "", nil, "10.0.0.0/16"
			p.Spec.BFD = &BFD{Enabled: ptr(false)}
		}, nil},
	})
	conf := func() *BGPConfiguration {
		return &BGPConfiguration{ObjectMeta: ObjectMeta{Name: DefaultBGPConfigurationName}}
	}
	runValidation(t, conf, []validationCase[*BGPConfiguration]{
		{"global", func(c *BGPConfiguration) { c.Spec.BFD = &BFD{Enabled: ptr(true), MinTx: "50ms"} }, nil},
		{"global bad", func(c *BGPConfiguration) { c.Spec.BFD = &BFD{Multiplier: ptr(-1)} }, []string{"spec.bfd.multiplier"}},
		{"per node", func(c *BGPConfiguration) { c.Name = "node.n1"; c.Spec.BFD = &BFD{Enabled: ptr(true)} }, []string{"spec.bfd"}},
	})
}
